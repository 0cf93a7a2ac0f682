"""A batch sealed ahead of the lock is stored, in a transaction of its own, only if under the
lock the log is where the batch assumed; else nothing is stored. On every backend; then on
PostgreSQL, where it is one statement: at other isolation levels than READ COMMITTED, and
where it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from ledger.auditing import audit_store
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import Unavailable
from ledger.events import Claim, Recorded, check_draft, seal_event
from ledger.merkle import NodeKey, frontier_keys, frontier_root, perfect_nodes_completed
from ledger.signing import Signer
from ledger.store.base import Assumed, Batch, Remembered, Store
from ledger.store.postgres import PostgresStore
from ledger.verify import TrustedKey
from ledger.writer import Writer
from tests.backends import Backend, postgres_backend
from tests.store.test_contract import draft
from tests.store.test_sealing_ahead import audited

CLAIM = Claim("policy-officer:1", "key-1", "0" * 64)


@dataclass(frozen=True)
class Next:
    """The next event, sealed where the log ends, and what it assumed."""

    at: Assumed
    event: Recorded
    nodes: list[tuple[NodeKey, bytes]]
    checkpoint: tuple[int, bytes]


async def sealed_next(store: Store, signer: Signer) -> Next:
    async with store.write() as tx:
        head = await tx.head(["policy/P-1"], [(CLAIM.scope, CLAIM.key)])
        stored = await tx.read_nodes(frontier_keys(head.size))
    frontier = [stored[k] for k in frontier_keys(head.size)]
    checked = check_draft(draft("policy/P-1", claim=CLAIM), signer.name)
    version = head.versions.get("policy/P-1", 0) + 1
    event = seal_event(checked, signer, seq=head.size, version=version, recorded_at="2026-12-04T10:00:00.000000Z",
                       prev=head.last_leaf_hash)  # fmt: skip
    nodes = perfect_nodes_completed(head.size, event.leaf_hash, frontier)
    note = sign_checkpoint(Checkpoint(signer.name, head.size + 1, frontier_root(frontier)), signer)
    at = Assumed(head.size, head.last_leaf_hash, head.keys_from, {"policy/P-1": version - 1},
                 frozenset({(CLAIM.scope, CLAIM.key)}), head.taken)  # fmt: skip
    return Next(at, event, nodes, (head.size + 1, note))


async def append_at(store: Store, next_: Next, at: Assumed) -> bool:
    claims = [(CLAIM, next_.event.seq)]
    return await store.append_at(at, Batch([next_.event], next_.nodes, [], next_.checkpoint, claims))


@pytest.fixture
async def log(store: Store, writer: Writer) -> Store:
    for i in range(5):
        await writer.append(draft(f"policy/P-{i % 2}"))
    await writer.close()
    return store


async def test_a_batch_where_the_log_is_as_assumed_is_stored_with_its_checkpoint_and_keys(
    log: Store, signer: Signer
) -> None:
    next_ = await sealed_next(log, signer)
    assert await append_at(log, next_, next_.at)
    checkpoint = await audit_store(log, signer.name, [TrustedKey(signer.verifier)], workers=1)
    assert checkpoint is not None
    assert checkpoint.size == 6
    assert await log.find_idempotency(CLAIM.scope, CLAIM.key) == Remembered(CLAIM.request_hash, None, None, 5)


@pytest.mark.parametrize(
    "moved",
    [
        pytest.param({"size": 4}, id="the log grew since"),
        pytest.param({"last_leaf_hash": b"x" * 32}, id="the log ends in another leaf"),
        pytest.param({"keys_from": -1}, id="a newer key took over"),
        pytest.param({"versions": {"policy/P-1": 1}}, id="the stream is at another version"),
        pytest.param({"taken": frozenset({(CLAIM.scope, CLAIM.key)})}, id="a key assumed taken is free"),
    ],
)
async def test_a_batch_assumed_on_a_log_that_is_not_so_stores_nothing(
    log: Store, signer: Signer, moved: dict[str, object]
) -> None:
    next_ = await sealed_next(log, signer)
    before = await log.latest_checkpoint()
    assert not await append_at(log, next_, replace(next_.at, **moved))  # type: ignore[arg-type]
    assert await log.log_size() == 5
    assert await log.latest_checkpoint() == before
    assert await log.find_idempotency(CLAIM.scope, CLAIM.key) is None


async def test_a_batch_assuming_a_key_free_that_was_settled_meanwhile_stores_nothing(
    log: Store, signer: Signer
) -> None:
    next_ = await sealed_next(log, signer)
    async with log.write() as tx:
        await tx.settle_claims([(CLAIM, 2)])
    assert not await append_at(log, next_, next_.at)
    assert await log.log_size() == 5
    assert await log.find_idempotency(CLAIM.scope, CLAIM.key) == Remembered(CLAIM.request_hash, None, None, 2)


async def test_a_batch_that_waited_for_the_lock_is_checked_on_what_committed_meanwhile(
    log: Store, signer: Signer
) -> None:
    next_ = await sealed_next(log, signer)
    async with log.write() as tx:  # another writer holds the lock...
        waiting = asyncio.create_task(append_at(log, next_, next_.at))
        await asyncio.sleep(0.3)  # ...while the batch asks for it
        await tx.settle_claims([(CLAIM, 2)])  # and settles the batch's key before it lets go
    assert not await waiting
    assert await log.log_size() == 5


@pytest.fixture
async def postgres(postgres_url: str) -> AsyncIterator[Backend]:
    async with postgres_backend(postgres_url) as backend:
        yield backend


async def test_under_repeatable_read_postgresql_stores_nothing_by_append_at(postgres: Backend, signer: Signer) -> None:
    # Its snapshot would be taken before the wait for the lock, and hide what committed meanwhile.
    settings = {"search_path": str(postgres.schema), "default_transaction_isolation": "repeatable read"}
    store = await PostgresStore.open(postgres.url, server_settings=settings)
    try:
        writer = Writer(store, signer)
        await writer.start()
        await writer.append(draft("policy/P-1"))
        next_ = await sealed_next(store, signer)
        stored = await append_at(store, next_, next_.at)
        await asyncio.gather(*(writer.append(draft(f"policy/P-{i}")) for i in range(2, 40)))
        await writer.close()
        assert not stored
        assert writer.sealed_ahead > 0  # sealed ahead, and found to hold by the head read under the lock
        assert await audited(store, signer) == 39
    finally:
        await store.close()


async def test_an_append_at_that_fails_fails_its_batch_only(postgres: Backend, signer: Signer) -> None:
    await postgres.execute("DROP FUNCTION append_at")  # a log migrated by an earlier version
    writer = Writer(postgres.store, signer)
    await writer.start()
    await writer.append(draft("policy/P-1"))
    failed = await asyncio.gather(writer.append(draft("policy/P-2")), return_exceptions=True)  # sealed ahead
    after = await writer.append(draft("policy/P-3"))  # the writer forgot where the log ends: under the lock
    await writer.close()
    assert isinstance(failed[0], Unavailable)
    assert "policy-ledger migrate" in str(failed[0])
    assert after.seq == 1
    assert await audited(postgres.store, signer) == 2


async def test_an_append_at_kept_waiting_past_the_lock_timeout_is_refused_for_a_retry(
    postgres: Backend, signer: Signer
) -> None:
    writer = Writer(postgres.store, signer)
    await writer.start()
    await writer.append(draft("policy/P-1"))
    await writer.close()
    next_ = await sealed_next(postgres.store, signer)
    settings = {"search_path": str(postgres.schema), "lock_timeout": "100ms"}
    store = await PostgresStore.open(postgres.url, server_settings=settings)
    try:
        async with postgres.store.write():  # another writer holds the lock
            with pytest.raises(Unavailable, match="retry"):
                await append_at(store, next_, next_.at)
    finally:
        await store.close()
    assert await postgres.store.log_size() == 1
