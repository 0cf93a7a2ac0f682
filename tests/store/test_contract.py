"""The store contract: every backend (SQLite and PostgreSQL) must pass every test here."""

from __future__ import annotations

import asyncio
import base64
import itertools
from datetime import UTC, datetime

import pytest

from ledger import merkle, proofs
from ledger.auditing import audit_store
from ledger.checkpoint import open_checkpoint
from ledger.errors import EventTooLarge, InvalidInput, NotCanonical, NotFound, VersionConflict
from ledger.events import MAX_EVENT_BYTES, ZERO_HASH, Disclosure, Draft, Recorded, format_time
from ledger.read_cache import Commits
from ledger.signing import Signer
from ledger.store.base import Store
from ledger.store.migrations import migrations
from ledger.verify import TrustedKey
from ledger.writer import Writer
from tests.backends import Backend

ACTOR = {"id": "officer-1", "role": "policy-officer"}


def draft(stream: str = "policy/P-1", data: object = None, **kw: object) -> Draft:
    return Draft(stream, "policy.issued", data if data is not None else {"n": 1}, ACTOR, **kw)  # type: ignore[arg-type]


async def test_migrate_twice_applies_nothing_the_second_time(store: Store) -> None:
    assert await store.migrate() == []
    assert await store.pending_migrations() == []


async def test_every_backend_has_the_same_migrations() -> None:
    assert [n for n, _ in migrations("sqlite")] == [n for n, _ in migrations("postgres")]


async def test_first_event_has_seq_zero_version_one_and_zero_prev(writer: Writer) -> None:
    event = await writer.append(draft())
    assert (event.seq, event.version, event.event["prev"]) == (0, 1, base64.b64encode(ZERO_HASH).decode())


async def test_leaf_is_stored_exactly_as_hashed(writer: Writer, store: Store) -> None:
    event = await writer.append(draft(data={"text": "é ☃ 𝄞", "n": -7}))
    [row] = await store.read_leaves(0, 1)
    assert (row.leaf, row.leaf_hash) == (event.leaf, merkle.leaf_hash(event.leaf))


async def test_prev_links_each_event_to_the_one_before(writer: Writer) -> None:
    first = await writer.append(draft())
    second = await writer.append(draft("policy/P-2"))
    assert base64.b64decode(second.event["prev"]) == first.leaf_hash


async def test_stream_versions_count_up_per_stream(writer: Writer) -> None:
    versions = [(await writer.append(draft(s))).version for s in ["policy/A", "policy/B", "policy/A"]]
    assert versions == [1, 1, 2]


async def test_stale_expected_version_is_refused_and_writes_nothing(writer: Writer, store: Store) -> None:
    await writer.append(draft())
    with pytest.raises(VersionConflict, match="policy/P-1 is at version 1, not 0"):
        await writer.append(draft(expected_version=0))
    assert await store.log_size() == 1


async def test_a_batch_reports_the_events_it_recorded_not_those_refused_as_stale(writer: Writer) -> None:
    await writer.append(draft())
    reported: list[tuple[int, bool]] = []
    writer.on_batch = lambda events, seconds, committed, sealing: reported.append((events, committed))
    outcomes = await asyncio.gather(
        writer.append(draft(expected_version=0)), writer.append(draft(expected_version=1)), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [VersionConflict, Recorded]
    assert sum(events for events, _ in reported) == 1
    assert all(committed for _, committed in reported)


async def test_a_draft_requiring_another_stream_at_a_version_it_left_is_refused(writer: Writer, store: Store) -> None:
    await writer.append(draft(stream="policy/A"))
    await writer.append(draft(stream="policy/A"))
    with pytest.raises(VersionConflict, match="policy/A moved on from version 1"):
        await writer.append(draft(stream="exemption/E", requires=(("policy/A", 1),)))
    assert await store.log_size() == 2
    assert (await writer.append(draft(stream="exemption/E", requires=(("policy/A", 2),)))).seq == 2


async def test_matching_expected_version_is_appended(writer: Writer) -> None:
    await writer.append(draft())
    assert (await writer.append(draft(expected_version=1))).version == 2


async def test_concurrent_appends_get_gap_free_seqs_and_a_verifying_chain(
    writer: Writer, store: Store, signer: Signer
) -> None:
    events = await asyncio.gather(*(writer.append(draft(f"policy/P-{i % 7}")) for i in range(300)))
    assert sorted(e.seq for e in events) == list(range(300))
    checkpoint = await audit_store(store, signer.name, [TrustedKey(signer.verifier)], workers=1)
    assert checkpoint is not None
    assert checkpoint.size == 300
    leaves = await store.read_leaves(0, 300)
    assert checkpoint.root == merkle.root_from_leaf_hashes([merkle.leaf_hash(r.leaf) for r in leaves])


async def test_concurrent_appends_are_committed_in_batches(writer: Writer) -> None:
    await asyncio.gather(*(writer.append(draft()) for _ in range(200)))
    assert writer.batches < 200


async def test_appends_queued_while_the_writer_waits_for_the_lock_go_in_its_batch(writer: Writer, store: Store) -> None:
    sizes: list[int] = []
    writer.on_batch = lambda events, seconds, committed, sealing: sizes.append(events)
    async with store.write():  # another writer (on PostgreSQL perhaps another process) holds the log's lock
        first = asyncio.create_task(writer.append(draft("policy/A")))
        await asyncio.sleep(0.1)  # the writer has taken it, and waits for the lock
        rest = [asyncio.create_task(writer.append(draft(f"policy/B-{i}"))) for i in range(5)]
        await asyncio.sleep(0.1)
    assert sorted(e.seq for e in await asyncio.gather(first, *rest)) == list(range(6))
    assert sizes == [6]


async def test_a_signed_checkpoint_is_stored_after_each_batch(writer: Writer, store: Store, signer: Signer) -> None:
    await writer.append(draft())
    await writer.append(draft())
    note = await store.latest_checkpoint()
    assert note is not None
    checkpoint, _ = open_checkpoint(note, signer.name, [signer.verifier])
    assert checkpoint.size == 2
    assert await store.checkpoint(1) is not None


async def test_every_proof_verifies_from_stored_nodes(writer: Writer, store: Store) -> None:
    events = [await writer.append(draft()) for _ in range(13)]
    for size in range(1, 14):
        root = await proofs.root_at(store.read_nodes, size)
        for e in events[:size]:
            merkle.verify_inclusion(
                e.seq, size, e.leaf_hash, await proofs.inclusion_proof(store.read_nodes, e.seq, size), root
            )
        for old in range(1, size + 1):
            proof = await proofs.consistency_proof(store.read_nodes, old, size)
            merkle.verify_consistency(old, size, await proofs.root_at(store.read_nodes, old), root, proof)


async def test_a_proof_beyond_the_log_is_not_found(writer: Writer, store: Store) -> None:
    await writer.append(draft())
    with pytest.raises(NotFound, match="fewer than 5 events"):
        await proofs.inclusion_proof(store.read_nodes, 0, 5)


async def test_signing_key_is_recorded_from_the_seq_it_starts_at(writer: Writer, store: Store, signer: Signer) -> None:
    [key] = await store.keys()
    assert (key.key_id, key.vkey, key.from_seq) == (signer.key_id.hex(), signer.verifier.vkey, 0)


async def test_recorded_time_never_runs_backwards_when_a_clock_steps_back(backend: Backend, signer: Signer) -> None:
    late, early = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC)
    clock = [late]
    writer = Writer(backend.store, signer, clock=lambda: clock[0])
    await writer.start()
    first = await writer.append(draft())
    clock[0] = early
    second = await writer.append(draft())
    await writer.close()
    restarted = Writer(backend.store, signer, clock=lambda: early)  # a new process: the end is read back
    await restarted.start()
    third = await restarted.append(draft())
    await restarted.close()
    assert [e.event["recorded_at"] for e in (first, second, third)] == [format_time(late)] * 3


async def test_a_second_writer_continues_the_same_chain(backend: Backend, signer: Signer) -> None:
    first = Writer(backend.store, signer)
    await first.start()
    await first.append(draft())
    await first.close()
    other = await backend.reopen()
    second = Writer(other, signer)
    await second.start()
    event = await second.append(draft())
    await second.close()
    await other.close()
    assert event.seq == 1
    assert await audit_store(backend.store, signer.name, [TrustedKey(signer.verifier)], workers=1) is not None


async def test_writers_taking_turns_continue_each_others_chain(store: Store, signer: Signer) -> None:
    one, two = Writer(store, signer), Writer(store, signer)  # as two processes sharing a database
    await one.start()
    await two.start()
    events = [await w.append(draft(f"policy/P-{i}")) for i, w in enumerate([one, two, one, one, two])]
    await one.close()
    await two.close()
    assert [e.seq for e in events] == list(range(5))
    assert all(base64.b64decode(b.event["prev"]) == a.leaf_hash for a, b in itertools.pairwise(events))
    checkpoint = await audit_store(store, signer.name, [TrustedKey(signer.verifier)], workers=1)
    assert checkpoint is not None
    assert checkpoint.size == 5


async def test_stream_leaves_reads_the_events_of_the_streams_named_in_seq_order(writer: Writer, store: Store) -> None:
    for stream in ["policy/A", "policy/B", "policy/A", "policy/C", "policy/B"]:
        await writer.append(draft(stream=stream))
    assert [row.seq for row in await store.stream_leaves("policy/A", "policy/B")] == [0, 1, 2, 4]
    assert [row.seq for row in await store.stream_leaves("policy/C")] == [3]
    assert await store.stream_leaves("policy/none") == []


async def test_disclosures_are_stored_beside_the_event(writer: Writer, store: Store) -> None:
    secret = Disclosure("digest-1", "national-security", "mitigations", b'["salt",["separate network"]]')
    await writer.append(draft(disclosures=(secret,)))
    assert await store.disclosures(["digest-1", "unknown"]) == {"digest-1": secret.disclosure}


async def test_erasing_a_disclosure_leaves_the_log_verifying(writer: Writer, store: Store, signer: Signer) -> None:
    await writer.append(draft(disclosures=(Disclosure("d", "personal-data", "devices", b"[]"),)))
    assert await store.erase_disclosure("d") is True
    assert await store.disclosures(["d"]) == {}
    assert await audit_store(store, signer.name, [TrustedKey(signer.verifier)], workers=1) is not None


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET type = 'x'",
        "DELETE FROM events",
        "UPDATE tree_nodes SET level = 9",
        "DELETE FROM tree_nodes",
        "DELETE FROM checkpoints",
        "UPDATE log_keys SET from_seq = 5",
    ],
)
async def test_log_tables_refuse_changes_to_history(backend: Backend, writer: Writer, sql: str) -> None:
    await writer.append(draft())
    with pytest.raises(Exception, match="refused: the log is append-only"):
        await backend.execute(sql)
    assert await backend.store.log_size() == 1


async def test_truncate_is_refused_on_postgres(backend: Backend, writer: Writer) -> None:
    if backend.name != "postgres":
        pytest.skip("SQLite has no TRUNCATE; its DELETE triggers cover it")
    await writer.append(draft())
    with pytest.raises(Exception, match="TRUNCATE on events refused"):
        await backend.execute("TRUNCATE events")


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"score": 1.5}, NotCanonical, "float"),
        ({"big": 2**60}, NotCanonical, "beyond"),
        ({"bad": "\udc80"}, NotCanonical, "surrogate"),
        ({1: "x"}, NotCanonical, "not a string"),
        ({"app": {"name": "Tik\x00Tok"}}, InvalidInput, "/data/app/name.*U\\+0000"),
        ({"Tik\x00Tok": 1}, InvalidInput, "U\\+0000"),
        ({"blob": "x" * MAX_EVENT_BYTES}, EventTooLarge, "limit is 65536"),
        ([1, 2], InvalidInput, "JSON object"),
    ],
)
async def test_bad_input_is_refused_and_writes_nothing(
    writer: Writer, store: Store, data: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await writer.append(draft(data=data))
    assert await store.log_size() == 0


async def test_a_bad_append_does_not_harm_good_ones_around_it(writer: Writer, store: Store) -> None:
    results = await asyncio.gather(
        writer.append(draft()), writer.append(draft(data={"f": 0.5})), writer.append(draft()), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == ["Recorded", "NotCanonical", "Recorded"]
    assert await store.log_size() == 2


async def test_a_closed_writer_refuses_new_appends(writer: Writer) -> None:
    await writer.close()
    with pytest.raises(Exception, match="not accepting appends"):
        await writer.append(draft())


async def test_with_an_interval_the_tail_still_gets_a_checkpoint(store: Store, signer: Signer) -> None:
    writer = Writer(store, signer, checkpoint_interval=0.05)
    await writer.start()
    await asyncio.gather(*(writer.append(draft()) for _ in range(3)))
    await writer.append(draft())
    await asyncio.sleep(0.3)
    await writer.close()
    note = await store.latest_checkpoint()
    assert note is not None
    assert open_checkpoint(note, signer.name, [signer.verifier])[0].size == 4


async def test_the_checkpoint_signed_for_the_tail_counts_as_a_commit(store: Store, signer: Signer) -> None:
    commits = Commits()
    writer = Writer(store, signer, checkpoint_interval=0.5, commits=commits)
    await writer.start()
    await writer.append(draft())  # with a checkpoint
    await writer.append(draft())  # within the interval: none yet
    await asyncio.sleep(1.0)
    await writer.close()
    note = await store.latest_checkpoint()
    assert note is not None
    assert open_checkpoint(note, signer.name, [signer.verifier])[0].size == 2
    assert (writer.batches, commits.total) == (2, 3)  # remembered reads of the checkpoint are stale
