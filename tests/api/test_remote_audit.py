"""Auditing a log over HTTP: what an oversight body runs against the service."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ledger import remote
from ledger.errors import VerificationError
from ledger.events import Recorded
from ledger.signing import Signer
from ledger.store import Store
from ledger.verify import TrustedKey
from ledger.writer import Writer
from tests.api.conftest import Client, noted


def root_url(client: Client) -> str:
    return str(client.make_url("/"))


async def test_a_served_log_verifies_against_the_trusted_key(
    client: Client, appended: list[Recorded], signer: Signer
) -> None:
    found = await remote.audit_url(root_url(client), [TrustedKey(signer.verifier)], workers=1)
    assert found.checkpoint is not None
    assert found.checkpoint.size == len(appended)


async def test_without_a_key_the_served_keys_are_used(client: Client, appended: list[Recorded], signer: Signer) -> None:
    found = await remote.audit_url(root_url(client), None, workers=1)
    assert [k.verifier for k in found.keys] == [signer.verifier]


async def test_a_log_signed_by_another_key_than_the_trusted_one_fails(client: Client, appended: list[Recorded]) -> None:
    stranger = Signer.generate(appended[0].event["log"])
    with pytest.raises(VerificationError, match="not a trusted key") as e:
        await remote.audit_url(root_url(client), [TrustedKey(stranger.verifier)], workers=1)
    assert e.value.seq == 0


async def test_a_log_that_grew_still_extends_a_saved_checkpoint(
    client: Client, appended: list[Recorded], signer: Signer, store: Store, writer: Writer
) -> None:
    saved = await store.latest_checkpoint()
    await writer.append(noted(99))
    found = await remote.audit_url(root_url(client), [TrustedKey(signer.verifier)], trusted=saved, workers=1)
    assert found.checkpoint is not None
    assert found.checkpoint.size == 6


async def test_pages_of_events_are_followed_to_the_end(
    client: Client, writer: Writer, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "PAGE", 2)
    for n in range(5):
        await writer.append(noted(n))
    found = await remote.audit_url(root_url(client), [TrustedKey(signer.verifier)], workers=1)
    assert found.checkpoint is not None
    assert found.checkpoint.size == 5


def hostile(keys: object, events: object, *, endless: bool = False) -> web.Application:
    """A server that speaks the protocol badly: its key list, no checkpoint, and one page of events for any query."""

    async def answer_keys(request: web.Request) -> web.StreamResponse:
        if not endless:
            return web.json_response(keys) if not isinstance(keys, str) else web.Response(text=keys)
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b" " * 65536)
        return response

    async def answer_events(request: web.Request) -> web.Response:
        return web.json_response(events)

    app = web.Application()
    app.router.add_get("/v1/log/keys", answer_keys)
    app.router.add_get("/v1/log/events", answer_events)
    return app


KEYS = {"origin": "policy-ledger.localhost/device-policy", "keys": []}


@pytest.mark.parametrize(
    ("keys", "events", "said"),
    [
        ("<html>not the protocol</html>", {}, "not JSON"),
        ({"keys": []}, {}, "served key list is malformed"),
        (KEYS, {"events": [], "next": 3}, "does not move on"),
        (KEYS, {"events": "abc", "next": None}, "served event is malformed"),
        (KEYS, [1, 2], "served event page is malformed"),
        (KEYS, {"events": [], "next": "soon"}, "served event page is malformed"),
    ],
    ids=[
        "html",
        "keys-without-origin",
        "next-that-stands-still",
        "events-not-a-list",
        "page-not-an-object",
        "next-not-a-seq",
    ],
)
async def test_a_server_that_answers_outside_the_protocol_fails_verification(
    keys: object, events: object, said: str, signer: Signer
) -> None:
    async with TestClient(TestServer(hostile(keys, events))) as client:
        with pytest.raises(VerificationError, match=said):
            await remote.audit_url(root_url(client), [TrustedKey(signer.verifier)], workers=1)


async def test_an_answer_larger_than_any_log_answer_is_cut_off(signer: Signer) -> None:
    async with TestClient(TestServer(hostile(KEYS, {}, endless=True))) as client:
        with pytest.raises(VerificationError, match="answered with more than"):
            await remote.audit_url(root_url(client), [TrustedKey(signer.verifier)], workers=1)
