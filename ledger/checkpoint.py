"""C2SP tlog-checkpoint: the signed tree head of the log.

<origin>
<tree size, decimal>
<base64 root hash>
[extension lines]
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.errors import VerificationError
from ledger.note import Note, open_note, sign_note
from ledger.signing import Signer, Verifier

__all__ = ["Checkpoint", "open_checkpoint", "sign_checkpoint"]

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise VerificationError("checkpoint needs origin, size and root hash lines")
        origin, size, root, *extensions = lines[:-1]
        if not origin:
            raise VerificationError("checkpoint origin line is empty")
        if not _SIZE.fullmatch(size) or int(size) >= 2**64:
            raise VerificationError(f"checkpoint tree size {size!r} is not a decimal number below 2^64")
        try:
            root_hash = base64.b64decode(root, validate=True)
        except binascii.Error:
            raise VerificationError("checkpoint root hash is not valid base64") from None
        if any(not line for line in extensions):
            raise VerificationError("checkpoint extension lines must not be empty")
        return cls(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> bytes:
    return sign_note(checkpoint.body(), [signer]).encode()


def open_checkpoint(message: bytes, origin: str, verifiers: Iterable[Verifier]) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint from the log named ``origin``."""
    note = open_note(message, verifiers)
    checkpoint = Checkpoint.from_body(note.text)
    if checkpoint.origin != origin:
        raise VerificationError(f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint, note
