"""Properties of the stored projections, on both backends, over random command sequences.

Each example records its commands (under ids of its own) into the one log of the test;
the rules refuse some, which must write nothing. Then: a full rebuild equals the
incrementally kept projections, and the stored answer as of any seq or time equals a
fresh pure fold of that prefix of the log (``ledger.projections``).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError
from ledger.events import decode_leaf
from ledger.policy import (
    AmendExemption,
    AmendPolicy,
    Command,
    GrantExemption,
    IssuePolicy,
    LiftPolicy,
    RenewExemption,
    ReviewPolicy,
    RevokeExemption,
    required_role,
)
from ledger.projections import LedgerView, as_of_seq, as_of_time, decide_access, fold, policies
from ledger.projector import VersionProjector, rebuild
from ledger.schemas import parse_time
from ledger.service import LedgerService
from ledger.signing import Signer
from ledger.store.base import Store
from ledger.versions import FOREVER, view_of
from ledger.writer import Writer
from tests.domain.commands import ban, grant, lift, renew, revoke
from tests.domain.conftest import Clock, Ledger

BASE = datetime(2025, 1, 1, tzinfo=UTC)
EXAMPLES = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NAMESPACES = itertools.count()


def _day(n: int) -> str:
    return (BASE + timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _grant(exemption_id: str, policy_id: str, account: str, start: int, days: int) -> GrantExemption:
    data = grant(account=account, organisation="org-a", valid_from=_day(start), expires_at=_day(start + days))
    return GrantExemption(exemption_id, policy_id, data)


def _review(policy_id: str, day: int) -> ReviewPolicy:
    return ReviewPolicy(policy_id, {"outcome": "no-change", "summary": "s", "reviewed_at": _day(day)})


POLICY_IDS, EXEMPTION_IDS = st.sampled_from(["P1", "P2"]), st.sampled_from(["E1", "E2", "E3"])
DAYS, ACCOUNTS = st.integers(0, 40), st.sampled_from(["acct-1", "acct-2"])
POLICY_COMMANDS = st.one_of(
    st.builds(lambda p, o: IssuePolicy(p, ban(organisations=o)), POLICY_IDS, st.sampled_from([("*",), ("org-a",)])),
    st.builds(lambda p: AmendPolicy(p, {"applies_to": {"organisations": ["org-b"]}, "reason": "r"}), POLICY_IDS),
    st.builds(_review, POLICY_IDS, DAYS),
    st.builds(lambda p, d: LiftPolicy(p, lift(_day(d))), POLICY_IDS, DAYS),
)
GRANTS = st.builds(_grant, EXEMPTION_IDS, POLICY_IDS, ACCOUNTS, DAYS, st.integers(1, 40))
EXEMPTION_CHANGES = st.one_of(
    st.builds(lambda e: AmendExemption(e, {"devices": ["CO-GCS-TT-002"], "reason": "r"}), EXEMPTION_IDS),
    st.builds(lambda e, d: RenewExemption(e, renew(_day(d))), EXEMPTION_IDS, st.integers(10, 60)),
    st.builds(lambda e, d: RevokeExemption(e, revoke(_day(d))), EXEMPTION_IDS, DAYS),
)
COMMANDS = st.lists(st.one_of(POLICY_COMMANDS, GRANTS, EXEMPTION_CHANGES, EXEMPTION_CHANGES), max_size=20)
OPENING: list[Command] = [IssuePolicy("P1", ban()), IssuePolicy("P2", ban(organisations=("org-a",))),
                          _grant("E1", "P1", "acct-1", 0, 30)]  # fmt: skip


@dataclass
class Ticks:
    """The writer's clock: a minute later at every batch, so recorded times only grow."""

    now: datetime = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
async def ledger(store: Store, signer: Signer) -> AsyncIterator[Ledger]:
    rules = Clock(BASE)
    writer = Writer(store, signer, projectors=[VersionProjector()], clock=Ticks())
    await writer.start()
    yield Ledger(LedgerService(store, writer, clock=rules), writer, store, rules)
    await writer.close()


def _named(command: Command, prefix: str) -> Command:
    ids = {f: prefix + getattr(command, f) for f in ("policy_id", "exemption_id") if hasattr(command, f)}
    return replace(command, **ids)  # type: ignore[type-var]


async def record(ledger: Ledger, commands: list[Command]) -> list[dict[str, Any]]:
    """Send the opening and ``commands``, one a day; refused ones must write nothing. The whole log after."""
    prefix = f"x{next(NAMESPACES)}-"
    for day, command in enumerate([*OPENING, *commands]):
        ledger.clock.now, size = BASE + timedelta(days=day), await ledger.store.log_size()
        try:
            await ledger.service.execute(_named(command, prefix), "tester", required_role(command))
        except LedgerError:
            assert await ledger.store.log_size() == size
    rows = await ledger.store.read_leaves(0, await ledger.store.log_size())
    return [decode_leaf(row.leaf, row.seq) for row in rows]


def states(view: LedgerView) -> tuple[object, object]:
    return dict(view.policies), dict(view.exemptions)


@EXAMPLES
@given(COMMANDS)
async def test_a_rebuild_equals_the_incrementally_kept_projections(ledger: Ledger, commands: list[Command]) -> None:
    events = await record(ledger, commands)
    incremental = await ledger.store.all_versions()
    assert (await rebuild(ledger.store)).events == len(events)
    assert await ledger.store.all_versions() == incremental
    assert states(view_of(await ledger.store.versions_at(FOREVER), 0)) == states(fold(events))


@EXAMPLES
@given(COMMANDS, st.lists(st.tuples(st.integers(0, 10**6), DAYS, ACCOUNTS), min_size=1, max_size=4))
async def test_as_of_answers_equal_a_fresh_fold_of_the_log_prefix(
    ledger: Ledger, commands: list[Command], points: list[tuple[int, int, str]]
) -> None:
    events = await record(ledger, commands)
    disclosed = await ledger.service.revealed(events, "auditor")  # decisions check the covered devices
    for pick, day, account in points:
        seq = pick % len(events)
        assert states(view_of(await ledger.store.versions_at(seq), seq + 1)) == states(as_of_seq(events, seq))
        question: dict[str, Any] = {"app": "TikTok", "organisation": "org-a", "device": "CO-GCS-TT-001",
                                    "account": account, "at": BASE + timedelta(days=day)}  # fmt: skip
        expected = decide_access(as_of_seq(disclosed, seq), **question)
        assert await ledger.service.decide(**question, as_of=seq) == expected
        moment = parse_time(events[seq]["recorded_at"])
        expected = decide_access(as_of_time(disclosed, moment), **question)
        assert await ledger.service.decide(**question, as_of=moment) == expected


@EXAMPLES
@given(COMMANDS, st.lists(st.tuples(st.integers(0, 10**6), DAYS), min_size=1, max_size=4))
async def test_policy_summaries_count_the_active_exemptions_as_a_fresh_fold_does(
    ledger: Ledger, commands: list[Command], points: list[tuple[int, int]]
) -> None:
    events = await record(ledger, commands)
    for pick, day in points:
        seq, at = pick % len(events), BASE + timedelta(days=day)
        expected = policies(as_of_seq(events, seq), at)
        assert await ledger.service.policies(as_of=seq, at=at) == expected
        for summary in expected:
            assert await ledger.service.policy(summary.policy_id, as_of=seq, at=at) == summary
        assert await ledger.service.policies(at=at, limit=2) == policies(fold(events), at)[:2]
