"""Event schemas: JSON Schema 2020-12, one file per event type and version.

A schema is named like its event, ``"policy.issued/1"``, and stored as
``events/policy.issued.1.json``: first in ``_schemas`` beside this package (an installed
wheel), else in the repository's ``schemas`` folder. A top-level property marked
``"x-sensitive": {"category": ...}`` is sealed in the log (see :mod:`ledger.sensitive`).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from ledger.errors import NotFound, SchemaViolation

__all__ = ["example", "names", "parse_time", "schema", "sensitive_fields", "validate"]

_PACKAGED = Path(__file__).parent / "_schemas" / "events"
_REPOSITORY = Path(__file__).parent.parent / "schemas" / "events"

_PLAIN_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", re.ASCII)  # as the ledger records times
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 date-time (a time zone is required) into an aware UTC datetime."""
    if _PLAIN_UTC.fullmatch(text):  # the common form, parsed in C (projections parse millions)
        return datetime.fromisoformat(text)
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time, e.g. 2025-02-07T10:00:00Z")
    year, month, day, hour, minute, second = map(int, match.group(1, 2, 3, 4, 5, 6))
    fraction = match.group(7)
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    if match.group(8) is not None:  # "Z": UTC already
        return datetime(year, month, day, hour, minute, second, micros, UTC)
    hours, minutes = int(match.group(10)), int(match.group(11))
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r} has an impossible time zone offset")
    offset = timedelta(hours=hours, minutes=minutes) * (-1 if match.group(9) == "-" else 1)
    local = datetime(year, month, day, hour, minute, second, micros, timezone(offset))
    try:
        return local.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC") from None


def _is_date_time(value: object) -> bool:
    if isinstance(value, str):
        parse_time(value)
    return True


def _is_date_time_text(text: str) -> bool:
    try:
        parse_time(text)
    except ValueError:
        return False
    return True


_FORMATS = FormatChecker()
_FORMATS.checks("date-time", raises=ValueError)(_is_date_time)
# A tuple is an array, as canonical JSON writes it (and as the compiled validator sees it).
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine("array", lambda _, value: isinstance(value, list | tuple))
_Validator = validators.extend(Draft202012Validator, type_checker=_TYPES)


def names() -> tuple[str, ...]:
    """Every schema name, sorted, e.g. ``("exemption.amended/1", ...)``."""
    return tuple(sorted(_schemas()))


def schema(name: str) -> Mapping[str, Any]:
    """The schema document called ``name``."""
    document: Mapping[str, Any] = _validator(name).schema
    return document


def validate(name: str, data: Any) -> None:
    """Return nothing if ``data`` matches schema ``name``, else raise SchemaViolation.

    A compiled validator answers first (valid data, the usual case, costs microseconds);
    data it refuses goes to the thorough one, which has the last word on it and says what
    to fix. A property test holds the two to the same verdict."""
    if _quick_check(name, data):
        return
    errors = list(_validator(name).iter_errors(data))
    if not errors:
        return
    error = best_match(errors)
    assert error is not None
    pointer, text = _describe(error)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    raise SchemaViolation(f"{name}: {text}{more}", pointer=pointer)


@functools.cache
def sensitive_fields(name: str) -> Mapping[str, str]:
    """Top-level property name -> sensitivity category, for the sealed fields of ``name``
    (read-only: made once per schema, as every command and every read of it asks)."""
    properties = schema(name).get("properties", {})
    fields = {field: spec["x-sensitive"]["category"] for field, spec in properties.items() if "x-sensitive" in spec}
    return MappingProxyType(fields)


def example(name: str) -> Any:
    """A fresh copy of the first example in schema ``name``."""
    return copy.deepcopy(schema(name)["examples"][0])


@functools.cache
def _schemas() -> Mapping[str, Path]:
    folder = _PACKAGED if _PACKAGED.is_dir() else _REPOSITORY
    return {_name_of(path): path for path in folder.glob("*.json")}


def _name_of(path: Path) -> str:
    kind, _, version = path.stem.rpartition(".")
    return f"{kind}/{version}"


@functools.cache
def _validator(name: str) -> Validator:
    path = _schemas().get(name)
    if path is None:
        raise NotFound(f"no event schema {name!r}; known schemas: {', '.join(names())}")
    document = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    return _Validator(document, format_checker=_FORMATS)


@functools.cache
def _compiled(name: str) -> jsonschema_rs.Validator:
    formats = {"date-time": _is_date_time_text}
    return jsonschema_rs.validator_for(dict(schema(name)), validate_formats=True, formats=formats)


def _quick_check(name: str, data: Any) -> bool:
    """True if the compiled validator finds ``data`` valid; False if not, or if it cannot tell."""
    try:
        return _compiled(name).is_valid(data)
    except (ValueError, TypeError, OverflowError):  # e.g. an integer wider than 64 bits
        return False


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _describe(error: ValidationError) -> tuple[str, str]:
    """The JSON pointer of the bad field and a sentence saying what to fix."""
    at = _pointer(error.absolute_path)
    where = f"'{at}'" if at else "the data"
    kind, expected = error.validator, error.validator_value
    if kind == "required":
        missing = next(f for f in expected if f not in error.instance)
        return f"{at}/{missing}", f"'{at}/{missing}' is required; add it"
    if kind == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        unknown = sorted(f for f in error.instance if f not in known)[0]
        allowed = ", ".join(sorted(known))
        return f"{at}/{unknown}", f"'{at}/{unknown}' is not a known field; remove it (known: {allowed})"
    if kind == "anyOf" and all(set(s) == {"required"} for s in expected):
        fields = ", ".join(f for s in expected for f in s["required"])
        return at, f"{where} must include at least one of: {fields}"
    return at, f"{where} {_requirement(error)}"


_FORMAT_SENTENCES = {
    "date-time": "must be an RFC 3339 date-time with a time zone, e.g. 2025-02-07T10:00:00Z",
}


def _requirement(error: ValidationError) -> str:
    kind, expected = str(error.validator), error.validator_value
    if kind == "type":
        return f"must be of type {expected}"
    if kind == "format":
        return _FORMAT_SENTENCES.get(str(expected), f"must be a valid {expected}")
    if kind == "minItems":
        return f"must list at least {expected} item(s)"
    if kind == "uniqueItems":
        return "must not list the same item twice"
    if kind == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters"
    if kind == "maxLength":
        return f"must be at most {expected} characters"
    if kind == "pattern":
        return f"must match the pattern {expected}"
    if kind == "enum":
        return f"must be one of: {', '.join(map(str, expected))}"
    return f"is invalid: {error.message}"
