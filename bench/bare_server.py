"""The baseline for bench/http.py: a bare aiohttp handler that parses a JSON body and answers 201."""

from __future__ import annotations

import sys

from aiohttp import web


async def created(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"id": body.get("id")}, status=201)


if __name__ == "__main__":
    app = web.Application()
    app.router.add_post("/bare", created)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
