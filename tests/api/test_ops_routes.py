"""Liveness and readiness probes."""

from __future__ import annotations

from ledger.store import Store
from ledger.writer import Writer
from tests.api.conftest import Client, problem_of


async def test_healthz_says_ok(client: Client) -> None:
    response = await client.get("/healthz")
    assert (response.status, await response.json()) == (200, {"status": "ok"})


async def test_readyz_says_ready_with_database_and_writer(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "database": "ok", "writer": "running"}


async def test_readyz_is_a_503_problem_once_the_writer_stopped(client: Client, writer: Writer) -> None:
    await writer.close()
    response = await client.get("/readyz")
    problem = await problem_of(response, 503)
    assert "writer" in problem["detail"]
    assert response.headers["Retry-After"] == "1"


async def test_readyz_is_a_503_problem_when_the_database_does_not_answer(
    client: Client, writer: Writer, store: Store
) -> None:
    await writer.close()
    await store.close()
    problem = await problem_of(await client.get("/readyz"), 503)
    assert "database" in problem["detail"]
