"""The typed keys of the application's and each request's state, all in one place."""

from __future__ import annotations

from aiohttp import web

from ledger.config import Config
from ledger.store import Store
from ledger.writer import Writer

__all__ = ["CONFIG", "REQUEST_ID", "STORE", "WRITER"]

CONFIG = web.AppKey("config", Config)
STORE: web.AppKey[Store] = web.AppKey("store")  # a Protocol: no class to hand AppKey
WRITER = web.AppKey("writer", Writer)
REQUEST_ID = web.RequestKey("request_id", str)
