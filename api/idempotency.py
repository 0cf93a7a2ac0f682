"""``Idempotency-Key``: a retried command gets the first answer, and nothing is appended twice.

The claim on a key is settled in the transaction that records the command's event, so a
retry after a crash between that commit and the answer replays the recorded event.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.keys import PRINCIPAL, STORE
from ledger.errors import IdempotencyInProgress, IdempotencyMismatch, InvalidInput

__all__ = ["HEADER", "idempotent"]

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


Run = Callable[[tuple[str, str] | None], Awaitable[web.Response]]


async def idempotent(
    request: web.Request, body: bytes, run: Run, replay: Callable[[int], Awaitable[web.Response]]
) -> web.Response:
    """Run a command once per key; a retry with the same key and body replays the first
    answer, or the answer rebuilt from the event recorded at ``seq`` (``replay``)."""
    key = request.headers.get(HEADER)
    if key is None:
        return await run(None)
    if not _KEY.fullmatch(key):
        raise InvalidInput(f"{HEADER} must be 1-255 visible ASCII characters")
    store, scope = request.app[STORE], request[PRINCIPAL].token_id or "anonymous"
    digest = hashlib.sha256(b"\n".join([request.method.encode(), request.raw_path.encode(), body])).hexdigest()
    earlier = await store.claim_idempotency(scope, key, digest)
    if earlier is not None:
        if earlier.request_hash != digest:
            raise IdempotencyMismatch(f"{HEADER} {key!r} was used for a different request; use a new key")
        if earlier.status is not None and earlier.body is not None:
            replayed = web.Response(body=earlier.body, status=earlier.status, content_type="application/json")
        elif earlier.seq is not None:
            replayed = await replay(earlier.seq)
        else:
            raise IdempotencyInProgress(f"the first request with {HEADER} {key!r} is still running; retry shortly")
        replayed.headers["Idempotent-Replayed"] = "true"
        return replayed
    try:
        response = await run((scope, key))
    except BaseException:
        await store.remember_idempotency(scope, key, None, None)
        raise
    assert isinstance(response.body, bytes)
    await store.remember_idempotency(scope, key, response.status, response.body)
    return response
