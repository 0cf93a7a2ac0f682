"""Sealing ahead: a writer seals its next batch while the one before commits, and seals it
again under the lock when the log is not where it guessed. On every backend."""

from __future__ import annotations

import asyncio
import base64
import itertools

import pytest

from ledger import writer as writer_module
from ledger.auditing import audit_store
from ledger.events import Claim, Draft, Recorded
from ledger.signing import Signer
from ledger.store.base import Store
from ledger.verify import TrustedKey
from ledger.writer import Writer

ACTOR = {"id": "officer-1", "role": "policy-officer"}


def draft(stream: str, **kw: object) -> Draft:
    return Draft(stream, "policy.issued", {"n": 1}, ACTOR, **kw)  # type: ignore[arg-type]


async def audited(store: Store, signer: Signer) -> int:
    checkpoint = await audit_store(store, signer.name, [TrustedKey(signer.verifier)], workers=1)
    assert checkpoint is not None
    return checkpoint.size


def chained(events: list[Recorded]) -> bool:
    ordered = sorted(events, key=lambda e: e.seq)
    return all(base64.b64decode(b.event["prev"]) == a.leaf_hash for a, b in itertools.pairwise(ordered))


async def test_batches_sealed_while_the_one_before_commits_go_in_as_sealed(writer: Writer, store: Store) -> None:
    await writer.append(draft("policy/P-0"))  # now the writer knows where the log ends
    events = await asyncio.gather(*(writer.append(draft(f"policy/P-{i}")) for i in range(1, 301)))
    assert writer.sealed_ahead > 0
    assert writer.sealed_again == 0
    assert sorted(e.seq for e in events) == list(range(1, 301))
    assert chained(list(events))


async def test_a_log_sealed_ahead_verifies(writer: Writer, store: Store, signer: Signer) -> None:
    await writer.append(draft("policy/P-0"))
    await asyncio.gather(*(writer.append(draft(f"policy/P-{i % 7}")) for i in range(1, 201)))
    assert writer.sealed_ahead > 0
    assert await audited(store, signer) == 201


async def test_versions_sealed_ahead_count_on_from_the_batch_before(writer: Writer) -> None:
    await writer.append(draft("policy/P-1"))
    events = await asyncio.gather(*(writer.append(draft("policy/P-1")) for _ in range(100)))
    assert writer.sealed_ahead > 0
    assert sorted(e.version for e in events) == list(range(2, 102))


async def test_a_key_taken_by_the_batch_before_is_refused_in_a_batch_sealed_ahead(writer: Writer) -> None:
    claim = Claim("policy-officer:1", "key-1", "0" * 64)
    await writer.append(draft("policy/P-1"))
    first = await writer.append(draft("policy/P-2", claim=claim))
    sealed_ahead = writer.sealed_ahead
    again = await asyncio.gather(writer.append(draft("policy/P-3", claim=claim)), return_exceptions=True)
    assert first.seq == 1
    assert writer.sealed_ahead == sealed_ahead + 1  # the refusal was decided ahead of the lock, and held
    assert "Idempotency-Key" in str(again[0])


async def test_a_batch_sealed_ahead_of_a_log_another_writer_moved_on_is_sealed_again(
    store: Store, signer: Signer
) -> None:
    one, two = Writer(store, signer), Writer(store, signer)  # as two processes sharing a database
    await one.start()
    await two.start()
    first = await one.append(draft("policy/P-1"))
    second = await two.append(draft("policy/P-1"))  # one guesses the log ends at 1, and P-1 at version 1
    third = await one.append(draft("policy/P-1"))
    await one.close()
    await two.close()
    assert (one.sealed_ahead, one.sealed_again) == (0, 1)
    assert [e.seq for e in (first, second, third)] == [0, 1, 2]
    assert [e.version for e in (first, second, third)] == [1, 2, 3]
    assert chained([first, second, third])
    assert await audited(store, signer) == 3


async def test_a_checkpoint_due_as_a_batch_sealed_ahead_misses_is_signed_where_the_batch_goes_in(
    store: Store, signer: Signer
) -> None:
    one, two = Writer(store, signer, checkpoint_interval=0.05), Writer(store, signer, checkpoint_interval=0.05)
    await one.start()
    await two.start()
    await one.append(draft("policy/P-1"))
    await two.append(draft("policy/P-2"))
    await asyncio.sleep(0.1)  # a checkpoint is due at one's next batch
    third = await one.append(draft("policy/P-3"))  # guesses the log ends at 1, finds it at 2
    checkpoint = await store.checkpoint(3)  # before one's timer could sign one for what is left
    await one.close()
    await two.close()
    assert (third.seq, one.sealed_again) == (2, 1)
    assert checkpoint is not None


async def test_a_guess_missed_only_on_a_stream_the_writer_forgot_leaves_it_sealing_ahead(
    store: Store, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "_KNOWN_LIMIT", 2)  # streams remembered: beyond it, all forgotten
    writer = Writer(store, signer)
    await writer.start()
    for stream in ("policy/P-1", "policy/P-2", "policy/P-3", "policy/P-4"):  # P-1 forgotten at P-4
        await writer.append(draft(stream))
    again = await writer.append(draft("policy/P-1"))  # guessed new, found at version 1
    ahead = writer.sealed_ahead
    await writer.append(draft("policy/P-5"))
    await writer.close()
    assert (again.version, writer.sealed_again) == (2, 1)
    assert writer.sealed_ahead == ahead + 1  # no other process moved the log: the next goes on ahead


async def test_a_writer_told_that_processes_take_turns_seals_under_the_lock(store: Store, signer: Signer) -> None:
    writer = Writer(store, signer, seal_ahead=False)
    await writer.start()
    await writer.append(draft("policy/P-0"))
    await asyncio.gather(*(writer.append(draft(f"policy/P-{i}")) for i in range(1, 101)))
    await writer.close()
    assert writer.sealed_ahead == 0
    assert await audited(store, signer) == 101


class _KeyOutOfReach(Signer):
    """A real key that, while ``out_of_reach``, fails to sign (as a hardware key unplugged would)."""

    out_of_reach = False

    def sign(self, message: bytes) -> bytes:
        if _KeyOutOfReach.out_of_reach:
            raise RuntimeError("the signing key is out of reach")
        return super().sign(message)


async def test_appends_whose_signing_fails_are_refused_and_the_writer_goes_on(store: Store) -> None:
    signer = _KeyOutOfReach.generate("ledger.example/log")
    writer = Writer(store, signer)
    await writer.start()
    try:
        await writer.append(draft("policy/P-0"))  # the next batch would be sealed ahead
        _KeyOutOfReach.out_of_reach = True
        failed = await asyncio.gather(writer.append(draft("policy/P-1")), return_exceptions=True)
        _KeyOutOfReach.out_of_reach = False
        after = await writer.append(draft("policy/P-2"))
    finally:
        _KeyOutOfReach.out_of_reach = False
        await writer.close()
    assert "out of reach" in str(failed[0])
    assert after.seq == 1
    assert await audited(store, signer) == 2
