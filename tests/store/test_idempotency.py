"""Idempotency keys, on every backend: the first claim wins; later ones see its answer."""

from __future__ import annotations

from ledger.store.base import Remembered, Store


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
