"""Who is asking: bearer tokens to principals, and the roles each action needs.

No ``Authorization`` header means the anonymous public view. A header that is not a
valid, unrevoked token is refused (401) rather than silently treated as anonymous.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from api.keys import PRINCIPAL, TOKENS
from ledger.errors import Forbidden, Unauthenticated
from ledger.tokens import ANONYMOUS, Principal, hash_token

__all__ = ["authenticate", "require"]


async def _principal(request: web.Request) -> Principal:
    header = request.headers.get("Authorization")
    if header is None:
        return ANONYMOUS
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'; create one with 'policy-ledger tokens create'")
    secret = secret.strip()
    record = await request.app[TOKENS](hash_token(secret)) if secret.isascii() else None  # ours are ASCII
    if record is None or record.revoked_at is not None:
        raise Unauthenticated("the bearer token is unknown or revoked; ask an admin for a new one")
    return Principal(record.role, record.id, record.name)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[PRINCIPAL] = await _principal(request)
    return await handler(request)


def require(request: web.Request, *roles: str) -> Principal:
    """The caller, if it holds one of ``roles``; else 401 or 403.

    Decisions are recorded only by the role that owns them: an admin manages the service
    but does not issue bans or grant exemptions.
    """
    principal = request[PRINCIPAL]
    if principal.anonymous:
        raise Unauthenticated(f"this needs a bearer token with role {' or '.join(roles)}")
    if principal.role not in roles:
        raise Forbidden(f"role {principal.role} may not do this; it needs {' or '.join(roles)}")
    return principal
