"""States as stored in the projection tables: a fixed text form, and exact round trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.state_codec import decode_exemption, decode_policy, encode_exemption, encode_policy
from ledger.states import ExemptionState, Grantee, PolicyState, Scope

GRANTED = datetime(2025, 2, 3, tzinfo=UTC)
EXEMPTION = ExemptionState(
    exemption_id="EX-1", policy_id="POL-1", version=2, status="revoked",
    grantee=Grantee("cabinet-office", "Communication Service", "ukgov"), purpose="Public \"notices\"\n",
    devices=("CO-GCS-TT-001",), approved_by="Security Team", case_ref="CO-1", valid_from=GRANTED,
    expires_at=datetime(2025, 8, 3, 12, 30, 0, 5, tzinfo=UTC), revoked_at=GRANTED, seqs=(3, 9),
)  # fmt: skip
POLICY = PolicyState(
    policy_id="POL-1", version=1, status="active", app="TikTok", vendor="ByteDance Ltd.",
    scope=Scope(("*",), None), effective_from=GRANTED, review_due=None, last_review=None, lifted_at=None, seqs=(0,),
)  # fmt: skip


def test_an_exemption_is_stored_as_this_text() -> None:
    assert encode_exemption(EXEMPTION) == (
        '{"exemption_id":"EX-1","policy_id":"POL-1","version":2,"status":"revoked","grantee":{"organisation":'
        '"cabinet-office","unit":"Communication Service","account":"ukgov"},"purpose":"Public \\"notices\\"\\n",'
        '"devices":["CO-GCS-TT-001"],"approved_by":"Security Team","case_ref":"CO-1",'
        '"valid_from":"2025-02-03T00:00:00+00:00","expires_at":"2025-08-03T12:30:00.000005+00:00",'
        '"revoked_at":"2025-02-03T00:00:00+00:00","seqs":[3,9]}'
    )


def test_a_policy_is_stored_as_this_text() -> None:
    assert encode_policy(POLICY) == (
        '{"policy_id":"POL-1","version":1,"status":"active","app":"TikTok","vendor":"ByteDance Ltd.",'
        '"scope":{"organisations":["*"],"device_classes":null},"effective_from":"2025-02-03T00:00:00+00:00",'
        '"review_due":null,"last_review":null,"lifted_at":null,"seqs":[0]}'
    )


@pytest.mark.parametrize(
    "state",
    [EXEMPTION, ExemptionState(**{**EXEMPTION.__dict__, "devices": None, "revoked_at": None, "purpose": "Ünïcode ✓"})],
)
def test_an_exemption_reads_back_equal(state: ExemptionState) -> None:
    assert decode_exemption(encode_exemption(state)) == state


@pytest.mark.parametrize(
    "state",
    [POLICY, PolicyState(**{**POLICY.__dict__, "scope": Scope(("home-office",), ("corporate-mobile",)),
                            "review_due": GRANTED, "last_review": "no-change", "lifted_at": GRANTED})],
)  # fmt: skip
def test_a_policy_reads_back_equal(state: PolicyState) -> None:
    assert decode_policy(encode_policy(state)) == state


def test_a_policy_text_read_again_gives_the_state_read_before() -> None:
    text = encode_policy(POLICY)
    assert decode_policy(text) is decode_policy(text)  # the policies of many questions are decoded once
