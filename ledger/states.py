"""Policy and exemption state: what a stream's events add up to, one log event at a time.

``evolve_policy``/``evolve_exemption`` apply one decoded log event to a stream's state;
``fold_policy``/``fold_exemption`` fold a whole stream. An event that cannot continue
the stream where it stands (wrong type, stream or version) is a VerificationError naming
its seq. Sensitive fields stay as the log holds them: sealed. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from ledger.errors import VerificationError
from ledger.schemas import parse_time
from ledger.sensitive import is_sealed

__all__ = [
    "ExemptionState",
    "Grantee",
    "PolicyState",
    "Scope",
    "evolve_exemption",
    "evolve_policy",
    "exemption_stream",
    "fold_exemption",
    "fold_policy",
    "policy_stream",
    "stream_ids",
]

Event = Mapping[str, Any]


@dataclass(frozen=True)
class Scope:
    organisations: tuple[str, ...]  # "*" stands for every organisation
    device_classes: tuple[str, ...] | None  # None: every device class


@dataclass(frozen=True)
class PolicyState:
    policy_id: str
    version: int  # events in the stream
    status: Literal["active", "lifted"]
    app: str
    vendor: str
    scope: Scope
    effective_from: datetime
    review_due: datetime | None
    last_review: str | None  # outcome of the latest review
    lifted_at: datetime | None  # effective time of the lift
    seqs: tuple[int, ...]  # log seqs of the stream's events


@dataclass(frozen=True)
class Grantee:
    organisation: str
    unit: str
    account: str


@dataclass(frozen=True)
class ExemptionState:
    exemption_id: str
    policy_id: str
    version: int
    status: Literal["active", "revoked"]
    grantee: Grantee
    purpose: str
    devices: tuple[str, ...] | None  # None: sealed, the covered devices are withheld
    approved_by: str
    case_ref: str
    valid_from: datetime
    expires_at: datetime
    revoked_at: datetime | None  # effective time of the revocation
    seqs: tuple[int, ...]


def policy_stream(policy_id: str) -> str:
    return f"policy/{policy_id}"


def exemption_stream(exemption_id: str) -> str:
    return f"exemption/{exemption_id}"


def stream_ids(streams: Iterable[str]) -> tuple[list[str], list[str]]:
    """The policy ids and the exemption ids of ``streams`` (each once, sorted); others are left out."""
    ids: dict[str, set[str]] = {"policy": set(), "exemption": set()}
    for stream in streams:
        kind, _, ident = stream.partition("/")
        ids.get(kind, set()).add(ident)
    return sorted(ids["policy"]), sorted(ids["exemption"])


_State = TypeVar("_State", PolicyState, ExemptionState)
_Change = Callable[[_State, Mapping[str, Any]], dict[str, Any]]  # the fields an event changes


def evolve_policy(state: PolicyState | None, event: Event) -> PolicyState:
    """``state`` after one ``policy/<id>`` event from the log."""
    return _evolve(state, event, "policy.issued", _issued, _POLICY_CHANGES)


def evolve_exemption(state: ExemptionState | None, event: Event) -> ExemptionState:
    """``state`` after one ``exemption/<id>`` event from the log."""
    return _evolve(state, event, "exemption.granted", _granted, _EXEMPTION_CHANGES)


def fold_policy(events: Iterable[Event]) -> PolicyState | None:
    """The state of one policy stream after ``events`` (None when there are none)."""
    state: PolicyState | None = None
    for event in events:
        state = evolve_policy(state, event)
    return state


def fold_exemption(events: Iterable[Event]) -> ExemptionState | None:
    """The state of one exemption stream after ``events`` (None when there are none)."""
    state: ExemptionState | None = None
    for event in events:
        state = evolve_exemption(state, event)
    return state


def _evolve(
    state: _State | None,
    event: Event,
    first: str,
    start: Callable[[Event], _State],
    changes: Mapping[str, _Change[_State]],
) -> _State:
    stream, kind, seq = event["stream"], event["type"], event["seq"]
    if state is None:
        if kind != first or not stream.startswith(first.split(".")[0] + "/") or event["version"] != 1:
            raise _misplaced(event)
        return start(event)
    current: _State = state
    change = changes.get(kind)
    if change is None or stream != _stream_of(current) or event["version"] != current.version + 1:
        raise _misplaced(event)
    changed = change(current, event["data"]) | {"version": current.version + 1, "seqs": (*current.seqs, seq)}
    return type(current)(**vars(current) | changed)  # as dataclasses.replace, at half its cost


def _misplaced(event: Event) -> VerificationError:
    message = f"{event['type']} cannot be version {event['version']} of {event['stream']}"
    return VerificationError(message, seq=event["seq"])


def _stream_of(state: PolicyState | ExemptionState) -> str:
    if isinstance(state, PolicyState):
        return policy_stream(state.policy_id)
    return exemption_stream(state.exemption_id)


def _issued(event: Event) -> PolicyState:
    data = event["data"]
    return PolicyState(
        policy_id=event["stream"].removeprefix("policy/"),
        version=1,
        status="active",
        app=data["app"]["name"],
        vendor=data["app"]["vendor"],
        scope=_scope(data["applies_to"]),
        effective_from=parse_time(data["effective_from"]),
        review_due=_time(data.get("review_due")),
        last_review=None,
        lifted_at=None,
        seqs=(event["seq"],),
    )


def _granted(event: Event) -> ExemptionState:
    data, grantee = event["data"], event["data"]["grantee"]
    return ExemptionState(
        exemption_id=event["stream"].removeprefix("exemption/"),
        policy_id=data["policy_id"],
        version=1,
        status="active",
        grantee=Grantee(grantee["organisation"], grantee["unit"], grantee["account"]),
        purpose=data["purpose"],
        devices=_devices(data["devices"]),
        approved_by=data["approved_by"],
        case_ref=data["case_ref"],
        valid_from=parse_time(data["valid_from"]),
        expires_at=parse_time(data["expires_at"]),
        revoked_at=None,
        seqs=(event["seq"],),
    )


def _policy_amended(state: PolicyState, data: Mapping[str, Any]) -> dict[str, Any]:
    scope = _scope(data["applies_to"]) if "applies_to" in data else state.scope
    return {"scope": scope, "review_due": _time(data.get("review_due")) or state.review_due}


def _policy_reviewed(state: PolicyState, data: Mapping[str, Any]) -> dict[str, Any]:
    review_due = _time(data.get("next_review_due")) or state.review_due
    return {"last_review": data["outcome"], "review_due": review_due}


def _policy_lifted(state: PolicyState, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": "lifted", "lifted_at": parse_time(data["effective_at"])}


def _exemption_amended(state: ExemptionState, data: Mapping[str, Any]) -> dict[str, Any]:
    devices = _devices(data["devices"]) if "devices" in data else state.devices
    return {"purpose": data.get("purpose", state.purpose), "devices": devices}


def _exemption_renewed(state: ExemptionState, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"expires_at": parse_time(data["expires_at"])}


def _exemption_revoked(state: ExemptionState, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": "revoked", "revoked_at": parse_time(data["effective_at"])}


_POLICY_CHANGES: Mapping[str, _Change[PolicyState]] = {
    "policy.amended": _policy_amended,
    "policy.reviewed": _policy_reviewed,
    "policy.lifted": _policy_lifted,
}
_EXEMPTION_CHANGES: Mapping[str, _Change[ExemptionState]] = {
    "exemption.amended": _exemption_amended,
    "exemption.renewed": _exemption_renewed,
    "exemption.revoked": _exemption_revoked,
}


def _scope(applies_to: Mapping[str, Any]) -> Scope:
    classes = applies_to.get("device_classes")
    return Scope(tuple(applies_to["organisations"]), None if classes is None else tuple(classes))


def _time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def _devices(value: Any) -> tuple[str, ...] | None:
    return None if is_sealed(value) else tuple(value)
