"""What PostgreSQL refuses is told as the ledger's own errors, naming what to check."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from yarl import URL

from ledger.errors import NotFound, Unavailable
from ledger.store.postgres import PostgresStore
from tests.backends import postgres_backend


async def test_a_role_postgresql_does_not_know_is_unavailable_naming_it(postgres_url: str) -> None:
    stranger = str(URL(postgres_url).with_user(f"nobody_{uuid.uuid4().hex[:8]}"))
    with pytest.raises(Unavailable, match=r"refused the connection: role .* does not exist"):
        await PostgresStore.open(stranger)


async def test_a_database_with_no_connection_left_for_the_ledger_is_unavailable(postgres_url: str) -> None:
    role = f"no_room_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        with pytest.raises(Unavailable, match=r"cannot serve now: too many connections for role"):
            await PostgresStore.open(str(URL(postgres_url).with_user(role)))
    finally:
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


@pytest.fixture
async def schema(postgres_url: str) -> AsyncIterator[str]:
    """A schema holding a migrated log, dropped afterwards."""
    async with postgres_backend(postgres_url) as backend:
        assert backend.schema is not None
        yield backend.schema


async def test_a_database_that_takes_no_writes_is_unavailable_saying_so(postgres_url: str, schema: str) -> None:
    settings = {"search_path": schema, "default_transaction_read_only": "on"}
    store = await PostgresStore.open(postgres_url, server_settings=settings)
    try:
        with pytest.raises(Unavailable, match=r"takes no writes \(a standby, or read-only by setting\)"):
            await store.revoke_token("tok-1")
    finally:
        await store.close()


@pytest.mark.parametrize("setting", ["lock_timeout", "statement_timeout"])
async def test_a_statement_postgresql_gives_up_on_is_unavailable_to_retry(
    postgres_url: str, schema: str, setting: str
) -> None:
    store = await PostgresStore.open(postgres_url, server_settings={"search_path": schema, setting: "100ms"})
    holder = await asyncpg.connect(postgres_url, server_settings={"search_path": schema})
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(Unavailable, match=r"gave up on this request: .*; retry"):
                await store.tokens()
    finally:
        await holder.close()
        await store.close()


async def test_reading_a_database_that_holds_no_log_says_to_migrate(postgres_url: str) -> None:
    schema = f"empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    store = await PostgresStore.open(postgres_url, server_settings={"search_path": schema})
    try:
        with pytest.raises(NotFound, match="holds no log yet: run 'policy-ledger migrate'"):
            await store.log_size()
    finally:
        await store.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()
