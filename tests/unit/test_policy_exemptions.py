"""The rules for exemptions: granted under an active policy with mitigations, a team, a case
reference and a real validity window; amended, renewed or revoked only while live."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import schemas
from ledger.errors import LedgerError, NotFound, RuleViolation, SchemaViolation, VersionConflict
from ledger.policy import (
    AmendExemption,
    Command,
    GrantExemption,
    IssuePolicy,
    LiftPolicy,
    NewEvent,
    RenewExemption,
    RevokeExemption,
    decide_exemption,
    required_role,
)
from ledger.seed import Actor, Step, record
from ledger.states import ExemptionState, PolicyState, fold_exemption, fold_policy

NOW = datetime(2025, 2, 7, 10, tzinfo=UTC)
AFTER_EXPIRY = datetime(2025, 8, 3, tzinfo=UTC)  # the example grant expires at 2025-08-03T00:00:00Z
P, E = "POL-2023-TIKTOK", "EX-2025-UKGOV"


def states(*commands: Command) -> tuple[PolicyState | None, ExemptionState | None]:
    events = record(Step(c, Actor("tester", required_role(c)), NOW) for c in commands)
    policy = fold_policy(e for e in events if e["stream"] == f"policy/{P}")
    return policy, fold_exemption(e for e in events if e["stream"] == f"exemption/{E}")


def grant_data(**changes: Any) -> dict[str, Any]:
    data = schemas.example("exemption.granted/1")
    del data["policy_id"]
    return {**data, **changes}


ISSUE = IssuePolicy(P, schemas.example("policy.issued/1"))
LIFT = LiftPolicy(P, {"reason": "Re-assessed.", "effective_at": "2025-03-01T00:00:00Z"})
GRANT = GrantExemption(E, P, grant_data())


def revoke(effective_at: str) -> RevokeExemption:
    return RevokeExemption(E, {"reason": "No longer needed.", "effective_at": effective_at})


REVOKE = revoke("2025-04-01T00:00:00Z")
RENEW = RenewExemption(E, schemas.example("exemption.renewed/1"))
AMEND = AmendExemption(E, schemas.example("exemption.amended/1"))


def test_grant_records_exemption_granted_naming_its_policy() -> None:
    policy, _ = states(ISSUE)
    events = decide_exemption(policy, None, GRANT, NOW)
    data = {**grant_data(), "policy_id": P}
    assert events == (NewEvent(f"exemption/{E}", "exemption.granted", "exemption.granted/1", data, 1),)


def test_grant_under_a_policy_never_issued_is_not_found() -> None:
    with pytest.raises(NotFound, match=f"no policy {P} has been issued"):
        decide_exemption(None, None, GRANT, NOW)


def test_grant_for_an_organisation_the_policy_does_not_cover_is_refused() -> None:
    issued = schemas.example("policy.issued/1")
    policy, _ = states(IssuePolicy(P, {**issued, "applies_to": {"organisations": ["dsit", "hm-treasury"]}}))
    other = grant_data(grantee={"organisation": "cabinet-office", "unit": "GCS", "account": "ukgov"})
    message = f"policy {P} applies only to dsit, hm-treasury; it bans nothing for cabinet-office"
    with pytest.raises(RuleViolation, match=message):
        decide_exemption(policy, None, GrantExemption(E, P, other), NOW)
    covered = grant_data(grantee={"organisation": "DSIT", "unit": "OSR", "account": "research"})
    assert decide_exemption(policy, None, GrantExemption(E, P, covered), NOW)[0].type == "exemption.granted"


def test_grant_under_a_lifted_policy_is_refused() -> None:
    policy, _ = states(ISSUE, LIFT)
    message = f"policy {P} is lifted from 2025-03-01; lifted policies cannot be granted exemptions"
    with pytest.raises(RuleViolation, match=message):
        decide_exemption(policy, None, GRANT, NOW)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mitigations": []}, "an exemption needs at least one security mitigation"),
        ({"approved_by": ""}, r"an exemption needs the security team that approved it \(approved_by\)"),
        ({"case_ref": ""}, r"an exemption needs the security team's case reference \(case_ref\)"),
    ],
)
def test_grant_needs_mitigations_an_approving_team_and_a_case_reference(changes: dict[str, Any], message: str) -> None:
    policy, _ = states(ISSUE)
    with pytest.raises(RuleViolation, match=message):
        decide_exemption(policy, None, GrantExemption(E, P, grant_data(**changes)), NOW)


def test_grant_without_mitigations_at_all_is_refused() -> None:
    policy, _ = states(ISSUE)
    data = grant_data()
    del data["mitigations"]
    with pytest.raises(RuleViolation, match="at least one security mitigation"):
        decide_exemption(policy, None, GrantExemption(E, P, data), NOW)


def test_grant_must_expire_after_it_starts() -> None:
    policy, _ = states(ISSUE)
    command = GrantExemption(E, P, grant_data(expires_at="2025-02-03T00:00:00Z"))
    with pytest.raises(RuleViolation, match=f"exemption {E} must expire after it starts"):
        decide_exemption(policy, None, command, NOW)


def test_an_exemption_id_is_granted_once() -> None:
    policy, exemption = states(ISSUE, GRANT)
    with pytest.raises(RuleViolation, match=f"exemption {E} was already granted"):
        decide_exemption(policy, exemption, GRANT, NOW)


def test_grant_data_naming_another_policy_is_refused() -> None:
    policy, _ = states(ISSUE)
    with pytest.raises(SchemaViolation) as raised:
        decide_exemption(policy, None, GrantExemption(E, P, grant_data(policy_id="POL-OTHER")), NOW)
    assert raised.value.pointer == "/policy_id"


def test_amend_records_exemption_amended() -> None:
    policy, exemption = states(ISSUE, GRANT)
    (event,) = decide_exemption(policy, exemption, AMEND, NOW)
    assert (event.type, event.version, event.data) == ("exemption.amended", 2, AMEND.data)


def test_amend_cannot_remove_every_mitigation() -> None:
    policy, exemption = states(ISSUE, GRANT)
    command = AmendExemption(E, {"mitigations": [], "reason": "Cost."})
    with pytest.raises(RuleViolation, match="at least one security mitigation"):
        decide_exemption(policy, exemption, command, NOW)


def test_changing_an_exemption_never_granted_is_not_found() -> None:
    policy, _ = states(ISSUE)
    with pytest.raises(NotFound, match=f"no exemption {E} has been granted"):
        decide_exemption(policy, None, RENEW, NOW)


def test_renew_records_the_new_expiry() -> None:
    policy, exemption = states(ISSUE, GRANT)
    (event,) = decide_exemption(policy, exemption, RENEW, NOW)
    assert (event.type, event.data["expires_at"]) == ("exemption.renewed", "2026-02-03T00:00:00Z")


def test_a_renewal_must_extend_the_expiry() -> None:
    policy, exemption = states(ISSUE, GRANT)
    command = RenewExemption(E, {"expires_at": "2025-08-03T00:00:00Z", "reason": "Same."})
    message = f"a renewal must extend the expiry: exemption {E} already runs until 2025-08-03"
    with pytest.raises(RuleViolation, match=message):
        decide_exemption(policy, exemption, command, NOW)


def test_revoke_records_exemption_revoked() -> None:
    policy, exemption = states(ISSUE, GRANT)
    (event,) = decide_exemption(policy, exemption, REVOKE, NOW)
    assert (event.type, event.data) == ("exemption.revoked", REVOKE.data)


@pytest.mark.parametrize(
    ("command", "refusal"),
    [
        (AMEND, "cannot be amended"),
        (RENEW, "cannot be renewed"),
        (REVOKE, "cannot be revoked, except by a revocation that takes effect earlier"),
        (revoke("2025-05-01T00:00:00Z"), "cannot be revoked, except by a revocation that takes effect earlier"),
    ],
    ids=["amend", "renew", "revoke-again", "revoke-later"],
)
def test_a_revoked_exemption_cannot_be_changed(command: Command, refusal: str) -> None:
    policy, exemption = states(ISSUE, GRANT, REVOKE)  # recorded on 2025-02-07, to take effect on 2025-04-01
    message = f"exemption {E} is revoked from 2025-04-01; revoked exemptions {refusal}"
    with pytest.raises(RuleViolation, match=message):
        decide_exemption(policy, exemption, command, NOW)  # type: ignore[arg-type]


def test_a_revocation_scheduled_for_later_can_be_brought_forward() -> None:
    policy, exemption = states(ISSUE, GRANT, REVOKE)
    (event,) = decide_exemption(policy, exemption, revoke("2025-02-07T10:00:00Z"), NOW)
    assert (event.type, event.data["effective_at"]) == ("exemption.revoked", "2025-02-07T10:00:00Z")


def test_an_exemption_whose_policy_was_lifted_is_moot_and_cannot_be_renewed() -> None:
    policy, exemption = states(ISSUE, GRANT, LIFT)
    message = (
        f"exemption {E} is moot from 2025-03-01, when its policy {P} is lifted; moot exemptions cannot be renewed$"
    )
    with pytest.raises(RuleViolation, match=message):
        decide_exemption(policy, exemption, RENEW, NOW)


def test_an_exemption_can_be_revoked_before_its_policy_is_lifted_but_not_after() -> None:
    policy, exemption = states(ISSUE, GRANT, LIFT)  # the lift takes effect on 2025-03-01
    (event,) = decide_exemption(policy, exemption, revoke("2025-02-10T00:00:00Z"), NOW)
    assert event.type == "exemption.revoked"
    with pytest.raises(RuleViolation, match="cannot be revoked, except by a revocation before the lift"):
        decide_exemption(policy, exemption, revoke("2025-03-01T00:00:00Z"), NOW)


def test_an_expired_exemption_cannot_be_renewed() -> None:
    policy, exemption = states(ISSUE, GRANT)
    message = f"exemption {E} expired on 2025-08-03; expired exemptions cannot be renewed, grant a new exemption"
    with pytest.raises(RuleViolation, match=message):
        decide_exemption(policy, exemption, RENEW, AFTER_EXPIRY)


def test_an_exemption_not_yet_valid_can_be_revoked() -> None:
    policy, exemption = states(ISSUE, GRANT)
    (event,) = decide_exemption(policy, exemption, REVOKE, datetime(2025, 1, 1, tzinfo=UTC))
    assert event.type == "exemption.revoked"


def test_a_stale_expected_version_on_an_exemption_is_a_conflict() -> None:
    policy, exemption = states(ISSUE, GRANT, AMEND)
    command = RenewExemption(E, RENEW.data, expected_version=1)
    with pytest.raises(VersionConflict, match=f"exemption/{E} is at version 2, not 1"):
        decide_exemption(policy, exemption, command, NOW)


def test_exemption_rules_need_a_timezone_aware_now() -> None:
    policy, exemption = states(ISSUE, GRANT)
    with pytest.raises(LedgerError, match="timezone-aware"):
        decide_exemption(policy, exemption, RENEW, datetime(2025, 2, 7, 10))


def test_exemption_commands_need_a_security_officer() -> None:
    assert required_role(GRANT) == required_role(REVOKE) == "security-officer"
