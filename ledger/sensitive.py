"""Sealed sensitive fields: salted digests in the log, disclosures kept apart.

A top-level property its schema marks ``"x-sensitive": {"category": ...}`` never enters
the leaf in clear. The leaf holds ``{"_sd": DIGEST}`` where

    disclosure = canonical([salt, value])      salt: 16 random bytes, base64url, no padding
    DIGEST     = BASE64URL_NOPAD(SHA-256(disclosure))

Disclosures are stored apart and may be erased; the log and its proofs stay valid.
:func:`reveal` puts back what a reader may see and checks each disclosure against its
digest. Validate the clear data against its schema *before* sealing: sealed leaf data no
longer matches the schema for the sealed fields.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

from ledger.canonical import canonical, parse
from ledger.errors import LedgerError, VerificationError
from ledger.schemas import sensitive_fields

__all__ = ["Disclosure", "digest_of", "disclosed_value", "is_sealed", "new_salt", "reveal", "seal"]

SALT_BYTES = 16


@dataclass(frozen=True)
class Disclosure:
    """The clear form of one sealed field: ``disclosure`` hashes to ``digest``."""

    digest: str
    category: str
    field: str
    disclosure: bytes


def new_salt() -> bytes:
    """16 random bytes from the operating system."""
    return os.urandom(SALT_BYTES)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def digest_of(disclosure: bytes) -> str:
    """BASE64URL_NOPAD(SHA-256(disclosure))."""
    return _b64url(hashlib.sha256(disclosure).digest())


def is_sealed(value: object) -> TypeGuard[Mapping[str, Any]]:
    """True for a sealed field, ``{"_sd": digest}`` (possibly marked ``"erased"``)."""
    return isinstance(value, Mapping) and isinstance(value.get("_sd"), str)


def seal(
    schema_name: str, data: Mapping[str, Any], salt: Callable[[], bytes] = new_salt
) -> tuple[dict[str, Any], tuple[Disclosure, ...]]:
    """Replace each sensitive field of ``data`` by its digest; return leaf data and disclosures."""
    leaf = dict(data)
    disclosures = []
    for field, category in sensitive_fields(schema_name).items():
        if field not in data or is_sealed(data[field]):
            continue
        disclosure = canonical([_b64url(salt()), data[field]])
        sealed = Disclosure(digest_of(disclosure), category, field, disclosure)
        leaf[field] = {"_sd": sealed.digest}
        disclosures.append(sealed)
    return leaf, tuple(disclosures)


def reveal(
    schema_name: str,
    leaf_data: Mapping[str, Any],
    disclosures: Mapping[str, bytes],
    categories: Collection[str] | Literal["all"],
    erased: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """Put back the sealed fields of ``categories`` whose disclosure is given.

    ``disclosures`` maps digest -> disclosure bytes; each one used must hash to its
    digest, or VerificationError. Fields of other categories, and fields without a
    disclosure, stay ``{"_sd": digest}``; a digest listed in ``erased`` (the caller
    knows its disclosure was deleted) shows as ``{"_sd": digest, "erased": true}``.
    """
    data = dict(leaf_data)
    for field, category in sensitive_fields(schema_name).items():
        value = data.get(field)
        if not is_sealed(value):
            continue
        digest = value["_sd"]
        if digest in erased:
            data[field] = {"_sd": digest, "erased": True}
        elif (categories == "all" or category in categories) and digest in disclosures:
            data[field] = disclosed_value(digest, disclosures[digest], field)
    return data


def disclosed_value(digest: str, disclosure: bytes, field: str = "?") -> Any:
    """The value inside ``disclosure``, after checking it hashes to ``digest``."""
    if digest_of(disclosure) != digest:
        raise VerificationError(f"disclosure for field '{field}' does not match its digest {digest}")
    try:
        salt_and_value = parse(disclosure)
    except LedgerError:
        raise VerificationError(f"disclosure for field '{field}' is not valid JSON") from None
    if not (isinstance(salt_and_value, list) and len(salt_and_value) == 2 and isinstance(salt_and_value[0], str)):
        raise VerificationError(f"disclosure for field '{field}' is not a [salt, value] array")
    return salt_and_value[1]
