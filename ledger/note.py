"""C2SP signed-note: a text signed by one or more named keys.

    <text, ending in a newline>
    <blank line>
    — <key name> <base64(key ID || signature)>
    ...

Signatures by keys the reader does not know (witness cosignatures, say) are kept and
ignored; at least one known key must have signed, and every known key's signature must
verify.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.errors import VerificationError
from ledger.signing import Signer, Verifier

__all__ = ["MAX_SIGNATURES", "Note", "NoteSignature", "open_note", "parse_note", "sign_note"]

MAX_SIGNATURES = 100
_DASH = "\u2014 "


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


def sign_note(text: str, signers: Iterable[Signer]) -> Note:
    _check_text(text)
    data = text.encode()
    return Note(text, tuple(NoteSignature(s.name, s.key_id, s.sign(data)) for s in signers))


def parse_note(message: bytes) -> Note:
    """Split a signed note into text and signature lines, checking only the syntax."""
    try:
        decoded = message.decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationError("note is not valid UTF-8") from None
    split = decoded.rfind("\n\n")
    if split < 0:
        raise VerificationError("note has no blank line before its signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    _check_text(text)
    if not block.endswith("\n"):
        raise VerificationError("note signature block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"note has more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(_parse_signature(line) for line in lines))


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise VerificationError("note text must end with a newline")
    if any(c < " " and c != "\n" for c in text):
        raise VerificationError("note text must not hold control characters")


def _parse_signature(line: str) -> NoteSignature:
    if not line.startswith(_DASH):
        raise VerificationError(f"malformed note signature line {line[:40]!r}")
    name, _, encoded = line[len(_DASH) :].partition(" ")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise VerificationError(f"note signature by {name!r} is not valid base64") from None
    if not name or " " in encoded or len(raw) < 5:
        raise VerificationError(f"malformed note signature line {line[:40]!r}")
    return NoteSignature(name, raw[:4], raw[4:])


def open_note(message: bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse and verify; raise unless a known key signed and every known signature holds."""
    note = parse_note(message)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = 0
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        try:
            verifier.verify(sig.signature, note.text.encode())
        except VerificationError:
            raise VerificationError(f"note signature by {sig.name} ({sig.key_id.hex()}) does not verify") from None
        verified += 1
    if not verified:
        raise VerificationError("note is not signed by any known key")
    return note
