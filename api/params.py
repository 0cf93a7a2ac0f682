"""Query and path parameters: whole numbers within bounds, or a 400 that says what is allowed."""

from __future__ import annotations

import re

from aiohttp import web

from ledger.canonical import MAX_SAFE_INTEGER
from ledger.errors import InvalidInput

__all__ = ["query", "required", "whole"]

_WHOLE = re.compile(r"[0-9]{1,16}")


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
