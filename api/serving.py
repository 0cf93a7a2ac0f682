"""Running the service: one process, or a first process and the workers it forks.

With ``workers`` > 1 the first process migrates the database and makes the key, then
opens one listening socket per process on the port (``SO_REUSEPORT``, so the kernel
spreads connections; a port already in use is refused first) and forks the workers.
SIGTERM and SIGINT are held until each process can handle them. A signal to the first
process is passed on to every worker at once; each stops accepting and finishes its
requests in flight. A worker that dies stops the service (exit 1: let whatever started
it start it again); a worker whose first process is gone stops itself. The workers keep
their metrics in one temporary folder, so that any of them answers a scrape for all.

aiohttp answers a request its HTTP parser refuses (a broken request line or header)
through :class:`_ProblemHandler`, as problem+json like every other error.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import NoReturn

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from api.app import create_app, log_signer
from api.metrics import share_between_processes
from api.problems import expectations, unparsed
from ledger import event_loop
from ledger.config import Config
from ledger.errors import InvalidInput
from ledger.logs import configure_logging
from ledger.read_cache import Commits
from ledger.store import in_memory, open_store

__all__ = ["COLLECTOR_THRESHOLDS", "SHUTDOWN_TIMEOUT", "run", "serve", "settle_collector"]

log = structlog.get_logger("api")

SHUTDOWN_TIMEOUT = 10.0  # seconds for requests in flight to finish after SIGTERM
_REAP_MARGIN = 5.0  # seconds more a worker has to exit before it is killed
_SIGNALS = {signal.SIGINT, signal.SIGTERM}


async def serve(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    sock: socket.socket | None = None,
    commits: Commits | None = None,
) -> None:
    """Serve on ``sock`` (else ``config.host:config.port``) until ``stop`` is set (or cancelled),
    then stop accepting, give requests in flight SHUTDOWN_TIMEOUT seconds, commit what is queued.
    ``commits``: the count of batches this service's workers share (``ledger.read_cache``)."""
    app = create_app(config, commits=commits)
    # bodies are never decompressed: api.params.plain_requests refuses a Content-Encoding
    runner = _Runner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT, auto_decompress=False)
    await runner.setup()
    try:
        site = web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, config.host, config.port)
        await site.start()
        settle_collector()
        log.info("listening", host=config.host, port=config.port)
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()


# The cycle collector of a serving process: once it serves, what start-up made (modules,
# schemas, the application) is out of the collector's reach, and a collection waits for
# 10,000 new objects rather than 700. Its pauses otherwise took up to 8% of a worker's time
# under load (1 s of 12 s of decisions about 50,000 accounts), up to 100-170 ms each (full
# passes over some 60,000 start-up objects and as many of the read cache's), which the p99
# of every route paid.
COLLECTOR_THRESHOLDS = (10_000, 50, 100)


def settle_collector() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def run(config: Config) -> int:
    """Serve with ``config.workers`` processes until SIGTERM or SIGINT; the exit code (1 if a worker failed)."""
    configure_logging(config.log_level)
    log.info("starting", host=config.host, port=config.port, workers=config.workers, loop=event_loop.loop_name())
    if config.workers > 1 and in_memory(config.database_url):
        raise InvalidInput("several workers cannot share an in-memory SQLite database; use a file or PostgreSQL")
    _hold_signals()
    if config.workers == 1:
        event_loop.run(_until_signalled(config))
        return 0
    event_loop.run(_prepare(config))
    sockets = _listening(config.host, config.port, config.workers)
    figures = Path(tempfile.mkdtemp(prefix="policy-ledger-metrics-"))
    share_between_processes(figures)
    first, workers, commits = os.getpid(), [], Commits(config.workers)
    for index, own in enumerate(sockets[1:], start=1):
        pid = os.fork()
        if pid == 0:
            commits.claim(index)
            _work(config, own, sockets, first, commits)
        workers.append(pid)
    for own in sockets[1:]:
        own.close()
    died: list[int] = []
    try:
        died = event_loop.run(_until_signalled(config, sockets[0], workers=workers, commits=commits))
    finally:  # also when this process could not serve: the workers stop with it
        _signal(workers, signal.SIGTERM)
        failed = died + _reap(workers)
        shutil.rmtree(figures, ignore_errors=True)
    if failed:
        log.error("workers_failed", pids=failed)
    return 1 if failed else 0


def _hold_signals() -> None:
    """SIGTERM and SIGINT wait (also in forked workers) while no loop handles them: before it
    starts, and once it has stopped (a second signal must not kill a process that is exiting)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


async def _prepare(config: Config) -> None:
    """What only one process may do: migrate the database and create the key file if missing."""
    store = await open_store(config.database_url, pool_size=1)
    try:
        applied = await store.migrate()
        if applied:  # the workers find nothing left to apply
            log.info("migrated", migrations_applied=applied)
        await log_signer(config, store)
    finally:
        await store.close()


def _listening(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one port; refused if anything holds the port already."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family) as probe:  # no SO_REUSEPORT: a port in use fails
            port = probe.getsockname()[1]
        return [socket.create_server((host, port), family=family, reuse_port=True) for _ in range(count)]
    except OSError as e:
        raise InvalidInput(f"cannot listen on {host}:{port}: {e.strerror}") from None


def _work(config: Config, own: socket.socket, sockets: list[socket.socket], first: int, commits: Commits) -> NoReturn:
    """A forked worker's whole life: serve on its own socket until signalled or orphaned."""
    for other in sockets:
        if other is not own:
            other.close()
    code = 0
    try:
        event_loop.run(_until_signalled(config, own, first=first, commits=commits))
    except BaseException:
        log.exception("worker_failed")
        code = 1
    os._exit(code)


async def _until_signalled(
    config: Config,
    sock: socket.socket | None = None,
    *,
    workers: list[int] | None = None,
    first: int | None = None,
    commits: Commits | None = None,
) -> list[int]:
    """Serve until SIGTERM or SIGINT (passed on to ``workers`` at once), until a worker dies,
    or, in a worker, until the ``first`` process is gone. The pids of workers that died."""
    stop, died = asyncio.Event(), list[int]()
    workers = workers or []

    def stopping() -> None:
        stop.set()
        _signal(workers, signal.SIGTERM)

    loop = asyncio.get_running_loop()
    for signum in _SIGNALS:
        loop.add_signal_handler(signum, stopping)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)  # a signal that came while held arrives now
    watch = asyncio.create_task(_watch(stop, stopping, workers, died, first))
    try:
        await serve(config, stop=stop, sock=sock, commits=commits)
    finally:
        watch.cancel()
        _hold_signals()  # before the loop closes and its handlers are gone
    return died


async def _watch(stop: asyncio.Event, stopping: Callable[[], None], workers: list[int], died: list[int],
                 first: int | None) -> None:  # fmt: skip
    """Twice a second: has a worker died, or (in a worker) is the first process gone?"""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
        if stop.is_set():  # stopping: a worker that exits now was told to (_reap says how it ended)
            return
        for pid in [pid for pid in workers if _exited(pid) is not None]:
            log.error("worker_died", pid=pid)
            workers.remove(pid)
            died.append(pid)
        if died or (first is not None and os.getppid() != first):
            log.warning("stopping", reason="a worker died" if died else "the first process is gone")
            stopping()


def _exited(pid: int) -> int | None:
    """The exit code of a worker that has exited (reaping it), else None; never blocks."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done == pid else None


def _reap(workers: list[int]) -> list[int]:
    """Wait for the workers to exit (SIGKILL after the shutdown time); those that failed."""
    deadline, failed, waiting = time.monotonic() + SHUTDOWN_TIMEOUT + _REAP_MARGIN, [], list(workers)
    while waiting:
        for pid in list(waiting):
            code = _exited(pid)
            if code is not None:
                waiting.remove(pid)
                if code != 0:
                    failed.append(pid)
        if waiting and time.monotonic() > deadline:
            log.error("workers_killed", pids=waiting)
            _signal(waiting, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)
    return failed


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


class _ProblemHandler(RequestHandler):
    """aiohttp's connection handler, answering a request its HTTP parser refuses (a broken
    request line or header, say), or an Expect on an unknown path, as problem+json, like
    every other error."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            log.error("connection_error", status=status, error=type(exc).__name__ if exc else None, exc_info=exc)
        response = unparsed(status, message or HTTPStatus(status).phrase)
        if status < HTTPStatus.INTERNAL_SERVER_ERROR:
            log.info("malformed_request", status=status, detail=response.text)
        response.force_close()
        return response

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        # An Expect on a path no route serves is refused by aiohttp itself, in plain text and
        # before any middleware: answer it as the routes answer it.
        if isinstance(resp, web.HTTPExpectationFailed) and isinstance(request, web.Request):
            resp = await expectations(request) or resp
        return await super().finish_response(request, resp, start_time)


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _ProblemHandler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    """An AppRunner whose connections are :class:`_ProblemHandler` (aiohttp has no public hook
    for the answer to an unparsable request: this is the one place that reaches inside)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _ProblemServer  # the same server, handing out the handler above
        return server
