"""Keeping the stored projections (policy and exemption versions) level with the log.

:class:`VersionProjector` is the writer's hook: inside each batch's write transaction it
applies the batch (first any events a writer without it appended), saves the versions
and its position, so they commit together with the events or not at all.
:func:`rebuild` deletes the projections and replays the whole log, in one transaction
that holds the log's lock. Both fold with :func:`ledger.versions.advance`.

Leaves are decoded with a plain JSON parse: they come from this store's own log, which
``policy-ledger verify`` checks; the projections trust it as the writer does.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.errors import Unavailable, VerificationError
from ledger.events import Recorded
from ledger.store.base import LeafRow, Store, WriteTransaction
from ledger.versions import ExemptionVersion, PolicyVersion, VersionSet, advance

__all__ = ["NAME", "Rebuilt", "VersionProjector", "rebuild"]

NAME = "policy-versions"
PAGE = 20_000  # events read per round trip when catching up or rebuilding

Event = Mapping[str, Any]


class VersionProjector:
    """Applies each committed batch to the version tables, in the batch's transaction."""

    async def project(self, tx: WriteTransaction, events: Sequence[Recorded]) -> None:
        if not events:
            return
        first = events[0].seq
        position = await tx.projection_position(NAME)
        if position > first:
            raise Unavailable(f"projection {NAME} claims {position} events but the log is at {first}; rebuild it")
        while position < first:  # appended by a writer without this projector: catch up
            leaves = await tx.read_leaves(position, min(first, position + PAGE))
            position = await _apply(tx, position, _decoded(position, leaves))
        await _apply(tx, position, [e.event for e in events])


async def _apply(tx: WriteTransaction, position: int, events: Sequence[Event]) -> int:
    policies, exemptions = _streams(events)
    current = await tx.open_versions(policies, exemptions)
    step = advance(
        {v.state.policy_id: v for v in current.policies}, {v.state.exemption_id: v for v in current.exemptions}, events
    )
    position += len(events)
    await tx.save_versions(step.changed, NAME, position)
    return position


def _streams(events: Iterable[Event]) -> tuple[list[str], list[str]]:
    """The policy and exemption ids ``events`` touch."""
    ids: dict[str, set[str]] = {"policy": set(), "exemption": set()}
    for event in events:
        kind, _, ident = str(event["stream"]).partition("/")
        ids.get(kind, set()).add(ident)
    return sorted(ids["policy"]), sorted(ids["exemption"])


def _decoded(start: int, leaves: Sequence[LeafRow]) -> list[Event]:
    """The events of ``leaves``, which must be seqs ``start, start + 1, ...``."""
    if not leaves or leaves[0].seq != start or leaves[-1].seq != start + len(leaves) - 1:
        raise VerificationError(f"the log has a gap after seq {start - 1}; the projection cannot apply it", seq=start)
    return [orjson.loads(row.leaf) for row in leaves]


@dataclass(frozen=True)
class Rebuilt:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        """Events replayed per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def rebuild(store: Store, *, page: int = PAGE) -> Rebuilt:
    """Delete the stored projections and replay the whole log into them, in one transaction."""
    started = time.perf_counter()
    with _no_cycle_collection():
        async with store.write() as tx:
            size = await _replay(tx, page)
    return Rebuilt(size, time.perf_counter() - started)


async def _replay(tx: WriteTransaction, page: int) -> int:
    await tx.start_rebuild()
    size = 0
    policies: Mapping[str, PolicyVersion] = {}
    exemptions: Mapping[str, ExemptionVersion] = {}
    while leaves := await tx.read_leaves(size, size + page):
        step = advance(policies, exemptions, _decoded(size, leaves))
        await tx.load_versions(_closed(step.changed))  # open versions may change again: kept back
        policies, exemptions, size = step.open_policies, step.open_exemptions, size + len(leaves)
    await tx.load_versions(VersionSet(tuple(policies.values()), tuple(exemptions.values())))
    await tx.finish_rebuild()
    await tx.save_versions(VersionSet(), NAME, size)
    return size


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector: a replay makes no cycles, and would have it rescan every
    open version it keeps, again and again (about a quarter of the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _closed(versions: VersionSet) -> VersionSet:
    return VersionSet(
        tuple(v for v in versions.policies if v.to_seq is not None),
        tuple(v for v in versions.exemptions if v.to_seq is not None),
    )
