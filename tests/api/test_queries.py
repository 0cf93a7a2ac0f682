"""Reading policy state and decisions over HTTP, now and as the ledger stood before."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.demo import record_story
from ledger.events import Recorded
from ledger.signing import Signer
from ledger.store import Store
from ledger.tokens import TokenRecord, hash_token, new_token
from tests.api.conftest import Client, problem_of

DURING_GRANT = "2025-06-01T00:00:00Z"


@pytest.fixture
async def story(store: Store, signer: Signer) -> list[Recorded]:
    return await record_story(store, signer, echo=lambda line: None)


@pytest.fixture
async def auditor(store: Store) -> dict[str, str]:
    secret, token_id = new_token()
    await store.add_token(TokenRecord(token_id, "nao", "auditor", hash_token(secret), created_at=""))
    return {"Authorization": f"Bearer {secret}"}


async def decision(client: Client, headers: dict[str, str], **query: str) -> Any:
    params = {"app": "TikTok", "organisation": "cabinet-office", "at": DURING_GRANT} | query
    response = await client.get("/v1/decisions", params=params, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def grant_seq(story: list[Recorded]) -> int:
    return next(e.seq for e in story if e.stream == "exemption/EX-2025-UKGOV")


async def test_an_ordinary_device_is_prohibited_citing_the_ban(
    client: Client, story: list[Recorded], auditor: dict[str, str]
) -> None:
    found = await decision(client, auditor, device="CO-LAPTOP-1234", account="someone")
    assert found["verdict"] == "prohibited"
    assert [b["stream"] for b in found["basis"]] == ["policy/POL-2023-TIKTOK"]


async def test_the_accounts_designated_device_is_allowed_citing_the_exemption(
    client: Client, story: list[Recorded], auditor: dict[str, str]
) -> None:
    found = await decision(client, auditor, device="CO-GCS-TT-001", account="ukgov")
    assert found["verdict"] == "allowed"
    assert "exemption/EX-2025-UKGOV" in [b["stream"] for b in found["basis"]]


@pytest.mark.parametrize(("device", "verdict"), [("CO-MOB-1234", "prohibited"), ("CO-GCS-TT-001", "allowed")])
async def test_a_decision_is_the_same_whoever_asks_though_only_auditors_read_the_covered_devices(
    client: Client, story: list[Recorded], tokens: dict[str, dict[str, str]], device: str, verdict: str
) -> None:
    service = await decision(client, tokens["service"], device=device, account="ukgov")
    assert service == await decision(client, tokens["auditor"], device=device, account="ukgov")
    assert service["verdict"] == verdict


async def test_an_anonymous_decision_is_401_since_it_would_tell_which_devices_an_exemption_covers(
    client: Client, story: list[Recorded]
) -> None:
    params = {"app": "TikTok", "organisation": "cabinet-office", "device": "CO-GCS-TT-001", "account": "ukgov"}
    problem = await problem_of(await client.get("/v1/decisions", params=params), 401)
    assert "decisions need a bearer token of any role" in problem["detail"]
    assert "the public view withholds the covered devices" in problem["detail"]


async def test_as_of_a_seq_before_the_grant_the_device_was_prohibited(
    client: Client, story: list[Recorded], auditor: dict[str, str]
) -> None:
    before = str(grant_seq(story) - 1)
    found = await decision(client, auditor, device="CO-GCS-TT-001", account="ukgov", as_of=before)
    assert found["verdict"] == "prohibited"


async def test_after_expiry_the_device_is_prohibited_again(
    client: Client, story: list[Recorded], auditor: dict[str, str]
) -> None:
    found = await decision(client, auditor, device="CO-GCS-TT-001", account="ukgov", at="2026-03-01T00:00:00Z")
    assert found["verdict"] == "prohibited"


async def history(client: Client, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = await client.get("/v1/exemptions/EX-2025-UKGOV/history", headers=headers or {})
    assert response.status == 200, await response.text()
    events: list[dict[str, Any]] = (await response.json())["events"]
    return events


async def test_the_public_history_shows_digests_where_the_mitigations_are(
    client: Client, story: list[Recorded]
) -> None:
    granted = (await history(client))[0]
    assert granted["type"] == "exemption.granted"
    assert set(granted["data"]["mitigations"]) == {"_sd"}


async def test_an_auditor_reads_the_mitigations_in_clear(
    client: Client, story: list[Recorded], auditor: dict[str, str]
) -> None:
    granted = (await history(client, auditor))[0]
    assert "A dedicated handset used only for the ukgov account." in granted["data"]["mitigations"]


async def test_the_policy_history_lists_its_events_in_order(client: Client, story: list[Recorded]) -> None:
    events = (await (await client.get("/v1/policies/POL-2023-TIKTOK/history")).json())["events"]
    assert [e["type"] for e in events] == ["policy.issued", "policy.reviewed"]


async def test_policies_are_listed_a_page_at_a_time(client: Client, story: list[Recorded]) -> None:
    body = await (await client.get("/v1/policies", params={"limit": "1"})).json()
    assert [p["policy_id"] for p in body["policies"]] == ["POL-2023-TIKTOK"]
    assert body["next"] is None


async def test_exemptions_under_a_policy_carry_their_status_at_a_time(client: Client, story: list[Recorded]) -> None:
    response = await client.get(
        "/v1/exemptions", params={"policy_id": "POL-2023-TIKTOK", "at": DURING_GRANT, "limit": "1"}
    )
    body = await response.json()
    assert len(body["exemptions"]) == 1
    assert body["next"] == body["exemptions"][0]["exemption_id"]
    second = await client.get(
        "/v1/exemptions", params={"policy_id": "POL-2023-TIKTOK", "at": DURING_GRANT, "cursor": body["next"]}
    )
    statuses = {e["exemption_id"]: e["status"] for e in body["exemptions"] + (await second.json())["exemptions"]}
    assert statuses == {"EX-2024-DSIT-RESEARCH": "revoked", "EX-2025-UKGOV": "active"}


async def test_a_decision_without_app_or_organisation_is_400(client: Client, auditor: dict[str, str]) -> None:
    problem = await problem_of(await client.get("/v1/decisions", params={"app": "TikTok"}, headers=auditor), 400)
    assert "organisation" in problem["detail"]


@pytest.mark.parametrize("name", ["app", "organisation", "device", "account", "device_class"])
async def test_a_decision_asked_with_spaces_around_a_name_is_400_not_a_miss(
    client: Client, auditor: dict[str, str], name: str
) -> None:
    params = {"app": "TikTok", "organisation": "cabinet-office", "device": "D-1", "account": "a", "device_class": "c"}
    response = await client.get("/v1/decisions", params={**params, name: f"{params[name]} "}, headers=auditor)
    problem = await problem_of(response, 400)
    assert f"query parameter '{name}' has spaces at its start or end" in problem["detail"]


async def test_a_misspelt_query_parameter_is_400_naming_those_the_route_takes(client: Client) -> None:
    problem = await problem_of(await client.get("/v1/exemptions", params={"policy": "POL-2023-TIKTOK"}), 400)
    assert problem["detail"] == (
        "GET /v1/exemptions has no query parameter 'policy'; it takes as_of, at, cursor, limit, policy_id"
    )


async def test_a_query_parameter_on_a_route_that_takes_none_is_400(client: Client) -> None:
    problem = await problem_of(await client.get("/v1/log/checkpoint", params={"format": "json"}), 400)
    assert problem["detail"] == "GET /v1/log/checkpoint has no query parameter 'format'; it takes none"


async def test_an_unknown_policy_is_404(client: Client) -> None:
    await problem_of(await client.get("/v1/policies/POL-NONE"), 404)


@pytest.mark.parametrize(
    ("as_of", "said"),
    [("yesterday", "as_of"), ("\u0663", "as_of"), ("9" * 5000, "beyond any log")],
    ids=["not-a-time", "digits-other-than-ascii", "seq-too-long-for-any-log"],
)
async def test_a_bad_as_of_is_400(client: Client, as_of: str, said: str) -> None:
    problem = await problem_of(await client.get("/v1/policies", params={"as_of": as_of}), 400)
    assert said in problem["detail"]


@pytest.mark.parametrize("path", ["/v1/policies/POL%00X", "/v1/decisions?app=Tik%00Tok&organisation=o&account=a"])
async def test_a_nul_character_in_the_url_is_400(client: Client, auditor: dict[str, str], path: str) -> None:
    problem = await problem_of(await client.get(path, headers=auditor), 400)
    assert "U+0000" in problem["detail"]
