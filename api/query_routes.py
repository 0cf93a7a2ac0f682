"""The queries: current (and past) policy state and decisions, for people and services.

Every query takes ``as_of`` (a seq, or an RFC 3339 time) and answers as the ledger stood
then; ``at`` is the moment the state is judged at (expiry needs no event). Anyone may
read policies, exemptions and their histories (the public view); sensitive fields are in
clear only for the auditor and admin roles. Decisions need a bearer token of any role: a
decision about a device tells whether an exemption covers it, and the public view
withholds the covered devices.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from api.keys import PRINCIPAL, SERVICE
from api.log_routes import MAX_LIMIT
from api.params import query
from api.problems import render
from ledger.errors import InvalidInput, Unauthenticated
from ledger.events import format_time

__all__ = ["routes", "to_json"]

routes = web.RouteTableDef()
DEFAULT_PAGE = 100


@routes.get("/v1/policies")
async def list_policies(request: web.Request) -> web.Response:
    limit, after = _paging(request)
    found = await request.app[SERVICE].policies(**_when(request), after=after, limit=limit + 1)
    return render(_page(found, limit, "policies", key="policy_id"))


@routes.get("/v1/policies/{policy_id}")
async def get_policy(request: web.Request) -> web.Response:
    found = await request.app[SERVICE].policy(request.match_info["policy_id"], **_when(request))
    return render(to_json(found))


@routes.get("/v1/policies/{policy_id}/history")
async def policy_history(request: web.Request) -> web.Response:
    return await _history(request, f"policy/{request.match_info['policy_id']}")


@routes.get("/v1/exemptions/{exemption_id}/history")
async def exemption_history(request: web.Request) -> web.Response:
    return await _history(request, f"exemption/{request.match_info['exemption_id']}")


async def _history(request: web.Request, stream: str) -> web.Response:
    """The stream's events as recorded; sealed fields in clear only for auditor and admin."""
    role, as_of = request[PRINCIPAL].role, request.query.get("as_of")
    return render({"events": await request.app[SERVICE].history(stream, as_of=as_of, role=role)})


@routes.get("/v1/exemptions")
async def list_exemptions(request: web.Request) -> web.Response:
    limit, after = _paging(request)
    policy_id = request.query.get("policy_id")
    found = await request.app[SERVICE].exemptions(
        policy_id=policy_id, **_when(request), role=request[PRINCIPAL].role, after=after, limit=limit + 1
    )
    return render(_page(found, limit, "exemptions", key="exemption_id"))


@routes.get("/v1/exemptions/{exemption_id}")
async def get_exemption(request: web.Request) -> web.Response:
    found = await request.app[SERVICE].exemption(
        request.match_info["exemption_id"], **_when(request), role=request[PRINCIPAL].role
    )
    return render(to_json(found))


_NAMES = ("app", "organisation", "device", "account", "device_class")


@routes.get("/v1/decisions")
async def decision(request: web.Request) -> web.Response:
    if request[PRINCIPAL].anonymous:
        raise Unauthenticated(
            "decisions need a bearer token of any role (a service asks with role 'service'): an answer tells "
            "whether an exemption covers the device, and the public view withholds the covered devices"
        )
    q = request.query
    if not q.get("app") or not q.get("organisation"):
        raise InvalidInput(
            "query parameters 'app' and 'organisation' are required, e.g. ?app=TikTok&organisation=cabinet-office"
        )
    for name in _NAMES:  # "TikTok " must not miss the ban on TikTok
        if name in q and q[name] != q[name].strip():
            raise InvalidInput(f"query parameter {name!r} has spaces at its start or end ({q[name]!r}); remove them")
    found = await request.app[SERVICE].decide(
        app=q["app"], organisation=q["organisation"], device=q.get("device"), account=q.get("account"),
        device_class=q.get("device_class"), at=q.get("at"), as_of=q.get("as_of"),
    )  # fmt: skip
    return render(to_json(found))


def _when(request: web.Request) -> dict[str, Any]:
    return {"at": request.query.get("at"), "as_of": request.query.get("as_of")}


def _paging(request: web.Request) -> tuple[int, str]:
    """The page asked for: its ``limit``, and the id its items come after (``cursor``)."""
    return query(request, "limit", minimum=1, maximum=MAX_LIMIT) or DEFAULT_PAGE, request.query.get("cursor", "")


def _page(found: Sequence[Any], limit: int, name: str, *, key: str) -> dict[str, Any]:
    """One page: the first ``limit`` of ``found`` (sorted by ``key``), and the cursor of the
    next page if ``found`` holds more."""
    page = found[:limit]
    return {name: [to_json(i) for i in page], "next": getattr(page[-1], key) if len(found) > limit else None}


def to_json(value: Any) -> Any:
    """Dataclasses, named tuples, tuples and datetimes as plain JSON values."""
    kind: type = type(value)
    names = _names(kind)
    if names is not None:
        return {name: to_json(getattr(value, name)) for name in names}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return format_time(value)
    return value


@functools.cache
def _names(kind: type) -> tuple[str, ...] | None:
    """The field names of a dataclass or named tuple type; None for any other type."""
    if dataclasses.is_dataclass(kind):
        return tuple(f.name for f in dataclasses.fields(kind))
    return getattr(kind, "_fields", None) if issubclass(kind, tuple) else None
