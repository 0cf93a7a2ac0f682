"""The embedded SQLite backend, through aiosqlite: one connection, one lock."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

from ledger.errors import NotFound, Unavailable
from ledger.events import Claim, Disclosure, Recorded
from ledger.merkle import NodeKey
from ledger.store.base import (
    Assumed,
    Batch,
    HeadRow,
    KeyRow,
    LeafRow,
    Remembered,
    append_if_at,
    paged_leaves,
    sqlite_path,
)
from ledger.store.migrations import migrations
from ledger.store.sqlite_projections import SqliteProjectionReads, SqliteProjectionWrites
from ledger.tokens import TokenRecord

__all__ = ["SqliteStore"]


class _Write(SqliteProjectionWrites):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def head(self, streams: Sequence[str], claims: Sequence[tuple[str, str]] = ()) -> HeadRow:
        marks = ",".join("?" * len(streams))
        rows = await _fetch(
            self._conn, f"SELECT stream, max(version) FROM events WHERE stream IN ({marks}) GROUP BY stream", streams
        )
        versions = {r[0]: r[1] for r in rows}
        last = await _fetch(self._conn, "SELECT seq, leaf_hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1")
        keys_from = int((await _fetch(self._conn, "SELECT coalesce(max(from_seq), 0) FROM log_keys"))[0][0])
        taken = await self._taken(claims) if claims else frozenset()
        if not last:
            return HeadRow(0, versions, b"", "", keys_from, taken)
        return HeadRow(int(last[0][0]) + 1, versions, _blob(last[0][1]), str(last[0][2]), keys_from, taken)

    async def read_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        return await _read_nodes(self._conn, keys)

    async def read_leaves(self, start: int, end: int) -> list[LeafRow]:
        rows = await _fetch(
            self._conn, "SELECT seq, leaf, leaf_hash FROM events WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end)
        )
        return [LeafRow(r[0], _blob(r[1]), _blob(r[2])) for r in rows]

    async def keys(self) -> list[KeyRow]:
        return await _keys(self._conn)

    async def _taken(self, claims: Sequence[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        pairs = ", ".join(["(?, ?)"] * len(claims))
        rows = await _fetch(
            self._conn,
            f"SELECT scope, key FROM idempotency WHERE (scope, key) IN (VALUES {pairs})"
            " AND (seq IS NOT NULL OR status IS NOT NULL)",
            [part for pair in claims for part in pair],
        )
        return frozenset((r[0], r[1]) for r in rows)

    async def settle_claims(self, claims: Sequence[tuple[Claim, int]]) -> None:
        # None is taken (the writer asked, under the lock); a claim an earlier version left
        # unsettled (its request recorded nothing) is taken over.
        await self._conn.executemany(
            "INSERT INTO idempotency (scope, key, request_hash, seq) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, seq = excluded.seq,"
            " created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
            " WHERE idempotency.seq IS NULL AND idempotency.status IS NULL",
            [(c.scope, c.key, c.request_hash, seq) for c, seq in claims],
        )

    async def add_key(self, key: KeyRow) -> None:
        await self._conn.execute(
            "INSERT INTO log_keys (key_id, vkey, from_seq) VALUES (?, ?, ?)", (key.key_id, key.vkey, key.from_seq)
        )

    async def append(
        self,
        events: Sequence[Recorded],
        nodes: Sequence[tuple[NodeKey, bytes]],
        disclosures: Sequence[tuple[int, Disclosure]],
        checkpoint: tuple[int, bytes] | None,
    ) -> None:
        await self._conn.executemany(
            "INSERT INTO events (seq, stream, version, type, recorded_at, leaf, leaf_hash) VALUES (?,?,?,?,?,?,?)",
            [
                (e.seq, e.stream, e.version, e.event["type"], e.event["recorded_at"], e.leaf, e.leaf_hash)
                for e in events
            ],
        )
        await self._conn.executemany(
            "INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", [(k[0], k[1], h) for k, h in nodes]
        )
        await self._conn.executemany(
            "INSERT INTO disclosures (digest, seq, category, field, disclosure) VALUES (?, ?, ?, ?, ?)",
            [(d.digest, seq, d.category, d.field, d.disclosure) for seq, d in disclosures],
        )
        if checkpoint is not None:
            await self._conn.execute(
                "INSERT INTO checkpoints (size, note) VALUES (?, ?) ON CONFLICT DO NOTHING", checkpoint
            )


async def _fetch(conn: aiosqlite.Connection, query: str, args: Iterable[Any] = ()) -> list[Any]:
    async with conn.execute(query, tuple(args)) as cursor:
        return list(await cursor.fetchall())


async def _log_size(conn: aiosqlite.Connection) -> int:
    rows = await _fetch(conn, "SELECT max(seq) FROM events")
    return 0 if rows[0][0] is None else int(rows[0][0]) + 1


async def _read_nodes(conn: aiosqlite.Connection, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
    found: dict[NodeKey, bytes] = {}
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400]
        where = " OR ".join("(level = ? AND idx = ?)" for _ in chunk)
        rows = await _fetch(
            conn, f"SELECT level, idx, hash FROM tree_nodes WHERE {where}", [x for k in chunk for x in k]
        )
        found.update({(r[0], r[1]): bytes(r[2]) for r in rows})
    return found


async def _keys(conn: aiosqlite.Connection) -> list[KeyRow]:
    rows = await _fetch(conn, "SELECT key_id, vkey, from_seq FROM log_keys ORDER BY from_seq, key_id")
    return [KeyRow(*r) for r in rows]


def _blob(value: bytes | str) -> bytes:
    """A BLOB column's bytes, even where someone stored TEXT in it (SQLite allows that)."""
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


class SqliteStore(SqliteProjectionReads):
    """A log in one SQLite file (``sqlite:///relative.db``, ``sqlite:////abs.db``, ``sqlite:///:memory:``)."""

    def __init__(self, conn: aiosqlite.Connection, url: str) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.url = url

    @classmethod
    async def open(cls, url: str, *, create: bool = True) -> SqliteStore:
        path = sqlite_path(url)
        if not create and path != ":memory:" and not await asyncio.to_thread(os.path.exists, path):
            raise NotFound(f"there is no SQLite database at {path}: check the database URL, or create one with"
                           " 'policy-ledger migrate'")  # fmt: skip
        connecting = aiosqlite.connect(path, isolation_level=None, timeout=30)
        try:
            conn = await connecting
        except sqlite3.Error as e:
            # aiosqlite stops its thread, which then answers on this loop: let it, or it
            # prints a traceback once the loop has closed
            thread = getattr(connecting, "_thread", None)  # not public: absent, there is nothing to wait for
            if thread is not None:
                await asyncio.to_thread(thread.join)
            raise Unavailable(f"cannot open SQLite database {path}: {e}") from e
        try:
            if path != ":memory:":
                await conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the append is acknowledged.
            await conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as e:  # e.g. the file is something else: close, or its thread keeps us alive
            await conn.close()
            raise Unavailable(f"cannot use {path} as a SQLite database: {e}") from None
        return cls(conn, url)

    async def close(self) -> None:
        await self._conn.close()

    async def migrate(self) -> list[str]:
        async with self.write():
            pending = await self._pending()
            for name in pending:
                for statement in _statements(dict(migrations("sqlite"))[name]):
                    await self._conn.execute(statement)
                await self._conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", (name,))
            return pending

    async def pending_migrations(self) -> list[str]:
        async with self._lock:
            return await self._pending()

    async def _pending(self) -> list[str]:
        await self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY,"
            " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
        )
        done = {r[0] for r in await _fetch(self._conn, "SELECT name FROM schema_migrations")}
        return [name for name, _ in migrations("sqlite") if name not in done]

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_Write]:
        async with self._lock:
            # BEGIN IMMEDIATE takes SQLite's write lock at once: one writer at a time across
            # processes, so each batch reads the log head and commits before the next.
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Write(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def append_at(self, at: Assumed, batch: Batch) -> bool:
        async with self.write() as tx:  # in this process: a round trip is no dearer than a call
            return await append_if_at(tx, at, batch)

    async def _read(self, query: str, args: Iterable[Any] = ()) -> list[Any]:
        async with self._lock:
            return await _fetch(self._conn, query, args)

    async def log_size(self) -> int:
        async with self._lock:
            return await _log_size(self._conn)

    async def fold_in_parts(self, size: int, parts: int, page: int) -> bool:
        """One process folds a SQLite log (it has one writer connection)."""
        return False

    async def watch_appends(self) -> None:
        """SQLite cannot tell one process of another's appends (a service on it caches nothing)."""
        return None

    async def read_leaves(self, start: int, end: int) -> list[LeafRow]:
        rows = await self._read(
            "SELECT seq, leaf, leaf_hash FROM events WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end)
        )
        return [LeafRow(r[0], _blob(r[1]), _blob(r[2])) for r in rows]

    def iter_leaves(self, start: int = 0, batch: int = 10_000) -> AsyncIterator[LeafRow]:
        return paged_leaves(self.read_leaves, start, batch)

    async def read_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        async with self._lock:
            return await _read_nodes(self._conn, keys)

    async def stream_leaves(self, *streams: str) -> list[LeafRow]:
        rows = []
        for start in range(0, len(streams), 500):
            chunk = streams[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows += await self._read(f"SELECT seq, leaf, leaf_hash FROM events WHERE stream IN ({marks})", chunk)
        return sorted((LeafRow(r[0], _blob(r[1]), _blob(r[2])) for r in rows), key=lambda row: row.seq)

    async def latest_checkpoint(self) -> bytes | None:
        rows = await self._read("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
        return bytes(rows[0][0]) if rows else None

    async def checkpoint(self, size: int) -> bytes | None:
        rows = await self._read("SELECT note FROM checkpoints WHERE size = ?", (size,))
        return bytes(rows[0][0]) if rows else None

    async def keys(self) -> list[KeyRow]:
        async with self._lock:
            return await _keys(self._conn)

    async def disclosures(self, digests: Sequence[str]) -> dict[str, bytes]:
        marks = ",".join("?" * len(digests))
        rows = await self._read(f"SELECT digest, disclosure FROM disclosures WHERE digest IN ({marks})", digests)
        return {r[0]: bytes(r[1]) for r in rows}

    async def erase_disclosure(self, digest: str) -> bool:
        async with self.write():
            cursor = await self._conn.execute("DELETE FROM disclosures WHERE digest = ?", (digest,))
            return cursor.rowcount == 1

    # -- idempotency ------------------------------------------------------------------------

    async def find_idempotency(self, scope: str, key: str) -> Remembered | None:
        rows = await self._read(
            "SELECT request_hash, status, body, seq FROM idempotency"
            " WHERE scope = ? AND key = ? AND (seq IS NOT NULL OR status IS NOT NULL)",
            (scope, key),
        )
        if not rows:
            return None
        hash_, status, body, seq = rows[0]
        return Remembered(hash_, status, _blob(body) if body is not None else None, seq)

    async def forget_idempotency(self, hours: int) -> int:
        async with self.write():
            cursor = await self._conn.execute(
                "DELETE FROM idempotency WHERE created_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                (f"-{hours} hours",),
            )
            return cursor.rowcount

    # -- tokens -----------------------------------------------------------------------------

    async def add_token(self, token: TokenRecord) -> None:
        async with self.write():
            await self._conn.execute(
                "INSERT INTO tokens (id, name, role, hash) VALUES (?, ?, ?, ?)",
                (token.id, token.name, token.role, token.hash),
            )

    async def tokens(self) -> list[TokenRecord]:
        return [TokenRecord(*r) for r in await self._read(f"{_TOKENS} ORDER BY rowid")]

    async def find_token(self, hash_: str) -> TokenRecord | None:
        rows = await self._read(f"{_TOKENS} WHERE hash = ?", (hash_,))
        return TokenRecord(*rows[0]) if rows else None

    async def revoke_token(self, token_id: str) -> bool:
        async with self.write():
            cursor = await self._conn.execute(
                "UPDATE tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                " WHERE id = ? AND revoked_at IS NULL",
                (token_id,),
            )
            return cursor.rowcount == 1


def _statements(script: str) -> list[str]:
    """Split a migration into statements (sqlite3 runs one at a time; triggers hold ';')."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s and not all(ln.startswith("--") for ln in s.splitlines())]


_TOKENS = "SELECT id, name, role, hash, created_at, revoked_at FROM tokens"
