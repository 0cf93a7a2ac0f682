"""Receipts: an event, its inclusion proof and the signed checkpoint, verifiable alone."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from ledger import exporting
from ledger.errors import NotFound
from ledger.offline import BundleError, LogKey, parse_vkey, verify_receipt
from ledger.policy import ReviewPolicy
from ledger.seed import CABINET_OFFICE, POLICY_ID
from ledger.signing import Signer
from tests.domain.conftest import Ledger
from tests.export.conftest import raw


@pytest.fixture
async def receipt(told: Ledger) -> dict[str, Any]:
    return await exporting.receipt(told.store, 3)


async def test_a_receipt_for_every_event_of_the_story_verifies_offline(told: Ledger, key: LogKey) -> None:
    for seq in range(6):
        assert verify_receipt(raw(await exporting.receipt(told.store, seq)), key).entry.seq == seq


async def test_a_receipt_stays_valid_after_the_log_grows(told: Ledger, receipt: dict[str, Any], key: LogKey) -> None:
    await told.service.execute(*_another_review())
    assert verify_receipt(raw(receipt), key).checkpoint.size == 6


def test_a_receipt_names_its_event(receipt: dict[str, Any], key: LogKey) -> None:
    verified = verify_receipt(raw(receipt), key)
    assert (verified.entry.event["type"], verified.entry.event["stream"]) == (
        "exemption.granted",
        "exemption/EX-2025-UKGOV",
    )


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda r: r.update(leaf=r["leaf"].replace("A", "B", 1)), "seq 3"),
        (lambda r: r["inclusion"]["hashes"].reverse(), "seq 3: the inclusion proof does not lead"),
        (lambda r: r.update(checkpoint=r["checkpoint"].replace("\n6\n", "\n9\n")), "no valid signature"),
        (lambda r: r.update(seq=2), "does not say it is seq 2"),
        (lambda r: r["event"]["data"].update(purpose="Anything."), "readable event differs from its signed leaf"),
        (lambda r: r["inclusion"].update(size=5), "not for the tree size of its checkpoint"),
        (lambda r: r.update(leaf_hash=base64.b64encode(bytes(32)).decode()), "leaf_hash is not the hash of its leaf"),
        (lambda r: r["event"].update(v=True), "readable event differs from its signed leaf"),
    ],
    ids=["leaf", "proof", "checkpoint", "seq", "readable-event", "size", "leaf-hash", "true-for-1"],
)
def test_an_altered_receipt_does_not_verify(receipt: dict[str, Any], key: LogKey, change: Any, complaint: str) -> None:
    changed = copy.deepcopy(receipt)
    change(changed)
    with pytest.raises(BundleError, match=complaint):
        verify_receipt(raw(changed), key)


def test_a_receipt_checked_with_another_key_does_not_verify(receipt: dict[str, Any], signer: Signer) -> None:
    with pytest.raises(BundleError, match="no valid signature"):
        verify_receipt(raw(receipt), parse_vkey(Signer.generate(signer.name).verifier.vkey))


async def test_no_receipt_for_an_event_not_yet_recorded(told: Ledger) -> None:
    with pytest.raises(NotFound, match="seq 6 is not yet in a signed checkpoint"):
        await exporting.receipt(told.store, 6)


def test_the_receipt_leaf_is_the_served_leaf_input(receipt: dict[str, Any]) -> None:
    assert base64.b64decode(receipt["leaf"]).startswith(b'{"actor":')


def _another_review() -> tuple[Any, str, str]:
    review = {"outcome": "no-change", "summary": "Still no changes.", "reviewed_at": "2025-03-01T00:00:00Z"}
    return ReviewPolicy(POLICY_ID, review), CABINET_OFFICE.id, CABINET_OFFICE.role


def test_a_receipt_naming_a_member_twice_does_not_verify(receipt: dict[str, Any], key: LogKey) -> None:
    text = raw(receipt).replace(b'"event":{', b'"event":{"type":"exemption.revoked",', 1)
    with pytest.raises(BundleError, match="names the same member twice"):
        verify_receipt(text, key)
