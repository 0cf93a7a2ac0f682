"""The reference read models: statuses at a time, access decisions, and folding the log."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError, NotFound, VerificationError
from ledger.policy import (
    AmendExemption,
    AmendPolicy,
    Command,
    GrantExemption,
    IssuePolicy,
    LiftPolicy,
    RenewExemption,
    ReviewPolicy,
    RevokeExemption,
    required_role,
)
from ledger.projections import (
    EMPTY,
    Basis,
    LedgerView,
    apply,
    as_of_seq,
    as_of_time,
    decide_access,
    exemption,
    exemptions,
    fold,
    policies,
    policy,
)
from ledger.schemas import parse_time
from ledger.seed import Actor, Step, record, record_step
from ledger.sensitive import seal


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)


def log(*steps: tuple[Command, str]) -> tuple[dict[str, Any], ...]:
    return record(Step(c, Actor("tester", required_role(c)), utc(at)) for c, at in steps)


def ban(app: str = "TikTok", organisations: tuple[str, ...] = ("*",), **scope: Any) -> dict[str, Any]:
    return {
        "app": {"name": app, "vendor": "ByteDance Ltd."}, "applies_to": {"organisations": list(organisations), **scope},
        "rationale": "Security risk.", "authority": "Cabinet Office", "decision_ref": "CO-1",
        "effective_from": "2023-03-16T00:00:00Z",
    }  # fmt: skip


def grant(account: str = "ukgov", organisation: str = "cabinet-office", **changes: Any) -> dict[str, Any]:
    return {
        "grantee": {"organisation": organisation, "unit": "GCS", "account": account}, "purpose": "Public messages.",
        "devices": ["CO-GCS-TT-001"], "mitigations": ["Dedicated handset."], "approved_by": "CO Security",
        "case_ref": "CO-DST-1", "valid_from": "2025-02-03T00:00:00Z", "expires_at": "2025-08-03T00:00:00Z",
        **changes,
    }  # fmt: skip


def lift(effective_at: str) -> dict[str, str]:
    return {"reason": "Re-assessed.", "effective_at": effective_at}


P, E = "POL-1", "EX-1"
ISSUE = (IssuePolicy(P, ban()), "2023-03-16")
GRANT = (GrantExemption(E, P, grant()), "2025-02-03")
STORY = (ISSUE, GRANT)


def ask(view: LedgerView, at: str, **request: Any) -> Any:
    question = {"app": "TikTok", "organisation": "cabinet-office", "device": "CO-GCS-TT-001", "account": "ukgov"}
    return decide_access(view, at=utc(at), **{**question, **request})


# -- statuses at a time ---------------------------------------------------------------


@pytest.mark.parametrize(("at", "status"), [("2023-03-15", "not-yet-effective"), ("2023-03-16", "active")])
def test_a_policy_takes_effect_at_its_effective_from(at: str, status: str) -> None:
    assert policy(fold(log(ISSUE)), P, utc(at)).status == status


@pytest.mark.parametrize(("at", "status"), [("2025-05-31", "active"), ("2025-06-01", "lifted")])
def test_a_policy_is_lifted_from_the_lifts_effective_time(at: str, status: str) -> None:
    view = fold(log(ISSUE, (LiftPolicy(P, lift("2025-06-01T00:00:00Z")), "2025-05-01")))
    assert policy(view, P, utc(at)).status == status


@pytest.mark.parametrize(
    ("at", "status"),
    [("2025-02-02", "not-yet-valid"), ("2025-02-03", "active"), ("2025-08-02", "active"), ("2025-08-03", "expired")],
)
def test_an_exemption_is_valid_from_its_start_and_expires_without_an_event(at: str, status: str) -> None:
    assert exemption(fold(log(*STORY)), E, utc(at)).status == status


@pytest.mark.parametrize(("at", "status"), [("2025-03-31", "active"), ("2025-04-01", "revoked")])
def test_an_exemption_is_revoked_from_the_revocations_effective_time(at: str, status: str) -> None:
    revoke = (RevokeExemption(E, {"reason": "Done.", "effective_at": "2025-04-01T00:00:00Z"}), "2025-03-01")
    assert exemption(fold(log(*STORY, revoke)), E, utc(at)).status == status


def test_an_exemption_is_moot_once_its_policy_is_lifted() -> None:
    view = fold(log(*STORY, (LiftPolicy(P, lift("2025-04-01T00:00:00Z")), "2025-03-01")))
    assert exemption(view, E, utc("2025-04-01")).status == "moot"


def test_the_first_ending_decides_the_status() -> None:
    late_revoke = (RevokeExemption(E, {"reason": "Tidy-up.", "effective_at": "2025-09-01T00:00:00Z"}), "2025-03-01")
    view = fold(log(*STORY, late_revoke))
    assert exemption(view, E, utc("2025-10-01")).status == "expired"


def test_a_policy_counts_its_exemptions_active_at_the_time() -> None:
    second = (GrantExemption("EX-2", P, grant(account="dsit", valid_from="2025-03-01T00:00:00Z")), "2025-03-01")
    view = fold(log(*STORY, second))
    counts = [policy(view, P, utc(at)).active_exemptions for at in ("2025-01-01", "2025-02-10", "2025-03-10")]
    assert counts == [0, 1, 2]


def test_exemptions_can_be_listed_under_one_policy() -> None:
    other = (IssuePolicy("POL-2", ban(app="WeChat")), "2023-04-01")
    view = fold(log(*STORY, other, (GrantExemption("EX-2", "POL-2", grant()), "2025-02-03")))
    assert [e.exemption_id for e in exemptions(view, utc("2025-03-01"), policy_id="POL-2")] == ["EX-2"]
    assert [p.policy_id for p in policies(view, utc("2025-03-01"))] == [P, "POL-2"]


def test_an_unknown_policy_or_exemption_is_not_found() -> None:
    with pytest.raises(NotFound):
        policy(EMPTY, P, utc("2025-01-01"))
    with pytest.raises(NotFound):
        exemption(EMPTY, E, utc("2025-01-01"))


# -- decisions ------------------------------------------------------------------------


def test_an_app_no_policy_restricts_is_allowed_with_no_basis() -> None:
    decision = ask(fold(log(ISSUE)), "2025-03-01", app="WeChat")
    assert (decision.allowed, decision.verdict, decision.basis) == (True, "no-policy", ())


def test_a_banned_app_is_prohibited_citing_the_policy_events() -> None:
    decision = ask(fold(log(ISSUE, (ReviewPolicy(P, no_change()), "2025-02-11"))), "2025-03-01")
    assert (decision.allowed, decision.verdict) == (False, "prohibited")
    assert decision.basis == (Basis(f"policy/{P}", (0, 1)),)
    assert f"banned for cabinet-office by policy {P}" in decision.reasons[0]


def test_a_policy_does_not_restrict_before_it_takes_effect_and_the_answer_cites_it() -> None:
    decision = ask(fold(log(ISSUE)), "2023-03-15")
    assert (decision.verdict, decision.basis) == ("no-policy", (Basis(f"policy/{P}", (0,)),))
    assert decision.reasons[1] == f"policy {P} bans TikTok only from 2023-03-16T00:00:00Z"


def test_after_a_lift_the_app_is_allowed_citing_the_lift() -> None:
    view = fold(log(ISSUE, (LiftPolicy(P, lift("2025-06-01T00:00:00Z")), "2025-05-01")))
    decision = ask(view, "2025-06-01")
    assert (decision.verdict, decision.basis) == ("no-policy", (Basis(f"policy/{P}", (0, 1)),))
    assert decision.reasons[1] == f"policy {P}, which banned TikTok, is lifted from 2025-06-01T00:00:00Z"


def test_a_policy_naming_organisations_applies_only_to_them() -> None:
    view = fold(log((IssuePolicy(P, ban(organisations=("dsit",))), "2023-03-16")))
    assert [ask(view, "2024-01-01", organisation=o).verdict for o in ("dsit", "cabinet-office")] == [
        "prohibited",
        "no-policy",
    ]


def test_a_policy_naming_device_classes_applies_only_to_them_and_to_unknown_classes() -> None:
    view = fold(log((IssuePolicy(P, ban(device_classes=["corporate-mobile"])), "2023-03-16")))
    verdicts = [ask(view, "2024-01-01", device_class=c).verdict for c in ("corporate-mobile", "kiosk", None)]
    assert verdicts == ["prohibited", "no-policy", "prohibited"]


def test_names_match_case_insensitively() -> None:
    view = fold(log(*STORY))
    decision = ask(view, "2025-03-01", app="TIKTOK", organisation="Cabinet-Office", account="UKGov")
    assert decision.verdict == "allowed"


def test_an_active_exemption_allows_its_account_on_its_device_citing_policy_and_exemption() -> None:
    decision = ask(fold(log(*STORY)), "2025-03-01")
    assert (decision.allowed, decision.verdict) == (True, "allowed")
    assert decision.basis == (Basis(f"policy/{P}", (0,)), Basis(f"exemption/{E}", (1,)))


@pytest.mark.parametrize(
    "request_",
    [
        {"account": "another-account"},
        {"account": None},
        {"device": "CO-LAPTOP-0042"},
        {"device": None},
        {"organisation": "hm-treasury"},
    ],
)
def test_an_exemption_covers_only_its_account_devices_and_organisation(request_: dict[str, Any]) -> None:
    assert ask(fold(log(*STORY)), "2025-03-01", **request_).verdict == "prohibited"


@pytest.mark.parametrize("device", ["ANY-DEVICE", None])
def test_covered_devices_that_are_not_disclosed_cover_no_device_and_the_reason_says_so(device: str | None) -> None:
    events = list(log(*STORY))
    events[1] = {**events[1], "data": seal("exemption.granted/1", events[1]["data"])[0]}
    decision = ask(fold(events), "2025-03-01", device=device)
    assert decision.verdict == "prohibited"
    assert "the covered devices of exemption EX-1 were erased from the ledger, so it covers none" in decision.reasons[0]


def test_every_policy_banning_the_app_must_be_covered() -> None:
    second = (IssuePolicy("POL-2", ban()), "2023-04-01")
    decision = ask(fold(log(*STORY, second)), "2025-03-01")
    assert (decision.verdict, decision.basis) == ("prohibited", (Basis("policy/POL-2", (2,)),))


# -- folding the log ------------------------------------------------------------------


def test_applying_events_one_at_a_time_equals_folding_them() -> None:
    events = log(*STORY)
    assert apply(apply(EMPTY, events[0]), events[1]) == fold(events)


def test_the_fold_refuses_a_gap_in_seqs() -> None:
    events = log(*STORY)
    with pytest.raises(VerificationError, match="seq 1: the projection expected seq 0 next"):
        fold(events[1:])


def test_events_of_other_streams_only_advance_the_position() -> None:
    view = fold(log(ISSUE))
    other = {"seq": 1, "stream": "key/log", "version": 1, "type": "key.rotated", "recorded_at": "2024-01-01T00:00:00Z"}
    assert apply(view, other) == LedgerView(view.policies, view.exemptions, 2, utc("2024-01-01"))


def test_as_of_a_seq_answers_as_the_ledger_stood_then() -> None:
    events = log(*STORY)
    assert ask(as_of_seq(events, 0), "2025-03-01").verdict == "prohibited"
    assert ask(as_of_seq(events, 1), "2025-03-01").verdict == "allowed"
    assert as_of_seq(events, -1) == EMPTY


def test_as_of_a_time_folds_what_was_recorded_by_then() -> None:
    events = log(*STORY)
    assert as_of_time(events, utc("2025-02-02")) == fold(events[:1])
    assert as_of_time(events, utc("2025-02-03")) == fold(events)


def no_change() -> dict[str, str]:
    return {"outcome": "no-change", "summary": "No changes.", "reviewed_at": "2025-02-11T00:00:00Z"}


# -- property: the fold does not care how the log is cut --------------------------------

BASE = datetime(2025, 1, 1, tzinfo=UTC)
POLICY_IDS, EXEMPTION_IDS = st.sampled_from(["P1", "P2"]), st.sampled_from(["E1", "E2", "E3"])
DAYS, LATER_DAYS = st.integers(0, 40), st.integers(10, 60)


def _day(n: int) -> str:
    return (BASE + timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _grant(exemption_id: str, policy_id: str, account: str, start: int, days: int) -> GrantExemption:
    data = grant(account=account, organisation="org-a", valid_from=_day(start), expires_at=_day(start + days))
    return GrantExemption(exemption_id, policy_id, data)


def _review(policy_id: str, day: int) -> ReviewPolicy:
    return ReviewPolicy(policy_id, {"outcome": "no-change", "summary": "s", "reviewed_at": _day(day)})


POLICY_COMMANDS = st.one_of(
    st.builds(lambda p, o: IssuePolicy(p, ban(organisations=o)), POLICY_IDS, st.sampled_from([("*",), ("org-a",)])),
    st.builds(lambda p: AmendPolicy(p, {"applies_to": {"organisations": ["org-b"]}, "reason": "r"}), POLICY_IDS),
    st.builds(_review, POLICY_IDS, DAYS),
    st.builds(lambda p, d: LiftPolicy(p, lift(_day(d))), POLICY_IDS, DAYS),
)
GRANTS = st.builds(_grant, EXEMPTION_IDS, POLICY_IDS, st.sampled_from(["acct-1", "acct-2"]), DAYS, st.integers(1, 40))
EXEMPTION_CHANGES = st.one_of(
    st.builds(lambda e: AmendExemption(e, {"devices": ["CO-GCS-TT-002"], "reason": "r"}), EXEMPTION_IDS),
    st.builds(lambda e, d: RenewExemption(e, {"expires_at": _day(d), "reason": "r"}), EXEMPTION_IDS, LATER_DAYS),
    st.builds(lambda e, d: RevokeExemption(e, {"reason": "r", "effective_at": _day(d)}), EXEMPTION_IDS, DAYS),
)
COMMANDS: st.SearchStrategy[Command] = st.one_of(POLICY_COMMANDS, GRANTS, *[EXEMPTION_CHANGES] * 3)


def _accepted(commands: list[Command]) -> list[dict[str, Any]]:
    """The events of the commands the rules accept, one a day, after an opening of two policies and a grant."""
    events: list[dict[str, Any]] = []
    opening: list[Command] = [IssuePolicy("P1", ban()), IssuePolicy("P2", ban(organisations=("org-a",)))]
    opening.append(_grant("E1", "P1", "acct-1", 0, 30))
    for day, command in enumerate([*opening, *commands]):
        with contextlib.suppress(LedgerError):
            events += record_step(events, Step(command, Actor("t", required_role(command)), BASE + timedelta(days=day)))
    return events


@settings(max_examples=150, deadline=None)
@given(st.lists(COMMANDS, max_size=30), st.integers(0, 30))
def test_folding_in_two_halves_equals_folding_at_once(commands: list[Command], cut: int) -> None:
    events = _accepted(commands)
    cut = min(cut, len(events))
    assert fold(events[cut:], fold(events[:cut])) == fold(events)


@settings(max_examples=100, deadline=None)
@given(st.lists(COMMANDS, max_size=25), st.sampled_from(["acct-1", "acct-2"]), DAYS)
def test_every_prefix_answers_as_the_fold_of_that_prefix(commands: list[Command], account: str, day: int) -> None:
    events, view = _accepted(commands), EMPTY
    for i, event in enumerate(events):
        view = apply(view, event)
        prefix = fold(events[: i + 1])
        assert view == prefix == as_of_seq(events, i) == as_of_time(events, parse_time(event["recorded_at"]))
        assert ask(view, _day(day), organisation="org-a", account=account) == ask(
            prefix, _day(day), organisation="org-a", account=account
        )
