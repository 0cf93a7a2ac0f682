"""Configuration from the environment (and CLI flags, which override it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ledger.errors import InvalidInput
from ledger.signing import Signer

__all__ = ["Config", "load_signer"]

DEFAULT_DATABASE_URL = "sqlite:///policy-ledger.db"
DEFAULT_ORIGIN = "policy-ledger.localhost/device-policy"


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_DATABASE_URL
    origin: str = DEFAULT_ORIGIN
    signing_key_file: Path = Path("policy-ledger.key")
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    db_pool_size: int = 20  # PostgreSQL connections the service may hold (per worker)
    workers: int = 1  # serving processes sharing the port, each with its own writer and pool
    read_cache: int = 10_000  # decision questions (and tokens) whose reads each worker remembers (0: none)
    idempotency_hours: int = 24  # an Idempotency-Key is remembered at least this long (0: for ever)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        port = env.get("LEDGER_PORT", "8080")
        if not _whole(port) or not 1 <= int(port) <= 65535:
            raise InvalidInput(f"LEDGER_PORT={port!r} is not a port number (1 to 65535)")
        level = env.get("LEDGER_LOG_LEVEL", "info")
        if level.lower() not in LOG_LEVELS:
            raise InvalidInput(f"LEDGER_LOG_LEVEL={level!r} must be one of {', '.join(LOG_LEVELS)}")
        pool = env.get("LEDGER_DB_POOL_SIZE", "20")
        if not _whole(pool) or not 1 <= int(pool) <= 1000:
            raise InvalidInput(f"LEDGER_DB_POOL_SIZE={pool!r} must be a whole number from 1 to 1000")
        workers = env.get("LEDGER_WORKERS", "1")
        if not _whole(workers) or not 1 <= int(workers) <= 64:
            raise InvalidInput(f"LEDGER_WORKERS={workers!r} must be a whole number from 1 to 64")
        cache = env.get("LEDGER_READ_CACHE", "10000")
        if not _whole(cache) or not 0 <= int(cache) <= 1_000_000:
            raise InvalidInput(f"LEDGER_READ_CACHE={cache!r} must be a whole number from 0 (off) to 1000000")
        hours = env.get("LEDGER_IDEMPOTENCY_HOURS", "24")
        if not _whole(hours) or not 0 <= int(hours) <= MAX_IDEMPOTENCY_HOURS:
            raise InvalidInput(f"LEDGER_IDEMPOTENCY_HOURS={hours!r} must be a whole number of hours from 0 (keys "
                               f"remembered for ever) to {MAX_IDEMPOTENCY_HOURS}")  # fmt: skip
        return cls(
            database_url=env.get("LEDGER_DATABASE_URL", DEFAULT_DATABASE_URL),
            origin=env.get("LEDGER_ORIGIN", DEFAULT_ORIGIN),
            signing_key_file=Path(env.get("LEDGER_SIGNING_KEY_FILE", "policy-ledger.key")),
            host=env.get("LEDGER_HOST", "127.0.0.1"),
            port=int(port),
            log_level=level.lower(),
            db_pool_size=int(pool),
            workers=int(workers),
            read_cache=int(cache),
            idempotency_hours=int(hours),
        )

    def with_overrides(self, **values: object) -> Config:
        return replace(self, **{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
MAX_IDEMPOTENCY_HOURS = 10 * 366 * 24


def _whole(text: str) -> bool:
    """A whole number written in ASCII digits (``str.isdigit`` also takes ², say)."""
    return text.isascii() and text.isdigit()


def load_signer(config: Config, *, create: bool = True) -> Signer:
    """The log key from ``signing_key_file``; generated there (mode 0600) when missing."""
    path = config.signing_key_file
    if path.exists():
        signer = Signer.from_skey(path.read_text(encoding="utf-8"))
        if signer.name != config.origin:
            raise InvalidInput(f"key file {path} is for origin {signer.name!r}, but LEDGER_ORIGIN is {config.origin!r}")
        return signer
    if not create:
        raise InvalidInput(f"no signing key at {path}; run 'policy-ledger keys generate'")
    signer = Signer.generate(config.origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(signer.skey + "\n")
    return signer
