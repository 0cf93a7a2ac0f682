"""The store protocol both backends implement, and the rows they exchange.

The writer talks to a :class:`WriteTransaction` it gets from :meth:`Store.write`: the
transaction holds the log's write lock from start to commit, so that commit order is seq
order even when several processes share one database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ledger.events import Disclosure, Recorded
from ledger.merkle import NodeKey
from ledger.tokens import TokenRecord

__all__ = ["KeyRow", "LeafRow", "Remembered", "Store", "WriteTransaction", "paged_leaves"]


@dataclass(frozen=True)
class LeafRow:
    seq: int
    leaf: bytes
    leaf_hash: bytes


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    vkey: str
    from_seq: int


@dataclass(frozen=True)
class Remembered:
    """What an Idempotency-Key already holds: the request it came with, and its answer if done."""

    request_hash: str
    status: int | None
    body: bytes | None


class WriteTransaction(Protocol):
    async def head(self, streams: Sequence[str]) -> tuple[int, dict[str, int]]:
        """The log size, and the current version of each of ``streams`` that exists."""
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
        """Store a batch: its leaves, the subtrees they complete, disclosures, a checkpoint."""
        ...


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

    async def log_size(self) -> int: ...

    async def read_leaves(self, start: int, end: int) -> list[LeafRow]:
        """Events with start <= seq < end, in seq order."""
        ...

    def iter_leaves(self, start: int = 0, batch: int = 10_000) -> AsyncIterator[LeafRow]: ...

    async def read_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]: ...

    async def stream_leaves(self, stream: str) -> list[LeafRow]: ...

    async def latest_checkpoint(self) -> bytes | None: ...

    async def checkpoint(self, size: int) -> bytes | None: ...

    async def keys(self) -> list[KeyRow]: ...

    async def disclosures(self, digests: Sequence[str]) -> dict[str, bytes]: ...

    async def erase_disclosure(self, digest: str) -> bool: ...

    async def claim_idempotency(self, scope: str, key: str, request_hash: str) -> Remembered | None: ...

    async def remember_idempotency(self, scope: str, key: str, status: int | None, body: bytes | None) -> None: ...

    async def add_token(self, token: TokenRecord) -> None: ...

    async def tokens(self) -> list[TokenRecord]: ...

    async def find_token(self, hash_: str) -> TokenRecord | None:
        """The token whose secret hashes to ``hash_``, revoked or not."""
        ...

    async def revoke_token(self, token_id: str) -> bool: ...


async def paged_leaves(
    read_leaves: Callable[[int, int], Awaitable[list[LeafRow]]], start: int, batch: int
) -> AsyncIterator[LeafRow]:
    """Every leaf from ``start`` on, read ``batch`` at a time."""
    while rows := await read_leaves(start, start + batch):
        for row in rows:
            yield row
        start = rows[-1].seq + 1
