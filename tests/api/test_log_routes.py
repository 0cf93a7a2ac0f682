"""The verifiers' wire protocol under /v1/log: shapes, and proofs that verify against checkpoints."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.events import Recorded
from ledger.merkle import verify_consistency, verify_inclusion
from ledger.signing import Signer, Verifier
from ledger.store import Store
from tests.api.conftest import Client, problem_of

pytestmark = pytest.mark.usefixtures("appended")


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


async def get_json(client: Client, path: str) -> Any:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def published_checkpoint(client: Client) -> Checkpoint:
    """The latest checkpoint, opened with the keys the log publishes."""
    keys = await get_json(client, "/v1/log/keys")
    response = await client.get("/v1/log/checkpoint")
    verifiers = [Verifier.from_vkey(k["vkey"]) for k in keys["keys"]]
    checkpoint, _ = open_checkpoint(await response.read(), keys["origin"], verifiers)
    return checkpoint


async def stored_checkpoint(store: Store, signer: Signer, size: int) -> Checkpoint:
    note = await store.checkpoint(size)
    assert note is not None
    return open_checkpoint(note, signer.name, [signer.verifier])[0]


# -- checkpoint and keys ---------------------------------------------------------------


async def test_checkpoint_is_the_stored_signed_note_as_text(client: Client, store: Store) -> None:
    response = await client.get("/v1/log/checkpoint")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await response.read() == await store.latest_checkpoint()


async def test_checkpoint_opens_with_the_published_key_and_covers_the_log(client: Client, store: Store) -> None:
    checkpoint = await published_checkpoint(client)
    assert checkpoint.size == await store.log_size() == 5


async def test_keys_publish_the_log_key_from_seq_0(client: Client, signer: Signer) -> None:
    keys = await get_json(client, "/v1/log/keys")
    assert keys == {
        "origin": signer.name,
        "keys": [{"vkey": signer.verifier.vkey, "key_id": signer.key_id.hex(), "from_seq": 0}],
    }


# -- events ---------------------------------------------------------------------------


def assert_event_shape(item: dict[str, Any], recorded: Recorded) -> None:
    leaf = b64(item["leaf"])
    assert item["seq"] == recorded.seq
    assert leaf == recorded.leaf
    assert b64(item["leaf_hash"]) == hashlib.sha256(b"\x00" + leaf).digest() == recorded.leaf_hash
    assert item["event"] == json.loads(leaf)


async def test_event_by_seq_has_leaf_leaf_hash_and_decoded_event(client: Client, appended: list[Recorded]) -> None:
    item = await get_json(client, "/v1/log/events/3")
    assert set(item) == {"seq", "leaf", "leaf_hash", "event"}
    assert_event_shape(item, appended[3])


async def test_event_beyond_the_log_is_a_404_problem(client: Client) -> None:
    problem = await problem_of(await client.get("/v1/log/events/5"), 404)
    assert "seq 5" in problem["detail"]


@pytest.mark.parametrize("seq", ["abc", "-1", "1.5", "0x1", "1_0", "99999999999999999999"])
async def test_event_seq_that_is_not_a_whole_number_is_a_400_problem(client: Client, seq: str) -> None:
    problem = await problem_of(await client.get(f"/v1/log/events/{seq}"), 400)
    assert "seq" in problem["detail"]


async def test_events_without_parameters_list_the_log_from_the_start(client: Client, appended: list[Recorded]) -> None:
    page = await get_json(client, "/v1/log/events")
    assert page["next"] is None
    assert [e["seq"] for e in page["events"]] == [0, 1, 2, 3, 4]
    for item, recorded in zip(page["events"], appended, strict=True):
        assert_event_shape(item, recorded)


async def test_events_page_with_a_cursor_until_next_is_null(client: Client) -> None:
    pages, after = [], ""
    while True:
        page = await get_json(client, f"/v1/log/events?limit=2{after}")
        pages.append([e["seq"] for e in page["events"]])
        if page["next"] is None:
            break
        assert page["next"] == page["events"][-1]["seq"]
        after = f"&after={page['next']}"
    assert pages == [[0, 1], [2, 3], [4]]


async def test_events_after_the_last_seq_are_empty(client: Client) -> None:
    assert await get_json(client, "/v1/log/events?after=4") == {"events": [], "next": None}


async def test_events_limit_above_the_maximum_is_a_400_problem_saying_the_maximum(client: Client) -> None:
    problem = await problem_of(await client.get("/v1/log/events?limit=1001"), 400)
    assert "'limit'" in problem["detail"]
    assert "1000" in problem["detail"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("after=abc", "after"), ("after=-1", "after"), ("after=", "after"), ("limit=0", "limit"), ("limit=x", "limit")],
)
async def test_events_bad_parameters_are_400_problems_naming_them(client: Client, query: str, parameter: str) -> None:
    problem = await problem_of(await client.get(f"/v1/log/events?{query}"), 400)
    assert f"'{parameter}'" in problem["detail"]


# -- inclusion proofs -----------------------------------------------------------------


async def test_inclusion_proofs_verify_against_the_published_checkpoint(client: Client) -> None:
    checkpoint = await published_checkpoint(client)
    for seq in range(checkpoint.size):
        proof = await get_json(client, f"/v1/log/proofs/inclusion?seq={seq}")
        assert set(proof) == {"seq", "size", "leaf_hash", "root", "hashes"}
        assert (proof["seq"], proof["size"], b64(proof["root"])) == (seq, checkpoint.size, checkpoint.root)
        hashes = [b64(h) for h in proof["hashes"]]
        verify_inclusion(seq, checkpoint.size, b64(proof["leaf_hash"]), hashes, checkpoint.root)


async def test_inclusion_proof_at_an_earlier_size_verifies_against_that_checkpoint(
    client: Client, store: Store, signer: Signer, appended: list[Recorded]
) -> None:
    earlier = await stored_checkpoint(store, signer, 3)
    proof = await get_json(client, "/v1/log/proofs/inclusion?seq=1&size=3")
    assert b64(proof["root"]) == earlier.root
    assert b64(proof["leaf_hash"]) == appended[1].leaf_hash
    verify_inclusion(1, 3, appended[1].leaf_hash, [b64(h) for h in proof["hashes"]], earlier.root)


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("", 400, "'seq'"),
        ("seq=x", 400, "'seq'"),
        ("seq=1&size=0", 400, "'size'"),
        ("seq=3&size=2", 400, "seq 3"),
        ("seq=1&size=6", 404, "fewer than 6"),
        ("seq=5", 404, "seq 5"),
    ],
)
async def test_inclusion_bad_requests_are_problems(client: Client, query: str, status: int, says: str) -> None:
    problem = await problem_of(await client.get(f"/v1/log/proofs/inclusion?{query}"), status)
    assert says in problem["detail"]


# -- consistency proofs ---------------------------------------------------------------


@pytest.mark.parametrize("first", [1, 2, 3, 4, 5])
async def test_consistency_proofs_verify_between_checkpoints(
    client: Client, store: Store, signer: Signer, first: int
) -> None:
    old, new = await stored_checkpoint(store, signer, first), await published_checkpoint(client)
    proof = await get_json(client, f"/v1/log/proofs/consistency?from={first}&to={new.size}")
    assert (proof["from"], proof["to"]) == (first, new.size)
    verify_consistency(first, new.size, old.root, new.root, [b64(h) for h in proof["hashes"]])


async def test_consistency_to_defaults_to_the_latest_checkpoint(client: Client) -> None:
    proof = await get_json(client, "/v1/log/proofs/consistency?from=2")
    assert proof["to"] == 5
    assert proof == await get_json(client, "/v1/log/proofs/consistency?from=2&to=5")


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("", 400, "'from'"),
        ("from=0&to=3", 400, "'from'"),
        ("from=2&to=abc", 400, "'to'"),
        ("from=4&to=2", 400, "from <= to"),
        ("from=2&to=9", 404, "fewer than 9"),
    ],
)
async def test_consistency_bad_requests_are_problems(client: Client, query: str, status: int, says: str) -> None:
    problem = await problem_of(await client.get(f"/v1/log/proofs/consistency?{query}"), status)
    assert says in problem["detail"]
