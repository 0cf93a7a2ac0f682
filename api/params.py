"""Request bodies and query and path parameters, or a 400 that says what is allowed."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from api.openapi import query_parameters
from ledger.canonical import MAX_SAFE_INTEGER
from ledger.errors import InvalidInput, UnsupportedEncoding
from ledger.events import check_text

__all__ = ["flag", "json_object", "plain_requests", "query", "required", "whole"]

_WHOLE = re.compile(r"[0-9]{1,16}")
_UNKEPT_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")  # a surrogate or NUL comes only as an escape


def whole(text: str, name: str, minimum: int = 0, maximum: int = MAX_SAFE_INTEGER) -> int:
    """A decimal integer within bounds, or an InvalidInput that names ``name`` and the bounds."""
    if _WHOLE.fullmatch(text) and minimum <= int(text) <= maximum:
        return int(text)
    allowed = f"from {minimum} to {maximum}" if maximum < MAX_SAFE_INTEGER else f"of {minimum} or more"
    shown = text if len(text) <= 40 else text[:40] + "…"
    raise InvalidInput(f"{name} must be a whole number {allowed}, not {shown!r}")


def query(request: web.Request, name: str, minimum: int = 0, maximum: int = MAX_SAFE_INTEGER) -> int | None:
    text = request.query.get(name)
    return None if text is None else whole(text, f"query parameter {name!r}", minimum, maximum)


def required(request: web.Request, name: str, minimum: int = 0) -> int:
    value = query(request, name, minimum)
    if value is None:
        raise InvalidInput(f"query parameter {name!r} is required: a whole number of {minimum} or more")
    return value


def flag(request: web.Request, name: str) -> bool:
    """A yes/no query parameter: 1 or true, 0 or false; absent is no."""
    text = request.query.get(name, "0").lower()
    if text not in ("0", "1", "true", "false"):
        raise InvalidInput(f"query parameter {name!r} must be 1 or true, 0 or false")
    return text in ("1", "true")


def json_object(raw: bytes, members: Collection[str], like: str) -> dict[str, Any]:
    """The body as a JSON object holding only ``members``; ``like`` shows one, for the error."""
    try:
        body = _loads(raw or b"null")
        if _UNKEPT_ESCAPE.search(raw):
            check_text(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        raise InvalidInput("the request body is nested too deeply to read; no event nests so far") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object like {like}", pointer="")
    unknown = sorted(set(body) - set(members))
    if unknown:
        held = " and ".join(f"'{m}'" for m in members)
        raise InvalidInput(f"unknown member {unknown[0]!r}; the body holds only {held}", pointer=f"/{unknown[0]}")
    return body


def _refuse_unknown_parameters(request: web.Request) -> None:
    resource = request.match_info.route.resource
    if resource is None:  # no such route: a 404 or 405 follows
        return
    known = query_parameters(request.method, resource.canonical)
    if known is None:  # an operation OpenAPI does not list: nothing to hold its query to
        return
    unknown = sorted(set(request.query) - known)
    if unknown:
        takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
        raise InvalidInput(f"{request.method} {resource.canonical} has no query parameter {unknown[0]!r}; {takes}")


def _integer(token: str) -> int:
    if len(token) > 100:  # far beyond ±2^53, and Python reads no more than 4,300 digits
        raise InvalidInput(f"the request body holds an integer of {len(token)} digits; event integers are within ±2^53")
    return int(token)


_DECODER = json.JSONDecoder(parse_int=_integer)  # made once: json.loads with a hook makes one per call


def _loads(raw: bytes) -> Any:
    """``json.loads(raw, parse_int=_integer)``, with the decoder made once."""
    text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


@web.middleware
async def plain_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what no route takes: U+0000 (``%00``) in the path or query, which no id or name
    in the ledger holds; a query parameter the route does not list in OpenAPI (a misspelt
    filter must not be ignored); and a compressed body (the service does not decompress bodies)."""
    if "\x00" in request.path or "\x00" in request.query_string:
        raise InvalidInput("the URL holds U+0000 (NUL, written %00), which no id or name in the ledger has; remove it")
    _refuse_unknown_parameters(request)
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if request.body_exists and coding not in ("", "identity"):
        raise UnsupportedEncoding(f"Content-Encoding {coding!r} is not accepted; send the body uncompressed")
    return await handler(request)
