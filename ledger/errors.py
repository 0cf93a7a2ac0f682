"""The one error hierarchy of policy-ledger.

Every error knows the HTTP answer it becomes (``status``) and its RFC 9457 problem
``type``; the HTTP layer renders them in one place, the CLI prints ``str(error)``.

    LedgerError                      500  something we did not expect
    ├── InvalidInput                 400  the request or event is malformed
    │   ├── NotCanonical             400  a value JSON canonicalization cannot hold
    │   ├── EventTooLarge            413  an event over the size limit
    │   └── SchemaViolation          422  data that does not match its JSON Schema
    ├── Unauthenticated              401  no token, or an unknown one
    ├── Forbidden                    403  a token whose role may not do this
    ├── NotFound                     404  no such policy, exemption, event or size
    ├── RuleViolation                409  a policy rule forbids the command
    ├── VersionConflict              412  the stream moved on since it was read
    ├── IdempotencyMismatch          422  an Idempotency-Key reused with another body
    ├── IdempotencyKeyTaken          409  another request with that key was recorded first
    ├── VerificationError            422  the log, a proof or a signature does not verify
    ├── AppendOnly                   409  the store refused to change recorded history
    └── Unavailable                  503  the writer or database cannot serve now
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AppendOnly",
    "EventTooLarge",
    "ExpectationFailed",
    "Forbidden",
    "IdempotencyKeyTaken",
    "IdempotencyMismatch",
    "InvalidInput",
    "LedgerError",
    "NotCanonical",
    "NotFound",
    "RuleViolation",
    "SchemaViolation",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedEncoding",
    "VerificationError",
    "VersionConflict",
]


class LedgerError(Exception):
    """Base of every error policy-ledger raises on purpose."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, pointer: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer

    @property
    def type(self) -> str:
        return f"https://policy-ledger.dev/problems/{self.slug}"


class InvalidInput(LedgerError):
    status = 400
    slug = "invalid-input"
    title = "Invalid input"


class NotCanonical(InvalidInput):
    slug = "not-canonical"
    title = "Value cannot be canonically encoded"


class EventTooLarge(InvalidInput):
    status = 413
    slug = "event-too-large"
    title = "Event too large"


class ExportTooLarge(InvalidInput):
    status = 413
    slug = "export-too-large"
    title = "Export too large"


class UnsupportedEncoding(InvalidInput):
    status = 415
    slug = "unsupported-encoding"
    title = "Content coding not supported"


class ExpectationFailed(InvalidInput):
    status = 417
    slug = "expectation-failed"
    title = "Expectation failed"


class SchemaViolation(InvalidInput):
    status = 422
    slug = "schema-violation"
    title = "Data does not match its schema"


class Unauthenticated(LedgerError):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class Forbidden(LedgerError):
    status = 403
    slug = "forbidden"
    title = "Role not allowed"


class NotFound(LedgerError):
    status = 404
    slug = "not-found"
    title = "Not found"


class RuleViolation(LedgerError):
    status = 409
    slug = "rule-violation"
    title = "Policy rule violated"


class VersionConflict(LedgerError):
    status = 412
    slug = "version-conflict"
    title = "Stream version conflict"


class IdempotencyMismatch(LedgerError):
    status = 422
    slug = "idempotency-mismatch"
    title = "Idempotency-Key reused with a different request"


class IdempotencyKeyTaken(LedgerError):
    status = 409
    slug = "idempotency-key-taken"
    title = "Another request with this Idempotency-Key was recorded first"


class VerificationError(LedgerError):
    """The log, a proof, a checkpoint or a signature failed to verify.

    ``seq`` names the first bad event when there is one.
    """

    status = 422
    slug = "verification-failed"
    title = "Verification failed"

    def __init__(self, detail: str, *, seq: int | None = None) -> None:
        super().__init__(f"seq {seq}: {detail}" if seq is not None else detail)
        self.detail = detail
        self.seq = seq
        self.pointer = None

    def __reduce__(self) -> tuple[type[VerificationError], tuple[str], dict[str, Any]]:
        return (type(self), (self.detail,), {"seq": self.seq})

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        assert state is not None
        self.seq = state["seq"]
        self.args = (f"seq {self.seq}: {self.detail}" if self.seq is not None else self.detail,)


class AppendOnly(LedgerError):
    status = 409
    slug = "append-only"
    title = "Recorded history cannot be changed"


class Unavailable(LedgerError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"
