"""The seed story recorded through the service, asked from the stored projections, on both backends.

The writer records each step at the story's own time, so ``as_of`` a date asks the
ledger as it stood on that date.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ledger.auditing import audit_store
from ledger.projections import Basis, Decision
from ledger.seed import POLICY_ID, RESEARCH_ID, UKGOV_ID, story
from ledger.signing import Signer
from ledger.states import exemption_stream
from ledger.verify import TrustedKey
from ledger.versions import FOREVER
from tests.domain.commands import at
from tests.domain.conftest import Ledger

BAN = Basis(f"policy/{POLICY_ID}", (0, 4))
UKGOV = exemption_stream(UKGOV_ID)


@pytest.fixture
async def told(ledger: Ledger) -> Ledger:
    for step in story():
        ledger.clock.now = step.at
        await ledger.service.execute(step.command, step.actor.id, step.actor.role)
    return ledger


async def tiktok(ledger: Ledger, organisation: str, device: str, account: str | None, **when: Any) -> Decision:
    return await ledger.service.decide(app="TikTok", organisation=organisation, device=device, account=account, **when)


async def ukgov_handset(ledger: Ledger, **when: Any) -> Decision:
    return await tiktok(ledger, "cabinet-office", "CO-GCS-TT-001", "ukgov", **when)


async def test_an_ordinary_government_device_is_prohibited_citing_the_ban(told: Ledger) -> None:
    decision = await tiktok(told, "hm-treasury", "HMT-MOB-0042", None, at=at("2025-03-01"))
    assert (decision.verdict, decision.basis) == ("prohibited", (BAN,))


async def test_the_accounts_designated_device_is_allowed_citing_the_exemption(told: Ledger) -> None:
    decision = await ukgov_handset(told, at=at("2025-03-01"))
    assert (decision.verdict, decision.basis) == ("allowed", (BAN, Basis(UKGOV, (3, 5))))
    assert "the device is one of its covered devices" in decision.reasons[0]


async def test_the_account_on_an_ordinary_office_phone_is_prohibited(told: Ledger) -> None:
    decision = await tiktok(told, "cabinet-office", "CO-MOB-1234", "ukgov", at=at("2025-03-01"))
    assert (decision.verdict, decision.basis) == ("prohibited", (BAN,))


async def test_as_of_a_time_before_the_grant_the_handset_was_prohibited(told: Ledger) -> None:
    decision = await ukgov_handset(told, as_of="2025-02-02T00:00:00Z")
    assert (decision.verdict, decision.basis) == ("prohibited", (Basis(f"policy/{POLICY_ID}", (0,)),))


async def test_as_of_a_seq_before_the_renewal_the_exemption_was_to_lapse_in_august(told: Ledger) -> None:
    assert (await ukgov_handset(told, as_of=4, at=at("2025-09-01"))).verdict == "prohibited"
    assert (await ukgov_handset(told, at=at("2025-09-01"))).verdict == "allowed"


async def test_as_of_a_seq_answers_as_of_the_time_that_seq_was_recorded_whenever_asked(told: Ledger) -> None:
    renewal = (await told.service.history(UKGOV))[-1]
    by_time = await ukgov_handset(told, as_of=renewal["recorded_at"])
    assert await ukgov_handset(told, as_of=renewal["seq"]) == by_time
    told.clock.now = at("2030-01-01")  # long after the exemption expired
    assert await ukgov_handset(told, as_of=renewal["seq"]) == by_time
    assert by_time.verdict == "allowed"


async def test_after_the_renewed_expiry_the_handset_is_prohibited(told: Ledger) -> None:
    assert (await ukgov_handset(told, at=at("2026-02-03"))).verdict == "prohibited"
    assert (await told.service.exemption(UKGOV_ID, at=at("2026-02-03"))).status == "expired"


@pytest.mark.parametrize(("when", "verdict"), [("2024-06-01", "allowed"), ("2024-12-01", "prohibited")])
async def test_the_research_handset_was_allowed_until_its_exemption_was_revoked(
    told: Ledger, when: str, verdict: str
) -> None:
    decision = await tiktok(told, "dsit", "DSIT-OSR-TT-001", "dsit-research", at=at(when))
    assert decision.verdict == verdict


async def test_the_review_found_no_changes_to_the_security_policy(told: Ledger) -> None:
    summary = await told.service.policy(POLICY_ID, at=at("2025-03-01"))
    assert (summary.last_review, summary.active_exemptions) == ("no-change", 1)
    assert [e.exemption_id for e in await told.service.exemptions(policy_id=POLICY_ID)] == [RESEARCH_ID, UKGOV_ID]


async def test_the_public_view_shows_digests_where_the_mitigations_are(told: Ledger) -> None:
    public = (await told.service.history(UKGOV))[0]["data"]
    audited = (await told.service.history(UKGOV, role="auditor"))[0]["data"]
    assert set(public["mitigations"]) == {"_sd"}
    assert audited["mitigations"][0] == "A dedicated handset used only for the ukgov account."
    assert {k: v for k, v in public.items() if k not in ("mitigations", "devices")} == {
        k: v for k, v in audited.items() if k not in ("mitigations", "devices")
    }


async def test_erasing_the_covered_devices_leaves_the_log_verifying_and_shows_them_erased(
    told: Ledger, signer: Signer
) -> None:
    digest = (await told.service.history(UKGOV))[0]["data"]["devices"]["_sd"]
    assert await told.store.erase_disclosure(digest)
    await audit_store(told.store, signer.name, [TrustedKey(signer.verifier)], workers=1)
    for role in ("auditor", None):
        assert (await told.service.history(UKGOV, role=role))[0]["data"]["devices"] == {"_sd": digest, "erased": True}
    decision = await ukgov_handset(told, at=at("2025-03-01"))
    assert decision.verdict == "prohibited"  # no device can be matched to the exemption any more
    assert f"the covered devices of exemption {UKGOV_ID} were erased from the ledger" in decision.reasons[0]


async def test_a_decision_reads_the_covered_devices_with_the_versions_until_they_are_erased(told: Ledger) -> None:
    digest = (await told.service.history(UKGOV))[0]["data"]["devices"]["_sd"]
    ask = {"app": "TikTok", "organisation": "cabinet-office", "account": "ukgov"}
    versions, disclosed = await told.store.decision_versions(FOREVER, **ask)
    assert [v.devices_sd for v in versions.exemptions] == [digest]
    assert disclosed == await told.store.disclosures([digest])
    await told.store.erase_disclosure(digest)
    assert (await told.store.decision_versions(FOREVER, **ask))[1] == {}


async def test_decisions_asked_together_are_answered_as_each_asked_alone(told: Ledger) -> None:
    asked = [
        {"app": app, "organisation": organisation, "account": account}
        for app in ("TikTok", "WeChat")
        for organisation in ("cabinet-office", "dsit")
        for account in ("ukgov", "dsit-research", None)
    ]
    alone = [await told.store.decision_versions(FOREVER, **ask) for ask in asked]
    together = await asyncio.gather(*(told.store.decision_versions(FOREVER, **ask) for ask in asked))
    assert together == alone
    assert any(versions.exemptions for versions, _ in together)
