"""An application on a SQLite log in a temporary file, with a running writer, and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.problems import PROBLEM_JSON
from ledger.config import Config
from ledger.events import Draft, Recorded
from ledger.projector import VersionProjector
from ledger.signing import Signer
from ledger.store import Store
from ledger.tokens import TokenRecord, hash_token, new_token
from ledger.writer import Writer
from tests.backends import sqlite_backend

Client = TestClient[web.Request, web.Application]

OFFICER = {"id": "officer-1", "role": "policy-officer"}


def noted(n: int) -> Draft:
    data = {"app": {"name": "TikTok", "vendor": "ByteDance"}, "rationale": f"Ban number {n}"}
    return Draft(f"note/n-{n}", "note.recorded", data, OFFICER)  # a log event outside the policy domain


async def problem_of(response: ClientResponse, status: int) -> dict[str, Any]:
    """The problem+json body of ``response``, after checking its status and shape."""
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM_JSON
    body: dict[str, Any] = await response.json(content_type=PROBLEM_JSON)
    assert body["status"] == status
    assert body["type"]
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in await response.text()
    return body


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """SQLite only: the HTTP layer is the same over either backend (the store suite covers both)."""
    async with sqlite_backend(tmp_path) as backend:
        yield backend.store


@pytest.fixture
def config(signer: Signer, tmp_path: Path) -> Config:
    return Config(database_url=f"sqlite:///{tmp_path}/ledger.db", origin=signer.name,
                  signing_key_file=tmp_path / "log.key")  # fmt: skip


@pytest.fixture
async def writer(store: Store, signer: Signer) -> AsyncIterator[Writer]:
    """The service's writer: it keeps the stored projections up to date as it appends."""
    writer = Writer(store, signer, projectors=[VersionProjector()])
    await writer.start()
    yield writer
    await writer.close()


@pytest.fixture
def app(config: Config, store: Store, writer: Writer) -> web.Application:
    return create_app(config, store=store, writer=writer)


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def tokens(store: Store) -> dict[str, dict[str, str]]:
    """An Authorization header per role."""
    headers = {}
    for role in ["policy-officer", "security-officer", "auditor", "service"]:
        secret, token_id = new_token()
        await store.add_token(TokenRecord(token_id, f"{role}-1", role, hash_token(secret), created_at=""))
        headers[role] = {"Authorization": f"Bearer {secret}"}
    return headers


@pytest.fixture
async def appended(writer: Writer) -> list[Recorded]:
    """Five events, appended one at a time: checkpoints of sizes 1 to 5 are stored."""
    return [await writer.append(noted(n)) for n in range(5)]
