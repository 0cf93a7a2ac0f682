"""State is a fold of a stream's log events; misplaced events are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import schemas
from ledger.errors import VerificationError
from ledger.states import Grantee, Scope, evolve_exemption, evolve_policy, fold_exemption, fold_policy, stream_ids


def event(seq: int, stream: str, version: int, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": seq, "stream": stream, "version": version, "type": kind, "schema": f"{kind}/1",
        "recorded_at": "2025-02-07T10:00:00.000000Z", "actor": {"id": "tester", "role": "tester"}, "data": data,
    }  # fmt: skip


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


P, E = "policy/POL-1", "exemption/EX-1"
ISSUED = event(0, P, 1, "policy.issued", schemas.example("policy.issued/1"))
GRANTED = event(1, E, 1, "exemption.granted", schemas.example("exemption.granted/1"))


def test_issued_policy_is_active_with_its_app_and_scope() -> None:
    state = evolve_policy(None, ISSUED)
    assert (state.policy_id, state.version, state.status, state.app, state.vendor) == (
        "POL-1", 1, "active", "TikTok", "ByteDance Ltd."
    )  # fmt: skip
    assert state.scope == Scope(("*",), ("corporate-mobile",))
    assert (state.effective_from, state.seqs) == (utc(2023, 3, 16), (0,))


def test_an_amended_scope_replaces_the_old_one() -> None:
    amended = event(5, P, 2, "policy.amended", {"applies_to": {"organisations": ["dsit"]}, "reason": "r"})
    state = fold_policy([ISSUED, amended])
    assert state is not None
    assert (state.scope, state.version, state.seqs) == (Scope(("dsit",), None), 2, (0, 5))


def test_a_review_records_its_outcome_and_next_review_date() -> None:
    state = fold_policy([ISSUED, event(1, P, 2, "policy.reviewed", schemas.example("policy.reviewed/1"))])
    assert state is not None
    assert (state.last_review, state.review_due) == ("no-change", utc(2026, 2, 11))


def test_a_lift_marks_the_policy_lifted_from_its_effective_time() -> None:
    lifted = event(1, P, 2, "policy.lifted", schemas.example("policy.lifted/1"))
    state = fold_policy([ISSUED, lifted])
    assert state is not None
    assert (state.status, state.lifted_at) == ("lifted", utc(2026, 4, 1))


def test_granted_exemption_keeps_grantee_window_and_clear_devices() -> None:
    state = evolve_exemption(None, GRANTED)
    assert state.grantee == Grantee("cabinet-office", "Government Communication Service", "ukgov")
    assert (state.policy_id, state.devices) == ("POL-2023-TIKTOK", ("CO-GCS-TT-001",))
    assert (state.valid_from, state.expires_at) == (utc(2025, 2, 3), utc(2025, 8, 3))


def test_sealed_devices_are_kept_as_withheld() -> None:
    data = {**schemas.example("exemption.granted/1"), "devices": {"_sd": "abc"}, "mitigations": {"_sd": "def"}}
    state = evolve_exemption(None, event(1, E, 1, "exemption.granted", data))
    assert state.devices is None


def test_renewal_and_revocation_change_expiry_and_status() -> None:
    renewed = event(2, E, 2, "exemption.renewed", schemas.example("exemption.renewed/1"))
    revoked = event(3, E, 3, "exemption.revoked", schemas.example("exemption.revoked/1"))
    state = fold_exemption([GRANTED, renewed, revoked])
    assert state is not None
    assert (state.expires_at, state.status, state.revoked_at) == (utc(2026, 2, 3), "revoked", utc(2024, 11, 29, 17))


def test_amended_devices_replace_the_old_ones() -> None:
    amended = event(2, E, 2, "exemption.amended", schemas.example("exemption.amended/1"))
    state = fold_exemption([GRANTED, amended])
    assert state is not None
    assert state.devices == ("CO-GCS-TT-001", "CO-GCS-TT-002")


@pytest.mark.parametrize(
    "bad",
    [
        event(1, P, 3, "policy.amended", {"rationale": "x", "reason": "y"}),  # version gap
        event(1, "policy/POL-2", 2, "policy.amended", {"rationale": "x", "reason": "y"}),  # another stream
        event(1, P, 2, "exemption.revoked", {"reason": "x", "effective_at": "2025-01-01T00:00:00Z"}),  # wrong kind
        event(1, P, 2, "policy.issued", schemas.example("policy.issued/1")),  # issued twice
    ],
)
def test_a_misplaced_event_does_not_verify(bad: dict[str, Any]) -> None:
    with pytest.raises(VerificationError, match=r"seq 1: .* cannot be version"):
        fold_policy([ISSUED, bad])


def test_a_change_before_the_first_event_does_not_verify() -> None:
    with pytest.raises(VerificationError, match=r"exemption\.renewed cannot be version 1"):
        evolve_exemption(None, event(0, E, 1, "exemption.renewed", schemas.example("exemption.renewed/1")))


def test_an_empty_stream_has_no_state() -> None:
    assert fold_policy([]) is None


def test_stream_ids_are_the_policy_and_exemption_ids_of_the_streams_each_once() -> None:
    streams = ["exemption/E-2", "policy/P-1", "exemption/E-1", "policy/P-1", "other/X"]
    assert stream_ids(streams) == (["P-1"], ["E-1", "E-2"])
