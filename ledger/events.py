"""The event envelope: what an append asks for, and the signed statement it becomes.

An event is one canonical JSON object (DESIGN.md, "The log: formats"); its canonical
bytes, signature included, are the Merkle leaf. No I/O here.
"""

from __future__ import annotations

import binascii
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.canonical import canonical, is_canonical, parse
from ledger.errors import EventTooLarge, InvalidInput, NotCanonical, VerificationError
from ledger.merkle import leaf_hash
from ledger.sensitive import Disclosure
from ledger.signing import EVENT_CONTEXT, Signer
from ledger.uuids import random_uuid

_encode_str = json.encoder.encode_basestring

__all__ = [
    "MAX_EVENT_BYTES",
    "ZERO_HASH",
    "Checked",
    "Claim",
    "Disclosure",
    "Draft",
    "Recorded",
    "check_draft",
    "check_text",
    "decode_leaf",
    "format_time",
    "seal_event",
    "unsigned_leaf",
]

MAX_EVENT_BYTES = 64 * 1024
ZERO_HASH = bytes(32)
FORMAT_VERSION = 1

_STREAM = re.compile(r"[a-z][a-z-]{0,31}/[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_TYPE = re.compile(r"[a-z][a-z_]*\.[a-z][a-z_]*")
_ROLE = re.compile(r"[a-z][a-z-]{0,31}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_FIELD_TYPES: dict[str, type] = {
    "v": int,
    "log": str,
    "seq": int,
    "id": str,
    "stream": str,
    "version": int,
    "type": str,
    "schema": str,
    "recorded_at": str,
    "actor": dict,
    "data": dict,
    "prev": str,
    "key_id": str,
    "sig": str,
}
_FIELDS = {
    "v",
    "log",
    "seq",
    "id",
    "stream",
    "version",
    "type",
    "schema",
    "recorded_at",
    "actor",
    "data",
    "prev",
    "key_id",
    "sig",
}


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key as a request used it: who used it (a token id, or "anonymous"), and
    the SHA-256 of the request it came with."""

    scope: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class Draft:
    """What a caller asks the writer to append; seq, version, time and chain come later."""

    stream: str
    type: str
    data: Mapping[str, Any]
    actor: Mapping[str, str]
    schema_version: int = 1
    expected_version: int | None = None
    id: str = field(default_factory=random_uuid)
    disclosures: tuple[Disclosure, ...] = ()
    claim: Claim | None = None  # the Idempotency-Key whose request this event answers
    requires: tuple[tuple[str, int], ...] = ()  # other streams that must still be at these versions

    @property
    def schema(self) -> str:
        return f"{self.type}/{self.schema_version}"


@dataclass(frozen=True)
class Recorded:
    """An event as committed: its leaf input, leaf hash and decoded form."""

    seq: int
    leaf: bytes
    leaf_hash: bytes
    event: Mapping[str, Any]

    @property
    def stream(self) -> str:
        return str(self.event["stream"])

    @property
    def version(self) -> int:
        return int(self.event["version"])


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2025-02-07T10:00:00.000000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Checked:
    """A draft whose data and actor are known to encode: their canonical bytes kept, and
    the JSON strings of its id, schema, stream and type, ready for the leaf."""

    draft: Draft
    data: bytes
    actor: bytes
    strings: tuple[bytes, bytes, bytes, bytes]


def check_draft(draft: Draft, origin: str) -> Checked:
    """Refuse, before it is queued, a draft that could not become a valid event."""
    if not isinstance(draft.id, str) or not _ID.fullmatch(draft.id):
        raise InvalidInput(f"event id {draft.id!r} must be 1-128 letters, digits, '.', '_', ':' or '-'", pointer="/id")
    if not _STREAM.fullmatch(draft.stream):
        raise InvalidInput(f"stream {draft.stream!r} must look like 'policy/<id>'", pointer="/stream")
    if not _TYPE.fullmatch(draft.type):
        raise InvalidInput(f"event type {draft.type!r} must look like 'policy.issued'", pointer="/type")
    if not isinstance(draft.data, Mapping):
        raise InvalidInput("event data must be a JSON object", pointer="/data")
    if set(draft.actor) != {"id", "role"} or not all(isinstance(v, str) and v for v in draft.actor.values()):
        raise InvalidInput("actor must be {'id': ..., 'role': ...} with non-empty strings", pointer="/actor")
    if not _ROLE.fullmatch(draft.actor["role"]):
        raise InvalidInput(f"actor role {draft.actor['role']!r} is not a role name", pointer="/actor/role")
    if draft.expected_version is not None and draft.expected_version < 0:
        raise InvalidInput("expected version must be 0 or more", pointer="/expected_version")
    for stream, version in draft.requires:
        if not _STREAM.fullmatch(stream) or version < 0:
            raise InvalidInput(f"required stream {stream!r} at version {version} is not a stream and version")
    strings = (_string(draft.id), _string(draft.schema), _string(draft.stream), _string(draft.type))
    checked = Checked(draft, canonical(draft.data), _actor(draft.actor), strings)
    if b"\\u0000" in checked.data + checked.actor:  # perhaps a NUL: canonical JSON escapes it so
        check_text({"actor": dict(draft.actor), "data": draft.data})
    widest = widest_size(checked, origin)
    if widest > MAX_EVENT_BYTES:
        raise EventTooLarge(f"event would be {widest} bytes; the limit is {MAX_EVENT_BYTES} bytes of canonical JSON")
    return checked


def check_text(value: Any, pointer: str = "") -> None:
    """Refuse a string or member name in ``value`` that the ledger cannot keep as text, saying
    where: one holding U+0000 (PostgreSQL's text cannot), or a lone surrogate (not Unicode)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"the text at '{pointer}' holds U+0000 (NUL), which the ledger cannot keep; remove it",
                               pointer=pointer)  # fmt: skip
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"the text at '{pointer}' holds a lone surrogate escape, which is not Unicode text; "
                "escape a character beyond U+FFFF as a surrogate pair, or send it as UTF-8",
                pointer=pointer,
            ) from None
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_text(item, f"{pointer}/{index}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            check_text(key, inner)
            check_text(item, inner)


# The leaf's bytes that do not depend on the draft, at their widest: braces, commas, the
# 14 keys, and the values of key_id, prev, recorded_at, seq, sig, v and version.
_KEYS = ("actor", "data", "id", "key_id", "log", "prev", "recorded_at", "schema", "seq", "sig", "stream", "type", "v",
         "version")  # fmt: skip
_WIDEST_FIXED = (
    2 + (len(_KEYS) - 1) + sum(len(k) + 3 for k in _KEYS)
    + len('"00000000"') + len(f'"{"A" * 43}="') + len('"2025-01-01T00:00:00.000000Z"')
    + len(str(2**53 - 1)) + len(f'"{"=" * 88}"') + len(str(FORMAT_VERSION)) + len(str(2**31))
)  # fmt: skip


def widest_size(checked: Checked, origin: str) -> int:
    """The length of the draft's leaf at the widest seq, version and signature, unbuilt."""
    fixed = _WIDEST_FIXED + len(_constant(origin)) + len(checked.data) + len(checked.actor)
    return fixed + sum(len(s) for s in checked.strings)


def _actor(actor: Mapping[str, str]) -> bytes:
    """canonical({"id": ..., "role": ...}) for two strings, written out: its keys are fixed."""
    return b'{"id":' + _string(actor["id"]) + b',"role":' + _string(actor["role"]) + b"}"


_FORMAT = str(FORMAT_VERSION).encode()


def _leaf_parts(
    checked: Checked, origin: str, *, seq: int, version: int, recorded_at: str, prev64: bytes, key_id: str
) -> tuple[bytes, bytes]:
    """The canonical event, unsigned, in two parts: its ``sig`` member goes between them.
    ``prev64`` is ``prev`` in base64.

    Every top-level key is ASCII and fixed, so writing them in RFC 8785 order (here, by
    hand) around canonical values gives exactly ``canonical(event)``; tests hold it to that.
    """
    id_, schema, stream, type_ = checked.strings
    return b"".join((
        b'{"actor":', checked.actor, b',"data":', checked.data, b',"id":', id_, b',"key_id":', _constant(key_id),
        b',"log":', _constant(origin), b',"prev":"', prev64, b'","recorded_at":', _constant(recorded_at),
        b',"schema":', schema, b',"seq":', str(seq).encode(),
    )), b"".join((
        b',"stream":', stream, b',"type":', type_, b',"v":', _FORMAT, b',"version":', str(version).encode(), b"}"
    ))  # fmt: skip


def _string(text: str) -> bytes:
    """The JSON string of ``text`` as canonical JSON writes it; a lone surrogate is refused."""
    try:
        return _encode_str(text).encode("utf-8")
    except UnicodeEncodeError:
        raise NotCanonical(f"text {text[:40]!r} holds a lone surrogate, which is not Unicode text") from None


@functools.lru_cache(maxsize=64)
def _constant(text: str) -> bytes:
    """_string for what repeats from event to event: the origin, the key id, a batch's time."""
    return _string(text)


def seal_event(checked: Checked, signer: Signer, *, seq: int, version: int, recorded_at: str, prev: bytes) -> Recorded:
    """Sign a checked draft at its place in the log and return its leaf."""
    key_id, prev64 = signer.key_id.hex(), binascii.b2a_base64(prev, newline=False)
    head, tail = _leaf_parts(checked, signer.name, seq=seq, version=version, recorded_at=recorded_at, prev64=prev64,
                             key_id=key_id)  # fmt: skip
    sig = binascii.b2a_base64(signer.sign(EVENT_CONTEXT + head + tail), newline=False)
    leaf = b"".join((head, b',"sig":"', sig, b'"', tail))  # "sig" sorts between "seq" and "stream"
    draft = checked.draft
    event = {
        "v": FORMAT_VERSION,
        "log": signer.name,
        "seq": seq,
        "id": draft.id,
        "stream": draft.stream,
        "version": version,
        "type": draft.type,
        "schema": draft.schema,
        "recorded_at": recorded_at,
        "actor": dict(draft.actor),
        "data": dict(draft.data),
        "prev": prev64.decode(),
        "key_id": key_id,
        "sig": sig.decode(),
    }
    return Recorded(seq, leaf, leaf_hash(leaf), event)


def unsigned_leaf(leaf: bytes, sig: str) -> bytes:
    """What the signature of a canonical leaf covers: the leaf without its ``sig`` member."""
    member = b',"sig":"' + sig.encode() + b'"'
    at = leaf.rindex(b',"stream":')  # "sig" sorts just before "stream", the last top-level keys
    if leaf[at - len(member) : at] != member:
        raise InvalidInput("leaf does not hold its sig where canonical order puts it")
    return EVENT_CONTEXT + leaf[: at - len(member)] + leaf[at:]


def decode_leaf(leaf: bytes, seq: int) -> dict[str, Any]:
    """Parse a leaf and check it is a canonical event with the envelope's fields."""
    try:
        event = parse(leaf)
    except InvalidInput as e:
        raise VerificationError(f"leaf is not valid JSON: {e.detail}", seq=seq) from None
    if not isinstance(event, dict) or set(event) != _FIELDS:
        raise VerificationError("leaf is not an event object with exactly the envelope's fields", seq=seq)
    wrong = [k for k, kind in _FIELD_TYPES.items() if type(event[k]) is not kind]
    if wrong:
        raise VerificationError(f"envelope field {wrong[0]!r} is not a {_FIELD_TYPES[wrong[0]].__name__}", seq=seq)
    if not is_canonical(leaf, event):
        raise VerificationError("leaf is not in canonical form", seq=seq)
    if event["seq"] != seq:
        raise VerificationError(f"leaf says seq {event['seq']}", seq=seq)
    return event
