"""The rules for policies: issue once; amend, review and lift only an active policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import schemas
from ledger.errors import InvalidInput, NotFound, RuleViolation, SchemaViolation, VersionConflict
from ledger.policy import (
    AmendPolicy,
    Command,
    IssuePolicy,
    LiftPolicy,
    NewEvent,
    ReviewPolicy,
    decide_policy,
    required_role,
)
from ledger.seed import Actor, Step, record
from ledger.states import PolicyState, fold_policy

NOW = datetime(2025, 2, 7, 10, tzinfo=UTC)
P = "POL-2023-TIKTOK"


def policy_after(*commands: Command) -> PolicyState | None:
    return fold_policy(record(Step(c, Actor("tester", required_role(c)), NOW) for c in commands))


def issued() -> PolicyState | None:
    return policy_after(IssuePolicy(P, schemas.example("policy.issued/1")))


def lifted() -> PolicyState | None:
    return policy_after(IssuePolicy(P, schemas.example("policy.issued/1")), LiftPolicy(P, _lift()))


def _lift() -> dict[str, Any]:
    return {"reason": "Re-assessed.", "effective_at": "2025-03-01T00:00:00Z"}


def test_issue_records_policy_issued_on_the_policy_stream() -> None:
    data = schemas.example("policy.issued/1")
    events = decide_policy(None, IssuePolicy(P, data))
    assert events == (NewEvent(f"policy/{P}", "policy.issued", "policy.issued/1", data, 1),)


def test_a_policy_id_is_issued_once() -> None:
    with pytest.raises(RuleViolation, match=f"policy {P} was already issued; a policy id is issued once"):
        decide_policy(issued(), IssuePolicy(P, schemas.example("policy.issued/1")))


def test_a_policy_due_for_review_before_it_takes_effect_is_refused() -> None:
    data = {**schemas.example("policy.issued/1"), "review_due": "2023-03-16T00:00:00Z"}
    message = f"policy {P} must be reviewed after it takes effect: review_due 2023-03-16T00:00:00Z is not after"
    with pytest.raises(RuleViolation, match=message):
        decide_policy(None, IssuePolicy(P, data))


def test_issue_with_malformed_data_is_a_schema_violation_naming_the_field() -> None:
    data = schemas.example("policy.issued/1")
    del data["decision_ref"]
    with pytest.raises(SchemaViolation) as raised:
        decide_policy(None, IssuePolicy(P, data))
    assert raised.value.pointer == "/decision_ref"


def test_a_policy_id_must_be_plain_letters_digits_and_dashes() -> None:
    with pytest.raises(InvalidInput, match="policy id 'a/b' must be"):
        decide_policy(None, IssuePolicy("a/b", schemas.example("policy.issued/1")))


def test_amend_records_policy_amended_as_the_next_version() -> None:
    data = schemas.example("policy.amended/1")
    events = decide_policy(issued(), AmendPolicy(P, data))
    assert events == (NewEvent(f"policy/{P}", "policy.amended", "policy.amended/1", data, 2),)


def test_amend_must_change_something() -> None:
    with pytest.raises(SchemaViolation, match="at least one of: applies_to, rationale, review_due"):
        decide_policy(issued(), AmendPolicy(P, {"reason": "Nothing."}))


def test_review_records_its_outcome() -> None:
    data = schemas.example("policy.reviewed/1")
    (event,) = decide_policy(issued(), ReviewPolicy(P, data))
    assert (event.type, event.data["outcome"]) == ("policy.reviewed", "no-change")


def test_lift_records_policy_lifted() -> None:
    (event,) = decide_policy(issued(), LiftPolicy(P, _lift()))
    assert (event.type, event.data) == ("policy.lifted", _lift())


@pytest.mark.parametrize(
    ("command", "refusal"),
    [
        (AmendPolicy(P, {"rationale": "New.", "reason": "Why."}), "cannot be amended"),
        (ReviewPolicy(P, {"outcome": "no-change", "summary": "s", "reviewed_at": "2025-04-01T00:00:00Z"}),
         "cannot be reviewed"),
        (LiftPolicy(P, {"reason": "Again.", "effective_at": "2025-04-01T00:00:00Z"}),
         "cannot be lifted, except by a lift that takes effect earlier"),
    ],
    ids=["amend", "review", "lift-later"],
)  # fmt: skip
def test_a_lifted_policy_cannot_be_changed(command: AmendPolicy | ReviewPolicy | LiftPolicy, refusal: str) -> None:
    message = f"policy {P} is lifted from 2025-03-01; lifted policies {refusal}"
    with pytest.raises(RuleViolation, match=message):
        decide_policy(lifted(), command)


def test_a_lift_scheduled_for_later_can_be_brought_forward() -> None:
    earlier = LiftPolicy(P, {"reason": "Sooner.", "effective_at": "2025-02-20T00:00:00Z"})
    (event,) = decide_policy(lifted(), earlier)
    assert (event.type, event.data["effective_at"]) == ("policy.lifted", "2025-02-20T00:00:00Z")


@pytest.mark.parametrize("command", [AmendPolicy(P, {"rationale": "x", "reason": "y"}), LiftPolicy(P, _lift())])
def test_changing_a_policy_never_issued_is_not_found(command: AmendPolicy | LiftPolicy) -> None:
    with pytest.raises(NotFound, match=f"no policy {P} has been issued"):
        decide_policy(None, command)


def test_a_stale_expected_version_is_a_conflict() -> None:
    with pytest.raises(VersionConflict, match=f"policy/{P} is at version 1, not 0"):
        decide_policy(issued(), LiftPolicy(P, _lift(), expected_version=0))


def test_the_current_expected_version_is_accepted() -> None:
    (event,) = decide_policy(issued(), LiftPolicy(P, _lift(), expected_version=1))
    assert event.version == 2


def test_issuing_expects_version_zero() -> None:
    with pytest.raises(VersionConflict):
        decide_policy(None, IssuePolicy(P, schemas.example("policy.issued/1"), expected_version=3))


def test_decide_copies_the_data_it_records() -> None:
    data = schemas.example("policy.issued/1")
    (event,) = decide_policy(None, IssuePolicy(P, data))
    data["app"]["name"] = "Changed"
    assert event.data["app"]["name"] == "TikTok"


def test_policy_commands_need_a_policy_officer() -> None:
    assert required_role(IssuePolicy(P, {})) == "policy-officer"
