"""Offline verification of export bundles and receipts (docs/bundles.md).

This module is the part an oversight body runs on its own machine, with no network and
no trust in the people who run the ledger. It stands alone on purpose: it imports only
the Python standard library and ``cryptography``, nothing else of policy-ledger, so that
it can be read and audited on its own (it is also run as a second implementation beside
the service's own verifier in the tests). Run it as

    python -m ledger.offline --bundle answer.bundle.json --key VKEY
    python offline.py --receipt receipt.json --key VKEY          (the file copied alone)

VKEY is the log's verifier key, ``name+keyid+base64(0x01 || public key)``, obtained from
the log's operator through a channel you trust (or a file holding it); ``--key`` again
for each key the log had before, if its key was replaced, each as ``VKEY@SEQ``: trusted
from the seq where the log took it up (``GET /v1/log/keys``) until the next key's.

What is checked: the C2SP signed-note checkpoint's Ed25519 signature; each event's
canonical form and Ed25519 signature; each RFC 9162 inclusion proof against the
checkpoint's root; ``prev`` links between consecutive events; in a bundle also the
manifest's signature, that every stream is complete from version 1 to the version the
manifest states, and every released disclosure against the digest in its event.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import re
import sys
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "BUNDLE_FORMAT",
    "RECEIPT_FORMAT",
    "Bundle",
    "BundleError",
    "Entry",
    "Keys",
    "LogKey",
    "Receipt",
    "key_and_term",
    "keyring",
    "main",
    "parse_vkey",
    "read_bundle",
    "trusted_key",
    "verify_bundle",
    "verify_receipt",
]

BUNDLE_FORMAT = "policy-ledger-bundle/1"
RECEIPT_FORMAT = "policy-ledger-receipt/1"
EVENT_CONTEXT = b"policy-ledger/event/v1\n"
MANIFEST_CONTEXT = b"policy-ledger/bundle-manifest/v1\n"
ZERO_HASH = bytes(32)
ED25519_ALG = 0x01
MAX_SAFE_INTEGER = 2**53 - 1
_SIGNATURE_LINE = re.compile("\u2014 ([^ +\n]+) ([A-Za-z0-9+/]+=*)")
MAX_DOCUMENT_BYTES = 1 << 30  # a bundle of 10,000 events is about 18 MB


class BundleError(Exception):
    """What is wrong with a bundle or receipt, in words a reader can act on."""


# -- keys and signed notes (C2SP signed-note, tlog-checkpoint) -------------------------


@dataclass(frozen=True)
class LogKey:
    """A key the reader trusts for events from ``from_seq`` until ``until_seq`` (None: no later
    key given), and for checkpoints of the sizes in between."""

    name: str
    key_id: bytes  # 4 bytes: SHA-256(name || 0x0A || 0x01 || public key)[:4]
    public_key: Ed25519PublicKey
    from_seq: int = 0
    until_seq: int | None = None

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    def signs(self, seq: int) -> bool:
        return self.from_seq <= seq and (self.until_seq is None or seq < self.until_seq)

    def covers(self, size: int) -> bool:
        return self.from_seq <= size and (self.until_seq is None or size <= self.until_seq)

    @property
    def term(self) -> str:
        later = "" if self.until_seq is None else f" until seq {self.until_seq}, when the log moved on to its next key"
        return f"from seq {self.from_seq}{later}"


def parse_vkey(text: str) -> LogKey:
    """Parse ``name+hexkeyid+base64(0x01 || 32-byte Ed25519 key)`` and check its key ID."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not parts[0] or len(parts[1]) != 8:
        raise BundleError("the key is not a verifier key of the form name+keyid+base64key")
    name, key_id_hex, encoded = parts
    key = _b64(encoded, "the verifier key")
    if len(key) != 33 or key[0] != ED25519_ALG:
        raise BundleError("the verifier key is not an Ed25519 key (algorithm byte 0x01 and 32 bytes)")
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if key_id.hex() != key_id_hex.lower():
        raise BundleError(f"the verifier key's ID {key_id_hex} does not match its name and key")
    return LogKey(name, key_id, Ed25519PublicKey.from_public_bytes(key[1:]))


def trusted_key(text: str) -> LogKey:
    """``VKEY`` or a file holding it, perhaps followed by ``@SEQ``: trusted from that seq on (else 0)."""
    vkey, from_seq = key_and_term(text)
    return dataclasses.replace(parse_vkey(vkey), from_seq=from_seq)


def key_and_term(text: str) -> tuple[str, int]:
    """The verifier key ``text`` gives (itself, or the first line of the file it names) and the
    seq after an ``@`` that follows it (else 0): the seq from which the log used the key."""
    head, at, tail = text.rpartition("@")
    if not at or "+" in tail or os.path.isfile(text):  # an @ in the key's name, or in a file's
        return read_key(text), 0
    if not (tail.isascii() and tail.isdigit() and len(tail) <= 18):
        raise BundleError(f"after @ comes the seq from which the log used the key, a whole number, not {tail[:20]!r}")
    return read_key(head), int(tail)


Keys = LogKey | Sequence[LogKey]  # the key a reader trusts, or several: the log's key was replaced


def keyring(keys: Keys) -> tuple[LogKey, ...]:
    """The trusted keys, all of one log (one name), at least one, each trusted until the next
    key's ``from_seq`` (keys given from one seq share their term)."""
    ring = (keys,) if isinstance(keys, LogKey) else tuple(keys)
    if not ring or len({key.name for key in ring}) != 1:
        raise BundleError("give one or more verifier keys, all of the same log")
    if len({key.key_id for key in ring}) != len({(key.key_id, key.from_seq) for key in ring}):
        raise BundleError("a key is given twice, from different seqs: give each key once")
    ends = dict(itertools.pairwise(sorted({key.from_seq for key in ring})))
    return tuple(dataclasses.replace(key, until_seq=ends.get(key.from_seq)) for key in ring)


def _trusted(ring: tuple[LogKey, ...]) -> str:
    return ", ".join(f"{key.name}+{key.key_id_hex}" for key in ring)


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    note: str


def open_checkpoint(note: str, keys: Keys) -> Checkpoint:
    """Check a signed checkpoint note against the trusted ``keys``; return what it states."""
    ring = keyring(keys)
    body, sep, signatures = note.rpartition("\n\n")
    if not sep or not note.endswith("\n"):
        raise BundleError("the checkpoint is not a signed note (text, a blank line, signature lines)")
    lines = body.split("\n")
    text = lines[1] if len(lines) > 1 else ""
    well_formed = text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0")) and len(text) < 21
    size = int(text) if well_formed and int(text) < 2**64 else None
    _check_signatures(body + "\n", signatures[:-1].split("\n"), ring, size)
    if len(lines) < 3 or lines[0] != ring[0].name:
        raise BundleError(f"the checkpoint is not for the log {ring[0].name!r}")
    if size is None:
        raise BundleError("the checkpoint's tree size is not a decimal number below 2^64")
    root = _b64(lines[2], "the checkpoint's root hash")
    if len(root) != 32:
        raise BundleError("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(lines[0], size, root, note)


def _check_signatures(text: str, lines: list[str], ring: tuple[LogKey, ...], size: int | None = None) -> None:
    """Every line is a signature line; each by a trusted key verifies, and there is one by a key
    whose term covers ``size``; the others (witnesses, keys not trusted) are skipped."""
    by_id, signed, retired = {(key.name, key.key_id): key for key in ring}, False, None
    for line in lines:
        match = _SIGNATURE_LINE.fullmatch(line)
        try:
            raw = base64.b64decode(match.group(2), validate=True) if match else b""
        except binascii.Error:
            raw = b""
        if match is None or len(raw) < 5:
            raise BundleError("the checkpoint holds a line after its text that is not a signature line")
        key = by_id.get((match.group(1), raw[:4]))
        if key is None:
            continue
        if not _signature_ok(key, raw[4:], text.encode()):
            raise BundleError(
                f"the checkpoint carries no valid signature by the log key {key.name}+{key.key_id_hex}: "
                "the one there does not verify, so the checkpoint was altered"
            )
        fits = size is None or key.covers(size)
        signed, retired = signed or fits, retired or (None if fits else key)
    if not signed and retired is not None:
        raise BundleError(f"the checkpoint of {size} events is signed by key {retired.key_id_hex}, trusted only "
                          f"{retired.term}")  # fmt: skip
    if not signed:
        raise BundleError(f"the checkpoint carries no valid signature by a trusted log key ({_trusted(ring)})")


def _signature_ok(key: LogKey, signature: bytes, message: bytes) -> bool:
    try:
        key.public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


# -- RFC 9162 hashing and inclusion proofs --------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, hash_: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        raise BundleError(f"seq {index} is outside the tree of size {size}")
    if len(hash_) != 32 or any(len(p) != 32 for p in proof):
        raise BundleError(f"seq {index}: a hash of the inclusion proof is not 32 bytes")
    fn, sn, r = index, size - 1, hash_
    for p in proof:
        if sn == 0:
            raise BundleError(f"seq {index}: the inclusion proof has too many hashes")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise BundleError(f"seq {index}: the inclusion proof has too few hashes")
    return r


# -- events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One verified event: its seq, leaf hash and decoded JSON."""

    seq: int
    leaf_hash: bytes
    event: dict[str, Any]


def check_event(seq: int, leaf: bytes, proof: Sequence[bytes], keys: Keys, checkpoint: Checkpoint) -> Entry:
    """Decode a leaf, check its canonical form, its signature (by the trusted key it names) and
    its inclusion proof."""
    ring = keyring(keys)
    event = _decode(leaf, f"seq {seq}")
    if not isinstance(event, dict) or _canonical(event) != leaf:
        raise BundleError(f"seq {seq}: the event is not in canonical JSON form, as every recorded event is")
    if not (_is_int(event.get("v"), 1) and event.get("log") == ring[0].name and _is_int(event.get("seq"), seq)):
        raise BundleError(f"seq {seq}: the event does not say it is seq {seq} of log {ring[0].name!r} (format 1)")
    if not (isinstance(event.get("stream"), str) and isinstance(event.get("schema"), str)):
        raise BundleError(f"seq {seq}: the event names no stream or schema")
    if not (_is_int(event.get("version")) and event["version"] >= 1 and isinstance(event.get("data"), dict)):
        raise BundleError(f"seq {seq}: the event has no version of 1 or more, or no data object")
    key = next((key for key in ring if event.get("key_id") == key.key_id_hex), None)
    if key is None:
        raise BundleError(f"seq {seq}: the event is signed by key {event.get('key_id')!r}, not a trusted log key")
    if not key.signs(seq):
        raise BundleError(f"seq {seq}: the event is signed by key {key.key_id_hex}, trusted only {key.term}")
    signature = _b64(event.get("sig"), f"seq {seq}: the signature")
    unsigned = {k: v for k, v in event.items() if k != "sig"}
    if not _signature_ok(key, signature, EVENT_CONTEXT + _canonical(unsigned)):
        raise BundleError(f"seq {seq}: the event's signature does not verify: it was altered")
    hash_ = leaf_hash(leaf)
    if root_from_inclusion(seq, checkpoint.size, hash_, proof) != checkpoint.root:
        raise BundleError(f"seq {seq}: the inclusion proof does not lead to the checkpoint's root")
    return Entry(seq, hash_, event)


def _is_int(value: Any, expected: int | None = None) -> bool:
    """An integer (not a boolean, which JSON keeps apart), equal to ``expected`` if given."""
    return isinstance(value, int) and not isinstance(value, bool) and (expected is None or value == expected)


def check_links(entries: Sequence[Entry]) -> None:
    """Each event's ``prev`` is the leaf hash of the event before it, where both are here."""
    for before, after in itertools.pairwise(entries):
        if after.seq == before.seq + 1 and _b64(after.event.get("prev"), "prev") != before.leaf_hash:
            raise BundleError(f"seq {after.seq}: prev does not match the leaf hash of seq {before.seq}")
    if entries and entries[0].seq == 0 and _b64(entries[0].event.get("prev"), "prev") != ZERO_HASH:
        raise BundleError("seq 0: prev is not 32 zero bytes")


# -- receipts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    checkpoint: Checkpoint
    entry: Entry


@contextlib.contextmanager
def _malformed(what: str) -> Iterator[None]:
    """A shape no check foresaw is still a failure, named as such, never another exception."""
    try:
        yield
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as e:
        raise BundleError(f"the {what} is malformed ({type(e).__name__}: {e})") from None


def verify_receipt(raw: bytes, keys: Keys) -> Receipt:
    """Check a receipt: one event, its inclusion proof and the signed checkpoint."""
    ring = keyring(keys)
    with _malformed("receipt"):
        return _verify_receipt(raw, ring)


def _verify_receipt(raw: bytes, ring: tuple[LogKey, ...]) -> Receipt:
    doc = _document(raw, RECEIPT_FORMAT, "receipt")
    checkpoint = open_checkpoint(_field(doc, "checkpoint", str), ring)
    proof = _field(doc, "inclusion", dict)
    if _field(proof, "size", int) != checkpoint.size:
        raise BundleError("the receipt's inclusion proof is not for the tree size of its checkpoint")
    seq = _field(doc, "seq", int)
    leaf = _b64(_field(doc, "leaf", str), "leaf")
    entry = check_event(seq, leaf, _hashes(proof), ring, checkpoint)
    if "leaf_hash" in doc and _b64(doc["leaf_hash"], "leaf_hash") != entry.leaf_hash:
        raise BundleError(f"seq {seq}: the receipt's leaf_hash is not the hash of its leaf")
    if "event" in doc and _canonical(doc["event"]) != leaf:
        raise BundleError(f"seq {seq}: the receipt's readable event differs from its signed leaf")
    return Receipt(checkpoint, entry)


# -- bundles --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: what it states, its events, and the released values by digest."""

    manifest: dict[str, Any]
    checkpoint: Checkpoint
    entries: tuple[Entry, ...]
    released: dict[str, Any]  # digest -> value, each checked against its digest
    erased: frozenset[str]

    def category(self, schema: str, field: str) -> str | None:
        """The category the manifest gives a sealed field of events of ``schema``."""
        category = self.manifest["sensitive"].get(schema, {}).get(field)
        return category if isinstance(category, str) else None


def read_bundle(raw: bytes) -> dict[str, Any]:
    """The bundle's JSON document; gzip-compressed files are accepted as they are."""
    return _document(raw, BUNDLE_FORMAT, "bundle")


def verify_bundle(raw: bytes, keys: Keys, *, workers: int = 2) -> Bundle:
    """Check every part of a bundle against the trusted ``keys``; raise BundleError naming the
    first thing wrong. Events signed before the log's key was replaced need the old key too;
    keys given with the seq each took over at (``from_seq``) are each trusted only for their term."""
    ring = keyring(keys)
    with _malformed("bundle"):
        return _verify_bundle(raw, ring, workers)


def _verify_bundle(raw: bytes, ring: tuple[LogKey, ...], workers: int) -> Bundle:
    doc = read_bundle(raw)
    checkpoint = open_checkpoint(_field(doc, "checkpoint", str), ring)
    manifest = _field(doc, "manifest", dict)
    _check_manifest(manifest, _b64(_field(doc, "manifest_sig", str), "manifest_sig"), ring, checkpoint)
    entries = _check_events(_field(doc, "events", list), ring, checkpoint, workers)
    check_links(entries)
    _check_streams(manifest, entries)
    released, erased = _check_disclosures(manifest, _field(doc, "disclosures", dict), entries)
    return Bundle(manifest, checkpoint, tuple(entries), released, erased)


def _check_manifest(
    manifest: dict[str, Any], signature: bytes, ring: tuple[LogKey, ...], checkpoint: Checkpoint
) -> None:
    signed = MANIFEST_CONTEXT + _canonical(manifest)
    by = next((key for key in ring if _signature_ok(key, signature, signed)), None)
    if by is None:
        raise BundleError("the manifest's signature does not verify: the manifest was altered")
    if not by.covers(checkpoint.size):
        raise BundleError(
            f"the manifest is signed by key {by.key_id_hex}, trusted only {by.term}, not for a checkpoint of "
            f"{checkpoint.size} events"
        )
    stated = _field(manifest, "checkpoint", dict)
    if _field(stated, "size", int) != checkpoint.size or _field(stated, "root", str) != _b64text(checkpoint.root):
        raise BundleError("the manifest names another checkpoint than the one in the bundle")
    _check_shape(manifest, ring[0].name)


def _check_shape(manifest: Mapping[str, Any], origin: str) -> None:
    """The manifest's members have the types and agreements docs/bundles.md gives them."""

    def strings(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    def mapping(value: Any, test: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(k, str) and test(v) for k, v in value.items())

    shapes = {
        "origin": lambda v: v == origin,
        "exported_at": lambda v: isinstance(v, str),
        "exported_by": lambda v: mapping(v, lambda s: isinstance(s, str)) and {"id", "role"} <= v.keys(),
        "selection": _selection_ok,
        "streams": lambda v: mapping(v, lambda n: _is_int(n) and n > 0),
        "events": _is_int,
        "sensitive": lambda v: mapping(v, lambda fields: mapping(fields, lambda c: isinstance(c, str))),
        "released": strings,
        "withheld": lambda v: mapping(v, lambda why: isinstance(why, str)),
        "erased": strings,
    }
    for name, test in shapes.items():
        if not test(manifest.get(name)):
            raise BundleError(f"the manifest's {name!r} is missing or has the wrong shape")
    released, withheld = set(manifest["released"]), set(manifest["withheld"])
    used = {c for fields in manifest["sensitive"].values() for c in fields.values()}
    if released & withheld or not used <= released | withheld:
        raise BundleError("the manifest must say of each category of sealed fields: released or withheld, not both")


def _selection_ok(selection: Any) -> bool:
    if not isinstance(selection, dict):
        return False
    members = {"policy": {"kind", "policy_id"}, "range": {"kind", "from", "to"}, "log": {"kind"}}
    wanted = members.get(selection.get("kind"), set())  # type: ignore[arg-type]
    return bool(wanted) and selection.keys() == wanted and all(isinstance(v, str) for v in selection.values())


def _check_events(items: list[Any], ring: tuple[LogKey, ...], checkpoint: Checkpoint, workers: int) -> list[Entry]:
    parsed = [_event_item(i, item) for i, item in enumerate(items)]
    seqs = [seq for seq, _, _ in parsed]
    if seqs != sorted(set(seqs)):
        raise BundleError("the events are not in increasing seq order, or one appears twice")
    with ThreadPoolExecutor(max(1, workers)) as pool:  # signature checks release the GIL
        chunks = pool.map(
            lambda part: [check_event(seq, leaf, proof, ring, checkpoint) for seq, leaf, proof in part],
            _chunks(parsed, 256),
        )
        return [entry for chunk in chunks for entry in chunk]


def _event_item(i: int, item: Any) -> tuple[int, bytes, list[bytes]]:
    if not isinstance(item, dict):
        raise BundleError(f"events[{i}] is not an object with seq, leaf and hashes")
    seq = _field(item, "seq", int)
    return seq, _utf8(_field(item, "leaf", str), f"seq {seq}: the leaf"), _hashes(item)


def _check_streams(manifest: Mapping[str, Any], entries: Sequence[Entry]) -> None:
    """Every stream the manifest names is here from version 1 to its stated version, and no other."""
    versions: dict[str, list[int]] = {}
    for entry in entries:
        versions.setdefault(str(entry.event.get("stream")), []).append(entry.event.get("version", 0))
    stated: Mapping[str, Any] = manifest["streams"]
    unlisted = sorted(versions.keys() - stated.keys())
    if unlisted:
        raise BundleError(f"the bundle holds events of stream {unlisted[0]}, which its manifest does not list")
    for stream, last in sorted(stated.items()):
        have = versions.get(stream, [])
        if not have:
            raise BundleError(f"stream {stream} is missing: the manifest says it has {last} events, the bundle none")
        if have != list(range(1, len(have) + 1)):
            missing = min(set(range(1, max(have, default=0) + 1)) - set(have), default=len(have) + 1)
            raise BundleError(f"stream {stream} is incomplete: version {missing} is missing")
        if len(have) != last:
            raise BundleError(
                f"stream {stream} is incomplete: the manifest says it has {last} events, the bundle holds {len(have)}"
            )
    if manifest.get("selection", {}).get("kind") == "log" and [e.seq for e in entries] != list(range(len(entries))):
        raise BundleError("the bundle claims the whole log but its events are not seq 0 onwards without a gap")
    if manifest.get("selection", {}).get("kind") == "log" and len(entries) != manifest["checkpoint"]["size"]:
        raise BundleError("the bundle claims the whole log but holds fewer events than its checkpoint")
    if manifest["events"] != len(entries):
        raise BundleError(f"the manifest says the bundle holds {manifest['events']} events; it holds {len(entries)}")


def _check_disclosures(
    manifest: Mapping[str, Any], disclosures: Mapping[str, Any], entries: Sequence[Entry]
) -> tuple[dict[str, Any], frozenset[str]]:
    """Each released field has its disclosure, matching its digest; nothing else is disclosed."""
    released, erased = set(manifest["released"]), frozenset(manifest["erased"])
    values: dict[str, Any] = {}
    for entry, field, digest in sealed_fields(entries):
        category = manifest["sensitive"].get(entry.event.get("schema"), {}).get(field)
        where = f"seq {entry.seq}, field {field}"
        if category is None:
            raise BundleError(f"{where}: the manifest gives no category for this sealed field")
        if category not in released or digest in erased:
            continue
        if digest not in disclosures:
            raise BundleError(f"{where}: category {category} is released but its disclosure is missing")
        values[digest] = _disclosed(digest, disclosures[digest], where)
    stray = sorted(disclosures.keys() - values.keys())
    if stray:
        raise BundleError(f"the disclosure for digest {stray[0]} belongs to no released field of any event here")
    return values, erased


def sealed_fields(entries: Sequence[Entry]) -> Iterator[tuple[Entry, str, str]]:
    """Each sealed field ``{"_sd": digest}`` in the events' data, with its event and name."""
    for entry in entries:
        data = entry.event.get("data")
        for field, value in data.items() if isinstance(data, dict) else ():
            if isinstance(value, dict) and isinstance(value.get("_sd"), str):
                yield entry, field, value["_sd"]


def _disclosed(digest: str, text: Any, where: str) -> Any:
    disclosure = _utf8(text, f"{where}: the disclosure")
    actual = base64.urlsafe_b64encode(hashlib.sha256(disclosure).digest()).rstrip(b"=").decode()
    if actual != digest:
        raise BundleError(f"{where}: the disclosed value does not match the digest recorded in the event")
    pair = _decode(disclosure, f"{where}: the disclosure")
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and len(pair[0]) >= 22):
        raise BundleError(f"{where}: the disclosure is not a [salt, value] pair with a 16-byte salt")
    if _canonical(pair) != disclosure:
        raise BundleError(f"{where}: the disclosure is not in canonical JSON form")
    return pair[1]


# -- encodings ------------------------------------------------------------------------


def _canonical(value: Any) -> bytes:
    """RFC 8785 bytes for the values events hold (strings, integers, booleans, null)."""
    try:
        fast = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if fast.isascii() or max(fast) < 0xF0:  # no character beyond U+FFFF: both orders agree
            return fast
        return _utf16_sorted(value).encode()
    except (UnicodeEncodeError, RecursionError):
        raise BundleError("a value holds a lone surrogate or is nested too deeply for canonical JSON") from None


def _utf16_sorted(value: Any) -> str:
    """The slow, exact path: RFC 8785 orders keys by their UTF-16 code units."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_json(k) + ":" + _utf16_sorted(value[k]) for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_utf16_sorted(v) for v in value) + "]"
    return _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _decode(raw: bytes, what: str) -> Any:
    """JSON as canonical JSON allows it: no floats, integers within +-2^53, no duplicate keys."""

    def no_floats(text: str) -> Any:
        raise BundleError(f"{what}: holds a number that is not an integer ({text[:20]})")

    def safe_int(text: str) -> int:
        if len(text) > 17 or abs(int(text)) > MAX_SAFE_INTEGER:
            raise BundleError(f"{what}: holds an integer beyond 2^53 ({text[:20]})")
        return int(text)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) != len(pairs):
            raise BundleError(f"{what}: an object names the same member twice")
        return found

    try:
        return json.loads(raw.decode("utf-8"), parse_float=no_floats, parse_constant=no_floats, parse_int=safe_int,
                          object_pairs_hook=unique)  # fmt: skip
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise BundleError(f"{what}: is not valid UTF-8 JSON") from None


def _document(raw: bytes, format_: str, what: str) -> dict[str, Any]:
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise BundleError(f"the {what} file is larger than {MAX_DOCUMENT_BYTES:,} bytes")
    if raw[:2] == b"\x1f\x8b":
        try:
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
            raw = inflate.decompress(raw, MAX_DOCUMENT_BYTES)
        except zlib.error:
            raise BundleError(f"the {what} file is a damaged gzip file") from None
        if inflate.unconsumed_tail:
            raise BundleError(f"the {what} file unpacks to more than {MAX_DOCUMENT_BYTES:,} bytes")
    doc = _decode(raw, f"the {what} file")
    if not isinstance(doc, dict) or doc.get("format") != format_:
        raise BundleError(f"this is not a {what} (expected format {format_!r})")
    return doc


def _field(doc: Mapping[str, Any], name: str, kind: type) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"{name!r} is missing or is not a {kind.__name__}")
    return value


def _hashes(doc: Mapping[str, Any]) -> list[bytes]:
    """An inclusion proof's hashes: 32 bytes each, in base64 (44 characters)."""
    texts = _field(doc, "hashes", list)
    try:
        hashes = [binascii.a2b_base64(h, strict_mode=True) for h in texts]
    except (binascii.Error, TypeError, ValueError):
        raise BundleError("an inclusion proof hash is not valid base64") from None
    if any(len(h) != 32 for h in hashes):
        raise BundleError("an inclusion proof hash is not 32 bytes")
    if [binascii.b2a_base64(h, newline=False).decode() for h in hashes] != texts:
        raise BundleError("an inclusion proof hash is not in its one canonical base64 spelling")
    return hashes


def _utf8(text: Any, what: str) -> bytes:
    """The bytes of a JSON text carried as a string (a leaf input, a disclosure)."""
    try:
        if isinstance(text, str):
            return text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    raise BundleError(f"{what} is not a string of UTF-8 text")


def _b64(text: Any, what: str) -> bytes:
    """Standard base64 with padding, in its one canonical spelling."""
    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else None
    except binascii.Error:
        raw = None
    if raw is None or _b64text(raw) != text:
        raise BundleError(f"{what} is not valid base64")
    return raw


def _b64text(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- command line ---------------------------------------------------------------------


def verdict_of_bundle(bundle: Bundle) -> str:
    """One paragraph a lay reader understands."""
    m, cp = bundle.manifest, bundle.checkpoint
    released = ", ".join(m["released"]) or "none"
    withheld = "; ".join(f"{c} under {why}" for c, why in sorted(m["withheld"].items())) or "none"
    return (
        f"VERIFIED: {len(bundle.entries)} events in {len(m['streams'])} streams are exactly as recorded in the "
        f"log {cp.origin}, whose signed checkpoint covers {cp.size} events (root {_b64text(cp.root)}). "
        f"Every stream is complete from its first event to the last one the operator's signed manifest states. "
        f"Released and checked against their digests: {_fields(len(bundle.released))} ({released}). "
        f"Withheld: {withheld}."
        + (f" Erased from the ledger, at the data subject's request: {_fields(len(bundle.erased))}." if bundle.erased
           else "")
    )  # fmt: skip


def _fields(count: int) -> str:
    return f"{count} field" + ("" if count == 1 else "s")


def verdict_of_receipt(receipt: Receipt) -> str:
    event, cp = receipt.entry.event, receipt.checkpoint
    return (
        f"VERIFIED: event seq {receipt.entry.seq} ({event.get('type')} on {event.get('stream')}, recorded "
        f"{event.get('recorded_at')}) is in the log {cp.origin} as signed, under its checkpoint of {cp.size} events."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="policy-ledger-offline", description="Verify a policy-ledger bundle or receipt with no network."
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--bundle", metavar="FILE", help="an export bundle (.json or .json.gz)")
    which.add_argument("--receipt", metavar="FILE", help="a receipt for one event")
    parser.add_argument(
        "--key", required=True, action="append", metavar="VKEY[@SEQ]",
        help="the log's verifier key, or a file holding it; repeat it for each key the log has had, each with "
        "@SEQ, the seq from which the log used it (GET /v1/log/keys): each is trusted only until the next key's",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        keys = keyring([trusted_key(text) for text in args.key])
        with open(args.bundle or args.receipt, "rb") as f:
            raw = f.read(MAX_DOCUMENT_BYTES + 1)  # no more: the file could be endless (a device, a pipe)
        if args.bundle:
            print(verdict_of_bundle(verify_bundle(raw, keys)))
        else:
            print(verdict_of_receipt(verify_receipt(raw, keys)))
    except (BundleError, OSError) as e:
        print(f"NOT VERIFIED: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a shape no check foresaw: still a failure, never a traceback
        print(f"NOT VERIFIED: the file could not be checked ({type(e).__name__}: {e})", file=sys.stderr)
        return 1
    return 0


def read_key(text: str) -> str:
    """The verifier key itself, or the first line of the file it names."""
    if not os.path.isfile(text):
        return text
    with open(text, encoding="utf-8") as f:
        return f.readline().strip()


if __name__ == "__main__":
    sys.exit(main())
