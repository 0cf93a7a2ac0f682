"""A batch on PostgreSQL is four round trips, whichever process wrote the batch before it; one
sealed ahead by a writer that keeps no projection inline is one, unless the log moved on;
current decisions asked together are one.

The writer holds the log's lock from the first to the last, so each round trip it saves
is time another process's writer does not wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from ledger import schemas
from ledger.errors import IdempotencyKeyTaken, InvalidInput
from ledger.events import Claim, Draft
from ledger.projector import VersionProjector
from ledger.signing import Signer
from ledger.store.postgres import PostgresStore
from ledger.versions import FOREVER
from ledger.writer import Writer
from tests.backends import postgres_backend


@pytest.fixture
async def stores(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores of one log, as two processes would open it, each with one connection."""
    async with postgres_backend(postgres_url) as backend:
        settings = {"search_path": str(backend.schema)}
        first, second = [await PostgresStore.open(postgres_url, max_size=1, server_settings=settings) for _ in "ab"]
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()


def issued(policy_id: str) -> Draft:
    data = schemas.example("policy.issued/1")
    return Draft(f"policy/{policy_id}", "policy.issued", data, {"id": "officer", "role": "policy-officer"})


async def statements_of(store: PostgresStore) -> list[str]:
    """The statements the store's one connection sends from now on."""
    sent: list[str] = []
    async with store._pool.acquire() as conn:  # the pool's only connection: the writer's too
        conn.add_query_logger(lambda query: sent.append(query.query))
    return sent


async def test_a_batch_after_another_writers_is_four_round_trips(
    stores: tuple[PostgresStore, PostgresStore], signer: Signer
) -> None:
    first, second = stores
    mine = Writer(first, signer, projectors=[VersionProjector()])
    theirs = Writer(second, signer, projectors=[VersionProjector()])
    await mine.start()
    await theirs.start()
    try:
        await mine.append(issued("P-1"))
        await theirs.append(issued("P-2"))  # the log moved on: the frontier and versions mine remembers are stale
        sent = await statements_of(first)
        recorded = await mine.append(issued("P-3"))
    finally:
        await mine.close()
        await theirs.close()
    assert recorded.seq == 2
    assert len(sent) == 4, sent  # BEGIN and the lock; the head; the events with their versions; COMMIT
    assert sent[0].startswith("BEGIN")
    assert sent[-1] == "COMMIT"


async def test_a_batch_whose_appends_carry_idempotency_keys_is_four_round_trips_too(
    stores: tuple[PostgresStore, PostgresStore], signer: Signer
) -> None:
    first, _ = stores
    writer = Writer(first, signer, projectors=[VersionProjector()])
    await writer.start()
    try:
        await writer.append(issued("P-1"))
        sent = await statements_of(first)
        await writer.append(replace(issued("P-2"), claim=Claim("policy-officer:1", "key-1", "0" * 64)))
        refused = writer.append(replace(issued("P-3"), claim=Claim("policy-officer:1", "key-1", "1" * 64)))
        with pytest.raises(IdempotencyKeyTaken):
            await refused
    finally:
        await writer.close()
    assert len(sent) == 4 + 3, sent  # the keys are read with the head and settled with the events
    assert sent[4].startswith("BEGIN")  # the refused batch: its key was found taken with the head


async def test_a_batch_sealed_ahead_by_a_writer_without_projectors_is_one_round_trip(
    stores: tuple[PostgresStore, PostgresStore], signer: Signer
) -> None:
    first, _ = stores
    writer = Writer(first, signer)
    await writer.start()
    try:
        await writer.append(issued("P-1"))  # now the writer knows where the log ends: the next is sealed ahead
        await writer.append(issued("P-2"))  # (the connection learns the types of append_at's arguments)
        sent = await statements_of(first)
        recorded = await writer.append(issued("P-3"))
    finally:
        await writer.close()
    assert recorded.seq == 2
    assert writer.sealed_ahead == 2
    assert len(sent) == 1, sent  # the lock, the check of what the batch assumed, the rows, committed
    assert sent[0].startswith("SELECT append_at(")


async def test_a_batch_sealed_ahead_of_a_log_another_writer_moved_on_then_takes_four(
    stores: tuple[PostgresStore, PostgresStore], signer: Signer
) -> None:
    first, second = stores
    mine, theirs = Writer(first, signer), Writer(second, signer)
    await mine.start()
    await theirs.start()
    try:
        await mine.append(issued("P-1"))
        await mine.append(issued("P-2"))  # sealed ahead (the connection learns append_at's argument types)
        await theirs.append(issued("P-3"))
        sent = await statements_of(first)
        recorded = await mine.append(issued("P-4"))
    finally:
        await mine.close()
        await theirs.close()
    assert recorded.seq == 3
    assert (mine.sealed_ahead, mine.sealed_again) == (1, 1)
    assert len(sent) == 1 + 4, sent  # append_at stored nothing; then BEGIN and the lock, the head, the append, COMMIT
    assert sent[0].startswith("SELECT append_at(")
    assert sent[1].startswith("BEGIN")


async def test_current_decisions_asked_together_are_read_in_one_statement(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = stores
    sent = await statements_of(store)
    asked = [{"app": f"app-{i}", "organisation": "cabinet-office", "account": f"acct-{i}"} for i in range(20)]
    await asyncio.gather(*(store.decision_versions(FOREVER, **ask) for ask in asked))
    assert len(sent) == 2  # the first at once, on its own; the 19 asked meanwhile together


async def test_a_question_postgresql_refuses_fails_only_its_asker(stores: tuple[PostgresStore, PostgresStore]) -> None:
    store, _ = stores
    asked = [{"app": "TikTok", "organisation": "cabinet-office", "account": account} for account in ("a", "b\x00", "c")]
    answers = await asyncio.gather(*(store.decision_versions(FOREVER, **ask) for ask in asked), return_exceptions=True)
    assert [type(a) for a in answers] == [tuple, InvalidInput, tuple]
    assert "U+0000" in str(answers[1])
