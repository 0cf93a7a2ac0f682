"""Idempotency keys, on every backend: the first claim wins; later ones see its answer."""

from __future__ import annotations

from ledger.events import Draft
from ledger.store.base import Remembered, Store
from ledger.writer import Writer
from tests.backends import Backend


async def test_the_first_claim_of_a_key_is_granted(store: Store) -> None:
    assert await store.claim_idempotency("tok-1", "k", "hash-a") is None


async def test_a_second_claim_sees_the_first_still_running(store: Store) -> None:
    await store.claim_idempotency("tok-1", "k", "hash-a")
    assert await store.claim_idempotency("tok-1", "k", "hash-a") == Remembered("hash-a", None, None)


async def test_a_remembered_answer_is_returned_to_a_retry(store: Store) -> None:
    await store.claim_idempotency("tok-1", "k", "hash-a")
    await store.remember_idempotency("tok-1", "k", 201, b'{"seq": 3}')
    assert await store.claim_idempotency("tok-1", "k", "hash-b") == Remembered("hash-a", 201, b'{"seq": 3}')


async def test_a_released_claim_can_be_claimed_again(store: Store) -> None:
    await store.claim_idempotency("tok-1", "k", "hash-a")
    await store.remember_idempotency("tok-1", "k", None, None)
    assert await store.claim_idempotency("tok-1", "k", "hash-a") is None


async def test_keys_are_scoped_to_who_used_them(store: Store) -> None:
    await store.claim_idempotency("tok-1", "k", "hash-a")
    assert await store.claim_idempotency("tok-2", "k", "hash-a") is None


AGE = {
    "postgres": "UPDATE idempotency SET created_at = now() - interval '3 minutes'",
    "sqlite": "UPDATE idempotency SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-180 seconds')",
}


def claimed_draft(scope: str, key: str) -> Draft:
    return Draft("policy/P-1", "policy.issued", {"n": 1}, {"id": "o", "role": "policy-officer"}, claim=(scope, key))


async def test_the_event_a_claim_recorded_is_settled_in_its_transaction(store: Store, writer: Writer) -> None:
    await store.claim_idempotency("tok-1", "k", "hash-a")
    recorded = await writer.append(claimed_draft("tok-1", "k"))
    assert await store.claim_idempotency("tok-1", "k", "hash-a") == Remembered("hash-a", None, None, recorded.seq)


async def test_a_claim_that_recorded_nothing_for_two_minutes_is_taken_over(backend: Backend) -> None:
    await backend.store.claim_idempotency("tok-1", "k", "hash-a")
    await backend.execute(AGE[backend.name])
    assert await backend.store.claim_idempotency("tok-1", "k", "hash-b") is None
    assert await backend.store.claim_idempotency("tok-1", "k", "hash-c") == Remembered("hash-b", None, None)


async def test_a_fresh_claim_is_not_taken_over(store: Store) -> None:
    await store.claim_idempotency("tok-1", "k", "hash-a")
    assert await store.claim_idempotency("tok-1", "k", "hash-b") == Remembered("hash-a", None, None)


async def test_a_claim_that_recorded_its_event_is_never_taken_over(backend: Backend, writer: Writer) -> None:
    await backend.store.claim_idempotency("tok-1", "k", "hash-a")
    recorded = await writer.append(claimed_draft("tok-1", "k"))
    await backend.execute(AGE[backend.name])
    assert await backend.store.claim_idempotency("tok-1", "k", "hash-a") == Remembered(
        "hash-a", None, None, recorded.seq
    )


async def test_a_claim_whose_event_was_recorded_is_not_released_by_a_later_failure(
    store: Store, writer: Writer
) -> None:
    await store.claim_idempotency("tok-1", "k", "hash-a")
    recorded = await writer.append(claimed_draft("tok-1", "k"))
    await store.remember_idempotency("tok-1", "k", None, None)  # the answer failed after the commit
    assert await store.claim_idempotency("tok-1", "k", "hash-a") == Remembered("hash-a", None, None, recorded.seq)
