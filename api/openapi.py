"""The OpenAPI 3.1 description of the service, built from the event schemas, and served.

Request bodies carry examples that a fresh ``policy-ledger demo`` database accepts, in
the order of ``EXAMPLE_ORDER`` (a test keeps that true); each operation's summary names
the role it needs.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from aiohttp import web

from api.problems import render
from ledger import __version__, schemas
from ledger.canonical import MAX_SAFE_INTEGER
from ledger.foi import CATEGORIES
from ledger.policy import ID_PATTERN

__all__ = ["EXAMPLE_ORDER", "document", "routes"]

routes = web.RouteTableDef()

POLICY_EXAMPLE, EXEMPTION_EXAMPLE, STORY_POLICY = "POL-2026-EXAMPLE", "EX-2026-EXAMPLE", "POL-2023-TIKTOK"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
ERRORS = {
    "400": "malformed request or parameter",
    "401": "no valid bearer token",
    "403": "the token's role may not do this",
    "404": "no such policy, exemption, event or tree size",
    "409": "a policy rule forbids the command",
    "412": "If-Match is stale: the stream moved on",
    "413": "the body, the event or the export is too large",
    "415": "the body is compressed (Content-Encoding): send it uncompressed",
    "417": "an Expect header other than 100-continue",
    "422": "data does not match the event schema, or an Idempotency-Key was reused for another request",
    "503": "the database or the writer cannot serve now",
}


def _example(name: str, **changes: Any) -> dict[str, Any]:
    return dict(copy.deepcopy(schemas.example(name))) | changes


# (method, path, event schema, example id, example path parameter, example data, role)
COMMANDS: list[tuple[str, str, str, str | None, str | None, dict[str, Any], str]] = [
    ("post", "/v1/policies", "policy.issued/1", POLICY_EXAMPLE, None,
     _example("policy.issued/1", decision_ref="CO-GSG-2026-001", effective_from="2026-12-01T00:00:00Z",
              review_due="2027-12-01T00:00:00Z"),
     "policy-officer"),
    ("post", "/v1/policies/{policy_id}/amendments", "policy.amended/1", None, STORY_POLICY,
     _example("policy.amended/1", review_due="2027-03-16T00:00:00Z"), "policy-officer"),
    ("post", "/v1/policies/{policy_id}/reviews", "policy.reviewed/1", None, STORY_POLICY,
     _example("policy.reviewed/1", reviewed_at="2026-11-20T12:00:00Z", next_review_due="2027-11-20T00:00:00Z"),
     "policy-officer"),
    ("post", "/v1/policies/{policy_id}/exemptions", "exemption.granted/1", EXEMPTION_EXAMPLE, STORY_POLICY,
     _example("exemption.granted/1", case_ref="CO-DST-2026-0101", valid_from="2026-11-01T00:00:00Z",
              expires_at="2027-11-01T00:00:00Z"),
     "security-officer"),
    ("post", "/v1/exemptions/{exemption_id}/amendments", "exemption.amended/1", None, EXEMPTION_EXAMPLE,
     _example("exemption.amended/1"), "security-officer"),
    ("post", "/v1/exemptions/{exemption_id}/renewals", "exemption.renewed/1", None, EXEMPTION_EXAMPLE,
     _example("exemption.renewed/1", expires_at="2028-05-01T00:00:00Z"), "security-officer"),
    ("post", "/v1/exemptions/{exemption_id}/revoke", "exemption.revoked/1", None, EXEMPTION_EXAMPLE,
     _example("exemption.revoked/1", effective_at="2027-01-01T00:00:00Z"), "security-officer"),
    ("post", "/v1/policies/{policy_id}/lift", "policy.lifted/1", None, POLICY_EXAMPLE,
     _example("policy.lifted/1", effective_at="2027-01-01T00:00:00Z"), "policy-officer"),
]  # fmt: skip
EXPORT_EXAMPLE = {"selection": {"policy": STORY_POLICY}, "release": ["national-security"]}
EXAMPLE_ORDER = [(method, path) for method, path, *_ in COMMANDS] + [("post", "/v1/exports")]
ID = {"type": "string", "pattern": f"^{ID_PATTERN}$"}  # of a policy or an exemption
SEQ = {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER}
PROOF = {"name": "proof", "in": "query", "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
         "description": "1: add a receipt (the event, its inclusion proof and the signed checkpoint)"}  # fmt: skip

AS_OF = {"name": "as_of", "in": "query", "schema": {"type": "string"},
         "description": "answer as the ledger stood then: a seq (e.g. 42) or an RFC 3339 time"}  # fmt: skip
AT = {"name": "at", "in": "query", "schema": {"type": "string", "format": "date-time"},
      "description": "when states are judged (expiry needs no event); default: as_of's time, else now"}  # fmt: skip
PAGE = [
    {
        "name": "cursor",
        "in": "query",
        "schema": {"type": "string"},
        "description": "`next` of the page before: the page holds the ids after it, in the order of their bytes",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
        "description": "at most this many items (default 100)",
    },
]


def _path_params(path: str, example: str | None) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [{"name": n, "in": "path", "required": True, "schema": SEQ if n == "seq" else ID, "example": example}
            for n in names]  # fmt: skip


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"description": ERRORS[code], "content": PROBLEM} for code in codes}


def _command(schema: str, ident: str | None, param: str | None, data: dict[str, Any], role: str,
             path: str) -> dict[str, Any]:  # fmt: skip
    ref = {"$ref": f"#/components/schemas/{schema.replace('/', '.')}"}
    body: dict[str, Any] = {"type": "object", "required": ["data"], "additionalProperties": False,
                            "properties": {"data": ref}}  # fmt: skip
    example: dict[str, Any] = {"data": data}
    if ident is not None:
        body["required"] = ["id", "data"]
        body["properties"]["id"] = ID
        example = {"id": ident, "data": data}
    headers = [
        {
            "name": "If-Match",
            "in": "header",
            "schema": {"type": "string", "pattern": '^(W/)?"?[0-9]+"?$'},
            "description": "the stream version read",
        },
        {
            "name": "Idempotency-Key",
            "in": "header",
            "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
            "description": "a retry with the same key and request gets the first answer; remembered at least "
            "LEDGER_IDEMPOTENCY_HOURS (24 by default)",
        },
        PROOF,
    ]
    return {
        "summary": f"record {schema.split('/')[0]} (role {role})",
        "security": [{"bearer": []}],
        "parameters": _path_params(path, param) + headers,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body, "example": example}}},
        "responses": {"201": {"description": "recorded", "content": _json("Recorded")},
                      **_errors("400", "401", "403", "404", "409", "412", "413", "415", "417", "422", "503")},
    }  # fmt: skip


def _export() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time"}
    selection = {"oneOf": [
        {"type": "object", "required": ["policy"], "additionalProperties": False,
         "properties": {"policy": {"type": "string"}}},
        {"type": "object", "required": ["from", "to"], "additionalProperties": False,
         "properties": {"from": time, "to": time}},
        {"type": "object", "required": ["log"], "additionalProperties": False,
         "properties": {"log": {"const": True}}},
    ]}  # fmt: skip
    body = {"type": "object", "required": ["selection"], "additionalProperties": False,
            "properties": {"selection": selection,
                           "release": {"type": "array", "items": {"enum": list(CATEGORIES)}}}}  # fmt: skip
    return {
        "summary": "an export bundle that verifies offline, releasing the categories asked for (role auditor)",
        "security": [{"bearer": []}],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": body, "example": EXPORT_EXAMPLE}}},
        "responses": {"200": {"description": "the bundle file (docs/bundles.md), gzip-compressed JSON",
                              "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
                      **_errors("400", "401", "403", "404", "413", "415", "417", "503")},
    }  # fmt: skip


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _query(summary: str, response: str, params: list[dict[str, Any]], path: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": _path_params(path, None) + params,
        "responses": {"200": {"description": "found", "content": _json(response)}, **_errors("400", "401", "404")},
    }


TOKEN_NEEDED = {"/v1/decisions"}  # the other queries are the public view: anyone may ask
QUERIES: list[tuple[str, str, str, list[dict[str, Any]]]] = [
    ("/v1/policies", "policies with their status", "Page", [AS_OF, AT, *PAGE]),
    ("/v1/policies/{policy_id}", "one policy", "Object", [AS_OF, AT]),
    ("/v1/policies/{policy_id}/history", "a policy's events", "Events", [AS_OF]),
    ("/v1/exemptions", "exemptions with their status", "Page",
     [AS_OF, AT, *PAGE, {"name": "policy_id", "in": "query", "schema": ID}]),
    ("/v1/exemptions/{exemption_id}", "one exemption", "Object", [AS_OF, AT]),
    ("/v1/exemptions/{exemption_id}/history", "an exemption's events", "Events", [AS_OF]),
    ("/v1/decisions", "may app X run on device D of organisation O for account A at time T? (a token of any role)",
     "Object",
     [{"name": n, "in": "query", "required": n in ("app", "organisation"), "schema": {"type": "string"}}
      for n in ("app", "organisation", "device", "account", "device_class")] + [AS_OF, AT]),
    ("/v1/log/checkpoint", "the latest signed checkpoint (C2SP signed note)", "Text", []),
    ("/v1/log/keys", "the log's verifier keys", "Object", []),
    ("/v1/log/events", "events with their leaf input, a page at a time", "Object",
     [{"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}, PAGE[1]]),
    ("/v1/log/events/{seq}", "one event with its leaf input; with proof=1 its receipt", "Object", [PROOF]),
    ("/v1/log/proofs/inclusion", "an RFC 9162 inclusion proof", "Object",
     [{"name": "seq", "in": "query", "required": True, "schema": {"type": "integer", "minimum": 0}},
      {"name": "size", "in": "query", "schema": {"type": "integer", "minimum": 1}}]),
    ("/v1/log/proofs/consistency", "an RFC 9162 consistency proof", "Object",
     [{"name": "from", "in": "query", "required": True, "schema": {"type": "integer", "minimum": 1}},
      {"name": "to", "in": "query", "schema": {"type": "integer", "minimum": 1}}]),
    ("/healthz", "the process is alive", "Object", []),
    ("/readyz", "the database answers and the writer runs", "Object", []),
    ("/metrics", "Prometheus metrics", "Text", []),
    ("/openapi.json", "this document", "Object", []),
]  # fmt: skip


def _components() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in schemas.names():
        schema = copy.deepcopy(dict(schemas.schema(name)))
        schema.pop("$schema", None)
        schema.pop("$id", None)
        found[name.replace("/", ".")] = schema
    loose = {"type": "object"}
    return found | {
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
                    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                   "status": {"type": "integer"}, "detail": {"type": "string"},
                                   "instance": {"type": "string"}, "pointer": {"type": "string"},
                                   "request_id": {"type": "string"}}},
        "Recorded": {"type": "object", "required": ["seq", "leaf_hash", "version", "event"],
                     "properties": {"seq": {"type": "integer"}, "leaf_hash": {"type": "string"},
                                    "version": {"type": "integer"}, "event": loose}},
        "Page": loose, "Object": loose, "Events": {"type": "object", "properties": {"events": {"type": "array"}}},
        "Text": {"type": "string"},
    }  # fmt: skip


@cache
def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, schema, ident, param, data, role in COMMANDS:
        paths.setdefault(path, {})[method] = _command(schema, ident, param, data, role, path)
    paths["/v1/exports"] = {"post": _export()}
    for path, summary, response, params in QUERIES:
        operation = _query(summary, response, params, path)
        if path in TOKEN_NEEDED:
            operation["security"] = [{"bearer": []}]
        if response == "Text":
            operation["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
        paths.setdefault(path, {})["get"] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "policy-ledger", "version": __version__,
                 "description": "A tamper-evident, event-sourced audit ledger for device-security policy."},
        "paths": paths,
        "components": {"schemas": _components(),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }  # fmt: skip


@cache
def query_parameters(method: str, path: str) -> frozenset[str] | None:
    """The query parameters this document lists for ``method`` on the route ``path`` (as
    written here, e.g. ``/v1/policies/{policy_id}``); None for an operation it does not list."""
    operation = document()["paths"].get(path, {}).get("get" if method == "HEAD" else method.lower())
    if operation is None:
        return None
    return frozenset(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return render(document())
