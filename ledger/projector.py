"""Keeping the stored projections (policy and exemption versions) level with the log.

:class:`VersionProjector` is the writer's hook: inside each batch's write transaction it
applies the batch (first any events a writer without it appended), saves the versions
and its position, so they commit together with the events or not at all.
:func:`rebuild` replays the whole log into new projections, which replace the stored
ones once complete, while it holds the log's lock; on PostgreSQL several processes can
share the streams out (``ledger.store.postgres_rebuild``). Both fold with
:func:`ledger.versions.advance`.

Of each leaf only the members folded are decoded (seq, stream, type, version and data),
checked only to be of their types and to stand at their seq: the leaves come from this
store's own log, which ``policy-ledger verify`` checks; the projections trust it as the
writer does.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import msgspec

from ledger.errors import Unavailable, VerificationError
from ledger.events import Recorded
from ledger.states import stream_ids
from ledger.store.base import LeafRow, Store, WriteTransaction
from ledger.versions import ExemptionVersion, PolicyVersion, VersionSet, advance

__all__ = [
    "NAME",
    "Rebuilt",
    "VersionProjector",
    "decoded_leaf",
    "fold",
    "no_cycle_collection",
    "rebuild",
    "rebuild_processes",
]

NAME = "policy-versions"
PAGE = 20_000  # events read per round trip when catching up or rebuilding

Event = Mapping[str, Any]


class VersionProjector:
    """Applies each committed batch to the version tables, in the batch's transaction."""

    async def project(self, tx: WriteTransaction, events: Sequence[Recorded]) -> None:
        if not events:
            return
        first, batch = events[0].seq, [e.event for e in events]
        position, current = await tx.open_versions(NAME, *_streams(batch))
        if position > first:
            raise Unavailable(f"projection {NAME} claims {position} events but the log is at {first}; rebuild it")
        if position < first:  # appended by a writer without this projector: catch up, then read again
            while position < first:
                leaves = await tx.read_leaves(position, min(first, position + PAGE))
                position = await _apply(tx, position, _decoded(position, leaves))
            _, current = await tx.open_versions(NAME, *_streams(batch))
        await _save(tx, position, current, batch)


async def _apply(tx: WriteTransaction, position: int, events: Sequence[Event]) -> int:
    _, current = await tx.open_versions(NAME, *_streams(events))
    return await _save(tx, position, current, events)


async def _save(tx: WriteTransaction, position: int, current: VersionSet, events: Sequence[Event]) -> int:
    """Fold ``events`` into the ``current`` versions they continue and store what changed."""
    step = advance(
        {v.state.policy_id: v for v in current.policies}, {v.state.exemption_id: v for v in current.exemptions}, events
    )
    position += len(events)
    await tx.save_versions(step.changed, NAME, position)
    return position


def _streams(events: Iterable[Event]) -> tuple[list[str], list[str]]:
    """The policy and exemption ids ``events`` touch."""
    return stream_ids(str(event["stream"]) for event in events)


def _decoded(start: int, leaves: Sequence[LeafRow]) -> list[Event]:
    """The events of ``leaves``, which must be seqs ``start, start + 1, ...``."""
    if not leaves or leaves[0].seq != start or leaves[-1].seq != start + len(leaves) - 1:
        raise VerificationError(f"the log has a gap after seq {start - 1}; the projection cannot apply it", seq=start)
    return [decoded_leaf(row.seq, row.leaf) for row in leaves]


class _Folded(TypedDict):
    """The members of a stored event that the projections fold."""

    seq: int
    stream: str
    type: str
    version: int
    data: dict[str, Any]


# Decodes only _Folded's members, skipping the others unread (the signature, the link, the
# actor...): half the time of a whole parse, which was a rebuild's largest single cost.
_FOLDED = msgspec.json.Decoder(_Folded)


def decoded_leaf(seq: int, leaf: bytes) -> Event:
    """The members of the event stored at ``seq`` that the projections fold (``_Folded``)."""
    try:
        event = _FOLDED.decode(leaf)
    except msgspec.DecodeError as e:
        problem = f": {e}"
    else:
        if event["seq"] == seq:
            return event
        problem = f": it says seq {event['seq']}"
    raise VerificationError(f"the event stored at seq {seq} is not an event of this log at that seq{problem}", seq=seq)


@dataclass(frozen=True)
class Rebuilt:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        """Events replayed per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def rebuild(store: Store, *, page: int = PAGE, processes: int = 1) -> Rebuilt:
    """Replay the whole log into new projections, which replace the stored ones once complete.

    The log's lock is held throughout, so appends wait. With ``processes`` > 1, a store that
    can (PostgreSQL) shares the streams out among that many processes; otherwise this
    process replays the log in the locked transaction.
    """
    started = time.perf_counter()
    with no_cycle_collection():
        async with store.write() as tx:
            size = (await tx.head([])).size
            if processes == 1 or not await store.fold_in_parts(size, processes, page):
                await tx.start_rebuild()
                size = await fold(_stored_pages(tx, page), tx.load_versions)
            await tx.finish_rebuild()
            await tx.save_versions(VersionSet(), NAME, size)
    return Rebuilt(size, time.perf_counter() - started)


async def _stored_pages(tx: WriteTransaction, page: int) -> AsyncIterator[list[Event]]:
    size = 0
    while leaves := await tx.read_leaves(size, size + page):
        yield _decoded(size, leaves)
        size += len(leaves)


async def fold(pages: AsyncIterator[Sequence[Event]], load: Callable[[VersionSet], Awaitable[None]]) -> int:
    """Fold pages of decoded events (whole streams, in seq order) into versions; ``load`` is
    given the versions each page closes, then the open ones. The number of events folded."""
    policies: Mapping[str, PolicyVersion] = {}
    exemptions: Mapping[str, ExemptionVersion] = {}
    count = 0
    async for events in pages:
        step = advance(policies, exemptions, events)
        await load(_closed(step.changed))  # open versions may change again: kept back
        policies, exemptions, count = step.open_policies, step.open_exemptions, count + len(events)
    await load(VersionSet(tuple(policies.values()), tuple(exemptions.values())))
    return count


def rebuild_processes() -> int:
    """How many processes a rebuild uses unless told: one more than the CPUs (each also waits
    for the database), at most 8."""
    return min((os.cpu_count() or 1) + 1, 8)


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
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
