"""Every rule through the service, on both backends: the allowed path records the right
events; the broken path is refused with its message and writes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ledger.errors import (
    Forbidden,
    InvalidInput,
    LedgerError,
    NotFound,
    RuleViolation,
    Unavailable,
    VersionConflict,
)
from ledger.events import Recorded, decode_leaf
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
    decide_policy,
    required_role,
)
from ledger.projector import NAME
from ledger.service import ATTEMPTS, Decided, LedgerService, _draft
from ledger.states import policy_stream
from tests.domain.commands import at, ban, grant, lift, renew, review, revoke
from tests.domain.conftest import Ledger

P, E = "POL-1", "EX-1"
ISSUE = IssuePolicy(P, ban())
GRANT = GrantExemption(E, P, grant())
CHANGE_REASON = {"reason": "Scope narrowed."}


async def run(ledger: Ledger, *commands: Command) -> list[Recorded]:
    recorded: list[Recorded] = []
    for command in commands:
        recorded += await ledger.service.execute(command, "tester", required_role(command))
    return recorded


async def refused(
    ledger: Ledger, command: Command, error: type[LedgerError], match: str, role: str | None = None
) -> None:
    """``command`` raises ``error`` matching ``match``; neither the log nor the projections move."""
    size, position = await ledger.store.log_size(), await ledger.store.projection_position(NAME)
    with pytest.raises(error, match=match):
        await ledger.service.execute(command, "tester", role or required_role(command))
    assert (await ledger.store.log_size(), await ledger.store.projection_position(NAME)) == (size, position)


def kinds(recorded: list[Recorded]) -> list[tuple[str, str, int]]:
    return [(r.stream, str(r.event["type"]), r.version) for r in recorded]


# -- policies -----------------------------------------------------------------------------


async def test_issuing_a_policy_records_policy_issued(ledger: Ledger) -> None:
    assert kinds(await run(ledger, ISSUE)) == [(f"policy/{P}", "policy.issued", 1)]


async def test_a_policy_id_is_issued_once(ledger: Ledger) -> None:
    await run(ledger, ISSUE)
    await refused(ledger, IssuePolicy(P, ban(app="WeChat")), RuleViolation, f"policy {P} was already issued")


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        (AmendPolicy(P, {"applies_to": {"organisations": ["dsit"]}, **CHANGE_REASON}), "policy.amended"),
        (ReviewPolicy(P, review()), "policy.reviewed"),
        (LiftPolicy(P, lift()), "policy.lifted"),
    ],
)
async def test_an_active_policy_can_be_amended_reviewed_and_lifted(ledger: Ledger, command: Command, kind: str) -> None:
    await run(ledger, ISSUE)
    assert kinds(await run(ledger, command)) == [(f"policy/{P}", kind, 2)]


@pytest.mark.parametrize(
    ("command", "verb"),
    [
        (AmendPolicy(P, CHANGE_REASON), "amended"),
        (ReviewPolicy(P, review()), "reviewed"),
        (LiftPolicy(P, lift()), "lifted"),
    ],
)
async def test_a_lifted_policy_cannot_be_changed(ledger: Ledger, command: Command, verb: str) -> None:
    await run(ledger, ISSUE, LiftPolicy(P, lift()))
    await refused(
        ledger, command, RuleViolation, f"policy {P} is lifted from 2025-06-01; lifted policies cannot be {verb}"
    )


async def test_a_lift_scheduled_for_later_can_be_brought_forward_and_takes_effect_then(ledger: Ledger) -> None:
    await run(ledger, ISSUE, LiftPolicy(P, lift("2025-06-01T00:00:00Z")))
    sooner = LiftPolicy(P, lift("2025-03-01T00:00:00Z"))
    assert kinds(await run(ledger, sooner)) == [(f"policy/{P}", "policy.lifted", 3)]
    assert (await ledger.service.policy(P, at=at("2025-04-01"))).status == "lifted"


async def test_a_revocation_scheduled_for_later_can_be_brought_forward_and_takes_effect_then(ledger: Ledger) -> None:
    await run(ledger, ISSUE, GRANT, RevokeExemption(E, revoke("2025-06-01T00:00:00Z")))
    await run(ledger, RevokeExemption(E, revoke("2025-03-01T00:00:00Z")))
    assert (await ledger.service.exemption(E, at=at("2025-04-01"))).status == "revoked"


async def test_a_policy_never_issued_cannot_be_changed(ledger: Ledger) -> None:
    await refused(ledger, ReviewPolicy(P, review()), NotFound, f"no policy {P} has been issued")


# -- granting exemptions ---------------------------------------------------------------------


async def test_an_exemption_under_an_active_policy_is_granted_with_its_sensitive_fields_sealed(
    ledger: Ledger,
) -> None:
    [_, event] = await run(ledger, ISSUE, GRANT)
    data = event.event["data"]
    assert kinds([event]) == [(f"exemption/{E}", "exemption.granted", 1)]
    assert set(data["devices"]) == set(data["mitigations"]) == {"_sd"}
    disclosed = await ledger.store.disclosures([data["devices"]["_sd"], data["mitigations"]["_sd"]])
    assert len(disclosed) == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mitigations": []}, "an exemption needs at least one security mitigation"),
        ({"approved_by": ""}, r"an exemption needs the security team that approved it \(approved_by\)"),
        ({"case_ref": ""}, r"an exemption needs the security team's case reference \(case_ref\)"),
        ({"expires_at": "2025-02-03T00:00:00Z"}, f"exemption {E} must expire after it starts"),
    ],
)
async def test_a_grant_missing_a_required_fact_is_refused(
    ledger: Ledger, changes: dict[str, Any], message: str
) -> None:
    await run(ledger, ISSUE)
    await refused(ledger, GrantExemption(E, P, grant(**changes)), RuleViolation, message)


async def test_no_exemption_for_an_organisation_the_policy_does_not_ban(ledger: Ledger) -> None:
    await run(ledger, IssuePolicy(P, ban(organisations=("dsit",))))
    await refused(ledger, GRANT, RuleViolation, f"policy {P} applies only to dsit; it bans nothing for cabinet-office")
    granted = await run(ledger, GrantExemption(E, P, grant(organisation="dsit")))
    assert kinds(granted) == [(f"exemption/{E}", "exemption.granted", 1)]


async def test_a_policy_due_for_review_before_it_takes_effect_is_refused(ledger: Ledger) -> None:
    early = IssuePolicy(P, ban(review_due="2023-01-01T00:00:00Z"))
    await refused(ledger, early, RuleViolation, f"policy {P} must be reviewed after it takes effect")


async def test_an_exemption_id_is_granted_once(ledger: Ledger) -> None:
    await run(ledger, ISSUE, GRANT)
    await refused(ledger, GRANT, RuleViolation, f"exemption {E} was already granted")


async def test_no_exemption_under_a_lifted_policy(ledger: Ledger) -> None:
    await run(ledger, ISSUE, LiftPolicy(P, lift()))
    lifted = f"policy {P} is lifted from 2025-06-01; .* cannot be granted exemptions"
    await refused(ledger, GRANT, RuleViolation, lifted)


async def test_no_exemption_under_a_policy_never_issued(ledger: Ledger) -> None:
    await refused(ledger, GRANT, NotFound, f"no policy {P} has been issued")


# -- changing exemptions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        (AmendExemption(E, {"mitigations": ["Dedicated handset.", "Quarterly audit."], **CHANGE_REASON}),
         "exemption.amended"),
        (RenewExemption(E, renew()), "exemption.renewed"),
        (RevokeExemption(E, revoke()), "exemption.revoked"),
    ],
)  # fmt: skip
async def test_a_live_exemption_can_be_amended_renewed_and_revoked(ledger: Ledger, command: Command, kind: str) -> None:
    await run(ledger, ISSUE, GRANT)
    assert kinds(await run(ledger, command)) == [(f"exemption/{E}", kind, 2)]


@pytest.mark.parametrize(
    ("ending", "now", "message"),
    [
        (RevokeExemption(E, revoke()), "2025-03-01", f"exemption {E} is revoked from 2025-04-01"),
        (LiftPolicy(P, lift("2025-04-01T00:00:00Z")), "2025-03-01",
         f"exemption {E} is moot from 2025-04-01, when its policy {P} is lifted"),
        (None, "2025-08-03", f"exemption {E} expired on 2025-08-03"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("change", [RenewExemption(E, renew()), RevokeExemption(E, revoke())])
async def test_an_ended_exemption_cannot_be_changed(
    ledger: Ledger, ending: Command | None, now: str, message: str, change: Command
) -> None:
    await run(ledger, ISSUE, GRANT, *([ending] if ending else []))
    ledger.clock.now = at(now)
    await refused(ledger, change, RuleViolation, message)


async def test_a_renewal_must_extend_the_expiry(ledger: Ledger) -> None:
    await run(ledger, ISSUE, GRANT)
    earlier = RenewExemption(E, renew("2025-07-01T00:00:00Z"))
    await refused(ledger, earlier, RuleViolation, "a renewal must extend the expiry")


async def test_changing_an_exemption_never_granted_is_not_found(ledger: Ledger) -> None:
    await run(ledger, ISSUE)
    await refused(ledger, RenewExemption(E, renew()), NotFound, f"no exemption {E} has been granted")


# -- who, and which version ------------------------------------------------------------------


async def test_a_command_from_the_wrong_role_is_forbidden(ledger: Ledger) -> None:
    await refused(ledger, ISSUE, Forbidden, "role security-officer may not send IssuePolicy", role="security-officer")


async def test_a_stale_expected_version_is_a_conflict(ledger: Ledger) -> None:
    await run(ledger, ISSUE, ReviewPolicy(P, review()))
    stale = ReviewPolicy(P, review(), expected_version=1)
    await refused(ledger, stale, VersionConflict, f"policy/{P} is at version 2, not 1")


async def test_the_expected_version_when_current_is_recorded(ledger: Ledger) -> None:
    await run(ledger, ISSUE)
    assert kinds(await run(ledger, ReviewPolicy(P, review(), expected_version=1))) == [
        (f"policy/{P}", "policy.reviewed", 2)
    ]


@pytest.mark.parametrize("ident", ["POL\x00", "POL 1", ""], ids=["nul", "space", "empty"])
async def test_an_id_no_stream_can_have_is_refused_before_any_read(ledger: Ledger, ident: str) -> None:
    await refused(ledger, AmendPolicy(ident, CHANGE_REASON), InvalidInput, "policy id .* must be 1-64 letters")


async def test_a_nul_in_the_data_is_refused_and_the_commands_beside_it_are_recorded(ledger: Ledger) -> None:
    poisoned = IssuePolicy("POL-NUL", ban(app="Tik\x00Tok"))
    outcomes = await asyncio.gather(run(ledger, ISSUE), run(ledger, poisoned), run(ledger, IssuePolicy("POL-2", ban())),
                                    return_exceptions=True)  # fmt: skip
    assert [type(o).__name__ for o in outcomes] == ["list", "InvalidInput", "list"]
    assert "/data/app/name" in str(outcomes[1])
    assert await ledger.store.projection_position(NAME) == await ledger.store.log_size() == 2


async def test_concurrent_commands_on_one_stream_are_retried_and_all_recorded(ledger: Ledger) -> None:
    await run(ledger, ISSUE)
    reviews = [ReviewPolicy(P, review()) for _ in range(3)]
    recorded = await asyncio.gather(*(run(ledger, r) for r in reviews))
    assert sorted(e.version for batch in recorded for e in batch) == [2, 3, 4]


async def test_many_concurrent_commands_on_one_stream_without_a_version_are_all_recorded(ledger: Ledger) -> None:
    await run(ledger, ISSUE)
    recorded = await asyncio.gather(*(run(ledger, ReviewPolicy(P, review())) for _ in range(12)))
    assert sorted(e.version for batch in recorded for e in batch) == list(range(2, 14))


class Outpaced(LedgerService):
    """A service whose every decision the log has already left behind, as if other writers
    kept recording on the stream while it decided."""

    async def _decide(self, command: Command, *, assume_new: bool = False) -> Decided:
        decided, _ = await super()._decide(command, assume_new=assume_new)
        return decided, ((policy_stream(P), 0),)


async def test_a_command_without_a_version_that_the_log_keeps_outpacing_is_unavailable(ledger: Ledger) -> None:
    await run(ledger, ISSUE)
    outpaced = Outpaced(ledger.store, ledger.writer, clock=ledger.clock)
    with pytest.raises(Unavailable, match=f"policy/{P} changed {ATTEMPTS} times"):
        await outpaced.execute(ReviewPolicy(P, review()), "tester", "policy-officer")
    assert await ledger.store.log_size() == 1


async def test_a_taken_policy_id_is_refused_as_taken_whatever_else_is_wrong(ledger: Ledger) -> None:
    await run(ledger, ISSUE)
    await refused(ledger, IssuePolicy(P, {**ban(), "rationale": ""}), RuleViolation, f"policy {P} was already issued")


async def test_a_taken_exemption_id_is_refused_as_taken_whatever_else_is_wrong(ledger: Ledger) -> None:
    await run(ledger, ISSUE, GRANT)
    await refused(ledger, GrantExemption(E, P, {**grant(), "case_ref": ""}), RuleViolation,
                  f"exemption {E} was already granted")  # fmt: skip


@pytest.mark.parametrize("twice", [ISSUE, GRANT], ids=["issue", "grant"])
async def test_concurrent_creations_of_one_id_record_it_once_and_refuse_the_others(
    ledger: Ledger, twice: Command
) -> None:
    if twice is GRANT:
        await run(ledger, ISSUE)
    size = await ledger.store.log_size()
    outcomes = await asyncio.gather(*(run(ledger, twice) for _ in range(6)), return_exceptions=True)
    assert sum(isinstance(o, list) for o in outcomes) == 1
    assert all(isinstance(o, RuleViolation) and "already" in o.detail for o in outcomes if not isinstance(o, list))
    assert await ledger.store.log_size() == size + 1


class LiftedWhileDeciding(LedgerService):
    """A service whose policy is lifted by another officer just after it decides, once."""

    lifted = False

    async def _decide(self, command: Command, *, assume_new: bool = False) -> Any:
        decided = await super()._decide(command, assume_new=assume_new)
        if not self.lifted:
            self.lifted = True
            await self._writer.append(_draft(decide_policy(await self._policy(P), LiftPolicy(P, lift()))[0],
                                             {"id": "other-officer", "role": "policy-officer"}, (), None))  # fmt: skip
        return decided


async def test_a_grant_decided_while_its_policy_is_lifted_is_refused(ledger: Ledger) -> None:
    await run(ledger, ISSUE)
    racing = LiftedWhileDeciding(ledger.store, ledger.writer, clock=ledger.clock)
    with pytest.raises(RuleViolation, match=f"policy {P} is lifted from"):
        await racing.execute(GRANT, "tester", "security-officer")
    assert await ledger.store.stream_leaves(f"exemption/{E}") == []


async def test_concurrent_grants_and_a_lift_never_leave_an_exemption_granted_after_the_lift(ledger: Ledger) -> None:
    await run(ledger, ISSUE)
    grants = [GrantExemption(f"EX-{i}", P, grant(account=f"a-{i}")) for i in range(8)]
    commands = [*grants[:4], LiftPolicy(P, lift()), *grants[4:]]
    await asyncio.gather(*(run(ledger, c) for c in commands), return_exceptions=True)
    log = [decode_leaf(r.leaf, r.seq) for r in await ledger.store.read_leaves(0, await ledger.store.log_size())]
    lifted_at = next(e["seq"] for e in log if e["type"] == "policy.lifted")
    assert all(e["seq"] < lifted_at for e in log if e["type"] == "exemption.granted")
