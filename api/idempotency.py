"""``Idempotency-Key``: a retried command gets the first answer, and nothing is appended twice.

A key is settled, with the seq of the event its request recorded, in the transaction that
records it; the writer refuses a draft whose key is settled already (IdempotencyKeyTaken),
so two requests with one key never both record. A retry is run as the first was, and when
it fails (refused for its key, or by a rule the first one's event now breaks) and its key
is settled, it replays the recorded event instead: also after a crash between the first
one's commit and its answer. Nothing is written but with the event: a request that fails
leaves its key unused, and a first request costs little more than one without a key (the
writer reads which of a batch's keys are taken with the log head, in the same statement).

A key is remembered for at least ``LEDGER_IDEMPOTENCY_HOURS`` (24): each serving process
forgets older ones when it starts and every hour after (:func:`forget_old_keys`), and a
request with a forgotten key is a new request.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from api.keys import PRINCIPAL, STORE
from ledger.errors import IdempotencyMismatch, InvalidInput, LedgerError
from ledger.events import Claim
from ledger.store.base import Remembered, Store

__all__ = ["HEADER", "forget_old_keys", "idempotent"]

log = structlog.get_logger("api")

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


Run = Callable[[Claim | None], Awaitable[web.Response]]
Replay = Callable[[int], Awaitable[web.Response]]


async def idempotent(request: web.Request, body: bytes, run: Run, replay: Replay) -> web.Response:
    """Run a command once per key; a retry with the same key and body replays the first
    answer, rebuilt from the event it recorded (``replay`` of its seq)."""
    key = request.headers.get(HEADER)
    if key is None:
        return await run(None)
    if not _KEY.fullmatch(key):
        raise InvalidInput(f"{HEADER} must be 1-255 visible ASCII characters")
    store, scope = request.app[STORE], request[PRINCIPAL].token_id or "anonymous"
    digest = hashlib.sha256(b"\n".join([request.method.encode(), request.raw_path.encode(), body])).hexdigest()
    claim = Claim(scope, key, digest)
    try:
        return await run(claim)
    except LedgerError:  # perhaps because a request with this key was recorded first
        earlier = await store.find_idempotency(scope, key)
        if earlier is None:
            raise
        return await _replayed(claim, earlier, replay)


async def _replayed(claim: Claim, earlier: Remembered, replay: Replay) -> web.Response:
    if earlier.request_hash != claim.request_hash:
        raise IdempotencyMismatch(f"{HEADER} {claim.key!r} was used for a different request; use a new key")
    if earlier.status is not None and earlier.body is not None:  # an answer an earlier version stored
        replayed = web.Response(body=earlier.body, status=earlier.status, content_type="application/json")
    else:
        assert earlier.seq is not None  # find_idempotency finds settled keys only
        replayed = await replay(earlier.seq)
    replayed.headers["Idempotent-Replayed"] = "true"
    return replayed


async def forget_old_keys(store: Store, hours: int, every: float = 3600.0) -> None:
    """Forget the keys first used ``hours`` or more ago, now and every ``every`` seconds after,
    until cancelled; a failure is logged and tried again at the next turn."""
    while True:
        try:
            forgotten = await store.forget_idempotency(hours)
        except Exception as e:  # the database out of reach for a while, say: not a reason to stop
            log.warning("idempotency_keys_not_forgotten", error=str(e))
        else:
            if forgotten:
                log.info("idempotency_keys_forgotten", count=forgotten, hours=hours)
        await asyncio.sleep(every)
