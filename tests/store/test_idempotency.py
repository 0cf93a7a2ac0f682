"""Idempotency keys, on every backend: a key is settled, with the seq of the event its request
recorded, in the transaction that records it; a later draft with a settled key writes nothing."""

from __future__ import annotations

import asyncio

import pytest

from ledger.errors import IdempotencyKeyTaken, VersionConflict
from ledger.events import Claim, Draft, Recorded
from ledger.store.base import Remembered, Store
from ledger.writer import Writer
from tests.backends import Backend

CLAIM = Claim("tok-1", "k", "hash-a")


def claimed_draft(claim: Claim, policy: str = "P-1", expected_version: int | None = None) -> Draft:
    return Draft(f"policy/{policy}", "policy.issued", {"n": 1}, {"id": "o", "role": "policy-officer"},
                 expected_version=expected_version, claim=claim)  # fmt: skip


async def test_a_key_no_event_settled_is_not_found(store: Store) -> None:
    assert await store.find_idempotency("tok-1", "k") is None


async def test_the_event_a_claimed_draft_records_settles_its_key(store: Store, writer: Writer) -> None:
    recorded = await writer.append(claimed_draft(CLAIM))
    assert await store.find_idempotency("tok-1", "k") == Remembered("hash-a", None, None, recorded.seq)


async def test_keys_settled_in_a_transaction_of_their_own_are_found(store: Store) -> None:
    async with store.write() as tx:
        await tx.settle_claims([(CLAIM, 5)])
    assert await store.find_idempotency("tok-1", "k") == Remembered("hash-a", None, None, 5)


async def test_keys_are_scoped_to_who_used_them(store: Store, writer: Writer) -> None:
    await writer.append(claimed_draft(CLAIM))
    assert await store.find_idempotency("tok-2", "k") is None
    recorded = await writer.append(claimed_draft(Claim("tok-2", "k", "hash-a"), "P-2"))
    assert await store.find_idempotency("tok-2", "k") == Remembered("hash-a", None, None, recorded.seq)


async def test_a_draft_whose_key_was_settled_before_is_refused_and_writes_nothing(store: Store, writer: Writer) -> None:
    await writer.append(claimed_draft(CLAIM))
    with pytest.raises(IdempotencyKeyTaken, match="another request with Idempotency-Key 'k' was recorded first"):
        await writer.append(claimed_draft(CLAIM, "P-2"))
    assert await store.log_size() == 1


async def test_of_two_drafts_with_one_key_in_one_batch_only_the_first_is_recorded(store: Store, writer: Writer) -> None:
    batches = writer.batches
    first, second = await asyncio.gather(
        writer.append(claimed_draft(CLAIM)), writer.append(claimed_draft(CLAIM, "P-2")), return_exceptions=True
    )
    assert writer.batches == batches + 1
    assert isinstance(first, Recorded)
    assert isinstance(second, IdempotencyKeyTaken)
    assert await store.log_size() == 1


async def test_a_draft_refused_for_its_version_leaves_its_key_unused(store: Store, writer: Writer) -> None:
    with pytest.raises(VersionConflict):
        await writer.append(claimed_draft(CLAIM, expected_version=3))
    assert await store.find_idempotency("tok-1", "k") is None
    await writer.append(claimed_draft(CLAIM))


async def test_a_claim_an_earlier_version_left_unsettled_is_taken_over(backend: Backend, writer: Writer) -> None:
    await backend.execute("INSERT INTO idempotency (scope, key, request_hash) VALUES ('tok-1', 'k', 'hash-old')")
    assert await backend.store.find_idempotency("tok-1", "k") is None
    recorded = await writer.append(claimed_draft(CLAIM))
    assert await backend.store.find_idempotency("tok-1", "k") == Remembered("hash-a", None, None, recorded.seq)


async def test_an_answer_an_earlier_version_stored_is_found(backend: Backend, writer: Writer) -> None:
    body = backend.bytea(b'{"seq": 3}')
    await backend.execute(
        f"INSERT INTO idempotency (scope, key, request_hash, status, body) VALUES ('tok-1', 'k', 'hash-a', 201, {body})"
    )
    assert await backend.store.find_idempotency("tok-1", "k") == Remembered("hash-a", 201, b'{"seq": 3}')
    with pytest.raises(IdempotencyKeyTaken):
        await writer.append(claimed_draft(CLAIM))


OLD = "2020-01-01T00:00:00.000Z"  # a moment the tests make a key's first use, as both backends write it


async def test_keys_first_used_the_given_hours_ago_or_more_are_forgotten_and_newer_ones_kept(
    backend: Backend, writer: Writer
) -> None:
    await writer.append(claimed_draft(CLAIM))
    recent = await writer.append(claimed_draft(Claim("tok-1", "k-new", "hash-b"), "P-2"))
    await backend.execute(f"UPDATE idempotency SET created_at = '{OLD}' WHERE key = 'k'")
    assert await backend.store.forget_idempotency(24) == 1
    assert await backend.store.find_idempotency("tok-1", "k") is None
    assert await backend.store.find_idempotency("tok-1", "k-new") == Remembered("hash-b", None, None, recent.seq)


async def test_a_forgotten_key_is_a_new_key(backend: Backend, writer: Writer) -> None:
    await writer.append(claimed_draft(CLAIM))
    await backend.execute(f"UPDATE idempotency SET created_at = '{OLD}'")
    await backend.store.forget_idempotency(24)
    again = await writer.append(claimed_draft(CLAIM, "P-2"))
    assert await backend.store.find_idempotency("tok-1", "k") == Remembered("hash-a", None, None, again.seq)


async def test_nothing_to_forget_forgets_nothing(store: Store, writer: Writer) -> None:
    await writer.append(claimed_draft(CLAIM))
    assert await store.forget_idempotency(24) == 0
    assert await store.find_idempotency("tok-1", "k") is not None
