"""The store protocol both backends implement, and the rows they exchange.

The writer talks to a :class:`WriteTransaction` it gets from :meth:`Store.write`: the
transaction holds the log's write lock from start to commit, so that commit order is seq
order even when several processes share one database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ledger.events import Claim, Disclosure, Recorded
from ledger.merkle import NodeKey
from ledger.tokens import TokenRecord
from ledger.versions import VersionSet

__all__ = [
    "AppendWatch",
    "Assumed",
    "Batch",
    "HeadRow",
    "KeyRow",
    "LeafRow",
    "Remembered",
    "Store",
    "WriteTransaction",
    "append_if_at",
    "paged_leaves",
    "sqlite_path",
    "store_batch",
]


@dataclass(frozen=True)
class LeafRow:
    seq: int
    leaf: bytes
    leaf_hash: bytes


@dataclass(frozen=True)
class HeadRow:
    """The end of the log as a write transaction finds it."""

    size: int
    versions: dict[str, int]  # the current version of each stream asked about that exists
    last_leaf_hash: bytes  # of the event at seq size - 1 (b"" when the log is empty)
    last_recorded_at: str  # when that event was recorded, as its leaf says it ("" when empty)
    keys_from: int  # the seq from which the log's newest key signs (the largest from_seq of its keys)
    taken: frozenset[tuple[str, str]] = frozenset()  # of the claims asked about, those already settled


@dataclass(frozen=True)
class Assumed:
    """Where a batch sealed ahead of the lock assumed the log to end: what its seqs, ``prev``
    links, versions and refusals were decided on. Sealing again on a log found so would give
    the same batch."""

    size: int
    last_leaf_hash: bytes  # b"" when the log is empty
    keys_from: int  # the from_seq of the key that signed it: no newer key may have taken over
    versions: Mapping[str, int]  # of every stream the batch names (0: none yet)
    claims: frozenset[tuple[str, str]]  # the Idempotency-Keys the batch claims
    taken: frozenset[tuple[str, str]]  # of those, the ones settled before it

    def ends_at(self, found: HeadRow) -> bool:
        """Whether the log ``found`` ends where assumed (same size and last leaf)."""
        return found.size == self.size and (not found.size or found.last_leaf_hash == self.last_leaf_hash)

    def holds(self, found: HeadRow) -> bool:
        """Whether the log ``found`` under the lock is as assumed."""
        return (
            self.ends_at(found)
            and found.keys_from <= self.keys_from
            and all(found.versions.get(s, 0) == v for s, v in self.versions.items())
            and found.taken == self.taken
        )


@dataclass(frozen=True)
class Batch:
    """What a batch stores: its events (of consecutive seqs, sealed at one time), the subtrees
    they complete, their disclosures, a checkpoint (size, signed note) and the
    Idempotency-Keys they settle (each with its seq)."""

    events: Sequence[Recorded]
    nodes: Sequence[tuple[NodeKey, bytes]]
    disclosures: Sequence[tuple[int, Disclosure]]
    checkpoint: tuple[int, bytes] | None
    claims: Sequence[tuple[Claim, int]] = ()


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    vkey: str
    from_seq: int


@dataclass(frozen=True)
class Remembered:
    """What an Idempotency-Key already holds: the request it came with, the seq of the event
    it recorded once that committed, and (kept by earlier versions) its stored answer."""

    request_hash: str
    status: int | None
    body: bytes | None
    seq: int | None = None


class WriteTransaction(Protocol):
    async def head(self, streams: Sequence[str], claims: Sequence[tuple[str, str]] = ()) -> HeadRow:
        """The log size, the current version of each of ``streams`` that exists, the last event,
        and which of ``claims`` (scope, Idempotency-Key) a recorded event, or a stored answer, settled."""
        ...

    async def read_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]: ...

    async def keys(self) -> list[KeyRow]: ...

    async def add_key(self, key: KeyRow) -> None: ...

    async def append(
        self,
        events: Sequence[Recorded],
        nodes: Sequence[tuple[NodeKey, bytes]],
        disclosures: Sequence[tuple[int, Disclosure]],
        checkpoint: tuple[int, bytes] | None,
    ) -> None:
        """Store a batch: its leaves (of consecutive seqs, sealed at one time), the subtrees
        they complete, disclosures, a checkpoint."""
        ...

    async def read_leaves(self, start: int, end: int) -> list[LeafRow]:
        """Events with start <= seq < end, in seq order, as this transaction sees them."""
        ...

    async def settle_claims(self, claims: Sequence[tuple[Claim, int]]) -> None:
        """Record, with the events, each claim and the seq its request recorded (none of them taken)."""
        ...

    # -- stored projections (ledger/versions.py), written in the same transaction as events

    async def open_versions(
        self, name: str, policy_ids: Sequence[str], exemption_ids: Sequence[str]
    ) -> tuple[int, VersionSet]:
        """How many log events projection ``name`` has applied (0 when it never ran), and the
        current (open) version of each of these policies and exemptions that exists: one read."""
        ...

    async def save_versions(self, versions: VersionSet, name: str, position: int) -> None:
        """Insert new versions, close superseded ones (same key, ``to_seq`` now set), record ``position``."""
        ...

    async def start_rebuild(self) -> None:
        """Start over: no stored versions and no projection positions (within this transaction)."""
        ...

    async def load_versions(self, versions: VersionSet) -> None:
        """Bulk-insert versions known to be new (after :meth:`start_rebuild`)."""
        ...

    async def finish_rebuild(self) -> None:
        """Make the versions loaded since :meth:`start_rebuild` the stored ones."""
        ...


class AppendWatch(Protocol):
    """Hears of appends to a log made by any process (see :meth:`Store.watch_appends`)."""

    @property
    def heard(self) -> int | None:
        """A count that moves on whenever the log may have grown since it was last read; None
        while appends cannot be heard, so that nothing read from the store counts as current."""
        ...

    @property
    def tokens_heard(self) -> int | None:
        """The same for the tokens: moves on whenever one may have been created or revoked."""
        ...

    async def close(self) -> None: ...


class Store(Protocol):
    """A log's storage; every method is one short transaction unless it says otherwise."""

    url: str

    async def migrate(self) -> list[str]:
        """Apply the numbered migrations not yet applied; return their names."""
        ...

    async def pending_migrations(self) -> list[str]: ...

    async def close(self) -> None: ...

    def write(self) -> AbstractAsyncContextManager[WriteTransaction]:
        """A transaction holding the log's write lock; commits on a clean exit."""
        ...

    async def append_at(self, at: Assumed, batch: Batch) -> bool:
        """Store a batch sealed ahead of the lock (as :meth:`WriteTransaction.append` and
        :meth:`WriteTransaction.settle_claims` would) in a transaction of its own, if under the
        log's lock the log is where the batch assumed; else store nothing and return False."""
        ...

    async def log_size(self) -> int: ...

    async def fold_in_parts(self, size: int, parts: int, page: int) -> bool:
        """Fold the first ``size`` events into new projection tables with ``parts`` processes,
        for the caller's :meth:`WriteTransaction.finish_rebuild`; False where the backend cannot."""
        ...

    async def watch_appends(self) -> AppendWatch | None:
        """Start hearing of appends from every process, or None where the backend cannot."""
        ...

    async def read_leaves(self, start: int, end: int) -> list[LeafRow]:
        """Events with start <= seq < end, in seq order."""
        ...

    def iter_leaves(self, start: int = 0, batch: int = 10_000) -> AsyncIterator[LeafRow]: ...

    async def read_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]: ...

    async def stream_leaves(self, *streams: str) -> list[LeafRow]:
        """Every event of these streams, in seq order (so each stream's in version order)."""
        ...

    async def latest_checkpoint(self) -> bytes | None: ...

    async def checkpoint(self, size: int) -> bytes | None: ...

    async def keys(self) -> list[KeyRow]: ...

    async def disclosures(self, digests: Sequence[str]) -> dict[str, bytes]: ...

    async def erase_disclosure(self, digest: str) -> bool: ...

    # -- stored projections: versions valid at a seq (``FOREVER``: the current ones) -------

    async def projection_position(self, name: str) -> int: ...

    async def seq_at(self, moment: datetime) -> int:
        """The last seq recorded at or before ``moment`` (-1 when none was)."""
        ...

    async def versions_at(
        self, seq: int, *, policy_id: str | None = None, exemption_id: str | None = None
    ) -> VersionSet:
        """Every version standing at ``seq``; or one policy's and its exemptions'; or one
        exemption's and its policy's."""
        ...

    async def policy_page(self, seq: int, *, after: str = "", limit: int | None = None) -> VersionSet:
        """The first ``limit`` (None: all) policies standing at ``seq`` whose ids sort after
        ``after`` (by their bytes), and the terms of the exemptions under them."""
        ...

    async def policy_counted(self, seq: int, policy_id: str) -> VersionSet:
        """Policy ``policy_id`` standing at ``seq``, if it was, and the terms of the exemptions under it."""
        ...

    async def exemption_page(
        self, seq: int, *, after: str = "", limit: int | None = None, policy_id: str | None = None
    ) -> VersionSet:
        """The first ``limit`` (None: all) exemptions standing at ``seq`` (under ``policy_id``, if
        given) whose ids sort after ``after`` (by their bytes), and the policies they are under."""
        ...

    async def decision_versions(
        self, seq: int, *, app: str, organisation: str, account: str | None
    ) -> tuple[VersionSet, dict[str, bytes]]:
        """What a decision needs at ``seq``: the app's policies naming the organisation (or "*"),
        the exemptions of the account in that organisation, and the disclosures still held of
        those exemptions' sealed covered devices (by digest). One round trip."""
        ...

    async def all_versions(self) -> VersionSet:
        """Every stored version, ordered by kind, id and from_seq (for checks)."""
        ...

    async def find_idempotency(self, scope: str, key: str) -> Remembered | None:
        """What ``key`` settled, used by ``scope``: the request it came with and the seq of the
        event it recorded (or an answer stored by an earlier version); None while unused."""
        ...

    async def forget_idempotency(self, hours: int) -> int:
        """Forget the Idempotency-Keys first used ``hours`` or more ago (a request with one of
        them is then a new request); how many were forgotten."""
        ...

    async def add_token(self, token: TokenRecord) -> None: ...

    async def tokens(self) -> list[TokenRecord]: ...

    async def find_token(self, hash_: str) -> TokenRecord | None:
        """The token whose secret hashes to ``hash_``, revoked or not."""
        ...

    async def revoke_token(self, token_id: str) -> bool: ...


async def store_batch(tx: WriteTransaction, batch: Batch) -> None:
    """Store ``batch`` in ``tx``, which holds the lock: its rows, then the keys its events settle."""
    await tx.append(batch.events, batch.nodes, batch.disclosures, batch.checkpoint)
    if batch.claims:
        await tx.settle_claims(batch.claims)


async def append_if_at(tx: WriteTransaction, at: Assumed, batch: Batch) -> bool:
    """:meth:`Store.append_at` in ``tx``, by reading the head and then writing."""
    if not at.holds(await tx.head(sorted(at.versions), sorted(at.claims))):
        return False
    await store_batch(tx, batch)
    return True


async def paged_leaves(
    read_leaves: Callable[[int, int], Awaitable[list[LeafRow]]], start: int, batch: int
) -> AsyncIterator[LeafRow]:
    """Every leaf from ``start`` on, read ``batch`` at a time."""
    while rows := await read_leaves(start, start + batch):
        for row in rows:
            yield row
        start = rows[-1].seq + 1


def sqlite_path(url: str) -> str:
    """The file a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL names, or ``:memory:``."""
    path = url.removeprefix("sqlite://").removeprefix("/") if url.startswith("sqlite:") else url
    return path or ":memory:"
