"""The story as data: the 2023 TikTok ban on UK government devices and its exemptions.

``story()`` lists the commands ``policy-ledger demo`` records, each with its actor and
the domain time it was made (passed to the rules as ``now``). ``record()`` runs them
through the rules in memory, stamping seq, version and ``recorded_at`` (the step's own
time) as the writer would, without signing or sealing: the reference log for tests.
Ids, references and device names are illustrative, not official.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.errors import Forbidden
from ledger.policy import (
    Command,
    GrantExemption,
    IssuePolicy,
    NewEvent,
    PolicyCommand,
    RenewExemption,
    ReviewPolicy,
    RevokeExemption,
    decide_exemption,
    decide_policy,
    required_role,
)
from ledger.states import PolicyState, exemption_stream, fold_exemption, fold_policy, policy_stream

__all__ = ["POLICY_ID", "RESEARCH_ID", "UKGOV_ID", "Actor", "Step", "record", "record_step", "story"]

POLICY_ID = "POL-2023-TIKTOK"
UKGOV_ID = "EX-2025-UKGOV"
RESEARCH_ID = "EX-2024-DSIT-RESEARCH"

Event = Mapping[str, Any]


@dataclass(frozen=True)
class Actor:
    id: str
    role: str


@dataclass(frozen=True)
class Step:
    """One command, who sends it, and when (the rules' ``now``)."""

    command: Command
    actor: Actor
    at: datetime


CABINET_OFFICE = Actor("cabinet-office/government-security-group", "policy-officer")
CO_SECURITY = Actor("cabinet-office/departmental-security-team", "security-officer")
DSIT_SECURITY = Actor("dsit/departmental-security-team", "security-officer")


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def story() -> tuple[Step, ...]:
    """The ban (2023), a research exemption granted and revoked (2024), the ukgov
    exemption (February 2025), a no-change review, and the exemption's renewal."""
    return (
        Step(IssuePolicy(POLICY_ID, _BAN), CABINET_OFFICE, _t("2023-03-16T15:00:00")),
        Step(GrantExemption(RESEARCH_ID, POLICY_ID, _RESEARCH), DSIT_SECURITY, _t("2024-05-13T10:00:00")),
        Step(RevokeExemption(RESEARCH_ID, _RESEARCH_REVOKED), DSIT_SECURITY, _t("2024-11-29T16:30:00")),
        Step(GrantExemption(UKGOV_ID, POLICY_ID, _UKGOV), CO_SECURITY, _t("2025-02-03T09:00:00")),
        Step(ReviewPolicy(POLICY_ID, _REVIEW), CABINET_OFFICE, _t("2025-02-11T12:00:00")),
        Step(RenewExemption(UKGOV_ID, _UKGOV_RENEWED), CO_SECURITY, _t("2025-07-28T11:00:00")),
    )


def record(steps: Iterable[Step]) -> tuple[dict[str, Any], ...]:
    """The decoded log events ``steps`` produce, from seq 0; raises as the rules do."""
    events: list[dict[str, Any]] = []
    for step in steps:
        events += record_step(events, step)
    return tuple(events)


def record_step(events: Sequence[Event], step: Step) -> tuple[dict[str, Any], ...]:
    """The events one more ``step`` appends after ``events``."""
    if step.actor.role != required_role(step.command):
        raise Forbidden(f"role {step.actor.role} may not send {type(step.command).__name__}")
    decided = _decide(events, step)
    return tuple(_stamp(len(events) + i, new, step) for i, new in enumerate(decided))


def _decide(events: Sequence[Event], step: Step) -> tuple[NewEvent, ...]:
    command = step.command
    if isinstance(command, PolicyCommand):
        return decide_policy(_policy(events, command.policy_id), command)
    exemption = fold_exemption(_stream(events, exemption_stream(command.exemption_id)))
    if isinstance(command, GrantExemption):
        return decide_exemption(_policy(events, command.policy_id), exemption, command, step.at)
    policy = None if exemption is None else _policy(events, exemption.policy_id)
    return decide_exemption(policy, exemption, command, step.at)


def _policy(events: Sequence[Event], policy_id: str) -> PolicyState | None:
    return fold_policy(_stream(events, policy_stream(policy_id)))


def _stream(events: Sequence[Event], stream: str) -> list[Event]:
    return [event for event in events if event["stream"] == stream]


def _stamp(seq: int, new: NewEvent, step: Step) -> dict[str, Any]:
    return {
        "seq": seq,
        "stream": new.stream,
        "version": new.version,
        "type": new.type,
        "schema": new.schema,
        "recorded_at": step.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": {"id": step.actor.id, "role": step.actor.role},
        "data": dict(new.data),
    }


_BAN = {
    "app": {"name": "TikTok", "vendor": "ByteDance Ltd."},
    "applies_to": {"organisations": ["*"]},
    "rationale": (
        "Following a review by government security experts, and given concerns about how data on "
        "devices could be accessed and used, TikTok is banned on government corporate devices. Use on "
        "government devices is allowed only by exemption, where required for work purposes, granted by "
        "security teams case by case with security mitigations."
    ),
    "authority": "Cabinet Office",
    "decision_ref": "CO-GSG-2023-017",
    "effective_from": "2023-03-16T00:00:00Z",
    "review_due": "2025-03-16T00:00:00Z",
}
_RESEARCH = {
    "grantee": {"organisation": "dsit", "unit": "Online Safety Research Unit", "account": "dsit-research"},
    "purpose": "Studying how harmful content spreads on the platform, for online safety policy work.",
    "devices": ["DSIT-OSR-TT-001"],
    "mitigations": [
        "A standalone handset, kept off government networks.",
        "No government accounts, email or data on the device.",
        "The handset is wiped at the end of the project.",
    ],
    "approved_by": "DSIT Departmental Security Team",
    "case_ref": "DSIT-DST-2024-0117",
    "valid_from": "2024-05-13T00:00:00Z",
    "expires_at": "2025-05-13T00:00:00Z",
}
_RESEARCH_REVOKED = {
    "reason": "The research project finished; the designated handset was wiped and returned.",
    "effective_at": "2024-11-29T17:00:00Z",
}
_UKGOV = {
    "grantee": {"organisation": "cabinet-office", "unit": "Government Communication Service", "account": "ukgov"},
    "purpose": "Publishing public service information on the official UK Government TikTok account.",
    "devices": ["CO-GCS-TT-001"],
    "mitigations": [
        "A dedicated handset used only for the ukgov account.",
        "The handset connects only to a separate network, never to government networks.",
        "No government data, email or credentials on the device.",
    ],
    "approved_by": "Cabinet Office Departmental Security Team",
    "case_ref": "CO-DST-2025-0042",
    "valid_from": "2025-02-03T00:00:00Z",
    "expires_at": "2025-08-03T00:00:00Z",
}
_REVIEW = {
    "outcome": "no-change",
    "summary": (
        "There have been no changes to the security policy. Restrictions on the use of the app on most "
        "government devices remain in place; exemptions are granted only by security teams, case by case, "
        "with security mitigations, as for the UK Government account."
    ),
    "reviewed_at": "2025-02-11T12:00:00Z",
    "next_review_due": "2026-02-11T00:00:00Z",
}
_UKGOV_RENEWED = {
    "expires_at": "2026-02-03T00:00:00Z",
    "reason": "Security team review: mitigations confirmed in place; the account is still needed for public messages.",
}
