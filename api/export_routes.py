"""``POST /v1/exports``: an auditor's export bundle, which anyone can verify offline.

The body names what to export and which categories of sealed fields to release:
``{"selection": {"policy": ID} | {"from": TIME, "to": TIME} | {"log": true},
"release": ["national-security", ...]}``. The answer is the bundle file (docs/bundles.md),
gzip-compressed JSON, as ``policy-ledger export`` writes it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from api.auth import require
from api.keys import STORE, WRITER
from api.params import json_object
from ledger import exporting
from ledger.bundle import Selection, encode
from ledger.errors import InvalidInput
from ledger.foi import CATEGORIES
from ledger.schemas import parse_time

__all__ = ["EXPORT_ROLE", "MAX_EXPORT_EVENTS", "routes"]

EXPORT_ROLE = "auditor"
MAX_EXPORT_EVENTS = 50_000  # built in memory, about 5 s of CPU: larger exports go through the command line

routes = web.RouteTableDef()


@routes.post("/v1/exports")
async def export(request: web.Request) -> web.Response:
    principal = require(request, EXPORT_ROLE)
    body = json_object(await request.read(), ("selection", "release"), '{"selection": {"policy": "POL-…"}}')
    selection, release = _selection(body.get("selection")), _release(body.get("release", []))
    bundle = await exporting.export(request.app[STORE], request.app[WRITER].signer, selection, release,
                                    principal.actor, datetime.now(UTC), max_events=MAX_EXPORT_EVENTS)  # fmt: skip
    encoded = await asyncio.to_thread(encode, bundle, compress=True)  # megabytes: not on the event loop
    response = web.Response(body=encoded, content_type="application/gzip")
    stamp = bundle["manifest"]["exported_at"][:19].replace(":", "")
    response.headers["Content-Disposition"] = f'attachment; filename="policy-ledger-bundle-{stamp}.json.gz"'
    return response


def _selection(selection: Any) -> Selection:
    if isinstance(selection, dict) and set(selection) == {"policy"} and isinstance(selection["policy"], str):
        return Selection("policy", policy_id=selection["policy"])
    if isinstance(selection, dict) and set(selection) == {"from", "to"}:
        return Selection("range", start=_time(selection, "from"), end=_time(selection, "to"))
    if selection == {"log": True}:
        return Selection("log")
    raise InvalidInput(
        'selection must be {"policy": ID}, {"from": TIME, "to": TIME} or {"log": true}', pointer="/selection"
    )


def _time(selection: dict[str, Any], name: str) -> datetime:
    try:
        if not isinstance(selection[name], str):
            raise ValueError(f"'{name}' must be an RFC 3339 date-time string, e.g. 2025-01-01T00:00:00Z")
        return parse_time(selection[name])
    except ValueError as e:
        raise InvalidInput(str(e), pointer=f"/selection/{name}") from None


def _release(release: Any) -> tuple[str, ...]:
    if not (isinstance(release, list) and all(isinstance(c, str) and c in CATEGORIES for c in release)):
        raise InvalidInput(f"release must be a list of categories among {', '.join(CATEGORIES)}", pointer="/release")
    return tuple(release)
