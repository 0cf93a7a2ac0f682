"""The application factory, and the entry points that serve it.

Without a store and writer handed in, the application opens its own in a cleanup
context: open the store, migrate, load (or create) the signing key, start the writer;
on shutdown close the writer (which commits what is queued), then the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from api import command_routes, export_routes, log_routes, metrics, openapi, ops_routes, query_routes
from api.auth import authenticate
from api.keys import CONFIG, METRICS, SERVICE, STORE, TOKENS, WRITER
from api.metrics import Metrics, metrics_middleware
from api.problems import problems, request_ids
from ledger.config import Config, load_signer
from ledger.logs import configure_logging
from ledger.projector import VersionProjector
from ledger.service import LedgerService
from ledger.store import Store, open_store
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


async def serve(config: Config) -> None:
    """Serve ``config.host:config.port`` until cancelled, then shut down cleanly."""
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        log.info("listening", host=config.host, port=config.port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT; requests in flight get SHUTDOWN_TIMEOUT seconds, then it exits."""
    configure_logging(config.log_level)
    log.info("starting", host=config.host, port=config.port)
    web.run_app(create_app(config), host=config.host, port=config.port, print=None, access_log=None,
                shutdown_timeout=SHUTDOWN_TIMEOUT)  # fmt: skip
