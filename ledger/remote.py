"""Audit a log served over HTTP, as an oversight body would: download, then check it all.

Reads the verifiers' wire protocol (DESIGN.md, "Interfaces"): the latest checkpoint,
the log keys, and every event page by page; then runs the same checks as a local audit.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from ledger.auditing import Progress, audit_leaves
from ledger.checkpoint import Checkpoint
from ledger.errors import Unavailable, VerificationError
from ledger.merkle import leaf_hash
from ledger.signing import Verifier
from ledger.store.base import LeafRow
from ledger.verify import TrustedKey, key_terms

__all__ = ["PAGE", "RemoteAudit", "audit_url"]

PAGE = 1000
_SMALL = 1 << 20  # bytes an answer about keys or a checkpoint may take
_LARGE = 256 << 20  # bytes a page of events may take: PAGE events of at most 64 KiB, base64-encoded, and more
_PER_REQUEST = aiohttp.ClientTimeout(total=300, sock_connect=10, sock_read=60)  # a server that drips times out


@dataclass(frozen=True)
class RemoteAudit:
    """What a remote audit found: the checkpoint it checked (the latest served) and its note."""

    checkpoint: Checkpoint | None
    note: bytes | None
    keys: tuple[TrustedKey, ...]


async def audit_url(url: str, keys: Sequence[TrustedKey] | None, *, trusted: bytes | None = None,
                    workers: int | None = None, progress: Progress | None = None) -> RemoteAudit:  # fmt: skip
    """Verify the log served at ``url`` (the service root); ``keys`` None means trust the served
    keys. Each key is trusted only within the term the served list states for it."""
    base = url.rstrip("/") + "/v1/log"
    async with aiohttp.ClientSession(timeout=_PER_REQUEST, raise_for_status=False) as session:
        served_keys = await _get_json(session, f"{base}/keys", _SMALL)
        with _served("key list"):
            origin = str(served_keys["origin"])
        used = key_terms(_served_keys(served_keys), keys)
        note = await _get_checkpoint(session, f"{base}/checkpoint")
        checkpoint = await audit_leaves(_leaves(session, base), origin, used, latest=note, trusted=trusted,
                                        workers=workers, progress=progress)  # fmt: skip
    return RemoteAudit(checkpoint, note, used)


def _served_keys(body: dict[str, Any]) -> tuple[TrustedKey, ...]:
    try:
        return tuple(TrustedKey(Verifier.from_vkey(k["vkey"]), int(k["from_seq"])) for k in body["keys"])
    except (KeyError, TypeError, ValueError) as e:
        raise VerificationError(f"the served key list is malformed: {e}") from None


async def _get(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    try:
        response = await session.get(url)
    except (aiohttp.ClientError, TimeoutError) as e:
        raise Unavailable(f"cannot reach {url}: {e}") from None
    return response


async def _get_json(session: aiohttp.ClientSession, url: str, limit: int) -> Any:
    async with await _get(session, url) as response:
        if response.status != 200:
            raise Unavailable(f"{url} answered {response.status}")
        body = await _body(response, url, limit)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise VerificationError(f"{url} answered with something that is not JSON: {str(e)[:100]}") from None


async def _get_checkpoint(session: aiohttp.ClientSession, url: str) -> bytes | None:
    async with await _get(session, url) as response:
        if response.status == 404:
            return None
        if response.status != 200:
            raise Unavailable(f"{url} answered {response.status}")
        return await _body(response, url, _SMALL)


async def _body(response: aiohttp.ClientResponse, url: str, limit: int) -> bytes:
    """The whole answer, unless it runs beyond ``limit`` bytes or the request's time."""
    chunks, size = [], 0
    try:
        async for chunk in response.content.iter_chunked(1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise VerificationError(f"{url} answered with more than {limit:,} bytes; no log answer is so large")
    except (aiohttp.ClientError, TimeoutError) as e:
        raise Unavailable(f"cannot read the answer of {url}: {e or 'it took too long'}") from None
    return b"".join(chunks)


async def _leaves(session: aiohttp.ClientSession, base: str) -> AsyncIterator[LeafRow]:
    after: int | None = None
    while True:
        query = f"?limit={PAGE}" + ("" if after is None else f"&after={after}")
        page = await _get_json(session, f"{base}/events{query}", _LARGE)
        with _served("event page"):
            items, following = list(page["events"]), page["next"]
            following = None if following is None else int(following)
        for item in items:
            yield _leaf_row(item)
        if following is None:
            return
        if not items or (after is not None and following <= after):
            raise VerificationError(f"the event page after {after} says more follow, but it does not move on")
        after = following


@contextlib.contextmanager
def _served(what: str) -> Iterator[None]:
    """Within: a served answer is read; a VerificationError if it is not shaped as the protocol says."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise VerificationError(f"the served {what} is malformed: {type(e).__name__} {str(e)[:100]}") from None


def _leaf_row(item: dict[str, Any]) -> LeafRow:
    with _served("event"):
        seq = int(item["seq"])
    try:
        leaf, served_hash = base64.b64decode(item["leaf"], validate=True), base64.b64decode(item["leaf_hash"])
    except (binascii.Error, TypeError, KeyError):
        raise VerificationError("served leaf or leaf_hash is not base64", seq=seq) from None
    if leaf_hash(leaf) != served_hash:
        raise VerificationError("served leaf_hash does not match the served leaf", seq=seq)
    return LeafRow(seq, leaf, served_hash)
