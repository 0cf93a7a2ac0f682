"""Throwaway stores for tests: SQLite in a temporary file, PostgreSQL in a fresh schema.

PostgreSQL comes from LEDGER_TEST_DATABASE_URL (default: the local server on
127.0.0.1:5432 as user postgres). Under CI=true a missing server fails the run; elsewhere
its tests are skipped with a loud reason.

Each schema created and dropped leaves dead rows in the system catalogs (pg_attribute,
pg_class, pg_depend, ...), about a thousand schemas a run. Where autovacuum is off, as on
some CI machines, nothing clears them, run after run (pg_attribute once held 500,000, 99 MB),
and every test's set-up (CREATE SCHEMA, the migrations) works through them. So the catalogs
are vacuumed when the run starts and after every 50 schemas dropped (the role must own them:
a superuser, as in CI; for others PostgreSQL skips them, quietly).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from ledger.store.base import Store
from ledger.store.postgres import PostgresStore
from ledger.store.sqlite import SqliteStore

POSTGRES_URL = os.environ.get("LEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
CATALOGS = ", ".join(
    f"pg_catalog.{table}"
    for table in ("pg_attribute", "pg_class", "pg_depend", "pg_type", "pg_index", "pg_constraint", "pg_attrdef",
                  "pg_trigger", "pg_proc", "pg_namespace", "pg_description")
)  # fmt: skip
_dropped = itertools.count(1)


async def vacuum_catalogs(conn: asyncpg.Connection) -> None:
    """Clear the dead rows creating and dropping schemas left in the system catalogs."""
    await conn.execute("SET client_min_messages = error")  # not a warning per catalog where the role may not
    await conn.execute(f"VACUUM {CATALOGS}")  # (on its own: VACUUM runs in no transaction block)


def require_postgres() -> str:
    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        await vacuum_catalogs(conn)  # what earlier runs left
        await conn.close()

    try:
        # A thread of its own: the caller may already be inside an event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: asyncio.run(probe())).result()
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        message = f"PostgreSQL not reachable at {POSTGRES_URL} ({e}); set LEDGER_TEST_DATABASE_URL"
        if IN_CI:
            pytest.fail(f"CI=true requires PostgreSQL: {message}")
        pytest.skip(f"!!! POSTGRESQL TESTS SKIPPED: {message}")
    return POSTGRES_URL


@dataclass
class Backend:
    """A store plus the raw access an attacker with the database would have."""

    name: str
    store: Store
    url: str
    schema: str | None = None
    path: Path | None = None

    async def tamper(self, *statements: str) -> None:
        """Run SQL with the append-only triggers bypassed, as an attacker would."""
        if self.name == "postgres":
            conn = await asyncpg.connect(self.url, server_settings={"search_path": self.schema or "public"})
            try:
                async with conn.transaction():
                    await conn.execute("SET LOCAL session_replication_role = replica")
                    for sql in statements:
                        await conn.execute(sql)
            finally:
                await conn.close()
        else:
            conn = sqlite3.connect(str(self.path), isolation_level=None)
            try:
                names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
                conn.execute("BEGIN")
                for name in names:
                    conn.execute(f"DROP TRIGGER {name}")
                for sql in statements:
                    conn.execute(sql)
                conn.execute("COMMIT")
            finally:
                conn.close()

    async def execute(self, sql: str) -> None:
        """Run SQL as a plain client (the triggers in force)."""
        if self.name == "postgres":
            conn = await asyncpg.connect(self.url, server_settings={"search_path": self.schema or "public"})
            try:
                await conn.execute(sql)
            finally:
                await conn.close()
        else:
            conn = sqlite3.connect(str(self.path), isolation_level=None)
            try:
                conn.execute(sql)
            finally:
                conn.close()

    async def reopen(self) -> Store:
        """A second, independent store on the same database."""
        if self.name == "postgres":
            return await PostgresStore.open(self.url, server_settings={"search_path": self.schema or "public"})
        return await SqliteStore.open(f"sqlite:///{self.path}")

    def bytea(self, data: bytes) -> str:
        return f"'\\x{data.hex()}'::bytea" if self.name == "postgres" else f"X'{data.hex()}'"


@asynccontextmanager
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    path = tmp_path / "ledger.db"
    store = await SqliteStore.open(f"sqlite:///{path}")
    await store.migrate()
    try:
        yield Backend("sqlite", store, f"sqlite:///{path}", path=path)
    finally:
        await store.close()


@asynccontextmanager
async def postgres_backend(url: str) -> AsyncIterator[Backend]:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    store = await PostgresStore.open(url, server_settings={"search_path": schema})
    await store.migrate()
    try:
        yield Backend("postgres", store, url, schema=schema)
    finally:
        await store.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        if next(_dropped) % 50 == 0:
            await vacuum_catalogs(admin)
        await admin.close()
