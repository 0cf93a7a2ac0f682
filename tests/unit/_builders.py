"""Values the unit tests build in memory: keys, drafts and a small chained, signed log.

Keys come from fixed seeds, so every run signs the same bytes.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.events import ZERO_HASH, Draft, Recorded, check_draft, format_time, seal_event
from ledger.signing import Signer

__all__ = ["ORIGIN", "build_log", "draft", "leaves_of", "log_signer", "recorded_at", "reseal", "seal"]

ORIGIN = "ledger.example.gov.uk/device-policy"


def log_signer(name: str = ORIGIN, seed: int = 1) -> Signer:
    """A log key from the 32-byte seed ``bytes([seed]) * 32``."""
    return Signer(name, Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


def draft(n: int = 0, **changes: Any) -> Draft:
    """A valid policy.issued draft; keyword arguments replace its fields."""
    fields: dict[str, Any] = {
        "stream": f"policy/p-{n}",
        "type": "policy.issued",
        "data": {"app": {"name": "TikTok", "vendor": "ByteDance"}, "rationale": f"Ban number {n}"},
        "actor": {"id": "officer-1", "role": "policy-officer"},
        "id": str(uuid.UUID(int=n)),
    }
    fields.update(changes)
    return Draft(**fields)


def recorded_at(seq: int) -> str:
    return format_time(datetime(2025, 2, 7, 10, 0, tzinfo=UTC) + timedelta(seconds=seq))


def seal(d: Draft, signer: Signer, *, seq: int = 0, prev: bytes = ZERO_HASH, version: int = 1) -> Recorded:
    """Check ``d`` for the signer's log and seal it at ``seq``."""
    return seal_event(
        check_draft(d, signer.name), signer, seq=seq, version=version, recorded_at=recorded_at(seq), prev=prev
    )


def build_log(signer: Signer, size: int, *, rotate_to: Signer | None = None, at: int = 0) -> list[Recorded]:
    """``size`` sealed events, each ``prev`` the leaf hash of the one before.

    With ``rotate_to``, the events from seq ``at`` on are signed by that key instead.
    """
    log: list[Recorded] = []
    for seq in range(size):
        prev = log[-1].leaf_hash if log else ZERO_HASH
        key = rotate_to if rotate_to is not None and seq >= at else signer
        log.append(seal(draft(seq), key, seq=seq, prev=prev))
    return log


def reseal(log: list[Recorded], seq: int, signer: Signer, *, prev: bytes | None = None) -> list[Recorded]:
    """A copy of ``log`` whose event ``seq`` is sealed again by ``signer`` (with ``prev``, if given)."""
    link = base64.b64decode(str(log[seq].event["prev"])) if prev is None else prev
    sealed = seal(draft(seq), signer, seq=seq, prev=link)
    return [*log[:seq], sealed, *log[seq + 1 :]]


def leaves_of(log: list[Recorded]) -> list[tuple[int, bytes]]:
    """The ``(seq, leaf)`` pairs a verifier is fed, as a store would list them."""
    return [(r.seq, r.leaf) for r in log]
