"""The baseline for bench/http.py: a bare aiohttp handler that parses a JSON body and answers 201,
on the event loop the service runs on (``ledger.event_loop``)."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from ledger import event_loop


async def created(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"id": body.get("id")}, status=201)


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/bare", created)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until the benchmark kills it


if __name__ == "__main__":
    event_loop.run(serve(int(sys.argv[1])))
