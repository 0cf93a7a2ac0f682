"""Token storage, on every backend: only hashes are kept; revocation is one-way."""

from __future__ import annotations

from ledger.store.base import Store
from ledger.tokens import TokenRecord, hash_token, new_token


def record(name: str = "alice", role: str = "policy-officer") -> tuple[str, TokenRecord]:
    secret, token_id = new_token()
    return secret, TokenRecord(token_id, name, role, hash_token(secret), created_at="")


async def test_a_token_is_found_by_the_hash_of_its_secret(store: Store) -> None:
    secret, token = record()
    await store.add_token(token)
    found = await store.find_token(hash_token(secret))
    assert found is not None
    assert (found.id, found.name, found.role, found.revoked_at) == (token.id, "alice", "policy-officer", None)


async def test_the_secret_itself_is_stored_nowhere(store: Store) -> None:
    secret, token = record()
    await store.add_token(token)
    assert secret not in repr(await store.tokens())


async def test_an_unknown_secret_finds_nothing(store: Store) -> None:
    assert await store.find_token(hash_token("plt_unknown")) is None


async def test_tokens_are_listed_in_the_order_they_were_made(store: Store) -> None:
    for name in ["a", "b", "c"]:
        await store.add_token(record(name)[1])
    assert [t.name for t in await store.tokens()] == ["a", "b", "c"]


async def test_a_revoked_token_is_marked_and_cannot_be_revoked_twice(store: Store) -> None:
    secret, token = record()
    await store.add_token(token)
    assert await store.revoke_token(token.id) is True
    assert await store.revoke_token(token.id) is False
    found = await store.find_token(hash_token(secret))
    assert found is not None
    assert found.revoked_at is not None
