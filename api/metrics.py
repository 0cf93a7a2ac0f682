"""Prometheus metrics: requests by route and status, their latency, and the writer's work.

With several workers, :func:`share_between_processes` (before any metric exists) makes
every process keep its figures in files in one folder, and a scrape, whichever worker
answers it, adds up all of them (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from api.keys import METRICS, WRITER
from api.problems import CLIENT_CLOSED
from ledger.writer import Sealing

__all__ = ["Metrics", "metrics_middleware", "routes", "share_between_processes"]

_SHARED = "PROMETHEUS_MULTIPROC_DIR"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def share_between_processes(folder: Path) -> None:
    """Keep this process's metrics, and those of processes it forks, in files in ``folder``."""
    os.environ[_SHARED] = str(folder)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


routes = web.RouteTableDef()


class Metrics:
    """One registry per application, so that several apps (and tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ledger_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ledger_http_request_seconds", "time to answer an HTTP request", ["method", "route"], registry=self.registry
        )
        self.log_size = Gauge(
            "ledger_log_size", "events in the log, as the processes last wrote it", registry=self.registry,
            multiprocess_mode="max",
        )  # fmt: skip
        self.appends = Counter("ledger_appends", "events committed by this process", registry=self.registry)
        self.append_errors = Counter(
            "ledger_append_errors", "events whose batch failed to commit", registry=self.registry
        )
        self.batch_size = Histogram(
            "ledger_batch_events",
            "events per committed batch",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )
        self.batch_seconds = Histogram("ledger_batch_seconds", "time to commit a batch", registry=self.registry)
        self.batches = Counter(
            "ledger_batches",
            "committed batches, by where their events were signed: ahead of the log's lock while the batch before "
            "committed, again under it (another process had moved the log on), or under it",
            ["sealed"],
            registry=self.registry,
        )
        self._answers: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (each label set's metrics looked up once)."""
        method = method if method in _METHODS else "other"  # any token is a method: keep the label sets few
        found = self._answers.get((method, route, status))
        if found is None:
            found = self.requests.labels(method, route, str(status)), self.latency.labels(method, route)
            self._answers[method, route, status] = found
        found[0].inc()
        found[1].observe(seconds)

    def observe_batch(self, events: int, seconds: float, committed: bool, sealing: Sealing) -> None:
        """The writer's ``on_batch`` callback."""
        if committed:
            self.batches.labels(sealing).inc()
            self.appends.inc(events)
            self.batch_size.observe(events)
            self.batch_seconds.observe(seconds)
        else:
            self.append_errors.inc(events)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started, status = time.perf_counter(), 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except asyncio.CancelledError:  # not a failure of the service: nobody was answered
        status = CLIENT_CLOSED
        raise
    finally:
        request.app[METRICS].answered(request.method, _route(request), status, time.perf_counter() - started)


@routes.get("/metrics")
async def scrape(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    metrics.log_size.set(request.app[WRITER].size)
    registry = metrics.registry
    if _SHARED in os.environ:  # every worker's figures, added up
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    response = web.Response(body=generate_latest(registry))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response
