"""Reading the stored projections through the service: as_of, at, roles, and refusals."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidInput, NotFound
from ledger.policy import GrantExemption, IssuePolicy
from ledger.service import parse_as_of, reveal_for
from tests.domain.commands import at, ban, grant
from tests.domain.conftest import Ledger


@pytest.fixture
async def recorded(ledger: Ledger) -> Ledger:
    await ledger.service.execute(IssuePolicy("P-1", ban()), "officer", "policy-officer")
    await ledger.service.execute(GrantExemption("E-1", "P-1", grant()), "officer", "security-officer")
    return ledger


@pytest.mark.parametrize(("text", "as_of"), [("42", 42), ("2025-02-03T10:00:00Z", at("2025-02-03T10:00:00"))])
def test_as_of_is_a_seq_when_it_is_digits_and_else_a_time(text: str, as_of: object) -> None:
    assert parse_as_of(text) == as_of


def test_as_of_that_is_neither_a_seq_nor_a_time_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="as_of must be a seq"):
        parse_as_of("yesterday")


@pytest.mark.parametrize(("role", "categories"), [("auditor", "all"), ("admin", "all"), ("service", frozenset()),
                                                  (None, frozenset())])  # fmt: skip
def test_auditors_and_admins_read_sealed_fields_in_clear_and_no_one_else(role: str | None, categories: object) -> None:
    assert reveal_for(role) == categories


async def test_as_of_a_seq_not_yet_recorded_is_not_found(recorded: Ledger) -> None:
    with pytest.raises(NotFound, match="as_of seq 2 is not in the ledger, which holds seqs 0 to 1"):
        await recorded.service.policies(as_of=2)


async def test_as_of_a_negative_seq_is_invalid_input(recorded: Ledger) -> None:
    with pytest.raises(InvalidInput, match="must be 0 or more"):
        await recorded.service.policies(as_of=-1)


async def test_as_of_a_time_before_the_first_event_shows_an_empty_ledger(recorded: Ledger) -> None:
    assert await recorded.service.policies(as_of=at("2024-12-31")) == ()


async def test_as_of_a_seq_shows_what_was_recorded_up_to_it(recorded: Ledger) -> None:
    assert await recorded.service.exemptions(as_of=0) == ()
    assert [e.exemption_id for e in await recorded.service.exemptions(as_of=1)] == ["E-1"]


async def test_an_exemption_is_read_with_its_policy_so_its_status_can_be_moot(recorded: Ledger) -> None:
    summary = await recorded.service.exemption("E-1", at=at("2025-03-01"))
    assert (summary.policy_id, summary.status) == ("P-1", "active")


async def test_an_unknown_policy_or_exemption_is_not_found(recorded: Ledger) -> None:
    with pytest.raises(NotFound, match="no policy P-9 has been issued"):
        await recorded.service.policy("P-9")
    with pytest.raises(NotFound, match="no exemption E-9 has been granted"):
        await recorded.service.exemption("E-9")


async def test_the_history_of_a_stream_never_written_is_not_found(recorded: Ledger) -> None:
    with pytest.raises(NotFound, match="nothing was recorded on policy/P-9"):
        await recorded.service.history("policy/P-9")


async def test_auditors_see_covered_devices_in_exemption_summaries(recorded: Ledger) -> None:
    public = await recorded.service.exemption("E-1", at=at("2025-03-01"))
    audited = await recorded.service.exemption("E-1", at=at("2025-03-01"), role="auditor")
    assert (public.devices_withheld, audited.devices_withheld) == (True, False)
    assert (public.devices_erased, audited.devices_erased) == (False, False)


@pytest.mark.parametrize("role", [None, "auditor"])
async def test_covered_devices_erased_are_shown_erased_to_everyone_not_withheld(
    recorded: Ledger, role: str | None
) -> None:
    [digest] = [e["data"]["devices"]["_sd"] for e in await recorded.service.history("exemption/E-1")]
    assert await recorded.store.erase_disclosure(digest)
    summary = await recorded.service.exemption("E-1", role=role)
    assert (summary.devices_withheld, summary.devices_erased) == (False, True)
    [listed] = await recorded.service.exemptions(role=role)
    assert listed == summary


@pytest.fixture
async def shelved(ledger: Ledger) -> Ledger:
    """Policies and exemptions whose ids sort differently by bytes than by letters."""
    for policy_id in ("P-b", "P-A", "P-a", "P-B"):
        await ledger.service.execute(IssuePolicy(policy_id, ban(app=policy_id)), "officer", "policy-officer")
    for exemption_id, policy_id in (("E-b", "P-a"), ("E-A", "P-a"), ("E-a", "P-B"), ("E-B", "P-a")):
        command = GrantExemption(exemption_id, policy_id, grant())
        await ledger.service.execute(command, "officer", "security-officer")
    return ledger


async def test_policies_are_read_a_page_at_a_time_after_a_cursor_in_byte_order(shelved: Ledger) -> None:
    first = await shelved.service.policies(limit=2, at=at("2025-03-01"))
    rest = await shelved.service.policies(after=first[-1].policy_id, limit=10, at=at("2025-03-01"))
    assert [p.policy_id for p in first + rest] == ["P-A", "P-B", "P-a", "P-b"]
    assert [p.active_exemptions for p in first + rest] == [0, 1, 3, 0]


async def test_exemptions_under_a_policy_are_read_a_page_at_a_time(shelved: Ledger) -> None:
    first = await shelved.service.exemptions(policy_id="P-a", limit=1)
    rest = await shelved.service.exemptions(policy_id="P-a", after="E-A", limit=10)
    assert [e.exemption_id for e in first + rest] == ["E-A", "E-B", "E-b"]


async def test_a_page_of_exemptions_carries_the_status_their_policies_give_them(shelved: Ledger) -> None:
    page = await shelved.service.exemptions(after="E-A", limit=2, at=at("2025-03-01"))
    assert [(e.exemption_id, e.policy_id, e.status) for e in page] == [
        ("E-B", "P-a", "active"),
        ("E-a", "P-B", "active"),
    ]


async def test_a_page_as_of_a_seq_holds_only_what_stood_then(shelved: Ledger) -> None:
    assert [p.policy_id for p in await shelved.service.policies(as_of=1, limit=10)] == ["P-A", "P-b"]
    assert [e.exemption_id for e in await shelved.service.exemptions(as_of=5, after="E-A", limit=10)] == ["E-b"]
