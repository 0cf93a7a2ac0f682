"""/metrics speaks the Prometheus text format: requests, latencies, appends and batches."""

from __future__ import annotations

from ledger.events import Recorded
from tests.api.conftest import Client


async def scrape(client: Client) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return await response.text()


async def test_requests_are_counted_by_route_template_and_status(client: Client, appended: list[Recorded]) -> None:
    await client.get("/v1/log/events/1")
    await client.get("/v1/log/events/999")
    text = await scrape(client)
    assert 'ledger_http_requests_total{method="GET",route="/v1/log/events/{seq}",status="200"} 1.0' in text
    assert 'ledger_http_requests_total{method="GET",route="/v1/log/events/{seq}",status="404"} 1.0' in text


async def test_committed_appends_and_batch_sizes_are_counted(client: Client, appended: list[Recorded]) -> None:
    text = await scrape(client)
    assert "ledger_appends_total 5.0" in text
    assert "ledger_batch_events_count 5.0" in text
    assert "ledger_log_size 5.0" in text


async def test_request_latency_is_a_histogram(client: Client) -> None:
    await client.get("/healthz")
    assert 'ledger_http_request_seconds_count{method="GET",route="/healthz"} 1.0' in await scrape(client)


async def test_each_answer_is_counted_again_under_the_same_labels(client: Client) -> None:
    for _ in range(3):
        await client.get("/healthz")
    assert 'ledger_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in await scrape(client)


async def test_methods_the_service_does_not_use_are_counted_as_other_so_label_sets_stay_few(client: Client) -> None:
    for method in ("PROPFIND", "TRACE", "PROPFIND"):
        await client.request(method, "/nowhere")
    text = await scrape(client)
    assert 'ledger_http_requests_total{method="other",route="unmatched",status="404"} 3.0' in text
    assert "PROPFIND" not in text


async def test_batches_are_counted_by_where_their_events_were_signed(client: Client, appended: list[Recorded]) -> None:
    text = await scrape(client)
    assert 'ledger_batches_total{sealed="locked"} 1.0' in text  # the first: the writer knew no end of the log yet
    assert 'ledger_batches_total{sealed="ahead"} 4.0' in text
