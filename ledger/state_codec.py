"""Policy and exemption states as JSON text, for the projection tables; exact round trips.

The object's keys are the state's field names, in order (orjson writes the dataclass);
times are ISO 8601 with their UTC offset, and microseconds when there are any; tuples
become arrays. Decoding gives back a state equal to the one encoded. No I/O here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from ledger.states import ExemptionState, Grantee, PolicyState, Scope
from ledger.versions import ExemptionTerm, ExemptionVersion, PolicyVersion, VersionSet

__all__ = [
    "ExemptionRow",
    "PolicyRow",
    "VersionRow",
    "decode_exemption",
    "decode_policy",
    "encode_exemption",
    "encode_policy",
    "exemption_row",
    "policy_row",
    "version_set",
]


def encode_policy(state: PolicyState) -> str:
    return orjson.dumps(state).decode()


@functools.lru_cache(maxsize=1024)
def decode_policy(text: str) -> PolicyState:
    """The state ``text`` encodes; remembered for the last 1,024 texts, as the few policies a
    question falls under come back with every question about their app (states are frozen)."""
    fields: dict[str, Any] = orjson.loads(text)
    scope = fields["scope"]
    classes = scope["device_classes"]
    return PolicyState(
        **fields
        | {
            "scope": Scope(tuple(scope["organisations"]), None if classes is None else tuple(classes)),
            "effective_from": datetime.fromisoformat(fields["effective_from"]),
            "review_due": _parse(fields["review_due"]),
            "lifted_at": _parse(fields["lifted_at"]),
            "seqs": tuple(fields["seqs"]),
        }
    )


def encode_exemption(state: ExemptionState) -> str:
    return orjson.dumps(state).decode()


def decode_exemption(text: str) -> ExemptionState:
    fields: dict[str, Any] = orjson.loads(text)
    devices = fields["devices"]
    return ExemptionState(
        **fields
        | {
            "grantee": Grantee(**fields["grantee"]),
            "devices": None if devices is None else tuple(devices),
            "valid_from": datetime.fromisoformat(fields["valid_from"]),
            "expires_at": datetime.fromisoformat(fields["expires_at"]),
            "revoked_at": _parse(fields["revoked_at"]),
            "seqs": tuple(fields["seqs"]),
        }
    )


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# -- rows of the projection tables ---------------------------------------------------------

# policy_id, from_seq, to_seq, app_key, organisation_keys, state
PolicyRow = tuple[str, int, int | None, str, tuple[str, ...], str]
# exemption_id, from_seq, to_seq, policy_id, account_key, organisation_key, devices_sd, state
ExemptionRow = tuple[str, int, int | None, str, str, str, str | None, str]
# "p", "e" (or "t", a term), from_seq, to_seq, state, devices_sd: what the read queries select
VersionRow = tuple[str, int, int | None, str, str | None]


def policy_row(version: PolicyVersion) -> PolicyRow:
    state = version.state
    return (state.policy_id, version.from_seq, version.to_seq, version.app_key, version.organisation_keys,
            encode_policy(state))  # fmt: skip


def exemption_row(version: ExemptionVersion) -> ExemptionRow:
    state = version.state
    return (state.exemption_id, version.from_seq, version.to_seq, state.policy_id, version.account_key,
            version.organisation_key, version.devices_sd, encode_exemption(state))  # fmt: skip


def version_set(rows: Iterable[VersionRow]) -> VersionSet:
    """The versions a read query selected, each row ``(kind, from_seq, to_seq, state, devices_sd)``;
    of kind "t", an exemption's term: ``state`` valid_from|expires_at|revoked_at, ``devices_sd`` its policy."""
    policies, exemptions, terms = [], [], []
    for kind, from_seq, to_seq, state, devices_sd in rows:
        if kind == "p":
            policies.append(PolicyVersion(from_seq, to_seq, decode_policy(state)))
        elif kind == "e":
            exemptions.append(ExemptionVersion(from_seq, to_seq, decode_exemption(state), devices_sd))
        else:
            valid_from, expires_at, revoked_at = state.split("|")
            terms.append(ExemptionTerm(str(devices_sd), datetime.fromisoformat(valid_from),
                                       datetime.fromisoformat(expires_at), _parse(revoked_at or None)))  # fmt: skip
    return VersionSet(tuple(policies), tuple(exemptions), tuple(terms))
