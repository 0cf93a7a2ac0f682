"""Command data for the domain tests: valid by default, changed by keyword."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["at", "ban", "grant", "lift", "renew", "review", "revoke"]


def at(text: str) -> datetime:
    """A UTC time from ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ban(app: str = "TikTok", organisations: tuple[str, ...] = ("*",), **changes: Any) -> dict[str, Any]:
    return {
        "app": {"name": app, "vendor": "ByteDance Ltd."}, "applies_to": {"organisations": list(organisations)},
        "rationale": "Security risk to government data.", "authority": "Cabinet Office", "decision_ref": "CO-1",
        "effective_from": "2023-03-16T00:00:00Z", **changes,
    }  # fmt: skip


def grant(account: str = "ukgov", organisation: str = "cabinet-office", **changes: Any) -> dict[str, Any]:
    return {
        "grantee": {"organisation": organisation, "unit": "GCS", "account": account}, "purpose": "Public messages.",
        "devices": ["CO-GCS-TT-001"], "mitigations": ["Dedicated handset."], "approved_by": "CO Security",
        "case_ref": "CO-DST-1", "valid_from": "2025-02-03T00:00:00Z", "expires_at": "2025-08-03T00:00:00Z",
        **changes,
    }  # fmt: skip


def review(outcome: str = "no-change") -> dict[str, str]:
    return {"outcome": outcome, "summary": "No changes to the security policy.", "reviewed_at": "2025-02-11T00:00:00Z"}


def lift(effective_at: str = "2025-06-01T00:00:00Z") -> dict[str, str]:
    return {"reason": "Re-assessed.", "effective_at": effective_at}


def renew(expires_at: str = "2026-02-03T00:00:00Z") -> dict[str, str]:
    return {"expires_at": expires_at, "reason": "Mitigations confirmed."}


def revoke(effective_at: str = "2025-04-01T00:00:00Z") -> dict[str, str]:
    return {"reason": "No longer needed.", "effective_at": effective_at}
