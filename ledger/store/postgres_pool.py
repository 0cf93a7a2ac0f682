"""PostgreSQL connections lent to one caller at a time, opened as they are needed.

asyncpg's own pool spends about as much CPU on each loan as a short query takes (a task
per release, timers for idle connections); here a loan is a pop from a list and its
return an append. Callers wait in turn when ``max_size`` connections are out.

A connection comes back as it is: the store keeps no session state on it (no LISTEN, SET,
session locks or open cursors). One that has closed, or that comes back still inside a
transaction (its holder failed before it could roll back), is not lent again. A query
cancelled half-way needs nothing more: asyncpg cancels it on the server, and the
connection's next query waits for that.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

__all__ = ["Connect", "ConnectionPool"]

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class ConnectionPool:
    def __init__(self, connect: Connect, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("a pool needs room for at least one connection")
        self._connect = connect
        self._max_size = max_size
        self._idle: list[asyncpg.Connection] = []
        self._waiting: deque[asyncio.Future[asyncpg.Connection | None]] = deque()  # None: open one yourself
        self._open = 0  # connections lent, idle, or being opened
        self._closed = False

    @classmethod
    async def open(cls, connect: Connect, *, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
        """A pool holding ``min_size`` connections already (so an unreachable database fails here)."""
        pool = cls(connect, max_size)
        for _ in range(min(min_size, max_size)):
            pool._open += 1
            try:
                pool._idle.append(await connect())
            except BaseException:
                pool._open -= 1
                await pool.close()
                raise
        return pool

    @property
    def size(self) -> int:
        """The connections open (lent or idle) or being opened."""
        return self._open

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._take()
        try:
            yield conn
        finally:
            self._give_back(conn)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.acquire() as conn:
            return await conn.execute(query, *args)

    async def close(self) -> None:
        """Close the idle connections now, and each lent one when it comes back."""
        self._closed = True
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the connection pool is closed"))
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)

    async def _take(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the connection pool is closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._open -= 1
        if self._open >= self._max_size:
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over just as its caller gave up
                    self._pass_on(waiter.result())
                raise
            if handed is not None:
                return handed
        else:
            self._open += 1
        try:  # a slot of our own: open a connection in it
            return await self._connect()
        except BaseException:
            self._pass_on(None)
            raise

    def _give_back(self, conn: asyncpg.Connection) -> None:
        if self._closed or conn.is_closed() or conn.is_in_transaction():
            if not conn.is_closed():
                conn.terminate()
            self._pass_on(None)
        else:
            self._pass_on(conn)

    def _pass_on(self, conn: asyncpg.Connection | None) -> None:
        """Hand ``conn``, or the slot of a connection gone (None), to the first caller waiting."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            self._open -= 1
        else:
            self._idle.append(conn)
