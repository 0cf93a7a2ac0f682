"""The policy rules: commands in, events out, judged against a stream's state (``ledger.states``).

``decide_policy`` and ``decide_exemption`` check a command against its stream's state
and return the events to append, or raise NotFound (no such policy or exemption),
VersionConflict (stale ``expected_version``), RuleViolation (a rule forbids it) or
SchemaViolation (malformed data). They never read sensitive fields: logged events hold
them sealed.
Rules use the *recorded* status: once a lift or revocation is recorded, whatever its
effective time, nothing more may change the policy or exemption, except a lift or
revocation that takes effect earlier (an end scheduled for later can always be brought
forward). Only expiry is judged, against the caller's ``now``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.canonical import copied
from ledger.errors import (
    InvalidInput,
    LedgerError,
    NotFound,
    RuleViolation,
    SchemaViolation,
    VersionConflict,
)
from ledger.schemas import parse_time, validate
from ledger.states import ExemptionState, PolicyState, exemption_stream, policy_stream

__all__ = [
    "ID_PATTERN",
    "AmendExemption",
    "AmendPolicy",
    "Command",
    "ExemptionCommand",
    "GrantExemption",
    "IssuePolicy",
    "LiftPolicy",
    "NewEvent",
    "PolicyCommand",
    "RenewExemption",
    "ReviewPolicy",
    "RevokeExemption",
    "check_ids",
    "decide_exemption",
    "decide_policy",
    "event_type",
    "required_role",
    "stream_of",
]

ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"  # a policy or exemption id
_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class _PolicyCommand:
    policy_id: str
    data: Mapping[str, Any]
    expected_version: int | None = None


class IssuePolicy(_PolicyCommand):
    """Record a new ban: data per policy.issued/1."""


class AmendPolicy(_PolicyCommand):
    """Change an active policy's scope, rationale or review date: policy.amended/1."""


class ReviewPolicy(_PolicyCommand):
    """Record a review of an active policy and its outcome: policy.reviewed/1."""


class LiftPolicy(_PolicyCommand):
    """End an active policy: policy.lifted/1."""


@dataclass(frozen=True)
class GrantExemption:
    """Grant an exemption under an active policy: exemption.granted/1 (policy_id added)."""

    exemption_id: str
    policy_id: str
    data: Mapping[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class _ExemptionChange:
    exemption_id: str
    data: Mapping[str, Any]
    expected_version: int | None = None


class AmendExemption(_ExemptionChange):
    """Change a live exemption's mitigations, devices or purpose: exemption.amended/1."""


class RenewExemption(_ExemptionChange):
    """Extend a live exemption's expiry: exemption.renewed/1."""


class RevokeExemption(_ExemptionChange):
    """End a live exemption: exemption.revoked/1."""


PolicyCommand = IssuePolicy | AmendPolicy | ReviewPolicy | LiftPolicy
ExemptionCommand = GrantExemption | AmendExemption | RenewExemption | RevokeExemption
Command = PolicyCommand | ExemptionCommand

_EVENT_TYPES: Mapping[type, tuple[str, str]] = {  # command -> (event type, verb in messages)
    IssuePolicy: ("policy.issued", "issued"),
    AmendPolicy: ("policy.amended", "amended"),
    ReviewPolicy: ("policy.reviewed", "reviewed"),
    LiftPolicy: ("policy.lifted", "lifted"),
    GrantExemption: ("exemption.granted", "granted exemptions"),
    AmendExemption: ("exemption.amended", "amended"),
    RenewExemption: ("exemption.renewed", "renewed"),
    RevokeExemption: ("exemption.revoked", "revoked"),
}


@dataclass(frozen=True)
class NewEvent:
    """An event decided but not yet recorded; ``version`` is the stream position it takes."""

    stream: str
    type: str
    schema: str
    data: Mapping[str, Any]
    version: int | None = None


def check_ids(command: Command) -> None:
    """Refuse a command naming an id that no stream can have, before any stream is read for it."""
    if not isinstance(command, _PolicyCommand):
        _checked_id("exemption", command.exemption_id)
    if not isinstance(command, _ExemptionChange):
        _checked_id("policy", command.policy_id)


def stream_of(command: Command) -> str:
    """The stream ``command`` records in."""
    if isinstance(command, _PolicyCommand):
        return policy_stream(command.policy_id)
    return exemption_stream(command.exemption_id)


def event_type(command: Command) -> str:
    """The type of the event ``command`` records."""
    return _EVENT_TYPES[type(command)][0]


def required_role(command: Command) -> str:
    """The role that may send ``command``: policy-officer or security-officer."""
    return "policy-officer" if isinstance(command, _PolicyCommand) else "security-officer"


def decide_policy(state: PolicyState | None, command: PolicyCommand) -> tuple[NewEvent, ...]:
    """The events ``command`` records on ``policy/<id>``, whose state is ``state``."""
    policy_id, stream = _checked_id("policy", command.policy_id), policy_stream(command.policy_id)
    if isinstance(command, IssuePolicy):
        return (_issue(state, command, _checked_version(stream, state, command.expected_version)),)
    _require_active_policy(state, policy_id, _verb(command), _ending(command))
    return (_new_event(stream, command, command.data, _checked_version(stream, state, command.expected_version)),)


def _issue(state: PolicyState | None, command: IssuePolicy, version: int) -> NewEvent:
    policy_id = command.policy_id
    if state is not None:
        raise RuleViolation(f"policy {policy_id} was already issued; a policy id is issued once, choose a new one")
    event = _new_event(policy_stream(policy_id), command, command.data, version)
    due, effective = command.data.get("review_due"), command.data["effective_from"]
    if due is not None and parse_time(due) <= parse_time(effective):
        raise RuleViolation(
            f"policy {policy_id} must be reviewed after it takes effect: review_due {due} is not after "
            f"effective_from {effective}"
        )
    return event


def decide_exemption(
    policy: PolicyState | None, state: ExemptionState | None, command: ExemptionCommand, now: datetime
) -> tuple[NewEvent, ...]:
    """The events ``command`` records on ``exemption/<id>``; ``policy`` is its policy's state."""
    stream = exemption_stream(_checked_id("exemption", command.exemption_id))
    if now.tzinfo is None:
        raise LedgerError("decide_exemption needs a timezone-aware 'now'")
    if isinstance(command, GrantExemption):
        policy = _require_active_policy(policy, _checked_id("policy", command.policy_id), _verb(command))
        version = _checked_version(stream, state, command.expected_version)
        return (_grant(policy, state, command, version),)
    if state is None:
        raise NotFound(f"no exemption {command.exemption_id} has been granted")
    if policy is None or policy.policy_id != state.policy_id:
        raise LedgerError(f"decide_exemption needs the state of policy {state.policy_id}")
    version = _checked_version(stream, state, command.expected_version)
    _require_live_exemption(policy, state, now, _verb(command), _ending(command))
    return (_change(state, command, version),)


def _grant(policy: PolicyState, state: ExemptionState | None, command: GrantExemption, version: int) -> NewEvent:
    exemption_id = command.exemption_id
    if state is not None:
        raise RuleViolation(
            f"exemption {exemption_id} was already granted; an exemption id is granted once, choose a new one"
        )
    if command.data.get("policy_id", policy.policy_id) != policy.policy_id:
        raise SchemaViolation(
            f"data names policy {command.data['policy_id']!r}, but the exemption is requested under {policy.policy_id}",
            pointer="/policy_id",
        )
    data = {**command.data, "policy_id": policy.policy_id}
    _require_grant_facts(data)
    event = _new_event(exemption_stream(exemption_id), command, data, version)
    organisation, scope = data["grantee"]["organisation"], policy.scope.organisations
    if "*" not in scope and organisation.casefold() not in {o.casefold() for o in scope}:
        raise RuleViolation(
            f"policy {policy.policy_id} applies only to {', '.join(scope)}; it bans nothing for {organisation}, "
            "so there is nothing to exempt"
        )
    if parse_time(data["expires_at"]) <= parse_time(data["valid_from"]):
        raise RuleViolation(
            f"exemption {exemption_id} must expire after it starts: "
            f"expires_at {data['expires_at']} is not after valid_from {data['valid_from']}"
        )
    return event


def _change(state: ExemptionState, command: ExemptionCommand, version: int) -> NewEvent:
    if "mitigations" in command.data:
        _require_grant_facts(command.data, ("mitigations",))
    event = _new_event(exemption_stream(state.exemption_id), command, command.data, version)
    if isinstance(command, RenewExemption) and parse_time(command.data["expires_at"]) <= state.expires_at:
        raise RuleViolation(
            f"a renewal must extend the expiry: exemption {state.exemption_id} already runs until "
            f"{_when(state.expires_at)}, and {command.data['expires_at']} is not later"
        )
    return event


def _checked_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise InvalidInput(
            f"{kind} id {value!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _checked_version(stream: str, state: PolicyState | ExemptionState | None, expected: int | None) -> int:
    """The version the next event takes; VersionConflict if ``expected`` is stale."""
    current = 0 if state is None else state.version
    if expected is not None and expected != current:
        raise VersionConflict(f"{stream} is at version {current}, not {expected}; reload it and decide again")
    return current + 1


def _require_active_policy(
    state: PolicyState | None, policy_id: str, verb: str, ending: datetime | None = None
) -> PolicyState:
    if state is None:
        raise NotFound(f"no policy {policy_id} has been issued")
    if state.lifted_at is not None and not _earlier(ending, state.lifted_at):
        raise RuleViolation(
            f"policy {policy_id} is lifted from {_when(state.lifted_at)}; lifted policies cannot be {verb}"
            + (", except by a lift that takes effect earlier" if verb == "lifted" else "")
        )
    return state


def _require_live_exemption(
    policy: PolicyState, state: ExemptionState, now: datetime, verb: str, ending: datetime | None
) -> None:
    exemption_id = state.exemption_id
    revoking = verb == "revoked"
    if state.revoked_at is not None and not _earlier(ending, state.revoked_at):
        raise RuleViolation(
            f"exemption {exemption_id} is revoked from {_when(state.revoked_at)}; revoked exemptions cannot be "
            f"{verb}" + (", except by a revocation that takes effect earlier" if revoking else "")
        )
    if policy.lifted_at is not None and not _earlier(ending, policy.lifted_at):
        raise RuleViolation(
            f"exemption {exemption_id} is moot from {_when(policy.lifted_at)}, when its policy {policy.policy_id} is "
            f"lifted; moot exemptions cannot be {verb}"
            + (", except by a revocation before the lift" if revoking else "")
        )
    if now >= state.expires_at:
        raise RuleViolation(
            f"exemption {exemption_id} expired on {_when(state.expires_at)}; expired exemptions cannot be {verb}, "
            "grant a new exemption instead"
        )


def _earlier(ending: datetime | None, ended: datetime) -> bool:
    """Whether a lift or revocation taking effect at ``ending`` brings forward an end recorded at ``ended``."""
    return ending is not None and ending < ended


def _ending(command: Command) -> datetime | None:
    """When a lift or revocation ``command`` takes effect; None for other commands, or a time
    its data does not give right (its schema refuses that)."""
    if not isinstance(command, LiftPolicy | RevokeExemption):
        return None
    try:
        return parse_time(command.data["effective_at"])
    except (KeyError, TypeError, ValueError):
        return None


_GRANT_FACTS = {
    "mitigations": "an exemption needs at least one security mitigation",
    "approved_by": "an exemption needs the security team that approved it (approved_by)",
    "case_ref": "an exemption needs the security team's case reference (case_ref)",
}


def _require_grant_facts(data: Mapping[str, Any], facts: Iterable[str] = tuple(_GRANT_FACTS)) -> None:
    for fact in facts:
        if not data.get(fact):
            raise RuleViolation(_GRANT_FACTS[fact])


def _verb(command: Command) -> str:
    return _EVENT_TYPES[type(command)][1]


def _new_event(stream: str, command: Command, data: Mapping[str, Any], version: int) -> NewEvent:
    kind = _EVENT_TYPES[type(command)][0]
    validate(f"{kind}/1", data)
    return NewEvent(stream, kind, f"{kind}/1", copied(dict(data)), version)


def _when(moment: datetime) -> str:
    """A date, or date and time when the moment is not midnight UTC."""
    if moment.time() == datetime.min.time():
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%d %H:%M UTC")
