"""Every answer the service gives, rendered in one place; every failure as RFC 9457 problem+json.

Two middlewares, outermost first:

- :func:`request_ids` gives each request an id (a sane incoming ``X-Request-ID``, else a
  new one), echoes it, binds it to the request's logs and logs one access line;
- :func:`problems` turns a :class:`~ledger.errors.LedgerError`, aiohttp's own HTTP
  errors (unknown route, wrong method, body too large) and any unexpected exception into
  ``application/problem+json``. A crash becomes a 500 whose body says only to quote the
  request id; the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from http import HTTPStatus
from typing import Any

import orjson
import structlog
from aiohttp import HttpVersion11, web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from api.keys import REQUEST_ID
from ledger.errors import ExpectationFailed, InvalidInput, LedgerError, NotFound
from ledger.uuids import random_uuid

__all__ = ["PROBLEM_JSON", "REQUEST_ID_HEADER", "expectations", "problems", "render", "request_ids", "unparsed"]

log = structlog.get_logger("api")

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def render(data: Any, *, status: int = 200, content_type: str = "application/json") -> web.Response:
    """A JSON body (UTF-8, compact) with ``status``."""
    try:
        body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # text that is not Unicode (echoed from a request): escaped, in ASCII
        body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type=content_type, charset="utf-8")


def _problem(request: web.Request, error: LedgerError, *, type_: str | None = None, title: str | None = None,
             status: int | None = None) -> web.Response:  # fmt: skip
    body: dict[str, Any] = {
        "type": type_ or error.type,
        "title": title or error.title,
        "status": status or error.status,
        "detail": error.detail,
        "instance": request.path,
    }
    if error.pointer is not None:
        body["pointer"] = error.pointer
    body["request_id"] = request.get(REQUEST_ID)
    response = render(body, status=body["status"], content_type=PROBLEM_JSON)
    if response.status == HTTPStatus.SERVICE_UNAVAILABLE:
        response.headers["Retry-After"] = "1"
    return response


def unparsed(status: int, message: str) -> web.Response:
    """The answer to a request aiohttp's HTTP parser refused (it reached no route). The
    parser's message is cut before any bytes of the request: they may hold a secret."""
    phrase, request_id = HTTPStatus(status).phrase, random_uuid()
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        detail = f"an unexpected error occurred while reading the request; quote request id {request_id}"
    else:
        said = message.strip().splitlines()[0] if message.strip() else phrase
        said = said.partition(" b'")[0].partition(' b"')[0].rstrip(":. ") or phrase
        detail = f"the request is not valid HTTP/1.1 ({said}); check the request line and headers"
    body = {"type": "about:blank", "title": phrase, "status": status, "detail": detail, "request_id": request_id}
    response = render(body, status=status, content_type=PROBLEM_JSON)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _http_problem(request: web.Request, e: web.HTTPException) -> web.Response:
    """aiohttp's own errors: an unknown route is our NotFound; the others keep their status."""
    if e.status == HTTPStatus.NOT_FOUND:
        return _problem(request, NotFound(f"no resource at {request.path}; the API lives under /v1"))
    phrase = HTTPStatus(e.status).phrase
    allow = e.headers.get("Allow")
    detail = f"{request.method} is not allowed here; allowed: {allow}" if allow else (e.text or phrase)
    response = _problem(request, LedgerError(detail), type_="about:blank", title=phrase, status=e.status)
    if allow:
        response.headers["Allow"] = allow
    return response


CLIENT_CLOSED = 499  # as nginx logs it: the answer has nobody to go to


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except LedgerError as e:
        if e.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            log.error("request_failed", error_type=e.type, detail=e.detail)
        return _problem(request, e)
    except web.HTTPException as e:
        if e.status < HTTPStatus.BAD_REQUEST:
            raise
        return _http_problem(request, e)
    except RequestPayloadError as e:  # a body cut short, or its framing broken
        why = str(e).partition("message:")[2].strip()
        return _problem(request, InvalidInput(f"the request body could not be read: {why}"))
    except ConnectionResetError:  # the client left before its request was read: nobody to answer
        log.info("client_disconnected")
        return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
    except Exception:
        log.exception("unhandled_error")
        detail = f"an unexpected error occurred; quote request id {request.get(REQUEST_ID)} to the operator"
        return _problem(request, LedgerError(detail))


async def expectations(request: web.Request) -> web.StreamResponse | None:
    """The routes' ``Expect`` handler (it runs before any middleware): ``100-continue`` is
    answered as aiohttp answers it; any other expectation is a 417 problem, not plain text."""
    expect = request.headers.get("Expect", "")
    if request.version != HttpVersion11:
        return None
    if expect.lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer's own bytes are yet to come
        return None
    request[REQUEST_ID] = _request_id(request)
    refused = ExpectationFailed(f"Expect: {expect[:40]!r} is not met here; send the request without it")
    response = _problem(request, refused)
    response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
    return response


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if _SANE_REQUEST_ID.fullmatch(incoming) else random_uuid()


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[REQUEST_ID] = request_id = _request_id(request)
    started, status = time.perf_counter(), 500
    bound = structlog.contextvars.bind_contextvars(request_id=request_id)  # (bound_contextvars costs 3x more)
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as e:  # only the non-errors (e.g. redirects) get past `problems`
        status = e.status
        e.headers[REQUEST_ID_HEADER] = request_id
        raise
    except asyncio.CancelledError:  # the client left, or the service stops: nobody is answered
        status = CLIENT_CLOSED  # (an append it made may still be recorded: retry with its Idempotency-Key)
        raise
    finally:
        ms = round((time.perf_counter() - started) * 1000, 2)
        log.info("request", method=request.method, path=request.path, status=status, ms=ms)
        structlog.contextvars.reset_contextvars(**bound)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response
