"""The verifiers' wire protocol under ``/v1/log`` (DESIGN.md, "Interfaces").

These shapes are fixed: other people's verifiers are written against them. Hashes,
leaves and proofs are standard base64 with padding; proofs are RFC 9162 audit paths.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from api.keys import CHECKPOINTS, CONFIG, NODES, STORE
from api.params import flag, query, required, whole
from api.problems import render
from ledger import exporting, proofs
from ledger.auditing import checkpoint_size
from ledger.errors import NotFound
from ledger.events import decode_leaf
from ledger.store import LeafRow, Store

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "routes"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

routes = web.RouteTableDef()


@routes.get("/v1/log/checkpoint")
async def checkpoint(request: web.Request) -> web.Response:
    note = await _latest_checkpoint(request.app)
    return web.Response(body=note, content_type="text/plain", charset="utf-8")


@routes.get("/v1/log/keys")
async def keys(request: web.Request) -> web.Response:
    rows = await request.app[STORE].keys()
    listed = [{"vkey": k.vkey, "key_id": k.key_id, "from_seq": k.from_seq} for k in rows]
    return render({"origin": request.app[CONFIG].origin, "keys": listed})


@routes.get("/v1/log/events/{seq}")
async def event(request: web.Request) -> web.Response:
    """One event; with ``?proof=1`` its receipt: the event, its inclusion proof, the checkpoint."""
    seq = whole(request.match_info["seq"], "seq in the path")
    if flag(request, "proof"):
        return render(await exporting.receipt(request.app[STORE], seq))
    rows = await request.app[STORE].read_leaves(seq, seq + 1)
    if not rows:
        raise NotFound(f"no event with seq {seq}; the log has {await request.app[STORE].log_size()} events")
    return render(_event(rows[0]))


@routes.get("/v1/log/events")
async def events(request: web.Request) -> web.Response:
    after = query(request, "after")
    limit = query(request, "limit", minimum=1, maximum=MAX_LIMIT)
    start, limit = 0 if after is None else after + 1, limit or DEFAULT_LIMIT
    rows = await request.app[STORE].read_leaves(start, start + limit + 1)  # one more: does a next page exist?
    page = rows[:limit]
    return render({"events": [_event(r) for r in page], "next": page[-1].seq if len(rows) > limit else None})


@routes.get("/v1/log/proofs/inclusion")
async def inclusion(request: web.Request) -> web.Response:
    seq, size = required(request, "seq"), query(request, "size", minimum=1)
    if size is None:
        size = await _checkpointed_size(request.app)
        if seq >= size:
            raise NotFound(f"seq {seq} is not in the latest checkpoint (tree size {size}); ask again later")
    leaf_hash, hashes, root = await proofs.inclusion(request.app[NODES], seq, size)
    return render({"seq": seq, "size": size, "leaf_hash": _b64(leaf_hash), "root": _b64(root),
                   "hashes": [_b64(h) for h in hashes]})  # fmt: skip


@routes.get("/v1/log/proofs/consistency")
async def consistency(request: web.Request) -> web.Response:
    first, second = required(request, "from", minimum=1), query(request, "to", minimum=1)
    if second is None:
        second = await _checkpointed_size(request.app)
    hashes = await proofs.consistency_proof(request.app[NODES], first, second)
    return render({"from": first, "to": second, "hashes": [_b64(h) for h in hashes]})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _event(row: LeafRow) -> dict[str, Any]:
    return {"seq": row.seq, "leaf": _b64(row.leaf), "leaf_hash": _b64(row.leaf_hash),
            "event": decode_leaf(row.leaf, row.seq)}  # fmt: skip


async def _latest_checkpoint(app: web.Application) -> bytes:
    return await app[CHECKPOINTS].read("latest", lambda: _stored_checkpoint(app[STORE]))


async def _stored_checkpoint(store: Store) -> bytes:
    note = await store.latest_checkpoint()
    if note is None:
        raise NotFound("the log has no checkpoint yet; the first append signs one")
    return note


async def _checkpointed_size(app: web.Application) -> int:
    return checkpoint_size(await _latest_checkpoint(app))
