"""Exports and receipts read from a store: the shell around ledger/bundle.py.

An export takes the latest checkpoint, the selected streams complete up to it, one
inclusion proof per event against it (all from one read of stored subtree hashes), and
the disclosures of the released categories; a disclosure erased from the store shows as
erased in the manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger import proofs
from ledger.bundle import Selection, make_bundle, make_receipt, sensitive_map
from ledger.checkpoint import Checkpoint
from ledger.errors import ExportTooLarge, NotFound
from ledger.events import decode_leaf
from ledger.note import parse_note
from ledger.signing import Signer
from ledger.states import exemption_stream, policy_stream
from ledger.store.base import LeafRow, Store

__all__ = ["export", "receipt", "receipt_for"]

_DIGESTS_PER_READ = 1000
_DAWN = datetime.min.replace(tzinfo=UTC)  # nothing is recorded before it


async def export(
    store: Store,
    signer: Signer,
    selection: Selection,
    release: Collection[str],
    exported_by: Mapping[str, str],
    now: datetime,
    max_events: int | None = None,
) -> dict[str, Any]:
    """The bundle document for ``selection``, releasing the categories in ``release``;
    ExportTooLarge when it would hold more than ``max_events`` events."""
    note, checkpoint = await _checkpoint(store)
    if selection.kind == "log":
        _check_size(checkpoint.size, max_events)
    rows = [row for row in await _select(store, selection, checkpoint.size, max_events) if row.seq < checkpoint.size]
    _check_size(len(rows), max_events)
    events = [decode_leaf(row.leaf, row.seq) for row in rows]
    streams = Counter(str(event["stream"]) for event in events)
    wanted = _released_digests(events, release)
    disclosures = await _disclosures(store, wanted)
    return make_bundle(
        signer=signer,
        note=note,
        checkpoint=checkpoint,
        selection=selection,
        leaves=[(row.seq, row.leaf) for row in rows],
        proofs=await proofs.inclusion_proofs(store.read_nodes, [row.seq for row in rows], checkpoint.size),
        streams=streams,
        release=release,
        disclosures=disclosures,
        erased=[d for d in wanted if d not in disclosures],
        exported_by=exported_by,
        exported_at=now,
    )


def _check_size(events: int, max_events: int | None, *, at_least: bool = False) -> None:
    if max_events is not None and events > max_events:
        raise ExportTooLarge(
            f"the selection holds {'at least ' if at_least else ''}{events:,} events, "
            f"more than the {max_events:,} an export over HTTP may hold; "
            "narrow it (one policy, a shorter time range) or export with the policy-ledger command line"
        )


async def receipt(store: Store, seq: int) -> dict[str, Any]:
    """The receipt for event ``seq``: the event, its inclusion proof, the latest checkpoint."""
    rows = await store.read_leaves(seq, seq + 1)
    if not rows:
        raise NotFound(_not_yet(seq, (await _checkpoint(store))[1].size))
    return await receipt_for(store, rows[0])


async def receipt_for(store: Store, row: LeafRow) -> dict[str, Any]:
    """The receipt for the event whose stored leaf is ``row``."""
    seq = row.seq
    note, checkpoint = await _checkpoint(store)
    if seq >= checkpoint.size:
        raise NotFound(_not_yet(seq, checkpoint.size))
    leaf_hash, hashes, _ = await proofs.inclusion(store.read_nodes, seq, checkpoint.size)
    return make_receipt(seq, row.leaf, leaf_hash, decode_leaf(row.leaf, seq), note, checkpoint.size, hashes)


def _not_yet(seq: int, size: int) -> str:
    return f"seq {seq} is not yet in a signed checkpoint (tree size {size}); ask again shortly"


async def _checkpoint(store: Store) -> tuple[bytes, Checkpoint]:
    note = await store.latest_checkpoint()
    if note is None:
        raise NotFound("the log has no checkpoint yet: nothing has been recorded")
    return note, Checkpoint.from_body(parse_note(note).text)


async def _select(store: Store, selection: Selection, size: int, max_events: int | None) -> list[LeafRow]:
    if selection.kind == "log":
        return await store.read_leaves(0, size)
    if selection.kind == "policy":
        assert selection.policy_id is not None
        return await store.stream_leaves(*await _policy_streams(store, selection.policy_id, size))
    assert selection.start is not None
    assert selection.end is not None
    tick = timedelta(microseconds=1)
    first = await store.seq_at(selection.start - tick) + 1 if selection.start > _DAWN else 0
    last = await store.seq_at(selection.end - tick)
    _check_size(min(last + 1, size) - first, max_events, at_least=True)  # refused before the streams are read
    touched = {decode_leaf(r.leaf, r.seq)["stream"] for r in await store.read_leaves(first, min(last + 1, size))}
    return await store.stream_leaves(*sorted(touched))


async def _policy_streams(store: Store, policy_id: str, size: int) -> list[str]:
    standing = await store.versions_at(size - 1, policy_id=policy_id)
    if not standing.policies:
        raise NotFound(f"no policy {policy_id!r} in the log")
    exemptions = sorted({v.state.exemption_id for v in standing.exemptions})
    return [policy_stream(policy_id), *(exemption_stream(e) for e in exemptions)]


def _released_digests(events: Collection[Mapping[str, Any]], release: Collection[str]) -> list[str]:
    categories = sensitive_map()
    digests = []
    for event in events:
        for field, category in categories.get(event["schema"], {}).items():
            value = event["data"].get(field)
            if category in release and isinstance(value, dict) and isinstance(value.get("_sd"), str):
                digests.append(value["_sd"])
    return digests


async def _disclosures(store: Store, digests: Sequence[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for start in range(0, len(digests), _DIGESTS_PER_READ):
        found.update(await store.disclosures(digests[start : start + _DIGESTS_PER_READ]))
    return found
