"""A log whose key was replaced: its bundles and receipts verify with every key it has had."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledger import cli, exporting
from ledger.bundle import Selection
from ledger.errors import InvalidInput, Unavailable
from ledger.offline import BundleError, LogKey, parse_vkey, verify_bundle, verify_receipt
from ledger.policy import ReviewPolicy
from ledger.projector import VersionProjector
from ledger.seed import CABINET_OFFICE, POLICY_ID
from ledger.service import LedgerService
from ledger.signing import Signer
from ledger.writer import Writer
from tests.domain.conftest import Ledger
from tests.export.conftest import ALL, EXPORTED_AT, FOI_OFFICER, raw

REVIEW = {"outcome": "no-change", "summary": "Reviewed under the new key.", "reviewed_at": "2025-06-01T00:00:00Z"}


@pytest.fixture
def new_signer(signer: Signer) -> Signer:
    return Signer.generate(signer.name)


@pytest.fixture
async def rotated(told: Ledger, new_signer: Signer) -> AsyncIterator[Ledger]:
    """The story under the first key (seqs 0-5), then a review under the new one (seq 6)."""
    await told.writer.close()
    writer = Writer(told.store, new_signer, projectors=[VersionProjector()], clock=told.clock)
    await writer.start()
    service = LedgerService(told.store, writer, clock=told.clock)
    await service.execute(ReviewPolicy(POLICY_ID, REVIEW), CABINET_OFFICE.id, CABINET_OFFICE.role)
    yield Ledger(service, writer, told.store, told.clock)
    await writer.close()


@pytest.fixture
def keys(key: LogKey, new_signer: Signer) -> list[LogKey]:
    return [key, parse_vkey(new_signer.verifier.vkey)]


async def bundle_of(ledger: Ledger, signer: Signer) -> bytes:
    selection = Selection("policy", POLICY_ID)
    return raw(await exporting.export(ledger.store, signer, selection, ALL, FOI_OFFICER, EXPORTED_AT))


async def test_a_bundle_spanning_both_keys_verifies_with_both(
    rotated: Ledger, new_signer: Signer, keys: list[LogKey]
) -> None:
    bundle = verify_bundle(await bundle_of(rotated, new_signer), keys)
    signed_by = [entry.event["key_id"] for entry in bundle.entries]
    assert signed_by == [keys[0].key_id_hex] * 6 + [keys[1].key_id_hex]


async def test_with_the_new_key_alone_the_old_events_are_not_trusted(
    rotated: Ledger, new_signer: Signer, keys: list[LogKey]
) -> None:
    with pytest.raises(BundleError, match=f"seq 0: the event is signed by key '{keys[0].key_id_hex}', not a trusted"):
        verify_bundle(await bundle_of(rotated, new_signer), keys[1])


async def test_with_the_old_key_alone_the_new_checkpoint_is_not_trusted(
    rotated: Ledger, new_signer: Signer, keys: list[LogKey]
) -> None:
    with pytest.raises(BundleError, match="no valid signature by a trusted log key"):
        verify_bundle(await bundle_of(rotated, new_signer), keys[0])


async def test_a_receipt_for_an_event_under_the_old_key_verifies_with_both(rotated: Ledger, keys: list[LogKey]) -> None:
    assert verify_receipt(raw(await exporting.receipt(rotated.store, 2)), keys).entry.seq == 2


def test_keys_of_two_logs_are_refused_together(key: LogKey) -> None:
    other = parse_vkey(Signer.generate("another.example/log").verifier.vkey)
    with pytest.raises(BundleError, match="all of the same log"):
        verify_bundle(b"{}", [key, other])


async def test_the_command_line_takes_a_key_for_each_key_the_log_has_had(
    rotated: Ledger,
    new_signer: Signer,
    keys: list[LogKey],
    signer: Signer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "answer.bundle.json.gz"
    path.write_bytes(await bundle_of(rotated, new_signer))
    both = ["--key", signer.verifier.vkey, "--key", new_signer.verifier.vkey]
    assert cli.main(["verify", "--bundle", str(path), *both]) == 0
    assert "VERIFIED" in capsys.readouterr().out
    assert cli.main(["verify", "--bundle", str(path), "--key", new_signer.verifier.vkey]) == 1
    assert "not a trusted log key" in capsys.readouterr().err


async def test_a_writer_refuses_the_key_the_log_moved_on_from(rotated: Ledger, signer: Signer) -> None:
    size = await rotated.store.log_size()
    with pytest.raises(InvalidInput, match=f"signing key {signer.key_id.hex()} is one this log moved on from at seq 6"):
        await Writer(rotated.store, signer).start()
    assert await rotated.store.log_size() == size


async def test_a_writer_whose_key_the_log_moved_on_from_while_it_ran_fails_its_next_batch(
    told: Ledger, new_signer: Signer
) -> None:
    size = await told.store.log_size()
    other = Writer(told.store, new_signer)  # another process, started with the new key file
    await other.start()
    await other.close()
    with pytest.raises(Unavailable, match=f"moved on from this process's signing key at seq {size}"):
        await told.service.execute(ReviewPolicy(POLICY_ID, REVIEW), CABINET_OFFICE.id, CABINET_OFFICE.role)
    assert await told.store.log_size() == size
