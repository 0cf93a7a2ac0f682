"""The writer's lookups, and current decisions, on PostgreSQL find rows by their keys,
whatever the statistics say.

A new database's tables are empty and not yet analysed; a prepared statement planned then
keeps its plan on that connection while the tables grow. A lookup planned as a scan of
every row then costs more with every append, on each batch of every writer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from ledger.store.migrations import migrations
from ledger.store.postgres import _HEAD, _NODES, PostgresStore
from ledger.store.postgres_projections import _DECISION_NOW, _DECISIONS_NOW, _OPEN

Plan = str


@pytest.fixture
async def fresh(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a migrated schema whose tables were never analysed."""
    schema = f"plans_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    store = await PostgresStore.open(postgres_url, server_settings={"search_path": schema})
    await store.migrate()
    await store.close()
    conn = await asyncpg.connect(postgres_url, server_settings={"search_path": schema})
    try:
        yield conn
    finally:
        await conn.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def generic_plan(conn: asyncpg.Connection, query: str, types: str, values: str) -> Plan:
    """The plan a prepared ``query`` keeps once PostgreSQL plans it for any parameters."""
    await conn.execute(f"SET plan_cache_mode = force_generic_plan; PREPARE q({types}) AS {query}")
    return "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN EXECUTE q({values})"))


def seq_scanned(plan: Plan) -> set[str]:
    """The tables a plan reads every row of."""
    return {line.split(" on ")[1].split()[0] for line in plan.splitlines() if "Seq Scan on" in line}


_HEAD_ARGUMENTS = (
    "text[], text[], text[], text[], text[]",
    "'{policy/P-1,exemption/E-1}', '{P-1}', '{E-1}', '{policy-officer:1,anonymous}', '{key-1,key-2}'",
)


async def test_the_head_reads_the_last_event_and_the_streams_by_their_keys(fresh: asyncpg.Connection) -> None:
    found = await generic_plan(fresh, _HEAD, *_HEAD_ARGUMENTS)
    assert "Index Scan Backward using events_pkey" in found
    assert "on events_stream_version_key" in found or "using events_stream_version_key" in found  # by stream
    assert "Seq Scan on events" not in found


async def test_the_head_reads_the_frontier_and_the_open_versions_by_their_keys(fresh: asyncpg.Connection) -> None:
    found = await generic_plan(fresh, _HEAD, *_HEAD_ARGUMENTS)
    assert "using tree_nodes_pkey" in found
    assert "Index Scan Backward using policy_versions_pkey" in found
    assert "Index Scan Backward using exemption_versions_pkey" in found
    small = {"projection_positions", "log_keys"}  # a row per projection (one), and per key the log has had
    assert seq_scanned(found) <= small


async def test_stored_tree_nodes_are_read_by_their_key(fresh: asyncpg.Connection) -> None:
    found = await generic_plan(fresh, _NODES, "smallint[], bigint[]", "'{3,0}', '{0,8}'")
    assert "Index Scan using tree_nodes_pkey" in found
    assert "Seq Scan" not in found


async def test_the_head_reads_whether_a_batch_s_idempotency_keys_are_taken_by_their_key(
    fresh: asyncpg.Connection,
) -> None:
    found = await generic_plan(fresh, _HEAD, *_HEAD_ARGUMENTS)
    assert "Index Scan using idempotency_pkey" in found
    assert "Seq Scan on idempotency" not in found


def append_at_checks() -> str:
    """The checks append_at (as the latest migration to define it has it) makes under the lock,
    as one query of its arguments."""
    function = [sql for _, sql in migrations("postgres") if "CREATE FUNCTION append_at(" in sql][-1]
    checks = re.search(r"LOCK TABLE events IN EXCLUSIVE MODE;.*?IF (.*?)\n\s*THEN", function, re.S)
    assert checks is not None
    names = ["at_size", "at_leaf_hash", "at_keys_from", "at_streams", "at_versions", "at_scopes", "at_keys", "at_taken"]
    return "SELECT " + re.sub(r"\bat_\w+\b", lambda m: f"${names.index(m[0]) + 1}", checks[1])


async def test_append_at_checks_the_log_the_streams_and_the_keys_by_their_keys(fresh: asyncpg.Connection) -> None:
    types = "bigint, bytea, bigint, text[], integer[], text[], text[], boolean[]"
    found = await generic_plan(
        fresh, append_at_checks(), types, "5, '\\x00', 0, '{policy/P-1}', '{1}', '{a}', '{b}', '{f}'"
    )
    assert "Index Only Scan Backward using events_pkey" in found  # the last seq
    assert "Index Scan using events_pkey" in found  # the last leaf
    assert "using events_stream_version_key" in found  # each stream's version
    assert "Index Scan using idempotency_pkey" in found
    assert seq_scanned(found) <= {"log_keys"}  # a row per key the log has had


async def test_the_open_versions_a_batch_continues_are_read_by_their_key(fresh: asyncpg.Connection) -> None:
    found = await generic_plan(fresh, _OPEN, "text[], text[]", "'{POL-1}', '{EX-1,EX-2}'")
    assert "Index Scan Backward using policy_versions_pkey" in found
    assert "Index Scan Backward using exemption_versions_pkey" in found
    assert "Seq Scan on policy_versions" not in found
    assert "Seq Scan on exemption_versions" not in found
    assert "_now" not in found  # the indexes of current versions hold every open version


@pytest.mark.parametrize(
    ("query", "types", "values"),
    [
        (_DECISION_NOW, "text[], text, text", "'{a\x1f*,a\x1fo}', 'acct', 'o'"),
        (_DECISIONS_NOW, "text[], text[], text[], text[]", "'{a\x1f*}', '{a\x1fo}', '{acct}', '{o}'"),
    ],
    ids=["asked alone", "asked together"],
)
async def test_current_decisions_read_each_question_by_the_indexes_of_current_versions(
    fresh: asyncpg.Connection, query: str, types: str, values: str
) -> None:
    found = await generic_plan(fresh, query, types, values)
    assert "Bitmap Index Scan on policy_versions_scopes_now" in found
    assert "Index Scan using exemption_versions_account_now" in found
    assert not seq_scanned(found) & {"policy_versions", "exemption_versions"}
