"""Bearer tokens: anonymous is the public view; a bad token is 401; a wrong role is 403."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.auth import require
from api.keys import PRINCIPAL
from ledger.store import Store
from ledger.tokens import TokenRecord, hash_token, new_token
from tests.api.conftest import Client, problem_of


async def officers_only(request: web.Request) -> web.Response:
    principal = require(request, "policy-officer")
    return web.json_response({"name": principal.name, "role": principal.role})


async def who(request: web.Request) -> web.Response:
    return web.json_response({"anonymous": request[PRINCIPAL].anonymous})


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[Client]:
    app.router.add_post("/test/officers", officers_only)
    app.router.add_get("/test/who", who)
    async with TestClient(TestServer(app)) as client:
        yield client


async def token(store: Store, role: str, name: str = "holder") -> str:
    secret, token_id = new_token()
    await store.add_token(TokenRecord(token_id, name, role, hash_token(secret), created_at=""))
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_no_token_is_the_anonymous_public(client: Client) -> None:
    assert await (await client.get("/test/who")).json() == {"anonymous": True}


async def test_a_role_action_without_a_token_is_401(client: Client) -> None:
    problem = await problem_of(await client.post("/test/officers"), 401)
    assert "policy-officer" in problem["detail"]


async def test_an_unknown_token_is_401_even_where_anonymous_may_read(client: Client) -> None:
    problem = await problem_of(await client.get("/test/who", headers=bearer("plt_nope")), 401)
    assert "unknown or revoked" in problem["detail"]


async def test_a_malformed_authorization_header_is_401(client: Client) -> None:
    problem = await problem_of(await client.get("/test/who", headers={"Authorization": "Basic abc"}), 401)
    assert "Bearer <token>" in problem["detail"]


async def test_a_token_that_is_not_even_text_is_401(client: Client) -> None:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"GET /test/who HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b"unknown or revoked" in answer


async def test_the_right_role_is_let_through(client: Client, store: Store) -> None:
    secret = await token(store, "policy-officer", "alice")
    response = await client.post("/test/officers", headers=bearer(secret))
    assert await response.json() == {"name": "alice", "role": "policy-officer"}


async def test_admin_may_not_act_in_an_officers_place(client: Client, store: Store) -> None:
    response = await client.post("/test/officers", headers=bearer(await token(store, "admin")))
    await problem_of(response, 403)


async def test_a_wrong_role_is_403(client: Client, store: Store) -> None:
    response = await client.post("/test/officers", headers=bearer(await token(store, "security-officer")))
    problem = await problem_of(response, 403)
    assert "role security-officer may not do this" in problem["detail"]


async def test_a_revoked_token_is_401(client: Client, store: Store) -> None:
    secret = await token(store, "policy-officer")
    found = await store.find_token(hash_token(secret))
    assert found is not None
    await store.revoke_token(found.id)
    await problem_of(await client.post("/test/officers", headers=bearer(secret)), 401)
