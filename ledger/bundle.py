"""Export bundles and receipts: the documents that leave the ledger to be checked offline.

Pure: the shell (ledger/exporting.py) reads the rows, proofs and disclosures; this module
puts them into the versioned formats of docs/bundles.md, which ledger/offline.py checks.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.canonical import canonical
from ledger.checkpoint import Checkpoint
from ledger.errors import InvalidInput
from ledger.events import format_time
from ledger.foi import CATEGORIES, FOI_EXEMPTIONS
from ledger.offline import BUNDLE_FORMAT, MANIFEST_CONTEXT, RECEIPT_FORMAT
from ledger.schemas import names, sensitive_fields
from ledger.signing import Signer

__all__ = [
    "Selection",
    "encode",
    "make_bundle",
    "make_receipt",
    "sensitive_map",
]


@dataclass(frozen=True)
class Selection:
    """What an export holds: one policy with its exemptions, the streams touched in a
    time range (``start`` <= recorded_at < ``end``), or the whole log."""

    kind: str
    policy_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind == "policy" and not self.policy_id:
            raise InvalidInput("a policy export needs the policy id")
        if self.kind == "range" and not (self.start and self.end and self.start < self.end):
            raise InvalidInput("a time range export needs 'from' before 'to', both RFC 3339 times")
        if self.kind not in ("policy", "range", "log"):
            raise InvalidInput(f"unknown selection {self.kind!r}; choose a policy, a time range or the whole log")

    def describe(self) -> dict[str, Any]:
        if self.kind == "policy":
            return {"kind": "policy", "policy_id": self.policy_id}
        if self.kind == "range":
            assert self.start is not None
            assert self.end is not None
            return {"kind": "range", "from": format_time(self.start), "to": format_time(self.end)}
        return {"kind": "log"}


def _check_release(release: Collection[str]) -> None:
    unknown = sorted(set(release) - set(CATEGORIES))
    if unknown:
        raise InvalidInput(f"unknown category {unknown[0]!r} to release; the categories are {', '.join(CATEGORIES)}")


def sensitive_map() -> dict[str, dict[str, str]]:
    """For every event schema with sealed fields: field -> category."""
    return {name: dict(fields) for name in names() if (fields := sensitive_fields(name))}


def make_bundle(
    *,
    signer: Signer,
    note: bytes,
    checkpoint: Checkpoint,
    selection: Selection,
    leaves: Sequence[tuple[int, bytes]],
    proofs: Mapping[int, Sequence[bytes]],
    streams: Mapping[str, int],
    release: Collection[str],
    disclosures: Mapping[str, bytes],
    erased: Collection[str],
    exported_by: Mapping[str, str],
    exported_at: datetime,
) -> dict[str, Any]:
    """The bundle document: a manifest signed with the log key, the checkpoint, each
    event with its inclusion proof, and the disclosures the export releases. Leaves and
    disclosures are canonical JSON, so they travel as text (their UTF-8 is the bytes)."""
    _check_release(release)
    manifest = {
        "origin": checkpoint.origin,
        "exported_at": format_time(exported_at),
        "exported_by": dict(exported_by),
        "selection": selection.describe(),
        "checkpoint": {"size": checkpoint.size, "root": _b64(checkpoint.root)},
        "key": signer.verifier.vkey,
        "streams": dict(sorted(streams.items())),
        "events": len(leaves),
        "sensitive": sensitive_map(),
        "released": sorted(release),
        "withheld": {c: FOI_EXEMPTIONS[c] for c in CATEGORIES if c not in release},
        "erased": sorted(erased),
    }
    return {
        "format": BUNDLE_FORMAT,
        "manifest": manifest,
        "manifest_sig": _b64(signer.sign(MANIFEST_CONTEXT + canonical(manifest))),
        "checkpoint": note.decode(),
        "events": [
            {"seq": seq, "leaf": leaf.decode(), "hashes": [_b64(h) for h in proofs[seq]]} for seq, leaf in leaves
        ],
        "disclosures": {digest: d.decode() for digest, d in sorted(disclosures.items())},
    }


def make_receipt(
    seq: int, leaf: bytes, leaf_hash: bytes, event: Mapping[str, Any], note: bytes, size: int, hashes: Sequence[bytes]
) -> dict[str, Any]:
    """A receipt: the event as ``GET /v1/log/events/{seq}`` shows it, its inclusion proof
    and the signed checkpoint the proof leads to."""
    return {
        "format": RECEIPT_FORMAT,
        "seq": seq,
        "leaf": _b64(leaf),
        "leaf_hash": _b64(leaf_hash),
        "event": dict(event),
        "inclusion": {"size": size, "hashes": [_b64(h) for h in hashes]},
        "checkpoint": note.decode(),
    }


def encode(document: Mapping[str, Any], *, compress: bool = False) -> bytes:
    """JSON bytes of a bundle or receipt; gzip-compressed when asked."""
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return gzip.compress(raw, compresslevel=6, mtime=0) if compress else raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
