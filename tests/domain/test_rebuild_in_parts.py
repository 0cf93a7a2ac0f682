"""A PostgreSQL rebuild: new tables that take the old ones' place, filled by several processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from ledger.errors import VerificationError
from ledger.policy import GrantExemption, IssuePolicy, LiftPolicy, RenewExemption, RevokeExemption, required_role
from ledger.projector import NAME, VersionProjector, rebuild
from ledger.service import LedgerService
from ledger.signing import Signer
from ledger.store.postgres import PostgresStore
from ledger.store.postgres_projections import PostgresProjectionWrites
from ledger.writer import Writer
from tests.backends import Backend, postgres_backend
from tests.domain.commands import at, ban, grant, lift, renew, revoke
from tests.domain.conftest import Clock, Ledger

INDEXES = """
SELECT tablename, indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename LIKE '%versions%' ORDER BY indexname
"""
CONSTRAINTS = """
SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid IN ('policy_versions'::regclass, 'exemption_versions'::regclass) ORDER BY conname
"""
GRANTS = """
SELECT c.relname, coalesce(r.rolname, 'PUBLIC'), a.privilege_type, a.is_grantable
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE c.oid IN ('policy_versions'::regclass, 'exemption_versions'::regclass) AND a.grantee <> c.relowner
ORDER BY 1, 2, 3
"""


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Backend]:
    async with postgres_backend(postgres_url) as backend:
        yield backend


@pytest.fixture
async def story(pg: Backend, signer: Signer) -> AsyncIterator[Ledger]:
    """Twelve policies with two exemptions each, some renewed, revoked or lifted."""
    clock = Clock(at("2025-03-01"))
    writer = Writer(pg.store, signer, projectors=[VersionProjector()], clock=clock)
    await writer.start()
    ledger = Ledger(LedgerService(pg.store, writer, clock=clock), writer, pg.store, clock)
    for p in range(12):
        commands = [IssuePolicy(f"P-{p}", ban(app=f"App-{p}"))]
        for e in range(2):
            commands.append(GrantExemption(f"E-{p}-{e}", f"P-{p}", grant(account=f"acct-{p}-{e}")))
        commands += [RenewExemption(f"E-{p}-0", renew()), RevokeExemption(f"E-{p}-1", revoke())]
        if p % 3 == 0:
            commands.append(LiftPolicy(f"P-{p}", lift()))
        for command in commands:
            await ledger.service.execute(command, "tester", required_role(command))
    yield ledger
    await writer.close()


async def indexes(pg: Backend) -> list[tuple[str, ...]]:
    conn = await asyncpg.connect(pg.url, server_settings={"search_path": pg.schema or "public"})
    try:
        return [tuple(row) for query in (INDEXES, CONSTRAINTS) for row in await conn.fetch(query)]
    finally:
        await conn.close()


async def test_two_processes_rebuild_what_the_projector_kept(story: Ledger) -> None:
    kept = await story.store.all_versions()
    rebuilt = await rebuild(story.store, page=7, processes=2)
    assert rebuilt.events == await story.store.log_size()
    assert await story.store.all_versions() == kept
    assert await story.store.projection_position(NAME) == rebuilt.events


async def test_a_store_with_a_pool_of_one_connection_rebuilds_in_parts(story: Ledger, pg: Backend) -> None:
    single = await PostgresStore.open(pg.url, max_size=1, server_settings={"search_path": pg.schema or "public"})
    try:
        rebuilt = await asyncio.wait_for(rebuild(single, processes=2), 30)
    finally:
        await single.close()
    assert rebuilt.events == await story.store.log_size()


@pytest.mark.parametrize("processes", [1, 2])
async def test_the_rebuilt_tables_keep_every_index_key_and_check(story: Ledger, pg: Backend, processes: int) -> None:
    before = await indexes(pg)
    await rebuild(story.store, processes=processes)
    assert await indexes(pg) == before


@pytest.mark.parametrize("processes", [1, 2])
async def test_privileges_granted_on_the_version_tables_outlive_a_rebuild(
    story: Ledger, pg: Backend, processes: int
) -> None:
    role = f"reader_{uuid.uuid4().hex[:10]}"  # roles belong to the whole cluster: one of its own
    conn = await asyncpg.connect(pg.url, server_settings={"search_path": pg.schema or "public"})
    await conn.execute(f"CREATE ROLE {role}")
    try:
        await conn.execute(f"GRANT SELECT ON policy_versions, exemption_versions TO {role} WITH GRANT OPTION")
        await conn.execute("GRANT SELECT ON policy_versions TO PUBLIC")
        before = await conn.fetch(GRANTS)
        assert len(before) == 3
        await rebuild(story.store, processes=processes)
        assert await conn.fetch(GRANTS) == before
    finally:
        await conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
        await conn.close()


async def test_readers_that_prepared_their_queries_before_a_rebuild_read_after_it(story: Ledger) -> None:
    question = {"app": "App-1", "organisation": "cabinet-office", "account": "acct-1-0", "device": "CO-GCS-TT-001"}
    before = await story.service.decide(**question)  # the pool's connections now hold prepared statements
    await rebuild(story.store, processes=2)
    assert await story.service.decide(**question) == before


async def test_a_gap_in_the_log_is_named_and_the_old_projections_stay(story: Ledger, pg: Backend) -> None:
    kept = await story.store.all_versions()
    await pg.tamper("DELETE FROM events WHERE seq = 5")
    with pytest.raises(VerificationError, match="the log has a gap"):
        await rebuild(story.store, processes=2)
    assert await story.store.all_versions() == kept


async def test_a_rebuild_after_a_failed_one_starts_afresh(story: Ledger, pg: Backend) -> None:
    kept = await story.store.all_versions()
    [original] = await story.store.read_leaves(3, 4)
    await pg.tamper("UPDATE events SET leaf = convert_to('{\"not\": \"an event\"}', 'UTF8') WHERE seq = 3")
    with pytest.raises(VerificationError, match="seq 3"):
        await rebuild(story.store, processes=2)  # leaves its new tables half filled
    assert await story.store.all_versions() == kept
    await pg.tamper(f"UPDATE events SET leaf = {pg.bytea(original.leaf)} WHERE seq = 3")
    await rebuild(story.store, processes=2)
    assert await story.store.all_versions() == kept


class _Writes(PostgresProjectionWrites):
    """The projections' side of a transaction on ``conn``."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn


@pytest.mark.parametrize(("server", "during"), [("64MB", "256MB"), ("1GB", "1GB")])
async def test_a_rebuild_sorts_its_indexes_in_at_least_256mb_for_its_transaction_alone(
    pg: Backend, server: str, during: str
) -> None:
    settings = {"search_path": pg.schema or "public", "maintenance_work_mem": server}
    conn = await asyncpg.connect(pg.url, server_settings=settings)
    try:
        transaction = conn.transaction()
        await transaction.start()
        writes = _Writes(conn)
        await writes.make_rebuild_tables()
        await writes.finish_rebuild()
        assert await conn.fetchval("SHOW maintenance_work_mem") == during
        await transaction.rollback()
        assert await conn.fetchval("SHOW maintenance_work_mem") == server
    finally:
        await conn.close()
