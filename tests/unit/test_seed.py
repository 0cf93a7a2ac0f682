"""The story, recorded and asked: the claims of the article, checkable against the ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.policy import required_role
from ledger.projections import Basis, Decision, LedgerView, as_of_seq, decide_access, exemption, fold, policy
from ledger.schemas import validate
from ledger.seed import POLICY_ID, RESEARCH_ID, UKGOV_ID, record, story
from ledger.sensitive import seal

EVENTS = record(story())
LEDGER = fold(EVENTS)
BAN = f"policy/{POLICY_ID}"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def tiktok(view: LedgerView, at: str, organisation: str, device: str, account: str | None) -> Decision:
    return decide_access(view, app="TikTok", organisation=organisation, device=device, account=account, at=utc(at))


def ukgov_handset(at: str, view: LedgerView = LEDGER) -> Decision:
    return tiktok(view, at, "cabinet-office", "CO-GCS-TT-001", "ukgov")


def test_the_story_records_the_ban_the_exemptions_the_review_and_the_renewal() -> None:
    assert [(e["stream"], e["type"]) for e in EVENTS] == [
        (BAN, "policy.issued"),
        (f"exemption/{RESEARCH_ID}", "exemption.granted"),
        (f"exemption/{RESEARCH_ID}", "exemption.revoked"),
        (f"exemption/{UKGOV_ID}", "exemption.granted"),
        (BAN, "policy.reviewed"),
        (f"exemption/{UKGOV_ID}", "exemption.renewed"),
    ]


def test_each_step_is_sent_by_the_role_its_command_needs() -> None:
    assert all(step.actor.role == required_role(step.command) for step in story())


def test_every_recorded_event_matches_its_schema() -> None:
    for event in EVENTS:
        validate(event["schema"], event["data"])


def test_the_review_found_no_changes_to_the_security_policy() -> None:
    review = EVENTS[4]["data"]
    assert review["outcome"] == "no-change"
    assert "no changes to the security policy" in review["summary"]
    assert policy(LEDGER, POLICY_ID, utc("2025-02-12")).last_review == "no-change"


def test_an_ordinary_government_device_is_prohibited_citing_the_ban() -> None:
    decision = tiktok(LEDGER, "2025-02-12", "hm-treasury", "HMT-MOB-0042", None)
    assert (decision.allowed, decision.verdict) == (False, "prohibited")
    assert decision.basis == (Basis(BAN, (0, 4)),)


def test_the_accounts_designated_handset_is_allowed_citing_the_exemption() -> None:
    decision = ukgov_handset("2025-02-12")
    assert (decision.allowed, decision.verdict) == (True, "allowed")
    assert decision.basis == (Basis(BAN, (0, 4)), Basis(f"exemption/{UKGOV_ID}", (3, 5)))


def test_the_account_on_an_ordinary_office_phone_is_prohibited() -> None:
    assert tiktok(LEDGER, "2025-02-12", "cabinet-office", "CO-MOB-1234", "ukgov").verdict == "prohibited"


def test_before_the_grant_the_handset_was_prohibited() -> None:
    assert ukgov_handset("2025-02-02").verdict == "prohibited"


def test_after_the_renewed_expiry_the_handset_is_prohibited() -> None:
    assert ukgov_handset("2026-02-03").verdict == "prohibited"
    assert exemption(LEDGER, UKGOV_ID, utc("2026-02-03")).status == "expired"


def test_before_the_renewal_was_recorded_the_ledger_said_the_exemption_would_lapse_in_august() -> None:
    before_renewal = as_of_seq(EVENTS, 4)
    assert ukgov_handset("2025-09-01", before_renewal).verdict == "prohibited"
    assert ukgov_handset("2025-09-01").verdict == "allowed"


@pytest.mark.parametrize(("at", "verdict"), [("2024-06-01", "allowed"), ("2024-12-01", "prohibited")])
def test_the_research_handset_was_allowed_until_its_exemption_was_revoked(at: str, verdict: str) -> None:
    assert tiktok(LEDGER, at, "dsit", "DSIT-OSR-TT-001", "dsit-research").verdict == verdict


def test_in_the_public_view_the_exemption_says_its_covered_devices_are_withheld() -> None:
    public: list[dict[str, Any]] = [{**e, "data": seal(e["schema"], e["data"])[0]} for e in EVENTS]
    assert exemption(fold(public), UKGOV_ID, utc("2025-02-12")).devices_withheld
