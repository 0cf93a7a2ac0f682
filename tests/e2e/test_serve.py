"""`python -m ledger serve`: a verifier over real HTTP, and a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from typing import Any

import aiohttp
import pytest

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.config import Config, load_signer
from ledger.events import Draft
from ledger.merkle import verify_consistency, verify_inclusion
from ledger.signing import Verifier
from ledger.store import open_store
from ledger.writer import Writer
from tests.e2e.conftest import ORIGIN, Server

pytestmark = pytest.mark.slow


async def append(config: Config, numbers: range) -> None:
    """Append from this process, with the server's key, into the server's SQLite file."""
    store = await open_store(config.database_url)
    writer = Writer(store, load_signer(config, create=False))
    await writer.start()
    try:
        for n in numbers:
            data = {"app": {"name": "TikTok", "vendor": "ByteDance"}, "rationale": f"Ban number {n}"}
            await writer.append(Draft(f"note/n-{n}", "note.recorded", data, {"id": "o-1", "role": "policy-officer"}))
    finally:
        await writer.close()
        await store.close()


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def checkpoint_over_http(http: aiohttp.ClientSession, url: str) -> Checkpoint:
    keys = await get_json(http, f"{url}/v1/log/keys")
    async with http.get(f"{url}/v1/log/checkpoint") as response:
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        note = await response.read()
    return open_checkpoint(note, ORIGIN, [Verifier.from_vkey(k["vkey"]) for k in keys["keys"]])[0]


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


async def test_checkpoints_and_proofs_served_over_http_verify(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        await append(server.config, range(2))
        old = await checkpoint_over_http(http, server.url)
        await append(server.config, range(2, 7))
        new = await checkpoint_over_http(http, server.url)
        assert (old.size, new.size) == (2, 7)
        for seq in range(new.size):
            proof = await get_json(http, f"{server.url}/v1/log/proofs/inclusion?seq={seq}")
            hashes = [b64(h) for h in proof["hashes"]]
            verify_inclusion(seq, new.size, b64(proof["leaf_hash"]), hashes, new.root)
        proof = await get_json(http, f"{server.url}/v1/log/proofs/consistency?from={old.size}&to={new.size}")
        verify_consistency(old.size, new.size, old.root, new.root, [b64(h) for h in proof["hashes"]])


async def test_events_served_over_http_are_the_appended_leaves(server: Server) -> None:
    await append(server.config, range(3))
    async with aiohttp.ClientSession() as http:
        page = await get_json(http, f"{server.url}/v1/log/events?limit=2")
        assert [e["seq"] for e in page["events"]] == [0, 1]
        assert page["next"] == 1
        assert all(e["event"] == json.loads(b64(e["leaf"])) for e in page["events"])


def test_sigterm_exits_with_code_0_within_10_seconds(server: Server) -> None:
    assert server.stop(timeout=10.0) == 0, server.output()


async def test_each_request_is_logged_as_a_json_line_with_its_request_id(server: Server) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/healthz", headers={"X-Request-ID": "e2e-1"}):
        pass
    await asyncio.to_thread(server.stop)
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    [access] = [line for line in lines if line.get("request_id") == "e2e-1"]
    assert (access["event"], access["path"], access["status"]) == ("request", "/healthz", 200)


def raw_exchange(url: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send ``request`` bytes as they are; the status line, headers and body of the answer."""
    host, _, port = url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}, body


@pytest.mark.parametrize(
    ("request_bytes", "said"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "Invalid header token"),
        (b"FOO BAR BAZ QUX\r\n\r\n", "Invalid method"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", "8190 bytes"),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "HTTPS"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer plt_SECRET\x01\r\n\r\n", "header value"),
    ],
    ids=["header-without-colon", "bad-request-line", "header-too-large", "tls-on-http", "secret-in-a-bad-header"],
)
def test_a_request_the_http_parser_refuses_gets_a_problem_json_400(
    shared_server: Server, request_bytes: bytes, said: str
) -> None:
    status, headers, body = raw_exchange(shared_server.url, request_bytes)
    assert status.split(" ", 1)[1].startswith("400")
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert (problem["status"], problem["title"]) == (400, "Bad Request")
    assert said in problem["detail"]
    assert "check the request line and headers" in problem["detail"]
    assert headers["x-request-id"] == problem["request_id"]
    assert b"SECRET" not in body
    assert "SECRET" not in shared_server.output()
    assert "Traceback" not in shared_server.output()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /v1/policies HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /v1/policies HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
        b"GET /v1/policies HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["post", "post-chunked", "get-with-a-body"],
)
def test_a_compressed_body_is_a_415_problem_and_logs_no_traceback(shared_server: Server, request_bytes: bytes) -> None:
    status, headers, body = raw_exchange(
        shared_server.url, request_bytes.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
    )
    assert status.split(" ", 1)[1].startswith("415")
    assert headers["content-type"].startswith("application/problem+json")
    assert "send the body uncompressed" in json.loads(body)["detail"]
    assert "Traceback" not in shared_server.output()


@pytest.mark.parametrize("path", ["/v1/policies", "/v1/no-such-thing"])
def test_an_expectation_the_service_cannot_meet_gets_a_problem_json_417_on_any_path(
    shared_server: Server, path: str
) -> None:
    request = f"POST {path} HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    status, headers, body = raw_exchange(shared_server.url, request.encode())
    assert status.split(" ", 1)[1].startswith("417")
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == 417
    assert "Expect: '200-ok' is not met here" in problem["detail"]
    assert headers["x-request-id"] == problem["request_id"]
