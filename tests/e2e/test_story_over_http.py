"""The story, recorded over real HTTP by the roles that own each decision, on each backend.

The dates are moved to today (the service judges commands at the wall clock): a ban,
an exemption for the government's official account with mitigations, a no-change
review, a renewal, and another exemption revoked. Then what a reader of the story asks.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ledger import schemas
from tests.e2e.conftest import _free_port, environment, start

pytestmark = pytest.mark.slow
POLICY, UKGOV, RESEARCH = "POL-TIKTOK", "EX-UKGOV", "EX-RESEARCH"


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).strftime("%Y-%m-%dT00:00:00Z")


def data(name: str, **changes: Any) -> dict[str, Any]:
    return dict(copy.deepcopy(schemas.example(name))) | changes


def grant(account: str, device: str, case: str) -> dict[str, Any]:
    grantee = {"organisation": "cabinet-office", "unit": "Government Communication Service", "account": account}
    return data("exemption.granted/1", policy_id=POLICY, grantee=grantee, devices=[device], case_ref=case,
                valid_from=day(-30), expires_at=day(60))  # fmt: skip


async def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ledger", *args], env=env, cwd=cwd,
                                   capture_output=True, text=True, timeout=120)  # fmt: skip


async def test_the_story_over_http(tmp_path: Path, database_url: str) -> None:
    env = environment(tmp_path, database_url, _free_port())
    tokens = {}
    for role in ("policy-officer", "security-officer", "auditor"):
        made = await cli(env, tmp_path, "tokens", "create", "--role", role, "--name", role)
        tokens[role] = {"Authorization": f"Bearer {made.stdout.strip()}"}
    server = start(env, tmp_path, "story")
    try:
        async with aiohttp.ClientSession(base_url=server.url) as http:
            await record(http, tokens)
            await ask(http, tokens)
            vkey = await answer_foi(http, tokens, tmp_path)
        verified = await cli(env, tmp_path, "verify", "--url", server.url)
        assert verified.returncode == 0, verified.stderr
        for option, name in (
            ("--bundle", "public.json.gz"),
            ("--bundle", "full.json.gz"),
            ("--receipt", "receipt.json"),
        ):
            checked = await cli(env, tmp_path, "verify", option, name, "--key", vkey)
            assert checked.returncode == 0, f"{name}: {checked.stderr}"
            assert checked.stdout.startswith("VERIFIED")
    finally:
        assert server.stop() == 0


async def post(http: aiohttp.ClientSession, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    async with http.post(path, json=body, headers=headers) as response:
        assert response.status == 201, f"{path}: {await response.text()}"
        return await response.json()


async def record(http: aiohttp.ClientSession, tokens: dict[str, dict[str, str]]) -> None:
    officer, security = tokens["policy-officer"], tokens["security-officer"]
    ban = data("policy.issued/1", effective_from=day(-400), review_due=day(300))
    await post(http, "/v1/policies", {"id": POLICY, "data": ban}, officer)
    async with http.post("/v1/policies", json={"id": "POL-X", "data": ban}, headers=security) as refused:
        assert refused.status == 403  # a security team does not issue bans
    await post(
        http,
        f"/v1/policies/{POLICY}/exemptions",
        {"id": RESEARCH, "data": grant("dsit-research", "DSIT-R-1", "DSIT-1")},
        security,
    )
    await post(
        http,
        f"/v1/policies/{POLICY}/exemptions",
        {"id": UKGOV, "data": grant("ukgov", "CO-GCS-TT-001", "CO-42")},
        security,
    )
    review = data("policy.reviewed/1", reviewed_at=day(0), next_review_due=day(365))
    await post(http, f"/v1/policies/{POLICY}/reviews", {"data": review}, officer)
    await post(
        http, f"/v1/exemptions/{UKGOV}/renewals", {"data": data("exemption.renewed/1", expires_at=day(240))}, security
    )
    await post(
        http, f"/v1/exemptions/{RESEARCH}/revoke", {"data": data("exemption.revoked/1", effective_at=day(-1))}, security
    )


async def decision(http: aiohttp.ClientSession, headers: dict[str, str], **query: str) -> Any:
    params = {"app": "TikTok", "organisation": "cabinet-office"} | query
    async with http.get("/v1/decisions", params=params, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def ask(http: aiohttp.ClientSession, tokens: dict[str, dict[str, str]]) -> None:
    auditor = tokens["auditor"]
    async with http.get("/v1/decisions", params={"app": "TikTok", "organisation": "cabinet-office"}) as anonymous:
        assert anonymous.status == 401  # an answer would tell which devices an exemption covers
    ordinary = await decision(http, auditor, device="CO-LAPTOP-7", account="someone")
    assert ordinary["verdict"] == "prohibited"
    designated = await decision(http, auditor, device="CO-GCS-TT-001", account="ukgov")
    assert designated["verdict"] == "allowed"
    assert f"exemption/{UKGOV}" in [b["stream"] for b in designated["basis"]]
    assert (await decision(http, auditor, device="CO-GCS-TT-001", account="ukgov", at=day(300)))[
        "verdict"
    ] == "prohibited"
    assert (await decision(http, auditor, device="DSIT-R-1", account="dsit-research"))["verdict"] == "prohibited"
    async with http.get(f"/v1/exemptions/{UKGOV}/history") as response:
        public = (await response.json())["events"][0]["data"]
    assert set(public["mitigations"]) == {"_sd"}
    async with http.get("/v1/policies/POL-TIKTOK/history") as response:
        assert [e["data"].get("outcome") for e in (await response.json())["events"]] == [None, "no-change"]


async def answer_foi(http: aiohttp.ClientSession, tokens: dict[str, dict[str, str]], folder: Path) -> str:
    """The auditor exports the ban twice; a security team keeps a receipt; returns the log's key."""
    for name, release in (("public.json.gz", []), ("full.json.gz", ["national-security", "personal-data"])):
        body = {"selection": {"policy": POLICY}, "release": release}
        async with http.post("/v1/exports", json=body, headers=tokens["auditor"]) as response:
            assert response.status == 200, await response.text()
            (folder / name).write_bytes(await response.read())
    async with http.post("/v1/exports", json={"selection": {"log": True}}, headers=tokens["security-officer"]) as no:
        assert no.status == 403
    renewal = data("exemption.renewed/1", expires_at=day(250))
    kept = await post(http, f"/v1/exemptions/{UKGOV}/renewals?proof=1", {"data": renewal}, tokens["security-officer"])
    (folder / "receipt.json").write_text(json.dumps(kept["receipt"]))
    async with http.get("/v1/log/keys") as response:
        return str((await response.json())["keys"][0]["vkey"])
