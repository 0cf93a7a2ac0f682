"""The PostgreSQL backend, through an asyncpg pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from ledger.errors import Unavailable
from ledger.events import Disclosure, Recorded
from ledger.merkle import NodeKey
from ledger.store.base import KeyRow, LeafRow
from ledger.store.migrations import migrations

__all__ = ["PostgresStore"]

_UNREACHABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)
_EVENT_COLUMNS = ["seq", "stream", "version", "type", "recorded_at", "leaf", "leaf_hash"]


@asynccontextmanager
async def _reachable(url: str) -> AsyncIterator[None]:
    try:
        yield
    except _UNREACHABLE as e:
        raise Unavailable(f"PostgreSQL at {_redact(url)} is not reachable: {e}") from e


def _redact(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


class _Write:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def log_size(self) -> int:
        value = await self._conn.fetchval("SELECT max(seq) FROM events")
        return 0 if value is None else int(value) + 1

    async def read_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        return await _read_nodes(self._conn, keys)

    async def stream_versions(self, streams: Sequence[str]) -> dict[str, int]:
        rows = await self._conn.fetch(
            "SELECT stream, max(version) AS version FROM events WHERE stream = ANY($1::text[]) GROUP BY stream",
            list(streams),
        )
        return {r["stream"]: r["version"] for r in rows}

    async def keys(self) -> list[KeyRow]:
        return await _keys(self._conn)

    async def add_key(self, key: KeyRow) -> None:
        await self._conn.execute(
            "INSERT INTO log_keys (key_id, vkey, from_seq) VALUES ($1, $2, $3)", key.key_id, key.vkey, key.from_seq
        )

    async def append(
        self,
        events: Sequence[Recorded],
        nodes: Sequence[tuple[NodeKey, bytes]],
        disclosures: Sequence[tuple[int, Disclosure]],
    ) -> None:
        rows = [
            (e.seq, e.stream, e.version, e.event["type"], datetime.fromisoformat(e.event["recorded_at"]), e.leaf,
             e.leaf_hash)  # fmt: skip
            for e in events
        ]
        await self._conn.copy_records_to_table("events", records=rows, columns=_EVENT_COLUMNS)
        await self._conn.copy_records_to_table(
            "tree_nodes", records=[(k[0], k[1], h) for k, h in nodes], columns=["level", "idx", "hash"]
        )
        if disclosures:
            await self._conn.copy_records_to_table(
                "disclosures",
                records=[(d.digest, seq, d.category, d.field, d.disclosure) for seq, d in disclosures],
                columns=["digest", "seq", "category", "field", "disclosure"],
            )

    async def add_checkpoint(self, size: int, note: bytes) -> None:
        await self._conn.execute("INSERT INTO checkpoints (size, note) VALUES ($1, $2) ON CONFLICT DO NOTHING", size, note)


async def _read_nodes(conn: Any, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
    rows = await conn.fetch(
        "SELECT n.level, n.idx, n.hash FROM tree_nodes n"
        " JOIN unnest($1::smallint[], $2::bigint[]) AS k(level, idx) ON n.level = k.level AND n.idx = k.idx",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}


async def _keys(conn: Any) -> list[KeyRow]:
    rows = await conn.fetch("SELECT key_id, vkey, from_seq FROM log_keys ORDER BY from_seq, key_id")
    return [KeyRow(r["key_id"], r["vkey"], r["from_seq"]) for r in rows]


class PostgresStore:
    """A log in one PostgreSQL database (or schema, via ``server_settings``)."""

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = url

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10,
                   server_settings: dict[str, str] | None = None) -> PostgresStore:  # fmt: skip
        async with _reachable(url):
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, server_settings=server_settings, timeout=10
            )
        return cls(pool, url)

    async def close(self) -> None:
        await self._pool.close()

    async def migrate(self) -> list[str]:
        async with _reachable(self.url), self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('policy-ledger/migrate'))")
            applied = []
            for name in await self._pending(conn):
                await conn.execute(dict(migrations("postgres"))[name])
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied.append(name)
            return applied

    async def pending_migrations(self) -> list[str]:
        async with _reachable(self.url), self._pool.acquire() as conn:
            return await self._pending(conn)

    @staticmethod
    async def _pending(conn: asyncpg.Connection) -> list[str]:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        return [name for name, _ in migrations("postgres") if name not in done]

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_Write]:
        async with _reachable(self.url), self._pool.acquire() as conn, conn.transaction():
            # One writer at a time, across all processes: EXCLUSIVE mode still lets readers
            # in, but no other writer, so each batch reads the log head and commits before
            # the next batch can read it. Commit order is therefore seq order, with no gap.
            await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            yield _Write(conn)

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with _reachable(self.url):
            return await self._pool.fetch(query, *args)

    async def log_size(self) -> int:
        rows = await self._fetch("SELECT max(seq) AS top FROM events")
        top = rows[0]["top"]
        return 0 if top is None else int(top) + 1

    async def read_leaves(self, start: int, end: int) -> list[LeafRow]:
        rows = await self._fetch(
            "SELECT seq, leaf, leaf_hash FROM events WHERE seq >= $1 AND seq < $2 ORDER BY seq", start, end
        )
        return [LeafRow(r["seq"], bytes(r["leaf"]), bytes(r["leaf_hash"])) for r in rows]

    async def iter_leaves(self, start: int = 0, batch: int = 10_000) -> AsyncIterator[LeafRow]:
        while rows := await self.read_leaves(start, start + batch):
            for row in rows:
                yield row
            start = rows[-1].seq + 1

    async def read_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        async with _reachable(self.url), self._pool.acquire() as conn:
            return await _read_nodes(conn, keys)

    async def stream_leaves(self, stream: str) -> list[LeafRow]:
        rows = await self._fetch("SELECT seq, leaf, leaf_hash FROM events WHERE stream = $1 ORDER BY version", stream)
        return [LeafRow(r["seq"], bytes(r["leaf"]), bytes(r["leaf_hash"])) for r in rows]

    async def latest_checkpoint(self) -> bytes | None:
        rows = await self._fetch("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
        return bytes(rows[0]["note"]) if rows else None

    async def checkpoint(self, size: int) -> bytes | None:
        rows = await self._fetch("SELECT note FROM checkpoints WHERE size = $1", size)
        return bytes(rows[0]["note"]) if rows else None

    async def keys(self) -> list[KeyRow]:
        async with _reachable(self.url), self._pool.acquire() as conn:
            return await _keys(conn)

    async def disclosures(self, digests: Sequence[str]) -> dict[str, bytes]:
        rows = await self._fetch(
            "SELECT digest, disclosure FROM disclosures WHERE digest = ANY($1::text[])", list(digests)
        )
        return {r["digest"]: bytes(r["disclosure"]) for r in rows}

    async def erase_disclosure(self, digest: str) -> bool:
        async with _reachable(self.url):
            status = await self._pool.execute("DELETE FROM disclosures WHERE digest = $1", digest)
        return bool(status == "DELETE 1")
