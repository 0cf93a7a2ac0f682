"""Canonical JSON: RFC 8785 (JCS) for the values an event may hold.

Allowed: ``None``, ``bool``, ``int`` within ±2^53, ``str``, ``list``/``tuple`` and
``dict`` with ``str`` keys. Floats (and NaN, infinities) are refused, so every number is
an integer and JCS number formatting reduces to ``str(int)``. Keys are sorted by their
UTF-16 code units, as RFC 8785 §3.2.3 requires.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson

from ledger.errors import NotCanonical

__all__ = ["MAX_DEPTH", "MAX_SAFE_INTEGER", "canonical", "copied", "is_canonical", "parse"]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 254  # arrays and objects within one another: orjson's limit, well within Python's stack

_encode_str = json.encoder.encode_basestring
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER  # integers beyond ±2^53 raise
_ASTRAL = re.compile(rb"[\xf0-\xf4]")  # the lead byte of a character beyond U+FFFF in UTF-8


class _Float(Exception):
    """A number with a point or an exponent in JSON read back: the value held a float."""


def _no_float(text: str) -> Any:
    raise _Float(text)


_READ_BACK = msgspec.json.Decoder(float_hook=_no_float)


def canonical(value: Any) -> bytes:
    """Return the canonical UTF-8 bytes of ``value`` or raise :class:`NotCanonical`."""
    fast = _fast(value)
    if fast is not None:
        return fast
    _check(value, "")
    return "".join(_encode(value)).encode("utf-8")


def copied(value: Any) -> Any:
    """A deep copy of a JSON value: its objects and arrays copied, its strings, numbers,
    booleans and nulls shared (they cannot change); anything else as ``copy.deepcopy`` copies it."""
    if isinstance(value, dict):
        return {key: copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copied(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return copy.deepcopy(value)


def _fast(value: Any) -> bytes | None:
    """Encode in C (orjson), then prove the result exact; None when unsure.

    orjson writes strings and sorts keys as RFC 8785 does for text within U+FFFF, and
    refuses lone surrogates, non-string keys and integers beyond ±2^53. Decoding the
    result back (by msgspec, which stops at a number with a point or an exponent: a float)
    compares equal only if every array was a list, every object a dict and no float was
    NaN or infinite. Astral characters (which sort differently in UTF-16) take the slow,
    precise path, as do floats and values that are not an array or object.
    """
    try:
        data = orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return None
    if data[:1] not in (b"{", b"[") or _astral(data):
        return None
    try:
        return data if _READ_BACK.decode(data) == value else None
    except (_Float, msgspec.DecodeError, RecursionError):
        return None


def _astral(data: bytes) -> bool:
    return not data.isascii() and _ASTRAL.search(data) is not None


def _safe_int(token: str) -> int:
    number = int(token)
    if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        return number
    raise NotCanonical(f"integer {token} is beyond ±2^53")


def is_canonical(data: bytes, parsed: Any) -> bool:
    """Whether ``data``, which :func:`parse` turned into ``parsed``, is in canonical form."""
    try:
        if not _astral(data):
            with contextlib.suppress(orjson.JSONEncodeError):  # else a lone surrogate, or too deep: see below
                return orjson.dumps(parsed, option=_OPTIONS) == data
        return canonical(parsed) == data
    except NotCanonical:  # an escaped lone surrogate (not Unicode), or nested too deep
        return False


def parse(data: bytes) -> Any:
    """Decode JSON bytes that must be valid UTF-8 and hold no floats."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotCanonical(f"not valid UTF-8 at byte {e.start}") from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise NotCanonical(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise NotCanonical("arrays and objects are nested too deep to read") from None


def _refuse_float(token: str) -> Any:
    raise NotCanonical(f"number {token} is not an integer; use an integer or a string")


# Made once: json.loads with hooks makes a decoder (and its scanner) on every call, which
# costs about as much again as the decoding of an event.
_DECODER = json.JSONDecoder(parse_float=_refuse_float, parse_constant=_refuse_float, parse_int=_safe_int)


def _check(value: Any, path: str, depth: int = 0) -> bool:
    """Raise on anything JCS-for-events cannot hold; return True if a key is astral."""
    if depth > MAX_DEPTH:
        raise NotCanonical(f"a value is nested more than {MAX_DEPTH} deep", pointer=path)
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return False
        raise NotCanonical(f"integer at '{path}' is beyond ±2^53", pointer=path)
    if isinstance(value, str):
        _check_str(value, path)
        return False
    if isinstance(value, list | tuple):
        return any([_check(item, f"{path}/{i}", depth + 1) for i, item in enumerate(value)])
    if isinstance(value, Mapping):
        return _check_object(value, path, depth)
    kind = "float" if isinstance(value, float) else type(value).__name__
    raise NotCanonical(
        f"value at '{path}' is a {kind}; only integers, strings, booleans, null, arrays and objects are allowed",
        pointer=path,
    )


def _check_object(value: Mapping[Any, Any], path: str, depth: int) -> bool:
    astral = False
    for key, item in value.items():
        if not isinstance(key, str):
            raise NotCanonical(f"object key {key!r} at '{path}' is not a string", pointer=path)
        _check_str(key, path)
        astral = astral or any(ord(c) > 0xFFFF for c in key)
        astral = _check(item, f"{path}/{_escape_pointer(key)}", depth + 1) or astral
    return astral


def _check_str(value: str, path: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotCanonical(f"string at '{path}' holds a lone surrogate, not valid Unicode", pointer=path) from None


def _escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def _encode(value: Any) -> list[str]:
    """The slow path: sort keys by UTF-16 code units (only needed for astral keys)."""
    if isinstance(value, Mapping):
        parts: list[str] = []
        for key in sorted(value, key=_utf16_key):
            parts.append(_encode_str(key) + ":" + "".join(_encode(value[key])))
        return ["{" + ",".join(parts) + "}"]
    if isinstance(value, list | tuple):
        return ["[" + ",".join("".join(_encode(item)) for item in value) + "]"]
    return [json.dumps(value, ensure_ascii=False)]
