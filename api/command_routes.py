"""The commands: policy officers and security teams record decisions (201 with the event).

Every body is a JSON object ``{"data": {...}}`` (``"id"`` too where the command creates
the policy or exemption); ``data`` follows the event's JSON Schema in ``schemas/events``.
``If-Match: <stream version>`` makes the command conditional (412 when stale);
``Idempotency-Key`` makes a retry safe; ``?proof=1`` adds the event's receipt (an inclusion
proof and the signed checkpoint) to the answer.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from api.auth import require
from api.idempotency import idempotent
from api.keys import SERVICE, STORE
from api.params import flag, json_object
from api.problems import render
from ledger import exporting, policy
from ledger.errors import InvalidInput, NotFound
from ledger.events import Claim, Recorded, decode_leaf
from ledger.store import Store
from ledger.store.base import LeafRow

__all__ = ["EXEMPTION_ROLE", "POLICY_ROLE", "routes"]

routes = web.RouteTableDef()

POLICY_ROLE, EXEMPTION_ROLE = "policy-officer", "security-officer"  # as policy.required_role says

Make = Callable[[str, Mapping[str, Any], int | None], policy.Command]

_POLICY_CHANGES: dict[str, Make] = {
    "amendments": policy.AmendPolicy,
    "reviews": policy.ReviewPolicy,
    "lift": policy.LiftPolicy,
}
_EXEMPTION_CHANGES: dict[str, Make] = {
    "amendments": policy.AmendExemption,
    "renewals": policy.RenewExemption,
    "revoke": policy.RevokeExemption,
}


@routes.post("/v1/policies")
async def issue_policy(request: web.Request) -> web.Response:
    return await _command(request, POLICY_ROLE, lambda body, v: policy.IssuePolicy(_id(body), _data(body), v))


@routes.post("/v1/policies/{policy_id}/exemptions")
async def grant_exemption(request: web.Request) -> web.Response:
    policy_id = request.match_info["policy_id"]
    grant = policy.GrantExemption
    return await _command(request, EXEMPTION_ROLE, lambda body, v: grant(_id(body), policy_id, _data(body), v))


def _change(role: str, param: str, make: Make) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        ident = request.match_info[param]
        return await _command(request, role, lambda body, v: make(ident, _data(body), v))

    return handler


for _name, _make in _POLICY_CHANGES.items():
    routes.post(f"/v1/policies/{{policy_id}}/{_name}")(_change(POLICY_ROLE, "policy_id", _make))
for _name, _make in _EXEMPTION_CHANGES.items():
    routes.post(f"/v1/exemptions/{{exemption_id}}/{_name}")(_change(EXEMPTION_ROLE, "exemption_id", _make))


async def _command(
    request: web.Request, role: str, make: Callable[[dict[str, Any], int | None], policy.Command]
) -> web.Response:
    """Check the role, parse, execute (once per Idempotency-Key), answer 201 with the event."""
    principal = require(request, role)
    raw = await request.read()
    command = make(json_object(raw, ("id", "data"), '{"data": {...}}'), _if_match(request))
    with_proof = flag(request, "proof")

    async def run(claim: Claim | None) -> web.Response:
        recorded = await request.app[SERVICE].execute(command, principal.actor["id"], principal.actor["role"], claim)
        last = recorded[-1]
        receipt = (
            await _receipt(request.app[STORE], LeafRow(last.seq, last.leaf, last.leaf_hash)) if with_proof else None
        )
        return _created(recorded, receipt)

    async def replay(seq: int) -> web.Response:
        row = (await request.app[STORE].read_leaves(seq, seq + 1))[0]
        receipt = await _receipt(request.app[STORE], row) if with_proof else None
        return _created([Recorded(row.seq, row.leaf, row.leaf_hash, decode_leaf(row.leaf, row.seq))], receipt)

    return await idempotent(request, raw, run, replay)


async def _receipt(store: Store, row: LeafRow) -> dict[str, Any] | None:
    """The receipt of a just-recorded event (none when no checkpoint covers it yet)."""
    try:
        return await exporting.receipt_for(store, row)
    except NotFound:
        return None


def _created(recorded: list[Recorded], receipt: dict[str, Any] | None) -> web.Response:
    last = recorded[-1]
    body = {"seq": last.seq, "leaf_hash": _b64(last.leaf_hash), "version": last.version, "event": last.event}
    if receipt is not None:
        body["receipt"] = receipt
    response = render(body, status=201)
    kind, _, ident = last.stream.partition("/")
    response.headers["Location"] = f"/v1/{'policies' if kind == 'policy' else 'exemptions'}/{ident}"
    response.headers["ETag"] = f'"{last.version}"'
    return response


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _id(body: dict[str, Any]) -> str:
    ident = body.get("id")
    if not isinstance(ident, str) or not ident:
        raise InvalidInput(
            "'id' is required: the new policy's or exemption's id, e.g. 'POL-2023-TIKTOK'", pointer="/id"
        )
    return ident


def _data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidInput("'data' is required: an object following the event's schema", pointer="/data")
    return data


def _if_match(request: web.Request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None:
        return None
    text = header.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit() and len(text) <= 16):
        raise InvalidInput('If-Match must be the stream version you last read, e.g. If-Match: "3"')
    return int(text)
