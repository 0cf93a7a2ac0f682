"""Exports for auditors, and receipts for anyone, over HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger import schemas
from ledger.demo import record_story
from ledger.offline import parse_vkey, verify_bundle, verify_receipt
from ledger.seed import POLICY_ID
from ledger.signing import Signer
from ledger.store import Store
from tests.api.conftest import Client, problem_of
from tests.api.test_commands import issue

Tokens = dict[str, dict[str, str]]
POLICY_EXPORT = {"selection": {"policy": POLICY_ID}, "release": ["national-security"]}


@pytest.fixture
async def story(store: Store, signer: Signer) -> None:
    await record_story(store, signer, echo=lambda line: None)


async def export(client: Client, headers: dict[str, str], body: Any = POLICY_EXPORT) -> Any:
    return await client.post("/v1/exports", json=body, headers=headers)


async def test_an_auditor_gets_a_bundle_that_verifies_offline(
    client: Client,
    tokens: Tokens,
    story: None,
    signer: Signer,
) -> None:
    response = await export(client, tokens["auditor"])
    assert response.status == 200
    assert response.content_type == "application/gzip"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="policy-ledger-bundle-')
    assert response.headers["Content-Disposition"].endswith('.json.gz"')
    bundle = verify_bundle(await response.read(), parse_vkey(signer.verifier.vkey))
    assert bundle.manifest["exported_by"] == {"id": "auditor-1", "role": "auditor"}
    assert bundle.manifest["released"] == ["national-security"]


async def test_a_time_range_from_the_first_moment_exports_from_the_first_event(
    client: Client, tokens: Tokens, story: None, signer: Signer, store: Store
) -> None:
    body = {"selection": {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}}
    response = await export(client, tokens["auditor"], body)
    assert response.status == 200, await response.text()
    bundle = verify_bundle(await response.read(), parse_vkey(signer.verifier.vkey))
    assert len(bundle.entries) == await store.log_size()


@pytest.mark.parametrize("role", ["policy-officer", "security-officer", "service"])
async def test_other_roles_may_not_export(client: Client, tokens: Tokens, story: None, role: str) -> None:
    body = await problem_of(await export(client, tokens[role]), 403)
    assert "needs auditor" in body["detail"]


async def test_without_a_token_an_export_is_401(client: Client, story: None) -> None:
    await problem_of(await export(client, {}), 401)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"selection": {"policy": 7}}, "/selection"),
        ({"selection": {"from": "yesterday", "to": "2026-01-01T00:00:00Z"}}, "/selection/from"),
        ({"selection": {"log": True}, "release": ["everything"]}, "/release"),
        ({"selection": {"log": True}, "format": "pdf"}, "/format"),
        ([1, 2], ""),
    ],
)
async def test_a_malformed_export_request_is_400_with_a_pointer(
    client: Client,
    tokens: Tokens,
    story: None,
    body: Any,
    pointer: str,
) -> None:
    problem = await problem_of(await export(client, tokens["auditor"], body), 400)
    assert problem["pointer"] == pointer


async def test_exporting_an_unknown_policy_is_404(client: Client, tokens: Tokens, story: None) -> None:
    await problem_of(await export(client, tokens["auditor"], {"selection": {"policy": "POL-NONE"}}), 404)


async def test_an_event_with_proof_1_is_a_receipt_that_verifies(client: Client, story: None, signer: Signer) -> None:
    response = await client.get("/v1/log/events/3?proof=1")
    assert response.status == 200
    receipt = verify_receipt(await response.read(), parse_vkey(signer.verifier.vkey))
    assert receipt.entry.event["type"] == "exemption.granted"


async def test_a_receipt_keeps_the_event_shape_of_the_log_api(client: Client, story: None) -> None:
    plain = await (await client.get("/v1/log/events/3")).json()
    receipt = await (await client.get("/v1/log/events/3?proof=true")).json()
    assert {k: receipt[k] for k in plain} == plain


async def test_proof_must_be_yes_or_no(client: Client, story: None) -> None:
    problem = await problem_of(await client.get("/v1/log/events/3?proof=maybe"), 400)
    assert "'proof' must be 1 or true, 0 or false" in problem["detail"]


async def test_a_command_with_proof_1_answers_with_its_receipt(
    client: Client,
    tokens: Tokens,
    signer: Signer,
) -> None:
    response = await client.post(
        "/v1/policies?proof=1",
        json={"id": "POL-RECEIPT", "data": json.loads(json.dumps(_policy()))},
        headers=tokens["policy-officer"],
    )
    body = await response.json()
    assert response.status == 201
    receipt = verify_receipt(json.dumps(body["receipt"]).encode(), parse_vkey(signer.verifier.vkey))
    assert receipt.entry.seq == body["seq"]


async def test_a_command_without_proof_has_no_receipt(client: Client, tokens: Tokens) -> None:
    assert "receipt" not in await (await issue(client, tokens)).json()


def _policy() -> dict[str, Any]:
    return dict(schemas.example("policy.issued/1"))
