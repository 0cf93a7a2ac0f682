"""The HTTP service of policy-ledger (aiohttp)."""

from api.app import create_app
from api.serving import run, serve

__all__ = ["create_app", "run", "serve"]
