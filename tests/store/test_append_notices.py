"""Hearing of appends on PostgreSQL (LISTEN/NOTIFY), from any process; SQLite cannot."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from ledger.store.postgres_notices import AppendNotices
from ledger.store.sqlite import SqliteStore
from ledger.tokens import TokenRecord
from tests.backends import Backend, postgres_backend

NO_ROWS = "INSERT INTO events SELECT * FROM events WHERE false"  # a statement that appends, for its notice


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Backend]:
    async with postgres_backend(postgres_url) as backend:
        yield backend


def connector(backend: Backend, name: str) -> Callable[[], Awaitable[asyncpg.Connection]]:
    settings = {"search_path": backend.schema or "public", "application_name": name}
    return lambda: asyncpg.connect(backend.url, server_settings=settings)


@pytest.fixture
def listener() -> str:
    """The application_name of the test's listening connection."""
    return f"notices-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def notices(pg: Backend, listener: str) -> AsyncIterator[AppendNotices]:
    watch = AppendNotices(connector(pg, listener), retry_seconds=0.05)
    await watch.start()
    yield watch
    await watch.close()


async def moved_on(notices: AppendNotices, before: int | None, seconds: float = 5.0, count: str = "heard") -> bool:
    for _ in range(int(seconds / 0.01)):
        now = getattr(notices, count)
        if now is not None and now != before:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_an_append_committed_by_another_connection_is_heard(pg: Backend, notices: AppendNotices) -> None:
    before = notices.heard
    assert before is not None
    await pg.execute(NO_ROWS)
    assert await moved_on(notices, before)


async def test_an_erased_disclosure_is_heard_as_an_append_is(pg: Backend, notices: AppendNotices) -> None:
    before = notices.heard
    assert await pg.store.erase_disclosure("no-such-digest") is False  # nothing to erase: told all the same
    assert await moved_on(notices, before)


async def test_an_append_rolled_back_is_not_heard(pg: Backend, notices: AppendNotices) -> None:
    before = notices.heard
    conn = await connector(pg, "rollback")()
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(NO_ROWS)
        await transaction.rollback()
    finally:
        await conn.close()
    assert not await moved_on(notices, before, seconds=0.3)


async def test_a_token_created_or_revoked_by_another_connection_is_heard_as_a_token_change(
    pg: Backend, notices: AppendNotices
) -> None:
    appends, before = notices.heard, notices.tokens_heard
    await pg.store.add_token(TokenRecord("t1", "post-1", "auditor", "hash-1", created_at=""))
    assert await moved_on(notices, before, count="tokens_heard")
    before = notices.tokens_heard
    assert await pg.store.revoke_token("t1")
    assert await moved_on(notices, before, count="tokens_heard")
    assert notices.heard == appends  # not an append: remembered decisions stand


async def test_an_append_is_not_heard_as_a_token_change(pg: Backend, notices: AppendNotices) -> None:
    appends, before = notices.heard, notices.tokens_heard
    await pg.execute(NO_ROWS)
    assert await moved_on(notices, appends)
    assert notices.tokens_heard == before


async def test_appends_to_a_log_in_another_schema_are_not_counted(postgres_url: str, notices: AppendNotices) -> None:
    before = notices.heard
    async with postgres_backend(postgres_url) as other:
        await other.execute(NO_ROWS)
    assert not await moved_on(notices, before, seconds=0.3)


async def test_a_lost_connection_stops_the_count_until_it_listens_again(
    notices: AppendNotices, listener: str, postgres_url: str
) -> None:
    before = notices.heard
    admin = await asyncpg.connect(postgres_url)
    try:
        ended = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", listener
        )
        assert [row[0] for row in ended] == [True]
    finally:
        await admin.close()
    for _ in range(500):
        if notices.heard is None:
            break
        await asyncio.sleep(0.01)
    assert notices.heard is None  # nothing counts as current while nothing can be heard
    assert await moved_on(notices, before)  # listening again, with a count that is not the old one


async def test_the_store_gives_a_listening_watch(pg: Backend) -> None:
    watch = await pg.store.watch_appends()
    assert watch is not None
    try:
        before = watch.heard
        await pg.execute(NO_ROWS)
        for _ in range(500):
            if watch.heard != before:
                break
            await asyncio.sleep(0.01)
        assert watch.heard not in (None, before)
    finally:
        await watch.close()
    assert watch.heard is None


async def test_sqlite_cannot_hear_other_processes(tmp_path: Path) -> None:
    store = await SqliteStore.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        assert await store.watch_appends() is None
    finally:
        await store.close()


class Relay:
    """A TCP relay to PostgreSQL that can go quiet: bytes stop flowing, no socket closes."""

    def __init__(self, url: str) -> None:
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.url, self.port = urlsplit(url), 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    def relayed(self) -> str:
        """The database URL, through the relay."""
        credentials = self.url.netloc.rpartition("@")[0]
        return self.url._replace(netloc=f"{credentials}@127.0.0.1:{self.port}".lstrip("@")).geturl()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.url.hostname, self.url.port or 5432)
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()


async def test_a_connection_that_goes_quiet_is_given_up_and_listened_again(pg: Backend) -> None:
    relay = Relay(pg.url)
    server = await relay.start()
    settings = {"search_path": pg.schema or "public"}
    watch = AppendNotices(lambda: asyncpg.connect(relay.relayed(), server_settings=settings), retry_seconds=0.05,
                          heartbeat_seconds=0.1)  # fmt: skip
    await watch.start()
    try:
        before = watch.heard
        relay.flowing.clear()  # notices and answers stop arriving; nothing tells the client
        for _ in range(300):
            if watch.heard is None:
                break
            await asyncio.sleep(0.01)
        assert watch.heard is None
        relay.flowing.set()
        assert await moved_on(watch, before)
    finally:
        await watch.close()
        server.close()
