"""How the stored projections keep level with the log, on both backends."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ledger.canonical import canonical
from ledger.errors import Unavailable, VerificationError
from ledger.events import Draft, Recorded
from ledger.policy import IssuePolicy, ReviewPolicy
from ledger.projector import NAME, VersionProjector, decoded_leaf, rebuild
from ledger.sensitive import seal
from ledger.signing import Signer
from ledger.store.base import Store, WriteTransaction
from ledger.writer import Writer
from tests.backends import Backend
from tests.domain.commands import ban, grant, review
from tests.domain.conftest import Ledger

OFFICER = {"id": "officer-1", "role": "policy-officer"}


def issued(policy_id: str) -> Draft:
    return Draft(f"policy/{policy_id}", "policy.issued", ban(), OFFICER)


class Failing:
    async def project(self, tx: WriteTransaction, events: Sequence[Recorded]) -> None:
        raise RuntimeError("disk full")


async def test_a_read_after_a_write_sees_it(ledger: Ledger) -> None:
    [event] = await ledger.service.execute(IssuePolicy("P-1", ban()), "officer-1", "policy-officer")
    assert (await ledger.service.policy("P-1")).seqs == (event.seq,)
    assert await ledger.store.projection_position(NAME) == 1


async def test_versions_commit_with_their_events_or_not_at_all(store: Store, signer: Signer) -> None:
    writer = Writer(store, signer, projectors=[VersionProjector(), Failing()])
    await writer.start()
    with pytest.raises(Unavailable, match="disk full"):
        await writer.append(issued("P-1"))
    await writer.close()
    assert (await store.log_size(), await store.projection_position(NAME)) == (0, 0)
    assert (await store.all_versions()).policies == ()


async def test_events_appended_without_the_projector_are_caught_up_by_the_next_batch(
    store: Store, signer: Signer, ledger: Ledger
) -> None:
    plain = Writer(store, signer)
    await plain.start()
    for i in range(5):
        await plain.append(issued(f"P-{i}"))
    await plain.close()
    await ledger.service.execute(ReviewPolicy("P-0", review()), "officer-1", "policy-officer")
    assert await store.projection_position(NAME) == 6
    caught_up = await store.all_versions()
    await rebuild(store)
    assert await store.all_versions() == caught_up


PROCESSES = pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-processes"])


@PROCESSES
async def test_a_rebuild_of_an_empty_log_records_position_zero(store: Store, processes: int) -> None:
    rebuilt = await rebuild(store, processes=processes)
    assert (rebuilt.events, await store.projection_position(NAME)) == (0, 0)


@PROCESSES
async def test_a_rebuild_replaces_whatever_the_tables_held(ledger: Ledger, processes: int) -> None:
    for i in range(3):
        await ledger.service.execute(IssuePolicy(f"P-{i}", ban()), "officer-1", "policy-officer")
    before = await ledger.store.all_versions()
    assert (await rebuild(ledger.store, page=2, processes=processes)).events == 3
    assert await ledger.store.all_versions() == before


@PROCESSES
async def test_a_rebuild_names_the_seq_of_an_event_that_is_not_a_valid_domain_event(
    store: Store, signer: Signer, processes: int
) -> None:
    plain = Writer(store, signer)
    await plain.start()
    await plain.append(issued("P-1"))
    leaf_data, disclosures = seal("exemption.granted/1", grant())
    broken = {k: v for k, v in leaf_data.items() if k != "grantee"}
    await plain.append(Draft("exemption/E-1", "exemption.granted", broken, OFFICER, disclosures=disclosures))
    await plain.close()
    with pytest.raises(VerificationError, match=r"seq 1: exemption\.granted on exemption/E-1 is malformed"):
        await rebuild(store, processes=processes)


@PROCESSES
@pytest.mark.parametrize("leaf", [b"not json", b'{"not": "an event"}', b'{"seq": 0, "stream": "policy/P-0"}'])
async def test_a_rebuild_names_the_seq_of_a_stored_leaf_that_is_not_the_event_there(
    backend: Backend, signer: Signer, processes: int, leaf: bytes
) -> None:
    plain = Writer(backend.store, signer)
    await plain.start()
    for i in range(3):
        await plain.append(issued(f"P-{i}"))
    await plain.close()
    await backend.tamper(f"UPDATE events SET leaf = {backend.bytea(leaf)} WHERE seq = 1")
    with pytest.raises(VerificationError, match="seq 1: the event stored at seq 1 is not an event of this log"):
        await rebuild(backend.store, processes=processes)


FOLDED = {"data": {"app": {"name": "TikTok"}}, "seq": 7, "stream": "policy/P-1", "type": "policy.issued", "version": 1}


def test_of_a_stored_leaf_only_the_members_the_projections_fold_are_decoded() -> None:
    leaf = canonical(FOLDED | {"actor": {"id": "o-1", "role": "policy-officer"}, "sig": "c2ln", "prev": "cHJldg=="})
    assert decoded_leaf(7, leaf) == FOLDED


@pytest.mark.parametrize(
    ("changed", "problem"),
    [
        ({"seq": 8}, "it says seq 8"),
        ({"version": "1"}, r"Expected `int`, got `str` - at `\$.version`"),
        ({"data": ["app"]}, r"Expected `object`, got `array` - at `\$.data`"),
    ],
)
def test_a_stored_leaf_is_refused_saying_what_is_wrong_with_it(changed: dict[str, object], problem: str) -> None:
    with pytest.raises(VerificationError, match=f"seq 7: the event stored at seq 7 is not an event of this log at "
                                                f"that seq: {problem}"):  # fmt: skip
        decoded_leaf(7, canonical(FOLDED | changed))
