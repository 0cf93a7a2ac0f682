"""The cache of stored tree hashes: a hash once read is served again without a read."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.merkle import NodeKey
from ledger.proofs import NodeCache

STORED = {(level, index): bytes([level, index]) * 16 for level in range(4) for index in range(8)}


class Stored:
    """Stored hashes, counting the keys each read asks for."""

    def __init__(self) -> None:
        self.asked: list[list[NodeKey]] = []

    async def __call__(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.asked.append(list(keys))
        return {key: STORED[key] for key in keys if key in STORED}


async def test_a_hash_read_once_is_served_again_without_a_read() -> None:
    stored = Stored()
    cache = NodeCache(stored)
    assert await cache([(0, 1), (1, 0)]) == {(0, 1): STORED[0, 1], (1, 0): STORED[1, 0]}
    assert await cache([(1, 0), (2, 0)]) == {(1, 0): STORED[1, 0], (2, 0): STORED[2, 0]}
    assert stored.asked == [[(0, 1), (1, 0)], [(2, 0)]]


async def test_a_hash_not_stored_is_missing_and_asked_for_again() -> None:
    stored = Stored()
    cache = NodeCache(stored)
    assert await cache([(9, 9)]) == {}
    assert await cache([(9, 9)]) == {}
    assert stored.asked == [[(9, 9)], [(9, 9)]]


async def test_the_least_recently_used_hash_goes_first_when_full() -> None:
    stored = Stored()
    cache = NodeCache(stored, capacity=2)
    await cache([(0, 0), (0, 1)])
    await cache([(0, 0)])  # (0, 1) is now the least recently used
    await cache([(0, 2)])
    await cache([(0, 0), (0, 1)])
    assert stored.asked[-1] == [(0, 1)]
