"""Where the log lives: PostgreSQL (production) or SQLite (the embedded default)."""

from __future__ import annotations

from ledger.errors import InvalidInput
from ledger.store.base import KeyRow, LeafRow, Store, WriteTransaction

__all__ = ["KeyRow", "LeafRow", "Store", "WriteTransaction", "open_store"]


async def open_store(url: str) -> Store:
    """Open the store a database URL names: ``postgresql://…`` or ``sqlite:///file.db``."""
    if url.startswith(("postgresql://", "postgres://")):
        from ledger.store.postgres import PostgresStore

        return await PostgresStore.open(url)
    if url.startswith("sqlite:"):
        from ledger.store.sqlite import SqliteStore

        return await SqliteStore.open(url)
    raise InvalidInput(f"database URL {url!r} must start with postgresql:// or sqlite:///")
