"""Stored projections as data: every version of a policy or exemption, valid over a seq range.

A version is the state of one stream after one of its events. It is valid *from* the
seq of that event up to (not including) the seq of the stream's next event, or open
(``to_seq`` None) while it is the latest. The ledger as it stood once event ``S`` was
recorded is therefore the versions with ``from_seq <= S < to_seq`` (an open version
never ends), and :func:`view_of` turns any set of them back into the pure
:class:`~ledger.projections.LedgerView`, so stored answers come from the same
:func:`~ledger.projections.decide_access` as the reference fold.

:func:`advance` is the whole projector: given the open versions of the streams a batch
touches, it returns the versions the batch creates or closes. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from ledger.errors import VerificationError
from ledger.projections import LedgerView
from ledger.sensitive import is_sealed
from ledger.states import ExemptionState, PolicyState, evolve_exemption, evolve_policy

__all__ = [
    "FOREVER",
    "Advance",
    "ExemptionTerm",
    "ExemptionVersion",
    "PolicyVersion",
    "VersionSet",
    "advance",
    "name_key",
    "view_of",
]

Event = Mapping[str, Any]
FOREVER = 2**62  # a seq no log reaches: "as of now" is "as of seq FOREVER"


def name_key(name: str) -> str:
    """How names are compared (``str.casefold``, as the reference projections do)."""
    return name.casefold()


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    from_seq: int
    to_seq: int | None
    state: PolicyState

    @property
    def app_key(self) -> str:
        return name_key(self.state.app)

    @property
    def organisation_keys(self) -> tuple[str, ...]:
        return tuple(name_key(o) for o in self.state.scope.organisations)


@dataclass(frozen=True, slots=True)
class ExemptionVersion:
    from_seq: int
    to_seq: int | None
    state: ExemptionState
    devices_sd: str | None  # digest of the sealed covered devices in force, for readers allowed to see them

    @property
    def account_key(self) -> str:
        return name_key(self.state.grantee.account)

    @property
    def organisation_key(self) -> str:
        return name_key(self.state.grantee.organisation)


@dataclass(frozen=True, slots=True)
class ExemptionTerm:
    """When an exemption under ``policy_id`` holds: all that counting a policy's active ones needs."""

    policy_id: str
    valid_from: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class VersionSet:
    """Versions read back from a store (each stream at most once, when read as of one seq),
    and the terms of exemptions read without their versions."""

    policies: tuple[PolicyVersion, ...] = ()
    exemptions: tuple[ExemptionVersion, ...] = ()
    terms: tuple[ExemptionTerm, ...] = ()


@dataclass(frozen=True)
class Advance:
    """What a run of events did: the versions it created or closed, and the open ones after it."""

    changed: VersionSet
    open_policies: Mapping[str, PolicyVersion]
    open_exemptions: Mapping[str, ExemptionVersion]


def advance(
    open_policies: Mapping[str, PolicyVersion], open_exemptions: Mapping[str, ExemptionVersion], events: Iterable[Event]
) -> Advance:
    """Apply decoded log ``events``, in seq order, to the open versions of their streams.

    ``open_*`` must hold the open version of every stream the events continue (keyed by
    policy or exemption id). Events of other streams change nothing.
    """
    policies, exemptions = dict(open_policies), dict(open_exemptions)
    changed_p: dict[tuple[str, int], PolicyVersion] = {}
    changed_e: dict[tuple[str, int], ExemptionVersion] = {}
    for event in events:
        kind, _, ident = str(event["stream"]).partition("/")
        try:
            if kind == "policy":
                _advance_policy(policies, changed_p, ident, event)
            elif kind == "exemption":
                _advance_exemption(exemptions, changed_e, ident, event)
        except (KeyError, TypeError, ValueError) as e:  # data its schema would refuse
            malformed = f"{event['type']} on {event['stream']} is malformed: {e!r}"
            raise VerificationError(malformed, seq=event["seq"]) from None
    changed = VersionSet(tuple(changed_p.values()), tuple(changed_e.values()))
    return Advance(changed, policies, exemptions)


def _advance_policy(
    open_: dict[str, PolicyVersion], changed: dict[tuple[str, int], PolicyVersion], ident: str, event: Event
) -> None:
    seq, before = event["seq"], open_.get(ident)
    if before is not None:
        changed[ident, before.from_seq] = PolicyVersion(before.from_seq, seq, before.state)
    open_[ident] = changed[ident, seq] = _next_policy(before, event)


def _advance_exemption(
    open_: dict[str, ExemptionVersion], changed: dict[tuple[str, int], ExemptionVersion], ident: str, event: Event
) -> None:
    seq, before = event["seq"], open_.get(ident)
    if before is not None:
        changed[ident, before.from_seq] = ExemptionVersion(before.from_seq, seq, before.state, before.devices_sd)
    open_[ident] = changed[ident, seq] = _next_exemption(before, event)


def _next_policy(before: PolicyVersion | None, event: Event) -> PolicyVersion:
    return PolicyVersion(event["seq"], None, evolve_policy(None if before is None else before.state, event))


def _next_exemption(before: ExemptionVersion | None, event: Event) -> ExemptionVersion:
    state = evolve_exemption(None if before is None else before.state, event)
    devices = event["data"].get("devices")
    if is_sealed(devices):
        digest: str | None = devices["_sd"]
    elif devices is not None:
        digest = None  # recorded in clear
    else:
        digest = None if before is None else before.devices_sd
    return ExemptionVersion(event["seq"], None, state, digest)


def view_of(versions: VersionSet, size: int, erased_devices: frozenset[str] = frozenset()) -> LedgerView:
    """The pure view holding these versions' states, as of a log of ``size`` events; the
    exemptions in ``erased_devices`` had their covered devices erased from the ledger."""
    policies = {v.state.policy_id: v.state for v in versions.policies}
    exemptions = {v.state.exemption_id: v.state for v in versions.exemptions}
    return LedgerView(MappingProxyType(policies), MappingProxyType(exemptions), size, erased_devices=erased_devices)
