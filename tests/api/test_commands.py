"""Recording decisions over HTTP: roles, rules, schemas, If-Match and Idempotency-Key."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ledger import schemas
from ledger.events import Claim
from ledger.policy import IssuePolicy
from ledger.service import LedgerService
from ledger.store import Store
from ledger.tokens import hash_token
from ledger.writer import Writer
from tests.api.conftest import Client, problem_of

POLICY = "POL-2023-TIKTOK"


def example(name: str, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(dict(schemas.example(name)))
    return data | changes


async def issue(client: Client, tokens: dict[str, dict[str, str]], **headers: str) -> Any:
    body = {"id": POLICY, "data": example("policy.issued/1")}
    return await client.post("/v1/policies", json=body, headers=tokens["policy-officer"] | headers)


async def test_a_policy_officer_issues_a_policy_and_gets_the_recorded_event(
    client: Client, tokens: dict[str, dict[str, str]]
) -> None:
    response = await issue(client, tokens)
    body = await response.json()
    assert response.status == 201
    assert (body["seq"], body["version"], body["event"]["type"]) == (0, 1, "policy.issued")
    assert response.headers["Location"] == f"/v1/policies/{POLICY}"
    assert response.headers["ETag"] == '"1"'
    assert body["event"]["actor"] == {"id": "policy-officer-1", "role": "policy-officer"}


async def test_without_a_token_a_command_is_401_and_writes_nothing(client: Client, store: Store) -> None:
    response = await client.post("/v1/policies", json={"id": POLICY, "data": example("policy.issued/1")})
    await problem_of(response, 401)
    assert await store.log_size() == 0


async def test_a_security_officer_may_not_issue_a_policy(
    client: Client, tokens: dict[str, dict[str, str]], store: Store
) -> None:
    body = {"id": POLICY, "data": example("policy.issued/1")}
    await problem_of(await client.post("/v1/policies", json=body, headers=tokens["security-officer"]), 403)
    assert await store.log_size() == 0


async def test_a_broken_rule_is_409_with_the_rule_in_words(client: Client, tokens: dict[str, dict[str, str]]) -> None:
    await issue(client, tokens)
    problem = await problem_of(await issue(client, tokens), 409)
    assert POLICY in problem["detail"]


async def test_data_against_the_schema_is_422_with_a_pointer(
    client: Client, tokens: dict[str, dict[str, str]], store: Store
) -> None:
    data = example("policy.issued/1")
    del data["authority"]
    body = {"id": POLICY, "data": data}
    problem = await problem_of(await client.post("/v1/policies", json=body, headers=tokens["policy-officer"]), 422)
    assert "authority" in problem["detail"]
    assert "pointer" in problem
    assert await store.log_size() == 0


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [("rationale", "", "/rationale"), ("review_due", "9999-12-31T23:59:59-01:00", "/review_due")],
    ids=["empty-text", "time-beyond-9999"],
)
async def test_every_kind_of_bad_data_is_422_not_a_crash(
    client: Client, tokens: dict[str, dict[str, str]], store: Store, field: str, value: str, pointer: str
) -> None:
    body = {"id": POLICY, "data": {**example("policy.issued/1"), field: value}}
    problem = await problem_of(await client.post("/v1/policies", json=body, headers=tokens["policy-officer"]), 422)
    assert problem["pointer"] == pointer
    assert await store.log_size() == 0


@pytest.mark.parametrize(
    ("raw", "fix"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"id": "P", "dta": {}}', "unknown member"),
        (b'{"id": "P", "data": {"n": ' + b"9" * 5000 + b"}}", "integer of 5000 digits"),
        (b'{"id": "P", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
        (b'{"id": "P", "data": ' + b"[" * 950 + b'"\\u0000"' + b"]" * 950 + b"}", "nested too deeply"),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "unknown-member",
        "integer-too-long-to-read",
        "nested-too-deeply",
        "nested-deeply-with-an-escape",
    ],
)
async def test_a_malformed_body_is_400_saying_what_to_fix(
    client: Client, tokens: dict[str, dict[str, str]], raw: bytes, fix: str
) -> None:
    response = await client.post("/v1/policies", data=raw, headers=tokens["policy-officer"])
    assert fix in (await problem_of(response, 400))["detail"]


@pytest.mark.parametrize(
    ("raw", "pointer"),
    [
        (b'{"id": "\\ud800", "data": {}}', "/id"),
        (b'{"id": "P", "data": {"app": {"name": "Tik\\udc00Tok"}}}', "/data/app/name"),
        (b'{"id": "P", "data": {"\\ud83d": 1}}', "/data/\ud83d"),
    ],
    ids=["in-a-value", "deep-in-data", "in-a-member-name"],
)
async def test_a_lone_surrogate_escape_is_400_naming_where_it_is(
    client: Client, tokens: dict[str, dict[str, str]], store: Store, raw: bytes, pointer: str
) -> None:
    problem = await problem_of(await client.post("/v1/policies", data=raw, headers=tokens["policy-officer"]), 400)
    assert "lone surrogate" in problem["detail"]
    assert problem["pointer"] == pointer
    assert await store.log_size() == 0


async def test_a_nul_character_in_the_data_is_400_naming_where_it_is(
    client: Client, tokens: dict[str, dict[str, str]], store: Store
) -> None:
    body = {"id": POLICY, "data": example("policy.issued/1", app={"name": "Tik\x00Tok", "vendor": "ByteDance"})}
    problem = await problem_of(await client.post("/v1/policies", json=body, headers=tokens["policy-officer"]), 400)
    assert "U+0000" in problem["detail"]
    assert problem["pointer"] == "/data/app/name"
    assert await store.log_size() == 0


async def test_a_stale_if_match_is_412(client: Client, tokens: dict[str, dict[str, str]], store: Store) -> None:
    await issue(client, tokens)
    body = {"data": example("policy.reviewed/1")}
    headers = tokens["policy-officer"] | {"If-Match": '"0"'}
    await problem_of(await client.post(f"/v1/policies/{POLICY}/reviews", json=body, headers=headers), 412)
    assert await store.log_size() == 1


async def test_an_if_match_in_other_digits_than_ascii_is_400(
    client: Client, tokens: dict[str, dict[str, str]], store: Store
) -> None:
    await issue(client, tokens)
    body = {"data": example("policy.reviewed/1")}
    headers = tokens["policy-officer"] | {"If-Match": '"\u0661"'}  # ARABIC-INDIC DIGIT ONE
    problem = await problem_of(await client.post(f"/v1/policies/{POLICY}/reviews", json=body, headers=headers), 400)
    assert "If-Match must be the stream version" in problem["detail"]
    assert await store.log_size() == 1


async def test_an_if_match_too_long_for_any_version_is_400(client: Client, tokens: dict[str, dict[str, str]]) -> None:
    await issue(client, tokens)
    body = {"data": example("policy.reviewed/1")}
    headers = tokens["policy-officer"] | {"If-Match": '"' + "9" * 5000 + '"'}
    problem = await problem_of(await client.post(f"/v1/policies/{POLICY}/reviews", json=body, headers=headers), 400)
    assert "If-Match must be the stream version" in problem["detail"]


async def test_a_current_if_match_is_accepted(client: Client, tokens: dict[str, dict[str, str]]) -> None:
    await issue(client, tokens)
    body = {"data": example("policy.reviewed/1")}
    headers = tokens["policy-officer"] | {"If-Match": '"1"'}
    response = await client.post(f"/v1/policies/{POLICY}/reviews", json=body, headers=headers)
    assert response.status == 201, await response.text()


async def test_a_retry_with_the_same_idempotency_key_returns_the_same_event(
    client: Client, tokens: dict[str, dict[str, str]], store: Store
) -> None:
    first = await issue(client, tokens, **{"Idempotency-Key": "k-1"})
    again = await issue(client, tokens, **{"Idempotency-Key": "k-1"})
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await again.json())["seq"] == (await first.json())["seq"]
    assert await store.log_size() == 1


async def test_requests_sent_together_with_one_idempotency_key_record_one_event(
    client: Client, tokens: dict[str, dict[str, str]], store: Store
) -> None:
    answers = await asyncio.gather(*(issue(client, tokens, **{"Idempotency-Key": "k-1"}) for _ in range(8)))
    assert [a.status for a in answers] == [201] * 8
    assert {(await a.json())["seq"] for a in answers} == {0}
    assert [a.headers.get("Idempotent-Replayed") for a in answers].count(None) == 1
    assert await store.log_size() == 1


async def test_an_idempotency_key_reused_with_another_body_is_422(
    client: Client, tokens: dict[str, dict[str, str]]
) -> None:
    await issue(client, tokens, **{"Idempotency-Key": "k-1"})
    body = {"data": example("policy.reviewed/1")}
    headers = tokens["policy-officer"] | {"Idempotency-Key": "k-1"}
    response = await client.post(f"/v1/policies/{POLICY}/reviews", json=body, headers=headers)
    assert "different request" in (await problem_of(response, 422))["detail"]


async def test_an_idempotency_key_reused_with_another_query_is_422(
    client: Client, tokens: dict[str, dict[str, str]]
) -> None:
    await issue(client, tokens, **{"Idempotency-Key": "k-1"})
    body = {"id": POLICY, "data": example("policy.issued/1")}
    headers = tokens["policy-officer"] | {"Idempotency-Key": "k-1"}
    response = await client.post("/v1/policies?proof=1", json=body, headers=headers)  # would want a receipt
    assert "different request" in (await problem_of(response, 422))["detail"]


async def test_a_refused_command_does_not_use_up_its_idempotency_key(
    client: Client, tokens: dict[str, dict[str, str]]
) -> None:
    body = {"data": example("policy.reviewed/1")}
    headers = tokens["policy-officer"] | {"Idempotency-Key": "k-2"}
    await problem_of(await client.post(f"/v1/policies/{POLICY}/reviews", json=body, headers=headers), 404)
    await issue(client, tokens)
    response = await client.post(f"/v1/policies/{POLICY}/reviews", json=body, headers=headers)
    assert response.status == 201


async def keyed_issue(tokens: dict[str, dict[str, str]], store: Store, key: str) -> tuple[bytes, dict[str, str], Claim]:
    """The body and headers of a policy issue sent with Idempotency-Key ``key``, and the
    claim the service makes of it (the key, scoped to the token, with the request's hash)."""
    raw = json.dumps({"id": POLICY, "data": example("policy.issued/1")}).encode()
    headers = tokens["policy-officer"] | {"Idempotency-Key": key, "Content-Type": "application/json"}
    token = await store.find_token(hash_token(headers["Authorization"].removeprefix("Bearer ")))
    assert token is not None
    return raw, headers, Claim(token.id, key, hashlib.sha256(b"POST\n/v1/policies\n" + raw).hexdigest())


async def test_a_retry_after_a_crash_between_commit_and_answer_replays_the_recorded_event(
    client: Client, tokens: dict[str, dict[str, str]], store: Store, writer: Writer
) -> None:
    raw, headers, claim = await keyed_issue(tokens, store, "k-crash")
    # What the first request did before the process died: record the event, settling the key.
    service = LedgerService(store, writer)
    first = await service.execute(IssuePolicy(POLICY, example("policy.issued/1")), "policy-officer-1",
                                  "policy-officer", claim)  # fmt: skip
    retry = await client.post("/v1/policies", data=raw, headers=headers)
    assert retry.status == 201, await retry.text()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert (await retry.json())["seq"] == first[-1].seq
    assert await store.log_size() == 1


async def test_a_retry_gets_the_answer_an_earlier_version_stored_for_its_key(
    client: Client, tokens: dict[str, dict[str, str]], store: Store, tmp_path: Path
) -> None:
    raw, headers, claim = await keyed_issue(tokens, store, "k-old")
    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.db")) as db, db:  # as an earlier version kept it
        db.execute("INSERT INTO idempotency (scope, key, request_hash, status, body) VALUES (?, ?, ?, 201, ?)",
                   (claim.scope, claim.key, claim.request_hash, b'{"seq": 41}'))  # fmt: skip
    retry = await client.post("/v1/policies", data=raw, headers=headers)
    assert retry.status == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await retry.json() == {"seq": 41}
    assert await store.log_size() == 0
