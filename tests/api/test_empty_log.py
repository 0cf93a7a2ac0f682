"""A log with no events yet: nothing to prove, said as problems a verifier can act on."""

from __future__ import annotations

import pytest

from tests.api.conftest import Client, problem_of


async def test_checkpoint_is_a_404_problem(client: Client) -> None:
    problem = await problem_of(await client.get("/v1/log/checkpoint"), 404)
    assert "no checkpoint yet" in problem["detail"]


async def test_events_are_an_empty_page(client: Client) -> None:
    response = await client.get("/v1/log/events")
    assert await response.json() == {"events": [], "next": None}


async def test_event_0_is_a_404_problem(client: Client) -> None:
    problem = await problem_of(await client.get("/v1/log/events/0"), 404)
    assert "the log has 0 events" in problem["detail"]


@pytest.mark.parametrize("path", ["/v1/log/proofs/inclusion?seq=0", "/v1/log/proofs/consistency?from=1"])
async def test_proofs_against_the_latest_checkpoint_are_404_problems(client: Client, path: str) -> None:
    problem = await problem_of(await client.get(path), 404)
    assert "no checkpoint yet" in problem["detail"]


async def test_keys_publish_the_log_key_before_any_append(client: Client) -> None:
    keys = await (await client.get("/v1/log/keys")).json()
    assert [k["from_seq"] for k in keys["keys"]] == [0]
