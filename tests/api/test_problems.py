"""Every failure is RFC 9457 problem+json with the request id; every request gets an id and one log line."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from api.app import MAX_BODY_BYTES
from ledger import schemas
from tests.api.conftest import Client, problem_of

SECRET = "db password is hunter2"


async def crash(request: web.Request) -> web.Response:
    raise RuntimeError(SECRET)


async def echo_size(request: web.Request) -> web.Response:
    return web.json_response({"bytes": len(await request.read())})


async def cancelled(request: web.Request) -> web.Response:
    raise asyncio.CancelledError  # as when the client leaves (with handler cancellation) or the service stops


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[Client]:
    """The application with extra routes: one that crashes, one cancelled, one that reads a body."""
    app.router.add_get("/test/crash", crash)
    app.router.add_get("/test/cancelled", cancelled)
    app.router.add_post("/test/echo", echo_size)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_unknown_route_is_a_404_problem(client: Client) -> None:
    problem = await problem_of(await client.get("/v1/nowhere"), 404)
    assert problem["type"] == "https://policy-ledger.dev/problems/not-found"
    assert problem["instance"] == "/v1/nowhere"
    assert "/v1" in problem["detail"]


async def test_wrong_method_is_a_405_problem_with_allow(client: Client) -> None:
    response = await client.delete("/v1/log/checkpoint")
    problem = await problem_of(response, 405)
    assert problem["type"] == "about:blank"
    assert problem["title"] == "Method Not Allowed"
    assert "GET" in response.headers["Allow"]
    assert "DELETE" in problem["detail"]


async def test_handler_crash_is_a_500_problem_without_traceback_or_message(client: Client) -> None:
    response = await client.get("/test/crash")
    problem = await problem_of(response, 500)
    text = await response.text()
    assert SECRET not in text
    assert "RuntimeError" not in text
    assert problem["request_id"] in problem["detail"]


async def test_handler_crash_is_logged_with_its_traceback(client: Client) -> None:
    with capture_logs() as logs:
        await client.get("/test/crash")
    [entry] = [e for e in logs if e["event"] == "unhandled_error"]
    assert entry["log_level"] == "error"
    assert entry["exc_info"] is True


async def test_body_over_one_mebibyte_is_a_413_problem(client: Client) -> None:
    at_limit = await client.post("/test/echo", data=io.BytesIO(b"x" * MAX_BODY_BYTES))
    assert await at_limit.json() == {"bytes": MAX_BODY_BYTES}
    problem = await problem_of(await client.post("/test/echo", data=io.BytesIO(b"x" * (MAX_BODY_BYTES + 1))), 413)
    assert problem["type"] == "about:blank"
    assert str(MAX_BODY_BYTES) in problem["detail"]


async def test_an_expectation_other_than_100_continue_is_a_417_problem(client: Client) -> None:
    response = await client.post("/v1/policies", data=b"{}", headers={"Expect": "200-ok"})
    problem = await problem_of(response, 417)
    assert "200-ok" in problem["detail"]


async def test_expect_100_continue_still_gets_its_continue(client: Client, tokens: dict[str, dict[str, str]]) -> None:
    body = {"id": "POL-1", "data": dict(schemas.example("policy.issued/1"))}
    response = await client.post("/v1/policies", json=body, headers=tokens["policy-officer"], expect100=True)
    assert response.status == 201, await response.text()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/v1/log/keys"),
        ("GET", "/v1/log/events/x"),
        ("GET", "/nowhere"),
        ("PUT", "/healthz"),
        ("GET", "/test/crash"),
    ],
)
async def test_every_response_carries_a_request_id(client: Client, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert len(response.headers["X-Request-ID"]) == 36


async def test_a_sane_incoming_request_id_is_echoed_and_put_in_problems(client: Client) -> None:
    response = await client.get("/v1/log/events/x", headers={"X-Request-ID": "trace-42.a:b"})
    assert response.headers["X-Request-ID"] == "trace-42.a:b"
    assert (await problem_of(response, 400))["request_id"] == "trace-42.a:b"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 129, "-leading-dash", "semi;colon", "é"])
async def test_an_insane_incoming_request_id_is_replaced(client: Client, incoming: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] != incoming
    assert len(response.headers["X-Request-ID"]) == 36


async def test_each_request_logs_one_access_line_with_its_request_id(client: Client) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = await client.get("/v1/log/events/7", headers={"X-Request-ID": "req-1"})
    [line] = [e for e in logs if e["event"] == "request"]
    assert line["request_id"] == "req-1" == response.headers["X-Request-ID"]
    assert (line["method"], line["path"], line["status"]) == ("GET", "/v1/log/events/7", 404)
    assert isinstance(line["ms"], float)


async def test_logs_inside_a_request_carry_its_request_id(client: Client) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await client.get("/test/crash", headers={"X-Request-ID": "req-2"})
    assert {e["event"]: e["request_id"] for e in logs} == {"unhandled_error": "req-2", "request": "req-2"}


async def test_a_request_cancelled_before_it_is_answered_is_logged_and_counted_as_client_closed(
    client: Client,
) -> None:
    with capture_logs() as logs, pytest.raises(aiohttp.ClientError):
        await client.get("/test/cancelled")
    assert [e["status"] for e in logs if e["event"] == "request"] == [499]
    scraped = await (await client.get("/metrics")).text()
    assert 'ledger_http_requests_total{method="GET",route="/test/cancelled",status="499"} 1.0' in scraped


async def test_a_client_that_leaves_mid_body_is_no_server_error(app: web.Application) -> None:
    app.router.add_post("/test/echo", echo_size)
    runner = web.AppRunner(app)  # as served: no handler cancellation, the read fails instead
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with capture_logs() as logs:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"{" * 10)
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            for _ in range(50):  # until the server notices the connection is gone
                if any(e["event"] == "request" for e in logs):
                    break
                await asyncio.sleep(0.02)
        assert [(e["event"], e.get("status")) for e in logs] == [("client_disconnected", None), ("request", 499)]
    finally:
        await runner.cleanup()
