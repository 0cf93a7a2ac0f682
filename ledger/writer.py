"""The sequencer: one per log and process, committing appends in batches (group commit).

Callers queue checked drafts; one task waits for the first, opens a store write
transaction (which holds the log's lock across processes), takes whatever is queued by
then (what queued while another process held the lock too), reads the log head (and
which of the batch's Idempotency-Keys are taken, in one read), assigns seq, version, time and
``prev``, signs, stores the leaves, the tree nodes they complete and the keys they
settle, signs a checkpoint, lets each projector bring its stored projection level with
the batch (in the same transaction), and commits. Only then is each caller answered,
after the batch is counted in ``commits`` when given (what tells remembered reads are stale).

Sealing ahead: once this writer knows where the log will end (its last batch sealed), the
next batch is sealed before it has the lock, on that end and the versions and keys this
writer last saw, while the batch before it commits: signing, the bulk of a batch's work,
then overlaps the database's. Under the lock the log is checked to be where the batch
assumed (``Assumed``: same size and last leaf; same versions and taken keys for its streams
and keys; no newer signing key); sealing is a function of exactly those, so the batch goes in
as sealed, or is sealed again on what was read. A writer without projectors hands the batch
and what it assumed to the store (``Store.append_at``), which checks and stores it in one
transaction of its own: on PostgreSQL one statement, one round trip where lock, head,
append and commit take four. Projectors read, under the lock, the versions a batch
continues, so with them the batch takes the four. When another process moved the log on
(the guess missed), the writer seals under the lock for the next ``PLAIN_AFTER_MISS``
batches (not when the log ends where guessed and only a version or key this writer had
forgotten, or never read, was not); where several processes are known to take turns at
the lock (``seal_ahead=False``), it always does.
While a batch is sealed ahead, the event loop gets a turn before each event is signed with
projectors (the batch committing meanwhile takes four round trips), and before each 64th
without (its one round trip's reply then waits to be read at most while 64 events are
signed, about 2 ms; a batch of 32 is signed without a turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

import structlog

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import IdempotencyKeyTaken, InvalidInput, LedgerError, Unavailable, VersionConflict
from ledger.events import (
    ZERO_HASH,
    Checked,
    Claim,
    Disclosure,
    Draft,
    Recorded,
    check_draft,
    format_time,
    seal_event,
)
from ledger.merkle import NodeKey, frontier_keys, frontier_root, perfect_nodes_completed
from ledger.read_cache import Commits
from ledger.signing import Signer
from ledger.store.base import Assumed, Batch, HeadRow, KeyRow, Store, WriteTransaction, store_batch

__all__ = ["PLAIN_AFTER_MISS", "Projector", "Sealing", "Writer"]

log = structlog.get_logger("ledger.writer")

PLAIN_AFTER_MISS = 64  # batches sealed under the lock after a batch sealed ahead found the log moved on
# Where a batch was signed: ahead of the lock; again under it, after a guess ahead missed; under it.
Sealing = Literal["ahead", "again", "locked"]
_KNOWN_LIMIT = 65_536  # streams and keys remembered for sealing ahead (forgotten all at once beyond it)


class Projector(Protocol):
    """A stored projection kept up to date inline with appends."""

    async def project(self, tx: WriteTransaction, events: Sequence[Recorded]) -> None:
        """Apply a batch's ``events`` (and any it finds missed) and record its position, in ``tx``."""
        ...


@dataclass
class _Pending:
    checked: Checked
    future: asyncio.Future[Recorded]


@dataclass(frozen=True)
class _Head:
    size: int
    frontier: tuple[bytes, ...]
    last_leaf_hash: bytes
    recorded_at: str  # of the last event ("" for none): no later event is recorded earlier


@dataclass(frozen=True)
class _Sealed:
    """A batch sealed ahead of the lock, and what it assumed of the log."""

    head: _Head
    assumed: Assumed
    new_head: _Head
    outcomes: list[Recorded | Exception]
    nodes: list[tuple[NodeKey, bytes]]


class Writer:
    """Appends drafts to the log; ``await append(draft)`` returns once it is committed."""

    def __init__(
        self,
        store: Store,
        signer: Signer,
        *,
        max_batch: int = 1024,
        checkpoint_interval: float = 0.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_batch: Callable[[int, float, bool, Sealing], None] | None = None,
        projectors: Sequence[Projector] = (),
        commits: Commits | None = None,
        seal_ahead: bool = True,
    ) -> None:
        self._store = store
        self._signer = signer
        self._max_batch = max_batch
        self._checkpoint_interval = checkpoint_interval
        self._clock = clock
        # (events recorded, or failed, by a batch; seconds; committed?; where it was sealed) for metrics
        self.on_batch = on_batch
        self._projectors = tuple(projectors)
        self._commits = commits  # counted before each batch is acknowledged (a failed one may have committed)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._head: _Head | None = None  # after the last batch committed
        self._ahead: _Head | None = None  # after the last batch sealed: where the next is sealed ahead
        self._versions: dict[str, int] = {}  # as the last batches sealed left them
        self._taken: set[tuple[str, str]] = set()
        self._sealing_ahead = seal_ahead  # off where processes take turns at the lock: every guess would miss
        self._plain_for = 0  # batches still to seal under the lock after a miss
        # Sealing ahead, a turn of the event loop before every event, or every 64th: the batch
        # committing meanwhile waits for a turn at each of its round trips, four with projectors
        # (46f6fa9), one without. There each turn cost more than the wait it saved: bench.append's
        # throughput part 15,036-17,139 events/s with no turn in a batch of 32 against
        # 13,032-14,378 with one every second event, in five pairs of runs taken in turn
        self._turns = 1 if self._projectors else 64
        self.sealed_ahead = 0  # batches that went in as sealed ahead of the lock
        self.sealed_again = 0  # batches sealed ahead that found the log not as assumed, and sealed again
        self._key_from = 0  # the seq from which the log lists this writer's key (known once started)
        self._checkpointed_at = 0.0
        self._checkpointed_size = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def size(self) -> int:
        """The log size after the last batch this writer committed (0 before its first)."""
        return self._head.size if self._head is not None else 0

    @property
    def signer(self) -> Signer:
        """The log key this writer signs events and checkpoints with."""
        return self._signer

    @property
    def origin(self) -> str:
        return self._signer.name

    async def start(self) -> None:
        """Record the signing key from the next seq when the log has not had it; refuse a key
        the log moved on from (verifiers trust a key only until its successor begins)."""
        async with self._store.write() as tx:
            key_id, keys = self._signer.key_id.hex(), await tx.keys()
            mine = next((k for k in keys if k.key_id == key_id), None)
            if mine is None:
                mine = KeyRow(key_id, self._signer.verifier.vkey, (await tx.head([])).size)
                await tx.add_key(mine)
            elif (newest := max(k.from_seq for k in keys)) > mine.from_seq:
                raise InvalidInput(
                    f"the signing key {key_id} is one this log moved on from at seq {newest}; a log does not go "
                    "back to an earlier key (it may have leaked): use the current key file, or a new key"
                )
            self._key_from = mine.from_seq
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def append(self, draft: Draft) -> Recorded:
        checked = check_draft(draft, self.origin)
        if self._closing or not self.running:
            raise Unavailable("the writer is not accepting appends (shutting down or not started)")
        pending = _Pending(checked, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(pending)
        return await pending.future

    async def close(self) -> None:
        """Stop accepting appends, commit what is queued, then stop."""
        self._closing = True
        if self.running:
            await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        """Form batches; while one sealed ahead commits, seal the next (two at most in flight)."""
        committing: asyncio.Task[None] | None = None
        task: asyncio.Task[None] | None = None
        locked = asyncio.Event()  # set once the batch committing holds the lock, or has committed or given up
        locked.set()
        try:
            while True:
                try:
                    first = await asyncio.wait_for(self._queue.get(), self._checkpoint_interval or None)
                except TimeoutError:
                    if committing is not None:
                        await asyncio.wait([committing])
                        committing = None
                    await self._checkpoint_tail()
                    continue
                batch = [first]
                sealed = await self._seal_ahead(batch, following=committing is not None and not committing.done())
                after, locked = locked, asyncio.Event()  # ask for the lock after the batch before has it
                task = asyncio.create_task(self._commit(batch, sealed, after, locked))
                if committing is not None:
                    await asyncio.wait([committing])
                committing = task
                if sealed is None:  # sealed under the lock: nothing to overlap it with
                    await asyncio.wait([task])
                    committing = None
        finally:  # stopped (at close, once nothing is queued): let no batch wait for one cancelled
            for running in (committing, task):
                if running is not None:
                    running.cancel()

    async def _seal_ahead(self, batch: list[_Pending], *, following: bool) -> _Sealed | None:
        """Seal ``batch`` (grown from the queue) where the last batch sealed leaves the log, or
        return None to have it sealed under the lock (then it grows there, as appends queue)."""
        if self._plain_for:
            self._plain_for -= 1
            return None
        head = self._ahead
        if head is None or not self._sealing_ahead:
            return None
        queued = self._queue.qsize()  # alone, take half: the rest is sealed while this commits
        for _ in range(min(queued if following else (queued + 1) // 2, self._max_batch - 1)):
            batch.append(self._queue.get_nowait())
        streams, keys = _named(batch)
        versions = {s: self._versions.get(s, 0) for s in streams}
        taken = keys & self._taken
        assumed = Assumed(
            head.size, head.last_leaf_hash, self._key_from, dict(versions), frozenset(keys), frozenset(taken)
        )
        try:
            new_head, outcomes, nodes = await self._seal(batch, head, versions, taken, turns=self._turns)
        except Exception as e:  # sealed again under the lock, where a failure fails the batch's appends
            log.warning("seal_ahead_failed", size=len(batch), error=str(e))
            return None
        return _Sealed(head, assumed, new_head, outcomes, nodes)

    async def _commit(
        self, batch: list[_Pending], sealed: _Sealed | None, after: asyncio.Event, locked: asyncio.Event
    ) -> None:
        """Commit ``batch`` once the batch before it holds the lock or is done (``after``); one not ``sealed``
        ahead takes what else is queued once the lock is held (it grows in place): while
        another process holds the lock, appends queue here."""
        started = time.perf_counter()
        try:
            await after.wait()
            sealing: Sealing = "ahead"
            if sealed is not None and await self._append_at(batch, sealed):
                head, outcomes = sealed.new_head, sealed.outcomes
            else:
                async with self._store.write() as tx:
                    locked.set()
                    while sealed is None and len(batch) < self._max_batch and not self._queue.empty():
                        batch.append(self._queue.get_nowait())
                    head, outcomes, sealing = await self._sequence(tx, batch, sealed)
        except Exception as e:  # the batch did not commit: no caller is acknowledged
            self._forget()
            error = e if isinstance(e, LedgerError) else Unavailable(f"the log could not commit this append: {e}")
            log.error("batch_failed", size=len(batch), error=str(e))
            outcomes = [error] * len(batch)
            self._observe(len(batch), started, committed=False, sealing="ahead" if sealed else "locked")
        else:
            if self._head is None or head.size >= self._head.size:
                self._head = head
            self.batches += 1
            self._observe(sum(isinstance(o, Recorded) for o in outcomes), started, committed=True, sealing=sealing)
            log.debug(
                "batch_committed",
                size=len(batch),
                tree_size=head.size,
                sealed=sealing,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
        locked.set()
        if self._commits is not None:
            self._commits.count()
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.future.done():
                if isinstance(outcome, Exception):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)
            self._queue.task_done()

    async def _append_at(self, batch: list[_Pending], sealed: _Sealed) -> bool:
        """Store a batch sealed ahead in a transaction of its own if the log is where it assumed
        (on PostgreSQL, one round trip); False, having stored nothing, if not. Not where
        projectors keep projections inline: they read, under the lock, what the batch continues."""
        events, disclosures, claims = _stored(batch, sealed.outcomes)
        if self._projectors or not events:
            return False
        checkpointed = self._checkpointed_at, self._checkpointed_size
        stored = Batch(events, sealed.nodes, disclosures, self._maybe_checkpoint(sealed.new_head), claims)
        if await self._store.append_at(sealed.assumed, stored):
            self.sealed_ahead += 1
            return True
        self._checkpointed_at, self._checkpointed_size = checkpointed  # that checkpoint was not stored
        return False

    def _forget(self) -> None:
        """After a failed batch: know nothing of where the log ends."""
        self._head, self._ahead, self._checkpointed_at, self._checkpointed_size = None, None, 0.0, 0
        self._versions, self._taken = {}, set()

    def _observe(self, size: int, started: float, *, committed: bool, sealing: Sealing) -> None:
        if self.on_batch is not None:
            self.on_batch(size, time.perf_counter() - started, committed, sealing)

    def _still_signing(self, found: HeadRow) -> HeadRow:
        """``found``, unless another process took the log to a new key while this one ran."""
        if found.keys_from > self._key_from:
            raise Unavailable(
                f"the log moved on from this process's signing key at seq {found.keys_from}; restart it with the "
                "current key file"
            )
        return found

    async def _load_head(self, tx: WriteTransaction, found: HeadRow) -> _Head:
        """The frontier at the log's end: remembered, unless another process moved the log on."""
        if self._head is not None and self._head.size == found.size:
            return self._head
        if not found.size:
            return _Head(0, (), ZERO_HASH, "")
        keys = frontier_keys(found.size)
        nodes = await tx.read_nodes(keys)
        if len(nodes) != len(keys):
            raise Unavailable(f"stored tree nodes for size {found.size} are missing; the database is damaged")
        return _Head(found.size, tuple(nodes[k] for k in keys), found.last_leaf_hash, found.last_recorded_at)

    async def _sequence(
        self, tx: WriteTransaction, batch: list[_Pending], sealed: _Sealed | None
    ) -> tuple[_Head, list[Recorded | Exception], Sealing]:
        streams, keys = _named(batch)
        found = self._still_signing(await tx.head(sorted(streams), sorted(keys)))
        sealing: Sealing = "locked"
        if sealed is not None and sealed.assumed.holds(found):
            head, new_head, outcomes, nodes = sealed.head, sealed.new_head, sealed.outcomes, sealed.nodes
            self.sealed_ahead, sealing = self.sealed_ahead + 1, "ahead"
        else:
            if sealed is not None:  # the guess missed
                self.sealed_again, sealing = self.sealed_again + 1, "again"
                if not sealed.assumed.ends_at(found):  # another process moved the log on (or the batch before failed)
                    self._plain_for = PLAIN_AFTER_MISS
            head = await self._load_head(tx, found)
            versions, taken = dict(found.versions), set(found.taken)
            new_head, outcomes, nodes = await self._seal(batch, head, versions, taken, turns=0)
        recorded, disclosures, claims = _stored(batch, outcomes)
        if not recorded:
            return head, outcomes, sealing
        await store_batch(tx, Batch(recorded, nodes, disclosures, self._maybe_checkpoint(new_head), claims))
        for projector in self._projectors:  # same transaction: rows and positions commit with the events
            await projector.project(tx, recorded)
        return new_head, outcomes, sealing

    async def _seal(
        self, batch: list[_Pending], head: _Head, versions: dict[str, int], taken: set[tuple[str, str]], *, turns: int
    ) -> tuple[_Head, list[Recorded | Exception], list[tuple[NodeKey, bytes]]]:
        """Give each draft its seq, version and ``prev``, and sign it; refuse stale versions and
        Idempotency-Keys ``taken`` (by an earlier batch, or earlier in this one). What it leaves
        is where the next batch is sealed ahead. With ``turns`` (ahead of the lock) it lets the
        event loop run before every ``turns``-th event; under the lock (0) it does not, as that
        would hold the lock longer."""
        frontier, prev, size = list(head.frontier), head.last_leaf_hash, head.size
        # a clock stepped back must not make time run backwards in the log
        now = max(format_time(self._clock()), head.recorded_at)
        nodes: list[tuple[NodeKey, bytes]] = []
        outcomes: list[Recorded | Exception] = []
        for i, pending in enumerate(batch):
            if turns and (i + 1) % turns == 0:  # let the batch committing meanwhile answer and go on
                await asyncio.sleep(0)
            draft = pending.checked.draft
            refused = _refusal(draft, versions, taken)
            if refused is not None:
                outcomes.append(refused)
                continue
            current = versions.get(draft.stream, 0)
            versions[draft.stream] = current + 1
            if draft.claim is not None:
                taken.add((draft.claim.scope, draft.claim.key))
            event = seal_event(pending.checked, self._signer, seq=size, version=current + 1, recorded_at=now, prev=prev)
            nodes += perfect_nodes_completed(event.seq, event.leaf_hash, frontier)
            prev, size = event.leaf_hash, size + 1
            outcomes.append(event)
        new_head = _Head(size, tuple(frontier), prev, now if size > head.size else head.recorded_at)
        self._remember(new_head, versions, taken)
        return new_head, outcomes, nodes

    def _remember(self, head: _Head, versions: dict[str, int], taken: set[tuple[str, str]]) -> None:
        if len(self._versions) + len(self._taken) > _KNOWN_LIMIT:
            self._versions, self._taken = {}, set()
        self._ahead = head
        self._versions.update(versions)
        self._taken |= taken

    def _maybe_checkpoint(self, head: _Head) -> tuple[int, bytes] | None:
        if time.monotonic() - self._checkpointed_at < self._checkpoint_interval:
            return None
        checkpoint = Checkpoint(self.origin, head.size, frontier_root(head.frontier))
        self._checkpointed_at = time.monotonic()
        self._checkpointed_size = head.size
        return head.size, sign_checkpoint(checkpoint, self._signer)

    async def _checkpoint_tail(self) -> None:
        """Sign a checkpoint for appends an interval left uncovered."""
        if self._head is None or self._head.size <= self._checkpointed_size:
            return
        try:
            async with self._store.write() as tx:
                self._checkpointed_at = 0.0
                head = await self._load_head(tx, self._still_signing(await tx.head([])))
                await tx.append([], [], [], self._maybe_checkpoint(head))
        except LedgerError as e:
            log.warning("checkpoint_failed", error=e.detail)
        finally:  # the latest checkpoint may have changed: reads of it remembered are stale
            if self._commits is not None:
                self._commits.count()


def _named(batch: list[_Pending]) -> tuple[set[str], set[tuple[str, str]]]:
    """The streams a batch's drafts name (their own and those they require) and the keys they claim."""
    drafts = [p.checked.draft for p in batch]
    streams = {d.stream for d in drafts} | {s for d in drafts for s, _ in d.requires}
    return streams, {(c.scope, c.key) for d in drafts if (c := d.claim) is not None}


def _stored(
    batch: list[_Pending], outcomes: list[Recorded | Exception]
) -> tuple[list[Recorded], list[tuple[int, Disclosure]], list[tuple[Claim, int]]]:
    """What a sealed batch stores: its events, their disclosures and the keys they settle."""
    recorded = [(p.checked.draft, o) for p, o in zip(batch, outcomes, strict=True) if isinstance(o, Recorded)]
    disclosures = [(o.seq, d) for draft, o in recorded for d in draft.disclosures]
    claims = [(draft.claim, o.seq) for draft, o in recorded if draft.claim is not None]
    return [o for _, o in recorded], disclosures, claims


def _refusal(draft: Draft, versions: dict[str, int], taken: set[tuple[str, str]]) -> Exception | None:
    """Why ``draft`` cannot be recorded where its batch stands, if it cannot."""
    claim = draft.claim
    if claim is not None and (claim.scope, claim.key) in taken:
        return IdempotencyKeyTaken(f"another request with Idempotency-Key {claim.key!r} was recorded first")
    current = versions.get(draft.stream, 0)
    if draft.expected_version is not None and draft.expected_version != current:
        stale = f"{draft.stream} is at version {current}, not {draft.expected_version}; reload and retry"
        return VersionConflict(stale)
    moved = [(s, v) for s, v in draft.requires if versions.get(s, 0) != v]
    if moved:
        stream, seen = moved[0]
        return VersionConflict(f"{stream} moved on from version {seen} while this was decided; reload and retry")
    return None
