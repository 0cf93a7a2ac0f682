"""The application factory (``api.serving`` runs it).

Without a store and writer handed in, the application opens its own in a cleanup
context: open the store, migrate, load (or create) the signing key, start the writer;
on shutdown close the writer (which commits what is queued), then the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from api import command_routes, export_routes, log_routes, metrics, openapi, ops_routes, query_routes
from api.auth import authenticate
from api.idempotency import forget_old_keys
from api.keys import CHECKPOINTS, COMMITS, CONFIG, METRICS, NODES, SERVICE, STORE, TOKENS, WRITER
from api.metrics import Metrics, metrics_middleware
from api.params import plain_requests
from api.problems import expectations, problems, request_ids
from ledger.config import Config, load_signer
from ledger.errors import InvalidInput
from ledger.projector import VersionProjector
from ledger.proofs import NodeCache, ReadNodes
from ledger.read_cache import Commits, LogStamps, ReadCache, TokenStamps
from ledger.service import LedgerService
from ledger.signing import Signer
from ledger.store import Store, open_store
from ledger.store.base import AppendWatch
from ledger.tokens import TokenRecord
from ledger.writer import Writer

__all__ = ["MAX_BODY_BYTES", "create_app", "log_signer"]

log = structlog.get_logger("api")

MAX_BODY_BYTES = 1024 * 1024


def create_app(
    config: Config, *, store: Store | None = None, writer: Writer | None = None, commits: Commits | None = None
) -> web.Application:
    """The service; ``store`` and ``writer`` (both or neither) stay the caller's to close, and
    then it remembers no reads. ``commits``: shared with the other workers of this service."""
    if (store is None) != (writer is None):
        raise ValueError("give create_app both a store and a writer, or neither")
    middlewares = [metrics_middleware, request_ids, problems, plain_requests, authenticate]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[CONFIG], app[METRICS], app[COMMITS] = config, Metrics(), commits or Commits()
    if store is not None and writer is not None:
        _attach(app, store, writer)
    else:
        app.cleanup_ctx.append(_log_resources)
    for module in (ops_routes, log_routes, metrics, command_routes, query_routes, export_routes, openapi):
        app.router.add_routes(_expecting(module.routes))
    return app


def _expecting(routes: web.RouteTableDef) -> list[web.AbstractRouteDef]:
    """The routes, each with our ``Expect`` handler in place of aiohttp's."""
    return [web.RouteDef(r.method, r.path, r.handler, {**r.kwargs, "expect_handler": expectations})
            if isinstance(r, web.RouteDef) else r for r in routes]  # fmt: skip


def _attach(app: web.Application, store: Store, writer: Writer, watch: AppendWatch | None = None) -> None:
    tokens: ReadCache[str, TokenRecord | None] = ReadCache(
        app[CONFIG].read_cache, None if watch is None else TokenStamps(watch)
    )
    app[STORE], app[WRITER] = store, writer
    app[TOKENS] = lambda hash_: tokens.read(hash_, lambda: store.find_token(hash_))
    nodes: ReadNodes = NodeCache(store.read_nodes)
    app[NODES] = nodes
    stamps = None if watch is None else LogStamps(app[COMMITS], watch)
    app[SERVICE] = LedgerService(store, writer, decisions=ReadCache(app[CONFIG].read_cache, stamps))
    app[CHECKPOINTS] = ReadCache(1, stamps)
    writer.on_batch = app[METRICS].observe_batch


async def _log_resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = await open_store(config.database_url, pool_size=config.db_pool_size)
    try:
        applied = await store.migrate()
        watch = await store.watch_appends() if config.read_cache > 0 else None
        try:
            writer = Writer(store, await log_signer(config, store), projectors=[VersionProjector()],
                            commits=app[COMMITS], seal_ahead=config.workers == 1)  # fmt: skip
            await writer.start()
            _attach(app, store, writer, watch)
            log.info("log_opened", origin=config.origin, migrations_applied=applied, size=await store.log_size(),
                     read_cache=watch is not None)  # fmt: skip
            forgetting = _forgetting(store, config.idempotency_hours)
            try:
                yield
            finally:
                if forgetting is not None:
                    forgetting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await forgetting
                await writer.close()
        finally:
            if watch is not None:
                await watch.close()
    finally:
        await store.close()
        log.info("log_closed", origin=config.origin)


def _forgetting(store: Store, hours: int) -> asyncio.Task[None] | None:
    """The task that forgets old Idempotency-Keys (none when they are kept for ever)."""
    return asyncio.create_task(forget_old_keys(store, hours), name="forget-idempotency-keys") if hours else None


async def log_signer(config: Config, store: Store) -> Signer:
    """The log key (``load_signer``), made anew only for an empty log: a key file missing beside
    a log that holds events is a mistake (a wrong path, a volume not mounted), not a new key."""
    if not config.signing_key_file.exists() and (size := await store.log_size()):
        raise InvalidInput(f"the log holds {size} events, but there is no key at {config.signing_key_file}; point "
                           "LEDGER_SIGNING_KEY_FILE at the log's key (to start a new key on purpose, run "
                           "'policy-ledger keys generate' first)")  # fmt: skip
    return load_signer(config)
