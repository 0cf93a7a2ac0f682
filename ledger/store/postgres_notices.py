"""Hearing of appends to a PostgreSQL log, from any process, through LISTEN/NOTIFY.

Migration 0006 has every statement that inserts events or checkpoints notify channel
``policy_ledger_appends`` with its schema; PostgreSQL delivers the notice at commit.
Migration 0008 does the same for changes to the tokens, on ``policy_ledger_tokens``.
:class:`AppendNotices` listens on a connection of its own and counts the notices for its
schema, of each kind. While that connection is lost, both counts are None (nothing can
be trusted to be current); they move on once it listens again, since changes made in
between were not heard. A query every ``heartbeat_seconds``, given as long again to
answer, finds a connection that has gone quiet without closing (a half-open socket).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

__all__ = ["CHANNEL", "LOG_SCHEMA", "TOKENS_CHANNEL", "AppendNotices"]

log = structlog.get_logger("ledger")

CHANNEL = "policy_ledger_appends"
TOKENS_CHANNEL = "policy_ledger_tokens"
LOG_SCHEMA = (  # the schema of the log's events table, as triggers name it (TG_TABLE_SCHEMA)
    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'events'::regclass"
)
RETRY_SECONDS = 1.0  # between attempts to listen again
HEARTBEAT_SECONDS = 10.0  # a listening connection that does not answer a query this long is given up

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class AppendNotices:
    """Counts of the appends, and of the changes to tokens, heard of on one log (None while
    not listening)."""

    def __init__(
        self, connect: Connect, *, retry_seconds: float = RETRY_SECONDS, heartbeat_seconds: float = HEARTBEAT_SECONDS
    ) -> None:
        self._connect = connect
        self._retry_seconds = retry_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._count = 0
        self._token_changes = 0
        self._listening = False
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def heard(self) -> int | None:
        return self._count if self._listening else None

    @property
    def tokens_heard(self) -> int | None:
        return self._token_changes if self._listening else None

    async def start(self) -> None:
        """Listen (raising if the database cannot be reached now); keep listening until closed."""
        conn = await self._listen()
        self._task = asyncio.create_task(self._keep_listening(conn), name="ledger-append-notices")

    async def close(self) -> None:
        self._listening = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> asyncpg.Connection:
        conn = await self._connect()
        try:
            schema = await conn.fetchval(LOG_SCHEMA)
            self._lost.clear()
            conn.add_termination_listener(lambda _: self._lose())
            await conn.add_listener(CHANNEL, lambda *notice: self._notified(schema, notice[3]))
            await conn.add_listener(TOKENS_CHANNEL, lambda *notice: self._tokens_changed(schema, notice[3]))
        except BaseException:
            conn.terminate()
            raise
        self._count += 1  # whatever was appended (or changed) while not listening went unheard
        self._token_changes += 1
        self._listening = True
        return conn

    def _notified(self, schema: str, payload: str) -> None:
        if payload == schema:
            self._count += 1

    def _tokens_changed(self, schema: str, payload: str) -> None:
        if payload == schema:
            self._token_changes += 1

    def _lose(self) -> None:
        self._listening = False
        self._lost.set()

    async def _keep_listening(self, conn: asyncpg.Connection) -> None:
        try:
            while True:
                await self._until_lost(conn)
                log.warning("append_notices_lost", retry_seconds=self._retry_seconds)
                conn = await self._relisten()
                log.info("append_notices_back")
        finally:
            self._listening = False
            conn.terminate()

    async def _until_lost(self, conn: asyncpg.Connection) -> None:
        """Until the connection ends; one that stops answering (a half-open socket) is ended."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._heartbeat_seconds)
                return
            try:
                await conn.execute("SELECT 1", timeout=self._heartbeat_seconds)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()  # its termination listener marks the notices lost
                self._lose()
                return

    async def _relisten(self) -> asyncpg.Connection:
        while True:
            await asyncio.sleep(self._retry_seconds)
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return await self._listen()
