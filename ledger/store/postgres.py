"""The PostgreSQL backend, through asyncpg connections lent from a pool of its own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from ledger.errors import InvalidInput, NotFound, Unavailable
from ledger.events import Claim, Disclosure, Recorded, format_time
from ledger.merkle import NodeKey
from ledger.states import stream_ids
from ledger.store.base import Assumed, Batch, HeadRow, KeyRow, LeafRow, Remembered, paged_leaves
from ledger.store.batched import Batched
from ledger.store.migrations import migrations
from ledger.store.postgres_notices import AppendNotices
from ledger.store.postgres_pool import Connect, ConnectionPool
from ledger.store.postgres_projections import (
    NOTIFY,
    SAVE_PARTS,
    Connection,
    PostgresProjectionReads,
    PostgresProjectionWrites,
    one_statement,
    open_rows,
    save_arguments,
)
from ledger.store.postgres_rebuild import fold_in_parts
from ledger.tokens import TokenRecord
from ledger.versions import VersionSet

__all__ = ["PostgresStore"]

_UNREACHABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)


@asynccontextmanager
async def _reachable(url: str) -> AsyncIterator[None]:
    """PostgreSQL's failures as the ledger's: out of reach, out of room, giving up on a
    statement, taking no writes or refusing us, text it cannot hold (a NUL), no log in the
    database, or one not migrated to this version."""
    try:
        yield
    except _UNREACHABLE as e:
        raise Unavailable(f"PostgreSQL at {_redact(url)} is not reachable: {e}") from e
    except asyncpg.InsufficientResourcesError as e:  # no connection slot, disk or memory left
        raise Unavailable(f"PostgreSQL at {_redact(url)} cannot serve now: {e}") from None
    except (asyncpg.OperatorInterventionError, asyncpg.LockNotAvailableError, asyncpg.TransactionRollbackError) as e:
        # a statement cancelled (statement_timeout, an operator) or a lock not had (lock_timeout), a
        # transaction rolled back (a deadlock), a server shutting down: nothing was done, try again
        raise Unavailable(f"PostgreSQL at {_redact(url)} gave up on this request: {e}; retry") from None
    except asyncpg.ReadOnlySQLTransactionError as e:
        raise Unavailable(f"PostgreSQL at {_redact(url)} takes no writes (a standby, or read-only by setting): "
                          f"{e}") from None  # fmt: skip
    except asyncpg.CharacterNotInRepertoireError:
        raise InvalidInput("text holding U+0000 (NUL) is in no id or name the ledger keeps; remove it") from None
    except asyncpg.UndefinedTableError:
        raise NotFound(f"the database at {_redact(url)} holds no log yet: run 'policy-ledger migrate', or check "
                       "LEDGER_DATABASE_URL") from None  # fmt: skip
    except asyncpg.UndefinedFunctionError as e:  # a log migrated by an earlier version
        raise Unavailable(f"the log at {_redact(url)} lacks what this version needs ({e}): run 'policy-ledger "
                          "migrate'") from None  # fmt: skip
    except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidCatalogNameError,
            asyncpg.InvalidSchemaNameError, asyncpg.InvalidPasswordError) as e:  # fmt: skip
        raise Unavailable(f"PostgreSQL at {_redact(url)} refused the connection: {e}") from None


def _redact(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


class _Write(PostgresProjectionWrites):
    """A write transaction, sending what it can together: the head brings the frontier of
    the tree and the open versions of the streams asked about (what the writer and the
    projector read next), and a batch's events wait to go in one statement with the
    projection's rows (or before anything else that might read them, or at commit)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._frontier: dict[NodeKey, bytes] = {}
        self._appending: list[Any] | None = None  # the arguments of an append not yet sent

    async def head(self, streams: Sequence[str], claims: Sequence[tuple[str, str]] = ()) -> HeadRow:
        await self.flush()
        policies, exemptions = stream_ids(streams)
        scopes, keys = [c[0] for c in claims], [c[1] for c in claims]
        row = await self._conn.fetchrow(_HEAD, list(streams), policies, exemptions, scopes, keys)
        assert row is not None  # an aggregate always returns a row
        self.remember_open(policies, exemptions, _unzipped(row, "kinds", "froms", "tos", "states", "sds"))
        self._frontier = {(level, idx): bytes(h) for level, idx, h in _unzipped(row, "levels", "idxs", "hashes")}
        versions = dict(zip(row["streams"] or [], row["versions"] or [], strict=True))
        taken = frozenset(_unzipped(row, "taken_scopes", "taken_keys"))
        if row["top"] is None:
            return HeadRow(0, versions, b"", "", row["keys_from"], taken)
        top, recorded_at = int(row["top"]), format_time(row["recorded_at"])
        return HeadRow(top + 1, versions, bytes(row["leaf_hash"]), recorded_at, row["keys_from"], taken)

    async def read_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        if all(k in self._frontier for k in keys):
            return {k: self._frontier[k] for k in keys}
        await self.flush()
        return await _read_nodes(self._conn, keys)

    async def read_leaves(self, start: int, end: int) -> list[LeafRow]:
        await self.flush()
        rows = await self._conn.fetch(
            "SELECT seq, leaf, leaf_hash FROM events WHERE seq >= $1 AND seq < $2 ORDER BY seq", start, end
        )
        return [LeafRow(r["seq"], bytes(r["leaf"]), bytes(r["leaf_hash"])) for r in rows]

    async def keys(self) -> list[KeyRow]:
        return await _keys(self._conn)

    async def settle_claims(self, claims: Sequence[tuple[Claim, int]]) -> None:
        columns = _claim_arguments(claims)
        if self._appending is None:
            await self._conn.execute(_SETTLE, *columns)
        else:  # sent with the append that waits
            self._appending[_CLAIMS_FROM:] = columns

    async def add_key(self, key: KeyRow) -> None:
        await self._conn.execute(
            "INSERT INTO log_keys (key_id, vkey, from_seq) VALUES ($1, $2, $3)", key.key_id, key.vkey, key.from_seq
        )

    async def append(
        self,
        events: Sequence[Recorded],
        nodes: Sequence[tuple[NodeKey, bytes]],
        disclosures: Sequence[tuple[int, Disclosure]],
        checkpoint: tuple[int, bytes] | None,
    ) -> None:
        await self.flush()
        self._frontier = {}
        self._appending = _append_arguments(Batch(events, nodes, disclosures, checkpoint))

    async def save_versions(self, versions: VersionSet, name: str, position: int) -> None:
        if self._appending is None:
            return await super().save_versions(versions, name, position)
        appending, self._appending, self._opened = self._appending, None, None
        await self._conn.execute(_APPEND_AND_SAVE, *appending, *save_arguments(versions, name, position))

    async def flush(self) -> None:
        """Send the append that waits, if one does."""
        if self._appending is not None:
            appending, self._appending = self._appending, None
            await self._conn.execute(_APPEND, *appending)


def _shifted(part: str, by: int) -> str:
    return re.sub(r"\$(\d+)", lambda m: f"${int(m[1]) + by}", part)


def _parameters(first: int, last: int) -> str:
    return ", ".join(f"${n}" for n in range(first, last + 1))


# The end of the log, where its newest key took over, the versions of the streams asked for
# ($1), the frontier of the tree (its perfect subtrees, largest first: merkle.frontier_keys in
# SQL), the rows of open_rows for the policies ($2) and exemptions ($3) and the Idempotency-Keys
# ($4 scopes, $5 keys) already settled, as arrays: one round trip. Each key is looked up by the
# primary key: a join to unnest() may be planned, while the table is small, as a scan of every
# row, and the prepared statement keeps that plan as the table grows.
_HEAD = f"""
SELECT last.seq AS top, last.leaf_hash, last.recorded_at, s.streams, s.versions,
       f.levels, f.idxs, f.hashes, o.kinds, o.froms, o.tos, o.states, o.sds, t.taken_scopes, t.taken_keys,
       (SELECT coalesce(max(from_seq), 0) FROM log_keys) AS keys_from
FROM (
    SELECT array_agg(k.scope) AS taken_scopes, array_agg(k.key) AS taken_keys
    FROM unnest($4::text[], $5::text[]) AS k(scope, key)
    WHERE (SELECT i.seq IS NOT NULL OR i.status IS NOT NULL FROM idempotency i
           WHERE i.scope = k.scope AND i.key = k.key)
) AS t CROSS JOIN (
    SELECT array_agg(v.stream) AS streams, array_agg(v.version) AS versions
    FROM (SELECT stream, max(version) AS version FROM events WHERE stream = ANY($1::text[]) GROUP BY stream) AS v
) AS s CROSS JOIN (
    SELECT array_agg(kind) AS kinds, array_agg(from_seq) AS froms, array_agg(to_seq) AS tos,
           array_agg(state) AS states, array_agg(devices_sd) AS sds
    FROM ({open_rows("$2", "$3")}) AS o
) AS o LEFT JOIN (SELECT seq, leaf_hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1) AS last ON true
LEFT JOIN LATERAL (
    SELECT array_agg(n.level) AS levels, array_agg(n.idx) AS idxs, array_agg(n.hash) AS hashes
    FROM generate_series(0, 62) AS b(level)
    JOIN tree_nodes n ON n.level = b.level AND n.idx = ((last.seq + 1) >> (b.level + 1)) << 1
    WHERE ((last.seq + 1) >> b.level) & 1 = 1
) AS f ON true
"""

# A batch's events, the tree nodes they complete, their disclosures, a checkpoint and the
# Idempotency-Keys they settle go in through functions of migrations 0011 and 0012:
# append_batch under the lock this transaction holds; append_at, for a batch sealed ahead,
# taking it itself.
_APPEND = f"SELECT append_batch({_parameters(1, 21)})"
_APPEND_AND_SAVE = one_statement(  # the projection's parameters follow the append's 21
    (*(_shifted(part, 21) for part in SAVE_PARTS), _APPEND)
)
_APPEND_AT = f"SELECT append_at({_parameters(1, 29)})"  # what the batch assumed (8), then the append's 21
_SETTLE = f"SELECT settle_claims({_parameters(1, 4)})"
_CLAIMS_FROM = 17  # the parameters of the append before the Idempotency-Keys'


def _append_arguments(batch: Batch) -> list[Any]:
    """The 21 arguments of append_batch: a batch's first seq and time once (its events hold
    consecutive seqs and one time, as the writer seals them), and its hashes as one bytea each."""
    events, nodes, disclosures = batch.events, batch.nodes, batch.disclosures
    first = events[0].seq if events else 0
    times = {e.event["recorded_at"] for e in events}
    if len(times) > 1 or any(e.seq != first + i for i, e in enumerate(events)):
        raise ValueError("a batch's events must hold consecutive seqs and one recorded_at")
    size, note = batch.checkpoint if batch.checkpoint is not None else (-1, b"")
    return [
        first,
        [e.stream for e in events],
        [e.version for e in events],
        [e.event["type"] for e in events],
        datetime.fromisoformat(times.pop()) if times else None,
        [e.leaf for e in events],
        b"".join(e.leaf_hash for e in events),
        [k[0] for k, _ in nodes],
        [k[1] for k, _ in nodes],
        b"".join(h for _, h in nodes),
        [d.digest for _, d in disclosures],
        [seq for seq, _ in disclosures],
        [d.category for _, d in disclosures],
        [d.field for _, d in disclosures],
        [d.disclosure for _, d in disclosures],
        size,
        note,
        *_claim_arguments(batch.claims),
    ]


def _claim_arguments(claims: Sequence[tuple[Claim, int]]) -> list[list[Any]]:
    return [[c.scope for c, _ in claims], [c.key for c, _ in claims], [c.request_hash for c, _ in claims],
            [seq for _, seq in claims]]  # fmt: skip


def _assumed_arguments(at: Assumed) -> list[Any]:
    """The 8 arguments of append_at before the batch's: where the batch assumed the log ends."""
    claims = sorted(at.claims)
    return [at.size, at.last_leaf_hash, at.keys_from, list(at.versions), list(at.versions.values()),
            [c[0] for c in claims], [c[1] for c in claims], [c in at.taken for c in claims]]  # fmt: skip


def _unzipped(row: asyncpg.Record, *columns: str) -> list[Any]:
    """The rows of a result's array columns (a NULL array: no rows)."""
    return list(zip(*(row[c] or [] for c in columns), strict=True))


# A lookup of the primary key per node asked for, whatever the table's statistics: a join
# to unnest() was planned, while the table was small, as a hash join over every stored node,
# and the prepared statement kept that plan as the tree grew.
_NODES = """
SELECT k.level, k.idx, (SELECT n.hash FROM tree_nodes n WHERE n.level = k.level AND n.idx = k.idx) AS hash
FROM unnest($1::smallint[], $2::bigint[]) AS k(level, idx)
"""


async def _read_nodes(conn: Any, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
    rows = await conn.fetch(_NODES, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows if r["hash"] is not None}


async def _keys(conn: Any) -> list[KeyRow]:
    rows = await conn.fetch("SELECT key_id, vkey, from_seq FROM log_keys ORDER BY from_seq, key_id")
    return [KeyRow(r["key_id"], r["vkey"], r["from_seq"]) for r in rows]


def _connector(url: str, server_settings: dict[str, str] | None) -> Connect:
    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(url, server_settings=server_settings, timeout=10)

    return connect


@asynccontextmanager
async def _transaction(conn: Connection) -> AsyncIterator[None]:
    """COMMIT on a clean exit, ROLLBACK otherwise; the caller sends BEGIN (with its lock)."""
    try:
        yield
    except BaseException:
        if not conn.is_closed():
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


class PostgresStore(PostgresProjectionReads):
    """A log in one PostgreSQL database (or schema, via ``server_settings``)."""

    def __init__(self, pool: ConnectionPool, url: str, server_settings: dict[str, str] | None = None) -> None:
        self._pool = pool
        self.url = url
        self._server_settings = server_settings
        self._connect = _connector(url, server_settings)  # a connection of its own, beside the pool's
        self._decisions = Batched(self._decide_now)

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 10, server_settings: dict[str, str] | None = None
    ) -> PostgresStore:
        async with _reachable(url):
            pool = await ConnectionPool.open(_connector(url, server_settings), min_size=min_size, max_size=max_size)
        return cls(pool, url, server_settings)

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
    async def _pending(conn: Connection) -> list[str]:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        return [name for name, _ in migrations("postgres") if name not in done]

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_Write]:
        async with _reachable(self.url), self._pool.acquire() as conn, _transaction(conn):
            # One writer at a time, across all processes: EXCLUSIVE mode still lets readers
            # in, but no other writer, so each batch reads the log head and commits before
            # the next batch can read it. Commit order is therefore seq order, with no gap.
            await conn.execute("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
            tx = _Write(conn)
            yield tx
            await tx.flush()

    async def append_at(self, at: Assumed, batch: Batch) -> bool:
        """One statement, append_at (migrations 0011 and 0012), committed as it returns: one round trip."""
        arguments = _assumed_arguments(at) + _append_arguments(batch)
        async with _reachable(self.url), self._pool.acquire() as conn:
            return bool(await conn.fetchval(_APPEND_AT, *arguments))

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with _reachable(self.url):
            return await self._pool.fetch(query, *args)

    async def fold_in_parts(self, size: int, parts: int, page: int) -> bool:
        async with _reachable(self.url):  # over a connection of its own: the caller's holds the lock
            conn = await self._connect()
            try:
                await fold_in_parts(conn, self.url, self._server_settings, size, parts, page)
            finally:
                await conn.close()
        return True

    async def watch_appends(self) -> AppendNotices:
        notices = AppendNotices(self._connect)
        async with _reachable(self.url):
            await notices.start()
        return notices

    async def log_size(self) -> int:
        rows = await self._fetch("SELECT max(seq) AS top FROM events")
        top = rows[0]["top"]
        return 0 if top is None else int(top) + 1

    async def read_leaves(self, start: int, end: int) -> list[LeafRow]:
        rows = await self._fetch(
            "SELECT seq, leaf, leaf_hash FROM events WHERE seq >= $1 AND seq < $2 ORDER BY seq", start, end
        )
        return [LeafRow(r["seq"], bytes(r["leaf"]), bytes(r["leaf_hash"])) for r in rows]

    def iter_leaves(self, start: int = 0, batch: int = 10_000) -> AsyncIterator[LeafRow]:
        return paged_leaves(self.read_leaves, start, batch)

    async def read_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        async with _reachable(self.url), self._pool.acquire() as conn:
            return await _read_nodes(conn, keys)

    async def stream_leaves(self, *streams: str) -> list[LeafRow]:
        rows = await self._fetch(
            "SELECT seq, leaf, leaf_hash FROM events WHERE stream = ANY($1::text[]) ORDER BY seq", list(streams)
        )
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
        async with _reachable(self.url), self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute("DELETE FROM disclosures WHERE digest = $1", digest)
            await conn.execute(NOTIFY)  # as an append: services forget the decisions they read with it
        return bool(status == "DELETE 1")

    # -- idempotency ------------------------------------------------------------------------

    async def find_idempotency(self, scope: str, key: str) -> Remembered | None:
        rows = await self._fetch(
            "SELECT request_hash, status, body, seq FROM idempotency"
            " WHERE scope = $1 AND key = $2 AND (seq IS NOT NULL OR status IS NOT NULL)", scope, key,
        )  # fmt: skip
        if not rows:
            return None
        body = bytes(rows[0]["body"]) if rows[0]["body"] is not None else None
        return Remembered(rows[0]["request_hash"], rows[0]["status"], body, rows[0]["seq"])

    async def forget_idempotency(self, hours: int) -> int:
        async with _reachable(self.url):
            status = await self._pool.execute(
                "DELETE FROM idempotency WHERE created_at <= now() - make_interval(hours => $1)", hours
            )
        return int(status.split()[-1])

    # -- tokens -----------------------------------------------------------------------------

    async def add_token(self, token: TokenRecord) -> None:
        async with _reachable(self.url):
            await self._pool.execute(
                "INSERT INTO tokens (id, name, role, hash) VALUES ($1, $2, $3, $4)",
                token.id, token.name, token.role, token.hash,
            )  # fmt: skip

    async def tokens(self) -> list[TokenRecord]:
        return [_token(r) for r in await self._fetch(f"{_TOKENS} ORDER BY created_at, id")]

    async def find_token(self, hash_: str) -> TokenRecord | None:
        rows = await self._fetch(f"{_TOKENS} WHERE hash = $1", hash_)
        return _token(rows[0]) if rows else None

    async def revoke_token(self, token_id: str) -> bool:
        async with _reachable(self.url):
            status = await self._pool.execute(
                "UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", token_id
            )
        return bool(status == "UPDATE 1")


_TOKENS = "SELECT id, name, role, hash, created_at, revoked_at FROM tokens"


def _token(row: asyncpg.Record) -> TokenRecord:
    revoked = row["revoked_at"]
    return TokenRecord(row["id"], row["name"], row["role"], row["hash"], row["created_at"].isoformat(),
                       revoked.isoformat() if revoked else None)  # fmt: skip
