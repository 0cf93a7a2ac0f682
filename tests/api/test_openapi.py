"""/openapi.json describes every route, and its request examples work on a fresh demo database."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from api.openapi import EXAMPLE_ORDER, document
from ledger.demo import record_story
from ledger.signing import Signer
from ledger.store import Store
from ledger.tokens import TokenRecord, hash_token, new_token
from tests.api.conftest import Client


async def test_the_document_is_served_as_openapi_3_1(client: Client) -> None:
    body = await (await client.get("/openapi.json")).json()
    assert body["openapi"] == "3.1.0"
    assert body == document()


def test_every_route_of_the_app_is_described(app: web.Application) -> None:
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    described = {(method, path) for path, operations in document()["paths"].items() for method in operations}
    assert {(m, _template(p)) for m, p in described} == {(m, _template(p)) for m, p in served}


def _template(path: str) -> str:
    """Path parameters named alike, and aiohttp's {change:a|b} alternatives spelled out."""
    return "/".join("{}" if part.startswith("{") else part for part in path.split("/"))


def test_every_command_names_its_event_schema() -> None:
    schemas = document()["components"]["schemas"]
    for method, path in EXAMPLE_ORDER[:-1]:  # the commands; the last is the export
        body = document()["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["data"]["$ref"].split("/")[-1] in schemas


async def test_each_request_example_is_accepted_by_a_fresh_demo_database(
    client: Client, store: Store, signer: Signer
) -> None:
    await record_story(store, signer, echo=lambda line: None)
    headers = {role: await _bearer(store, role) for role in ("policy-officer", "security-officer", "auditor")}
    for method, path in EXAMPLE_ORDER:
        operation = document()["paths"][path][method]
        url = _fill(path, operation.get("parameters", []))
        role = operation["summary"].rpartition("(role ")[2].rstrip(")")
        example = operation["requestBody"]["content"]["application/json"]["example"]
        response = await client.request(method, url, json=example, headers=headers[role])
        assert response.status in (200, 201), f"{method} {url}: {await response.text()}"


def _fill(path: str, parameters: list[dict[str, Any]]) -> str:
    for p in parameters:
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", p["example"])
    return path


async def _bearer(store: Store, role: str) -> dict[str, str]:
    secret, token_id = new_token()
    await store.add_token(TokenRecord(token_id, role, role, hash_token(secret), created_at=""))
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize("path", ["/v1/policies", "/v1/decisions", "/v1/log/proofs/inclusion"])
def test_query_parameters_are_described(path: str) -> None:
    assert document()["paths"][path]["get"]["parameters"]
