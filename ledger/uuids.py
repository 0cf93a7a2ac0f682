"""Random (version 4) UUIDs, for event and request ids.

``uuid.uuid4()`` asks the kernel for 16 bytes each time; a busy service makes one or two
per request. These come from 4 KiB of the same entropy at a time. A forked process starts
with none of its parent's, so no two processes hand out the same id.
"""

from __future__ import annotations

import os
import uuid
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
            entropy = os.urandom(16 * _BATCH)
            _ready.extend(str(uuid.UUID(bytes=entropy[i : i + 16], version=4)) for i in range(0, len(entropy), 16))
