"""PostgreSQL takes a batch's first seq and time once, and its hashes as one bytea each
(migration 0012): every row still holds its own event's seq, time and hashes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from ledger.events import Recorded, check_draft, seal_event
from ledger.signing import Signer
from ledger.store.base import Batch
from ledger.store.postgres import _append_arguments
from ledger.writer import Writer
from tests.backends import Backend, postgres_backend
from tests.store.test_contract import draft


@pytest.fixture
async def postgres(postgres_url: str) -> AsyncIterator[Backend]:
    async with postgres_backend(postgres_url) as backend:
        yield backend


def sealed(seq: int, recorded_at: str, signer: Signer) -> Recorded:
    checked = check_draft(draft(f"policy/P-{seq}"), signer.name)
    return seal_event(checked, signer, seq=seq, version=1, recorded_at=recorded_at, prev=b"\0" * 32)


async def test_each_row_of_a_batch_holds_its_own_seq_time_and_hashes(postgres: Backend, signer: Signer) -> None:
    writer = Writer(postgres.store, signer, max_batch=64)
    await writer.start()
    try:
        first = await writer.append(draft("policy/P-0"))
        events = [first, *await asyncio.gather(*(writer.append(draft(f"policy/P-{i}")) for i in range(1, 40)))]
        assert writer.batches < 40  # batches of several events
    finally:
        await writer.close()
    conn = await asyncpg.connect(postgres.url, server_settings={"search_path": str(postgres.schema)})
    try:
        rows = await conn.fetch("SELECT seq, recorded_at, leaf, leaf_hash FROM events ORDER BY seq")
        nodes = await conn.fetch("SELECT level, idx, hash FROM tree_nodes")
    finally:
        await conn.close()
    assert [r["seq"] for r in rows] == [e.seq for e in events] == list(range(40))
    assert [r["recorded_at"] for r in rows] == [datetime.fromisoformat(e.event["recorded_at"]) for e in events]
    assert [bytes(r["leaf_hash"]) for r in rows] == [hashlib.sha256(b"\0" + bytes(r["leaf"])).digest() for r in rows]
    stored = {(n["level"], n["idx"]): bytes(n["hash"]) for n in nodes}
    assert [stored[(0, seq)] for seq in range(40)] == [bytes(r["leaf_hash"]) for r in rows]
    for (level, idx), digest in stored.items():  # above the leaves, the hash of the node's two children
        if level:
            children = stored[(level - 1, 2 * idx)] + stored[(level - 1, 2 * idx + 1)]
            assert digest == hashlib.sha256(b"\1" + children).digest()


def test_a_batch_whose_seqs_are_not_consecutive_is_refused_before_it_is_sent(signer: Signer) -> None:
    at = "2026-12-04T10:00:00.000000Z"
    with pytest.raises(ValueError, match="consecutive seqs"):
        _append_arguments(Batch([sealed(3, at, signer), sealed(5, at, signer)], [], [], None))


def test_a_batch_of_two_times_is_refused_before_it_is_sent(signer: Signer) -> None:
    events = [sealed(3, "2026-12-04T10:00:00.000000Z", signer), sealed(4, "2026-12-04T10:00:01.000000Z", signer)]
    with pytest.raises(ValueError, match="one recorded_at"):
        _append_arguments(Batch(events, [], [], None))
