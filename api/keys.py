"""The typed keys of the application's and each request's state, all in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ledger.config import Config
from ledger.proofs import ReadNodes
from ledger.read_cache import Commits, ReadCache
from ledger.store import Store
from ledger.tokens import FindToken, Principal
from ledger.writer import Writer

if TYPE_CHECKING:
    from api.metrics import Metrics
    from ledger.service import LedgerService

__all__ = [
    "CHECKPOINTS",
    "COMMITS",
    "CONFIG",
    "METRICS",
    "NODES",
    "PRINCIPAL",
    "REQUEST_ID",
    "SERVICE",
    "STORE",
    "TOKENS",
    "WRITER",
]

CONFIG = web.AppKey("config", Config)
STORE: web.AppKey[Store] = web.AppKey("store")  # a Protocol: no class to hand AppKey
WRITER = web.AppKey("writer", Writer)
REQUEST_ID = web.RequestKey("request_id", str)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
SERVICE: web.AppKey[LedgerService] = web.AppKey("service")
TOKENS: web.AppKey[FindToken] = web.AppKey("tokens")  # look a token up by its hash
CHECKPOINTS: web.AppKey[ReadCache[str, bytes]] = web.AppKey("checkpoints")  # the latest, remembered
COMMITS = web.AppKey("commits", Commits)  # batches committed by this service's writers, all workers
NODES: web.AppKey[ReadNodes] = web.AppKey("nodes")  # stored tree hashes, through a cache
PRINCIPAL = web.RequestKey("principal", Principal)
