"""Tamper evidence: an attacker with database access bypasses the triggers; verify notices."""

from __future__ import annotations

import json

import pytest

from ledger.auditing import audit_store
from ledger.canonical import canonical
from ledger.errors import VerificationError
from ledger.merkle import leaf_hash
from ledger.signing import Signer
from ledger.verify import TrustedKey
from ledger.writer import Writer
from tests.backends import Backend
from tests.store.test_contract import draft

SIZE = 10


@pytest.fixture
async def log(backend: Backend, writer: Writer) -> Backend:
    for i in range(SIZE):
        await writer.append(draft(f"policy/P-{i % 3}", data={"i": i}))
    return backend


async def audit(backend: Backend, signer: Signer, trusted: bytes | None = None) -> None:
    await audit_store(backend.store, signer.name, [TrustedKey(signer.verifier)], trusted=trusted, workers=1)


async def leaf(backend: Backend, seq: int) -> bytes:
    [row] = await backend.store.read_leaves(seq, seq + 1)
    return row.leaf


async def test_an_untouched_log_verifies(log: Backend, signer: Signer) -> None:
    await audit(log, signer)


async def test_one_changed_byte_is_found_at_its_seq(log: Backend, signer: Signer) -> None:
    altered = (await leaf(log, 4)).replace(b'"i":4', b'"i":5')
    await log.tamper(f"UPDATE events SET leaf = {log.bytea(altered)} WHERE seq = 4")
    with pytest.raises(VerificationError) as e:
        await audit(log, signer)
    assert e.value.seq == 4


async def test_a_deleted_event_is_found_at_its_seq(log: Backend, signer: Signer) -> None:
    await log.tamper("DELETE FROM events WHERE seq = 6")
    with pytest.raises(VerificationError, match="missing") as e:
        await audit(log, signer)
    assert e.value.seq == 7


async def test_two_swapped_events_are_found(log: Backend, signer: Signer) -> None:
    three, four = await leaf(log, 3), await leaf(log, 4)
    await log.tamper(
        f"UPDATE events SET leaf = {log.bytea(four)} WHERE seq = 3",
        f"UPDATE events SET leaf = {log.bytea(three)} WHERE seq = 4",
    )
    with pytest.raises(VerificationError, match="leaf says seq 4") as e:
        await audit(log, signer)
    assert e.value.seq == 3


def forge(leaf_bytes: bytes, attacker: Signer, key_id: str) -> bytes:
    """The event with other data, signed by ``attacker`` under ``key_id``."""
    event = json.loads(leaf_bytes)
    event["data"] = {"i": 999}
    event["key_id"] = key_id
    del event["sig"]
    event["sig"] = attacker.sign_event(event)
    return canonical(event)


async def test_an_event_re_signed_by_another_key_is_found(log: Backend, signer: Signer) -> None:
    attacker = Signer.generate(signer.name)
    forged = forge(await leaf(log, 5), attacker, attacker.key_id.hex())
    await log.tamper(
        f"UPDATE events SET leaf = {log.bytea(forged)}, leaf_hash = {log.bytea(leaf_hash(forged))} WHERE seq = 5"
    )
    with pytest.raises(VerificationError, match="not a trusted key") as e:
        await audit(log, signer)
    assert e.value.seq == 5


async def test_a_re_signed_event_claiming_the_log_key_fails_its_signature(log: Backend, signer: Signer) -> None:
    forged = forge(await leaf(log, 2), Signer.generate(signer.name), signer.key_id.hex())
    await log.tamper(f"UPDATE events SET leaf = {log.bytea(forged)} WHERE seq = 2")
    with pytest.raises(VerificationError, match="signature does not verify") as e:
        await audit(log, signer)
    assert e.value.seq == 2


async def test_a_rollback_is_found_by_the_latest_stored_checkpoint(log: Backend, signer: Signer) -> None:
    await log.tamper("DELETE FROM events WHERE seq >= 7", "DELETE FROM tree_nodes WHERE idx * (1 << level) >= 7")
    with pytest.raises(VerificationError, match="latest checkpoint covers 10 events but the log holds only 7"):
        await audit(log, signer)


async def test_a_rollback_with_checkpoints_removed_is_found_by_a_saved_checkpoint(log: Backend, signer: Signer) -> None:
    saved = await log.store.latest_checkpoint()
    await log.tamper(
        "DELETE FROM events WHERE seq >= 7",
        "DELETE FROM tree_nodes WHERE idx * (1 << level) >= 7",
        "DELETE FROM checkpoints WHERE size > 7",
    )
    await audit(log, signer)  # the log alone looks whole again...
    with pytest.raises(VerificationError, match="saved checkpoint covers 10 events but the log holds only 7"):
        await audit(log, signer, trusted=saved)  # ...but not to someone who kept a checkpoint


async def test_a_rewritten_history_is_found_by_a_saved_checkpoint(log: Backend, signer: Signer) -> None:
    saved = await log.store.latest_checkpoint()
    await log.tamper("DELETE FROM checkpoints")
    first = await leaf(log, 0)
    await log.tamper(f"UPDATE events SET leaf = {log.bytea(first + b' ')} WHERE seq = 0")
    with pytest.raises(VerificationError):
        await audit(log, signer, trusted=saved)


async def test_a_forged_checkpoint_is_refused(log: Backend, signer: Signer) -> None:
    from ledger.checkpoint import Checkpoint, sign_checkpoint

    forged = sign_checkpoint(Checkpoint(signer.name, 12, b"\x00" * 32), Signer.generate(signer.name))
    await log.tamper(f"INSERT INTO checkpoints (size, note) VALUES (12, {log.bytea(forged)})")
    with pytest.raises(VerificationError, match="not signed by any known key"):
        await audit(log, signer)
