"""The sealed-field categories, and the Freedom of Information Act 2000 exemption under
which an export withholds each one it does not release."""

from __future__ import annotations

__all__ = ["CATEGORIES", "FOI_EXEMPTIONS"]

FOI_EXEMPTIONS = {
    "national-security": "section 24(1) of the Freedom of Information Act 2000 (national security)",
    "personal-data": "section 40(2) of the Freedom of Information Act 2000 (personal information)",
}
CATEGORIES = tuple(FOI_EXEMPTIONS)
