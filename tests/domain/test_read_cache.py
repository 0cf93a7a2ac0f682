"""Current decisions through remembered reads (PostgreSQL): current after every write, wherever made."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from ledger.events import Draft
from ledger.policy import Command, GrantExemption, IssuePolicy, RevokeExemption, required_role
from ledger.projector import VersionProjector, rebuild
from ledger.read_cache import Commits, LogStamps, ReadCache
from ledger.sensitive import seal
from ledger.service import LedgerService
from ledger.signing import Signer
from ledger.store.base import AppendWatch, Store
from ledger.writer import Writer
from tests.backends import Backend, postgres_backend
from tests.domain.commands import ban, grant, revoke
from tests.domain.conftest import Clock

P, E = "POL-TT", "EX-1"
OFFICER = {"id": "sec-officer-1", "role": "security-officer"}
ASK = {"app": "TikTok", "organisation": "cabinet-office", "account": "ukgov", "device": "CO-GCS-TT-001"}


@dataclass
class Service:
    service: LedgerService
    writer: Writer
    watch: AppendWatch
    store: Store
    listened: int  # the watch's count before any append (starting to listen counts one)

    async def close(self) -> None:
        await self.writer.close()
        await self.watch.close()
        await self.store.close()

    async def record(self, command: Command) -> None:
        await self.service.execute(command, "tester", required_role(command))

    async def verdict(self) -> str:
        return (await self.service.decide(**ASK)).verdict


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Backend]:
    async with postgres_backend(postgres_url) as backend:
        yield backend


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 1, tzinfo=UTC))


@dataclass
class Deaf:
    """A watch that hears nothing: only the service's own count of commits moves."""

    heard: int | None = 0

    async def close(self) -> None:
        self.heard = None


async def started(pg: Backend, signer: Signer, clock: Clock, *, deaf: bool = False) -> Service:
    """A service with its own store, writer and cache, as one process of a deployment."""
    store = await pg.reopen()
    commits = Commits()
    writer = Writer(store, signer, projectors=[VersionProjector()], clock=clock, commits=commits)
    await writer.start()
    watch = Deaf() if deaf else await store.watch_appends()
    assert watch is not None
    decisions = ReadCache(100, LogStamps(commits, watch))
    return Service(LedgerService(store, writer, clock=clock, decisions=decisions), writer, watch, store,
                   watch.heard or 0)  # fmt: skip


@pytest.fixture
async def here(pg: Backend, signer: Signer, clock: Clock) -> AsyncIterator[Service]:
    service = await started(pg, signer, clock)
    await service.record(IssuePolicy(P, ban()))
    yield service
    await service.close()


async def test_a_decision_after_a_write_through_this_service_sees_it_at_once(here: Service) -> None:
    assert await here.verdict() == "prohibited"  # cached
    await here.record(GrantExemption(E, P, grant()))
    assert await here.verdict() == "allowed"
    await here.record(RevokeExemption(E, revoke(effective_at="2025-03-01T00:00:00Z")))
    assert await here.verdict() == "prohibited"


async def test_a_write_through_this_service_is_seen_before_any_notice_could_arrive(
    pg: Backend, signer: Signer, clock: Clock
) -> None:
    here = await started(pg, signer, clock, deaf=True)
    try:
        await here.record(IssuePolicy(P, ban()))
        assert await here.verdict() == "prohibited"  # cached
        await here.record(GrantExemption(E, P, grant()))
        assert await here.verdict() == "allowed"
    finally:
        await here.close()


async def test_a_write_through_another_process_is_seen_once_its_notice_arrives(
    here: Service, pg: Backend, signer: Signer, clock: Clock
) -> None:
    assert await here.verdict() == "prohibited"  # cached
    there = await started(pg, signer, clock)
    try:
        heard = here.watch.heard
        await there.record(GrantExemption(E, P, grant()))
        for _ in range(500):
            if here.watch.heard != heard:
                break
            await asyncio.sleep(0.01)
        assert await here.verdict() == "allowed"
    finally:
        await there.close()


async def heard(service: Service, notices: int) -> None:
    """Wait until ``notices`` notices (of appends or rebuilds) have arrived since the service
    started: waiting for the next one only could be satisfied by a late one from before."""
    for _ in range(500):
        if (service.watch.heard or 0) >= service.listened + notices:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{notices} notices did not arrive; the count is {service.watch.heard}")


async def test_a_cached_answer_is_served_without_reading_the_store(here: Service, pg: Backend) -> None:
    await here.record(GrantExemption(E, P, grant()))
    await heard(here, 2)  # the ban's and the grant's
    assert await here.verdict() == "allowed"
    await pg.execute("DELETE FROM exemption_versions")  # behind the service's back: no append, no notice
    assert await here.verdict() == "allowed"
    await here.record(IssuePolicy("POL-OTHER", ban(app="WeChat")))  # any append: read again
    assert await here.verdict() == "prohibited"


async def test_nothing_is_served_from_the_cache_while_appends_cannot_be_heard(here: Service, pg: Backend) -> None:
    await here.record(GrantExemption(E, P, grant()))
    assert await here.verdict() == "allowed"
    await here.watch.close()
    assert await here.verdict() == "allowed"  # read while deaf: must not be remembered either
    await pg.execute("DELETE FROM exemption_versions")
    assert await here.verdict() == "prohibited"


async def test_a_cached_exemption_still_expires_on_time(here: Service, clock: Clock) -> None:
    await here.record(GrantExemption(E, P, grant(expires_at="2025-08-03T00:00:00Z")))
    assert await here.verdict() == "allowed"
    clock.now = datetime(2025, 8, 3, tzinfo=UTC)
    assert await here.verdict() == "prohibited"


async def test_past_decisions_do_not_use_the_cache(here: Service, pg: Backend) -> None:
    await here.record(GrantExemption(E, P, grant()))
    assert await here.verdict() == "allowed"
    await pg.execute("DELETE FROM exemption_versions")
    assert (await here.service.decide(**ASK, as_of=1)).verdict == "prohibited"


async def test_a_rebuild_is_heard_like_an_append(here: Service, pg: Backend, signer: Signer) -> None:
    other = await pg.reopen()
    behind = Writer(other, signer)  # appends without keeping the projections
    await behind.start()
    try:
        sealed, disclosures = seal("exemption.granted/1", {**grant(), "policy_id": P})
        await behind.append(Draft(f"exemption/{E}", "exemption.granted", sealed, OFFICER, disclosures=disclosures))
        await heard(here, 2)  # the ban's and the grant's
        assert await here.verdict() == "prohibited"  # the projections are behind, and this is remembered
        await rebuild(here.store)
        await heard(here, 3)
        assert await here.verdict() == "allowed"
    finally:
        await behind.close()
        await other.close()
