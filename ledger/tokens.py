"""Bearer tokens and roles: what a token may do; only a token's hash is ever stored."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ledger.errors import InvalidInput

__all__ = [
    "ANONYMOUS",
    "PREFIX",
    "ROLES",
    "FindToken",
    "Principal",
    "TokenRecord",
    "check_name",
    "check_role",
    "hash_token",
    "new_token",
]

ROLES = ("admin", "policy-officer", "security-officer", "auditor", "service")
PREFIX = "plt_"


@dataclass(frozen=True)
class TokenRecord:
    """A stored token: its id, name and role, and the SHA-256 of the secret (never the secret)."""

    id: str
    name: str
    role: str
    hash: str
    created_at: str
    revoked_at: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who is asking: a token's holder, or the anonymous public."""

    role: str | None
    token_id: str | None = None
    name: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.role is None

    @property
    def actor(self) -> dict[str, str]:
        return {"id": self.name or "anonymous", "role": self.role or "public"}


ANONYMOUS = Principal(None)

FindToken = Callable[[str], Awaitable[TokenRecord | None]]


def check_name(name: str) -> str:
    """A token holder's name: it becomes the actor of what the token records, so plain text."""
    if not 1 <= len(name) <= 100 or not name.isprintable() or name != name.strip() or name[0] in "=+-@":
        raise InvalidInput(f"token name {name[:40]!r} must be 1-100 printable characters, with no space at either"
                           " end, not starting with = + - @ (a spreadsheet would take it for a formula)")  # fmt: skip
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def new_token() -> tuple[str, str]:
    """A fresh secret (shown once to its holder) and the token id derived from it."""
    secret = PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return secret, hash_token(secret)[:12]


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
