"""Reference read models: the log folded, in memory, into policies, exemptions and decisions.

These are the exact semantics the stored projections must reproduce.

- ``fold`` applies log events in seq order, with no gaps, to an immutable ``LedgerView``;
  ``as_of_seq`` / ``as_of_time`` fold the prefix of the log that existed then. Events of
  streams other than ``policy/`` and ``exemption/`` only advance the position.
- Queries take a time ``at`` and judge the *domain* times recorded so far against it:
  a policy is ``not-yet-effective`` before ``effective_from`` and ``lifted`` from its
  lift's ``effective_at``; an exemption is ``not-yet-valid``, ``active``, or ended by the
  first of: ``revoked`` (revocation's ``effective_at``), ``moot`` (its policy lifted),
  ``expired`` (``expires_at``; no event needed). On equal times that order breaks ties.
- Names match case-insensitively (``str.casefold``): app, organisation, device class,
  account, device. A policy naming organisation ``"*"`` covers every organisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import takewhile
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, Protocol

from ledger.errors import NotFound, VerificationError
from ledger.schemas import parse_time
from ledger.states import ExemptionState, Grantee, PolicyState, Scope, evolve_exemption, evolve_policy

__all__ = [
    "EMPTY",
    "Basis",
    "Decision",
    "ExemptionStatus",
    "ExemptionSummary",
    "LedgerView",
    "PolicyStatus",
    "PolicySummary",
    "Term",
    "apply",
    "as_of_seq",
    "as_of_time",
    "decide_access",
    "exemption",
    "exemption_status",
    "exemptions",
    "fold",
    "policies",
    "policy",
    "policy_status",
]

Event = Mapping[str, Any]
PolicyStatus = Literal["not-yet-effective", "active", "lifted"]
ExemptionStatus = Literal["not-yet-valid", "active", "expired", "revoked", "moot"]


class Term(Protocol):
    """When an exemption under ``policy_id`` holds (an ExemptionState has all it takes)."""

    @property
    def policy_id(self) -> str: ...
    @property
    def valid_from(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def revoked_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class LedgerView:
    """The ledger after its first ``size`` events (seqs ``0 .. size-1``)."""

    policies: Mapping[str, PolicyState] = field(default_factory=lambda: MappingProxyType({}))
    exemptions: Mapping[str, ExemptionState] = field(default_factory=lambda: MappingProxyType({}))
    size: int = 0
    recorded_at: datetime | None = None  # of the last event folded
    erased_devices: frozenset[str] = frozenset()  # exemptions whose covered devices were erased from the ledger


EMPTY = LedgerView()


def fold(events: Iterable[Event], view: LedgerView = EMPTY) -> LedgerView:
    """``view`` after ``events``, which must continue it: seqs ``view.size``, ``view.size + 1``, ..."""
    policies, exemptions = dict(view.policies), dict(view.exemptions)
    size, recorded_at = view.size, view.recorded_at
    for event in events:
        if event["seq"] != size:
            raise VerificationError(f"the projection expected seq {size} next", seq=event["seq"])
        kind, _, ident = str(event["stream"]).partition("/")
        if kind == "policy":
            policies[ident] = evolve_policy(policies.get(ident), event)
        elif kind == "exemption":
            exemptions[ident] = evolve_exemption(exemptions.get(ident), event)
        size, recorded_at = size + 1, parse_time(event["recorded_at"])
    return LedgerView(MappingProxyType(policies), MappingProxyType(exemptions), size, recorded_at)


def apply(view: LedgerView, event: Event) -> LedgerView:
    """``view`` after one more event."""
    return fold((event,), view)


def as_of_seq(events: Iterable[Event], seq: int) -> LedgerView:
    """The ledger as it stood once event ``seq`` was recorded (``-1``: before any)."""
    return fold(takewhile(lambda event: event["seq"] <= seq, events))


def as_of_time(events: Iterable[Event], moment: datetime) -> LedgerView:
    """The ledger as it stood at ``moment``: the longest prefix recorded at or before it."""
    return fold(takewhile(lambda event: parse_time(event["recorded_at"]) <= moment, events))


# -- statuses at a time ------------------------------------------------------------------


def policy_status(policy: PolicyState, at: datetime) -> PolicyStatus:
    if policy.lifted_at is not None and at >= policy.lifted_at:
        return "lifted"
    return "not-yet-effective" if at < policy.effective_from else "active"


def exemption_status(exemption: Term, policy: PolicyState | None, at: datetime) -> ExemptionStatus:
    """The first ending that had happened by ``at``, else not-yet-valid or active."""
    endings: tuple[tuple[datetime | None, ExemptionStatus], ...] = (
        (exemption.revoked_at, "revoked"),
        (None if policy is None else policy.lifted_at, "moot"),
        (exemption.expires_at, "expired"),
    )
    ended = [
        (moment, rank, status) for rank, (moment, status) in enumerate(endings) if moment is not None and moment <= at
    ]
    if ended:
        return min(ended)[2]
    return "not-yet-valid" if at < exemption.valid_from else "active"


@dataclass(frozen=True)
class PolicySummary:
    policy_id: str
    app: str
    vendor: str
    status: PolicyStatus
    scope: Scope
    active_exemptions: int
    effective_from: datetime
    review_due: datetime | None
    last_review: str | None
    lifted_at: datetime | None
    seqs: tuple[int, ...]


@dataclass(frozen=True)
class ExemptionSummary:
    exemption_id: str
    policy_id: str
    grantee: Grantee
    status: ExemptionStatus
    valid_from: datetime
    expires_at: datetime
    revoked_at: datetime | None
    devices_withheld: bool  # sealed, and not to be read by who asked
    devices_erased: bool  # sealed, and erased from the ledger (at the data subject's request)
    seqs: tuple[int, ...]


def policies(view: LedgerView, at: datetime, terms: Iterable[Term] | None = None) -> tuple[PolicySummary, ...]:
    """Every policy, by id, with its status and active exemption count at ``at``: counted
    among ``terms`` when given (a view of the policies alone), else the view's exemptions."""
    under: dict[str, list[Term]] = {}
    for term in view.exemptions.values() if terms is None else terms:
        under.setdefault(term.policy_id, []).append(term)
    return tuple(_summary(view.policies[i], under.get(i, []), at) for i in sorted(view.policies))


def policy(view: LedgerView, policy_id: str, at: datetime, terms: Iterable[Term] | None = None) -> PolicySummary:
    """Policy ``policy_id`` as :func:`policies` gives it."""
    state = view.policies.get(policy_id)
    if state is None:
        raise NotFound(f"no policy {policy_id} has been issued")
    found: Iterable[Term] = view.exemptions.values() if terms is None else terms
    return _summary(state, (t for t in found if t.policy_id == policy_id), at)


def _summary(state: PolicyState, exemptions: Iterable[Term], at: datetime) -> PolicySummary:
    active = sum(1 for e in exemptions if exemption_status(e, state, at) == "active")
    return PolicySummary(
        state.policy_id,
        state.app,
        state.vendor,
        policy_status(state, at),
        state.scope,
        active,
        state.effective_from,
        state.review_due,
        state.last_review,
        state.lifted_at,
        state.seqs,
    )


def exemptions(view: LedgerView, at: datetime, policy_id: str | None = None) -> tuple[ExemptionSummary, ...]:
    """Every exemption (or those under ``policy_id``), by id, with its status at ``at``."""
    ids = sorted(i for i, e in view.exemptions.items() if policy_id is None or e.policy_id == policy_id)
    return tuple(exemption(view, exemption_id, at) for exemption_id in ids)


def exemption(view: LedgerView, exemption_id: str, at: datetime) -> ExemptionSummary:
    state = view.exemptions.get(exemption_id)
    if state is None:
        raise NotFound(f"no exemption {exemption_id} has been granted")
    status = exemption_status(state, view.policies.get(state.policy_id), at)
    return ExemptionSummary(
        state.exemption_id,
        state.policy_id,
        state.grantee,
        status,
        state.valid_from,
        state.expires_at,
        state.revoked_at,
        state.devices is None and exemption_id not in view.erased_devices,
        exemption_id in view.erased_devices,
        state.seqs,
    )


def _exemptions_under(view: LedgerView, policy_id: str) -> list[ExemptionState]:
    return [view.exemptions[i] for i in sorted(view.exemptions) if view.exemptions[i].policy_id == policy_id]


# -- may app X run on device D of organisation O for account A at time T? ------------------


class Basis(NamedTuple):
    """A stream and the seqs of its events that justify a decision."""

    stream: str
    seqs: tuple[int, ...]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    verdict: Literal["allowed", "prohibited", "no-policy"]
    reasons: tuple[str, ...]
    basis: tuple[Basis, ...]


def decide_access(
    view: LedgerView,
    *,
    app: str,
    organisation: str,
    device: str | None,
    account: str | None,
    at: datetime,
    device_class: str | None = None,
) -> Decision:
    """May ``app`` run on ``device`` of ``organisation`` for ``account`` at ``at``?

    Prohibited while any policy in force bans the app for the organisation (and the
    device class, when the policy names classes; an unknown class counts as covered)
    and no active exemption under that policy covers the request. An exemption covers
    it when organisation and account match and the device is one of its covered
    devices. Covered devices that are not in ``view`` (erased from the ledger) cover none.
    """
    scoped = [p for _, p in sorted(view.policies.items()) if _restricts(p, app, organisation, device_class)]
    bans = [p for p in scoped if policy_status(p, at) == "active"]
    if not bans:  # the basis: the policies that would restrict the app at another time
        none = f"no policy in force at {_moment(at)} restricts {app} for {organisation}"
        reasons = (none, *(_not_in_force(p, at) for p in scoped))
        return Decision(True, "no-policy", reasons, tuple(Basis(f"policy/{p.policy_id}", p.seqs) for p in scoped))
    covered = [(p, _cover(view, p, organisation, device, account, at)) for p in bans]
    blocked = [p for p, exemption in covered if exemption is None]
    if blocked:
        reasons = tuple(_prohibition(view, p, organisation, device, account, at) for p in blocked)
        return Decision(False, "prohibited", reasons, tuple(Basis(f"policy/{p.policy_id}", p.seqs) for p in blocked))
    pairs = [(p, e) for p, e in covered if e is not None]
    basis: list[Basis] = []
    for p, e in pairs:
        basis += [Basis(f"policy/{p.policy_id}", p.seqs), Basis(f"exemption/{e.exemption_id}", e.seqs)]
    return Decision(True, "allowed", tuple(_permission(p, e) for p, e in pairs), tuple(basis))


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _restricts(policy: PolicyState, app: str, organisation: str, device_class: str | None) -> bool:
    """Whether ``policy``, while in force, bans ``app`` for ``organisation`` (and ``device_class``)."""
    scope = policy.scope
    if not _same(policy.app, app):
        return False
    if not any(o == "*" or _same(o, organisation) for o in scope.organisations):
        return False
    return device_class is None or scope.device_classes is None or _listed(device_class, scope.device_classes)


def _cover(
    view: LedgerView, policy: PolicyState, organisation: str, device: str | None, account: str | None, at: datetime
) -> ExemptionState | None:
    """The first exemption (by id) under ``policy`` that covers the request at ``at``."""
    for exemption in _exemptions_under(view, policy.policy_id):
        if exemption_status(exemption, policy, at) == "active" and _covers(exemption, organisation, device, account):
            return exemption
    return None


def _covers(exemption: ExemptionState, organisation: str, device: str | None, account: str | None) -> bool:
    grantee = exemption.grantee
    if account is None or not _same(grantee.account, account) or not _same(grantee.organisation, organisation):
        return False
    return device is not None and exemption.devices is not None and _listed(device, exemption.devices)


def _listed(name: str, names: Iterable[str]) -> bool:
    return any(_same(name, n) for n in names)


def _prohibition(
    view: LedgerView, policy: PolicyState, organisation: str, device: str | None, account: str | None, at: datetime
) -> str:
    who = f"account {account}" if account else "no account"
    where = f"device {device}" if device else "an unnamed device"
    erased = [
        f"; the covered devices of exemption {e.exemption_id} were erased from the ledger, so it covers none"
        for e in _exemptions_under(view, policy.policy_id)
        if e.devices is None and exemption_status(e, policy, at) == "active" and account is not None
        and _same(e.grantee.account, account) and _same(e.grantee.organisation, organisation)
    ]  # fmt: skip
    return (
        f"{policy.app} ({policy.vendor}) is banned for {organisation} by policy {policy.policy_id}, in force since "
        f"{_moment(policy.effective_from)}; no active exemption under it covers {who} on {where}" + "".join(erased)
    )


def _not_in_force(policy: PolicyState, at: datetime) -> str:
    if policy.lifted_at is not None and policy.lifted_at <= at:
        return f"policy {policy.policy_id}, which banned {policy.app}, is lifted from {_moment(policy.lifted_at)}"
    return f"policy {policy.policy_id} bans {policy.app} only from {_moment(policy.effective_from)}"


def _permission(policy: PolicyState, exemption: ExemptionState) -> str:
    grantee = exemption.grantee
    return (
        f"{policy.app} is banned by policy {policy.policy_id}, but exemption {exemption.exemption_id} for account "
        f"{grantee.account} ({grantee.unit}, {grantee.organisation}) is active until "
        f"{_moment(exemption.expires_at)}; the device is one of its covered devices"
    )


def _moment(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")[:19] + "Z"  # as strftime("%Y-%m-%dT%H:%M:%SZ"), at 60% of its cost
