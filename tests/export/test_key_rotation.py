"""A log whose key was replaced: its bundles and receipts verify with every key it has had."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledger import cli, exporting
from ledger.bundle import Selection
from ledger.checkpoint import open_checkpoint, sign_checkpoint
from ledger.errors import InvalidInput, Unavailable
from ledger.offline import BundleError, LogKey, keyring, parse_vkey, trusted_key, verify_bundle, verify_receipt
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


@pytest.fixture
def terms(signer: Signer, new_signer: Signer) -> list[LogKey]:
    """Each key with the seq the log took it up at: the first from 0, the new one from 6."""
    return [trusted_key(f"{signer.verifier.vkey}@0"), trusted_key(f"{new_signer.verifier.vkey}@6")]


@pytest.fixture
async def forged(told: Ledger) -> Ledger:
    """The history someone holding the first key, after the log moved on from it, could write: seq 6
    and the checkpoint of 7 events signed with the old key."""
    await told.service.execute(ReviewPolicy(POLICY_ID, REVIEW), CABINET_OFFICE.id, CABINET_OFFICE.role)
    return told


def test_a_key_given_with_a_seq_is_trusted_from_that_seq_until_the_next_keys(terms: list[LogKey]) -> None:
    ring = keyring(terms)
    assert [(k.from_seq, k.until_seq) for k in ring] == [(0, 6), (6, None)]
    assert (ring[0].signs(5), ring[0].signs(6), ring[1].signs(5), ring[1].signs(6)) == (True, False, False, True)


def test_a_checkpoint_is_trusted_from_a_key_for_the_sizes_its_term_reached(terms: list[LogKey]) -> None:
    old, new = keyring(terms)
    assert (old.covers(6), old.covers(7), new.covers(5), new.covers(6)) == (True, False, False, True)


def test_a_key_file_takes_a_seq_after_its_name(signer: Signer, tmp_path: Path) -> None:
    (tmp_path / "old.vkey").write_text(signer.verifier.vkey + "\n")
    assert trusted_key(f"{tmp_path / 'old.vkey'}@12").from_seq == 12


def test_an_at_sign_in_a_logs_name_is_not_taken_for_a_seq() -> None:
    named = Signer.generate("ledger@example.org/log").verifier.vkey
    assert trusted_key(named).from_seq == 0
    assert trusted_key(f"{named}@3").from_seq == 3


@pytest.mark.parametrize("seq", ["", "x", "-1", "1e3", "9" * 19])
def test_a_seq_that_is_not_a_whole_number_is_refused(signer: Signer, seq: str) -> None:
    with pytest.raises(BundleError, match="after @ comes the seq from which the log used the key, a whole number"):
        trusted_key(f"{signer.verifier.vkey}@{seq}")


def test_a_key_given_twice_from_different_seqs_is_refused(signer: Signer) -> None:
    with pytest.raises(BundleError, match="a key is given twice, from different seqs"):
        keyring([trusted_key(signer.verifier.vkey), trusted_key(f"{signer.verifier.vkey}@4")])


async def test_a_rotated_logs_bundle_verifies_with_each_key_in_its_term(
    rotated: Ledger, new_signer: Signer, terms: list[LogKey]
) -> None:
    assert len(verify_bundle(await bundle_of(rotated, new_signer), terms).entries) == 7


async def test_a_checkpoint_the_old_key_signed_after_the_log_moved_on_is_refused(
    forged: Ledger, signer: Signer, terms: list[LogKey]
) -> None:
    with pytest.raises(BundleError) as caught:
        verify_bundle(await bundle_of(forged, signer), terms)
    assert str(caught.value) == (
        f"the checkpoint of 7 events is signed by key {signer.key_id.hex()}, trusted only from seq 0 until seq 6, "
        "when the log moved on to its next key"
    )


async def test_a_manifest_the_old_key_signed_for_a_later_checkpoint_is_refused(
    rotated: Ledger, signer: Signer, terms: list[LogKey]
) -> None:
    with pytest.raises(BundleError, match=f"the manifest is signed by key {signer.key_id.hex()}, trusted only from "
                                          "seq 0 until seq 6, .*, not for a checkpoint of 7 events"):  # fmt: skip
        verify_bundle(await bundle_of(rotated, signer), terms)


async def test_an_event_the_old_key_signed_after_its_term_is_refused_under_any_checkpoint(
    forged: Ledger, signer: Signer, new_signer: Signer, terms: list[LogKey]
) -> None:
    receipt = await exporting.receipt(forged.store, 6)
    stated, _ = open_checkpoint(receipt["checkpoint"].encode(), signer.name, [signer.verifier])
    receipt["checkpoint"] = sign_checkpoint(stated, new_signer).decode()  # as if the log had signed it
    assert verify_receipt(raw(receipt), [*terms[:1], parse_vkey(new_signer.verifier.vkey)]).entry.seq == 6
    with pytest.raises(BundleError, match=f"seq 6: the event is signed by key {signer.key_id.hex()}, trusted only "
                                          "from seq 0 until seq 6"):  # fmt: skip
        verify_receipt(raw(receipt), terms)


def verify_with_terms(bundle: bytes, old: Signer, new: Signer, folder: Path) -> int:
    """``policy-ledger verify --bundle`` with the first key from seq 0 and the new one from 6."""
    path = folder / "answer.bundle.json.gz"
    path.write_bytes(bundle)
    return cli.main(["verify", "--bundle", str(path), "--key", f"{old.verifier.vkey}@0",
                     "--key", f"{new.verifier.vkey}@6"])  # fmt: skip


async def test_the_command_line_takes_each_key_with_the_seq_the_log_took_it_up_at(
    rotated: Ledger, signer: Signer, new_signer: Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_with_terms(await bundle_of(rotated, new_signer), signer, new_signer, tmp_path) == 0
    assert "VERIFIED" in capsys.readouterr().out


async def test_the_command_line_refuses_what_the_old_key_signed_after_its_term(
    forged: Ledger, signer: Signer, new_signer: Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_with_terms(await bundle_of(forged, signer), signer, new_signer, tmp_path) == 1
    assert "NOT VERIFIED: the checkpoint of 7 events is signed by key" in capsys.readouterr().err


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
