"""The PostgreSQL store's pool lends each connection to one caller at a time, and loses none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from ledger.store.postgres_pool import ConnectionPool


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[ConnectionPool]:
    made = await ConnectionPool.open(lambda: asyncpg.connect(postgres_url), min_size=1, max_size=2)
    yield made
    await made.close()


async def backend_pid(pool: ConnectionPool) -> int:
    rows = await pool.fetch("SELECT pg_backend_pid()")
    return int(rows[0][0])


async def test_a_returned_connection_is_lent_again(pool: ConnectionPool) -> None:
    assert await backend_pid(pool) == await backend_pid(pool)
    assert pool.size == 1


async def test_callers_beyond_the_largest_size_wait_for_a_connection_to_come_back(pool: ConnectionPool) -> None:
    held: list[asyncpg.Connection] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with pool.acquire() as conn:
            held.append(conn)
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await asyncio.sleep(0.1)
    third = asyncio.create_task(backend_pid(pool))
    await asyncio.sleep(0.1)
    assert not third.done()
    assert pool.size == 2
    release.set()
    await asyncio.gather(*holders)
    assert await third in {conn.get_server_pid() for conn in held}
    assert pool.size == 2


async def test_a_connection_given_back_inside_a_transaction_is_not_lent_again(pool: ConnectionPool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
        abandoned = conn.get_server_pid()
    assert conn.is_closed()
    assert await backend_pid(pool) != abandoned


async def test_a_connection_closed_while_lent_is_replaced(pool: ConnectionPool) -> None:
    async with pool.acquire() as conn:
        await conn.close()
    assert await pool.fetch("SELECT 1") == [(1,)]
    assert pool.size == 1


async def test_a_caller_that_gives_up_waiting_takes_no_connection_with_it(pool: ConnectionPool) -> None:
    release = asyncio.Event()

    async def hold() -> None:
        async with pool.acquire():
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await asyncio.sleep(0.1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(backend_pid(pool), 0.1)
    release.set()
    await asyncio.gather(*holders)
    assert len({await backend_pid(pool) for _ in range(4)}) == 1
    assert pool.size == 2


async def test_a_connection_that_cannot_be_opened_frees_its_place(postgres_url: str) -> None:
    attempts = [0]

    async def connect() -> asyncpg.Connection:
        attempts[0] += 1
        if attempts[0] == 1:
            raise OSError("refused")
        return await asyncpg.connect(postgres_url)

    pool = await ConnectionPool.open(connect, min_size=0, max_size=1)
    try:
        with pytest.raises(OSError, match="refused"):
            await pool.fetch("SELECT 1")
        assert pool.size == 0
        assert await pool.fetch("SELECT 1") == [(1,)]
    finally:
        await pool.close()


async def test_a_closed_pool_lends_nothing(pool: ConnectionPool) -> None:
    await pool.close()
    with pytest.raises(asyncpg.InterfaceError, match="closed"):
        await pool.fetch("SELECT 1")
    assert pool.size == 0
