"""Random (version 4) UUIDs, for event and request ids.

``uuid.uuid4()`` asks the kernel for 16 bytes each time; a busy service makes one or two
per request. These come from 4 KiB of the same entropy at a time, written out together
(``str(uuid.UUID(...))`` costs some 1.8 us an id; this, about a third of that). A forked process
starts with none of its parent's, so no two processes hand out the same id.
"""

from __future__ import annotations

import os
from collections import deque

__all__ = ["random_uuid"]

_BATCH = 256  # ids made from one read of the kernel's entropy
_ready: deque[str] = deque()
os.register_at_fork(after_in_child=_ready.clear)


def random_uuid() -> str:
    """A random UUID as ``str(uuid.uuid4())`` writes it."""
    while True:
        try:
            return _ready.popleft()  # atomic: no two threads take the same id
        except IndexError:
            _ready.extend(_made(os.urandom(16 * _BATCH)))


def _made(entropy: bytes) -> list[str]:
    """UUIDs of each 16 bytes, their version (4) and variant (RFC 4122) bits set as
    ``uuid.UUID(bytes=..., version=4)`` sets them, written as ``str()`` writes them."""
    ids = bytearray(entropy)
    ids[6::16] = bytes(b & 0x0F | 0x40 for b in ids[6::16])
    ids[8::16] = bytes(b & 0x3F | 0x80 for b in ids[8::16])
    text = ids.hex()
    return [f"{text[i:i + 8]}-{text[i + 8:i + 12]}-{text[i + 12:i + 16]}-{text[i + 16:i + 20]}-{text[i + 20:i + 32]}"
            for i in range(0, len(text), 32)]  # fmt: skip
