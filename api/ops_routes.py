"""Probes for the platform: alive (``/healthz``) and ready to serve (``/readyz``)."""

from __future__ import annotations

import structlog
from aiohttp import web

from api.keys import STORE, WRITER
from api.problems import render
from ledger.errors import Unavailable

__all__ = ["routes"]

log = structlog.get_logger("api")

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return render({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[STORE].log_size()
    except Exception as e:
        log.warning("database_not_ready", error=str(e))
        raise Unavailable("the database does not answer; the service log says why") from e
    if not request.app[WRITER].running:
        raise Unavailable("the writer is not running, so appends cannot be committed")
    return render({"status": "ready", "database": "ok", "writer": "running"})
