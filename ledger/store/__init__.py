"""Where the log lives: PostgreSQL (production) or SQLite (the embedded default)."""

from __future__ import annotations

from ledger.errors import InvalidInput
from ledger.store.base import KeyRow, LeafRow, Store, WriteTransaction, sqlite_path

__all__ = ["KeyRow", "LeafRow", "Store", "WriteTransaction", "in_memory", "open_store"]


async def open_store(url: str, *, pool_size: int = 10, create: bool = True) -> Store:
    """Open the store a database URL names: ``postgresql://…`` (a pool of up to
    ``pool_size`` connections) or ``sqlite:///file.db`` (one connection). ``create=False``:
    a SQLite file that does not exist is refused rather than made (a mistyped path)."""
    if url.startswith(("postgresql://", "postgres://")):
        from ledger.store.postgres import PostgresStore

        return await PostgresStore.open(url, max_size=pool_size)
    if url.startswith("sqlite:") and not url.startswith("sqlite://"):
        raise InvalidInput(f"database URL {url!r} must be sqlite:///relative.db or sqlite:////absolute.db")
    if url.startswith("sqlite:"):
        from ledger.store.sqlite import SqliteStore

        return await SqliteStore.open(url, create=create)
    raise InvalidInput(f"database URL {url!r} must start with postgresql:// or sqlite:///")


def in_memory(url: str) -> bool:
    """Whether ``url`` names a SQLite database that lives only in its process's memory."""
    return url.startswith("sqlite:") and sqlite_path(url) == ":memory:"
