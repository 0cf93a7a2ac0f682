"""The application factory, and the entry points that serve it.

Without a store and writer handed in, the application opens its own in a cleanup
context: open the store, migrate, load (or create) the signing key, start the writer;
on shutdown close the writer (which commits what is queued), then the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import NoReturn

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from api import command_routes, export_routes, log_routes, metrics, openapi, ops_routes, query_routes
from api.auth import authenticate
from api.keys import CONFIG, METRICS, SERVICE, STORE, TOKENS, WRITER
from api.metrics import Metrics, metrics_middleware
from api.problems import problems, request_ids, unparsed
from ledger.config import Config, load_signer
from ledger.errors import InvalidInput
from ledger.logs import configure_logging
from ledger.projector import VersionProjector
from ledger.service import LedgerService
from ledger.store import Store, in_memory, open_store
from ledger.writer import Writer

__all__ = ["MAX_BODY_BYTES", "SHUTDOWN_TIMEOUT", "create_app", "run", "serve"]

log = structlog.get_logger("api")

MAX_BODY_BYTES = 1024 * 1024
SHUTDOWN_TIMEOUT = 10.0  # seconds for requests in flight to finish after SIGTERM


def create_app(config: Config, *, store: Store | None = None, writer: Writer | None = None) -> web.Application:
    """The service; ``store`` and ``writer`` (both or neither) stay the caller's to close."""
    if (store is None) != (writer is None):
        raise ValueError("give create_app both a store and a writer, or neither")
    middlewares = [metrics_middleware, request_ids, problems, authenticate]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[CONFIG], app[METRICS] = config, Metrics()
    if store is not None and writer is not None:
        _attach(app, store, writer)
    else:
        app.cleanup_ctx.append(_log_resources)
    for module in (ops_routes, log_routes, metrics, command_routes, query_routes, export_routes, openapi):
        app.router.add_routes(module.routes)
    return app


def _attach(app: web.Application, store: Store, writer: Writer) -> None:
    app[STORE], app[WRITER], app[TOKENS] = store, writer, store.find_token
    app[SERVICE] = LedgerService(store, writer)
    writer.on_batch = app[METRICS].observe_batch


async def _log_resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = await open_store(config.database_url, pool_size=config.db_pool_size)
    try:
        applied = await store.migrate()
        writer = Writer(store, load_signer(config), projectors=[VersionProjector()])
        await writer.start()
        _attach(app, store, writer)
        log.info("log_opened", origin=config.origin, migrations_applied=applied, size=await store.log_size())
        try:
            yield
        finally:
            await writer.close()
    finally:
        await store.close()
        log.info("log_closed", origin=config.origin)


async def serve(config: Config, *, stop: asyncio.Event | None = None, reuse_port: bool = False) -> None:
    """Serve ``config.host:config.port`` until ``stop`` is set (or cancelled), then shut down:
    stop accepting, give requests in flight SHUTDOWN_TIMEOUT seconds, commit what is queued."""
    runner = _Runner(create_app(config), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port, reuse_port=reuse_port or None).start()
        log.info("listening", host=config.host, port=config.port)
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()


def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT with ``config.workers`` processes sharing the port.

    The first process forks the others once the database is migrated and the key exists;
    each has its own writer and pool (the writers take turns through the log's lock). A
    signal to the first is passed on to the others; each finishes its requests in flight.
    A worker whose first process is gone shuts itself down."""
    configure_logging(config.log_level)
    log.info("starting", host=config.host, port=config.port, workers=config.workers)
    if config.workers > 1:
        if in_memory(config.database_url):
            raise InvalidInput("several workers cannot share an in-memory SQLite database; use a file or PostgreSQL")
        asyncio.run(_prepare(config))
    children: list[int] = []
    try:
        for _ in range(config.workers - 1):
            pid = os.fork()
            if pid == 0:
                _work(config, parent=os.getppid())
            children.append(pid)
        asyncio.run(_until_signalled(config, parent=None))
    finally:
        failed = _stop(children)
    if failed:
        log.error("workers_failed", pids=failed)
        raise SystemExit(1)


def _stop(workers: list[int]) -> list[int]:
    """SIGTERM each worker and wait for it; the pids of those that did not exit cleanly."""
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return [pid for pid in workers if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0]


def _work(config: Config, *, parent: int) -> NoReturn:
    """A forked worker's whole life: serve until signalled (or orphaned), then exit."""
    code = 0
    try:
        asyncio.run(_until_signalled(config, parent=parent))
    except BaseException:
        log.exception("worker_failed")
        code = 1
    os._exit(code)


async def _prepare(config: Config) -> None:
    """What only one process may do: migrate the database and create the key file if missing."""
    load_signer(config)
    store = await open_store(config.database_url, pool_size=1)
    try:
        await store.migrate()
    finally:
        await store.close()


async def _until_signalled(config: Config, *, parent: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    orphaned = asyncio.create_task(_watch_parent(parent, stop)) if parent is not None else None
    try:
        await serve(config, stop=stop, reuse_port=config.workers > 1)
    finally:
        if orphaned is not None:
            orphaned.cancel()


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Shut down if the first process is gone (killed, say): nobody would stop this one."""
    while os.getppid() == parent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
            return
    log.warning("parent_gone", parent=parent)
    stop.set()


class _ProblemHandler(RequestHandler):
    """aiohttp's connection handler, answering a request its HTTP parser refuses (a broken
    request line or header, say) as problem+json, like every other error."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            log.error("connection_error", status=status, error=repr(exc))
        else:
            log.info("malformed_request", status=status, detail=message or repr(exc))
        response = unparsed(status, message or HTTPStatus(status).phrase)
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _ProblemHandler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    """An AppRunner whose connections are :class:`_ProblemHandler`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _ProblemServer  # the same server, handing out the handler above
        return server
