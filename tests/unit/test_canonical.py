"""Canonical JSON: the bytes of RFC 8785 (JCS) for the values an event may hold."""

from __future__ import annotations

import math
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import MAX_DEPTH, MAX_SAFE_INTEGER, canonical, copied, is_canonical, parse
from ledger.errors import InvalidInput, NotCanonical

# -- the values canonical JSON holds -------------------------------------------------------

# Every code point but surrogates (category Cs): control characters, astral characters
# and unassigned code points all come up.
any_character = st.characters(exclude_categories=["Cs"])
json_text = st.text(any_character, max_size=12)
json_scalars = st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | json_text
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(json_text, children, max_size=5),
    max_leaves=25,
)
astral_keys = st.text(st.characters(min_codepoint=0xE000, exclude_categories=["Cs"]), min_size=1, max_size=4)


@settings(max_examples=400)
@given(json_values)
def test_canonical_equals_rfc8785_for_every_allowed_value(value: Any) -> None:
    assert canonical(value) == rfc8785.dumps(value)


@given(st.dictionaries(astral_keys, json_scalars, min_size=2, max_size=8))
def test_keys_beyond_the_bmp_sort_as_rfc8785_sorts_them(value: dict[str, Any]) -> None:
    assert canonical(value) == rfc8785.dumps(value)


@given(st.dictionaries(astral_keys, json_scalars, min_size=2, max_size=5))
def test_astral_keys_of_a_nested_object_sort_by_utf16_code_units(inner: dict[str, Any]) -> None:
    value: dict[str, Any] = {"outer": [1, {"inner": inner}]}
    assert canonical(value) == rfc8785.dumps(value)


@given(json_values)
def test_parse_reads_back_the_value_canonical_wrote(value: Any) -> None:
    assert parse(canonical(value)) == value


@given(json_values)
def test_canonical_form_is_a_fixed_point(value: Any) -> None:
    encoded = canonical(value)
    assert canonical(parse(encoded)) == encoded


# -- known answers -----------------------------------------------------------------------------

RFC8785_SORTING_EXAMPLE = {  # RFC 8785 §3.2.3, in its input order
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\U0001f600": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
}


def test_keys_sort_by_utf16_code_units_as_in_rfc8785_example() -> None:
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical(RFC8785_SORTING_EXAMPLE) == expected.encode("utf-8")


def test_rfc8785_string_example_escapes_only_what_json_requires() -> None:
    # RFC 8785 §3.2.2.2: "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"
    value = '\u20ac$\x0f\nA\'B"\\\\"/'
    assert canonical(value) == '"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'.encode()


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        pytest.param("\x00", b'"\\u0000"', id="nul"),
        pytest.param("\x01", b'"\\u0001"', id="soh"),
        pytest.param("\x1f", b'"\\u001f"', id="unit-separator"),
        pytest.param("\x0b", b'"\\u000b"', id="vertical-tab"),
        pytest.param("\x1b", b'"\\u001b"', id="escape"),
        pytest.param("\b", b'"\\b"', id="backspace"),
        pytest.param("\t", b'"\\t"', id="tab"),
        pytest.param("\n", b'"\\n"', id="newline"),
        pytest.param("\f", b'"\\f"', id="form-feed"),
        pytest.param("\r", b'"\\r"', id="carriage-return"),
        pytest.param('"', b'"\\""', id="quote"),
        pytest.param("\\", b'"\\\\"', id="backslash"),
        pytest.param("/", b'"/"', id="solidus-not-escaped"),
        pytest.param("\x7f", b'"\x7f"', id="delete-not-escaped"),
        pytest.param("\u2028", b'"\xe2\x80\xa8"', id="line-separator-as-utf8"),
        pytest.param("\u00e9", b'"\xc3\xa9"', id="latin-as-utf8"),
        pytest.param("\U0001f600", b'"\xf0\x9f\x98\x80"', id="astral-as-utf8"),
    ],
)
def test_string_encoding(text: str, encoded: bytes) -> None:
    assert canonical(text) == encoded


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        pytest.param(None, b"null", id="null"),
        pytest.param(True, b"true", id="true"),
        pytest.param(False, b"false", id="false"),
        pytest.param(0, b"0", id="zero"),
        pytest.param(-1, b"-1", id="negative"),
        pytest.param(MAX_SAFE_INTEGER, b"9007199254740991", id="largest-safe-integer"),
        pytest.param(-MAX_SAFE_INTEGER, b"-9007199254740991", id="smallest-safe-integer"),
        pytest.param([], b"[]", id="empty-array"),
        pytest.param({}, b"{}", id="empty-object"),
        pytest.param((1, "a"), b'[1,"a"]', id="tuple-as-array"),
        pytest.param({"b": [1, {"a": None}], "a": True}, b'{"a":true,"b":[1,{"a":null}]}', id="nested-no-space"),
        pytest.param(
            {"b": 1, "a": {"\U0001f600": 1, "\ufb33": 2}},
            '{"a":{"\U0001f600":1,"\ufb33":2},"b":1}'.encode(),
            id="nested-astral-keys",
        ),
        pytest.param(
            {"a": "at 10:1.5e3", "b": ",2E", "c": "[-3."},
            b'{"a":"at 10:1.5e3","b":",2E","c":"[-3."}',
            id="text-that-looks-like-a-float",
        ),
        pytest.param(MappingProxyType({"b": 1, "a": 2}), b'{"a":2,"b":1}', id="read-only-mapping"),
        pytest.param(
            [{"\ufb33": "\x00", "\U0001f600": "\t"}],
            '[{"\U0001f600":"\\t","\ufb33":"\\u0000"}]'.encode(),
            id="escapes-under-astral-keys",
        ),
    ],
)
def test_value_encoding(value: Any, encoded: bytes) -> None:
    assert canonical(value) == encoded


def nested(depth: int, innermost: Any) -> Any:
    for level in range(depth):
        innermost = {"a": innermost} if level % 2 else [innermost]
    return innermost


@pytest.mark.parametrize("innermost", [1, [], {}], ids=["number", "empty-array", "empty-object"])
def test_values_nested_to_the_limit_are_canonical_and_read_back_as_canonical(innermost: Any) -> None:
    data = canonical(nested(MAX_DEPTH, innermost))
    assert data == rfc8785.dumps(nested(MAX_DEPTH, innermost))
    assert is_canonical(data, parse(data))


def test_a_value_nested_beyond_the_limit_is_refused_not_a_crash() -> None:
    with pytest.raises(NotCanonical, match=f"nested more than {MAX_DEPTH} deep"):
        canonical(nested(MAX_DEPTH + 1, 1))


def test_parse_refuses_nesting_too_deep_to_read() -> None:
    with pytest.raises(NotCanonical, match="nested too deep to read"):
        parse(b"[" * 5000 + b"]" * 5000)


def test_max_safe_integer_is_two_to_the_53_minus_one() -> None:
    assert MAX_SAFE_INTEGER == 2**53 - 1


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(1.0, "float", id="integral-float"),
        pytest.param(0.5, "float", id="float"),
        pytest.param(math.nan, "float", id="nan"),
        pytest.param(math.inf, "float", id="infinity"),
        pytest.param(-math.inf, "float", id="minus-infinity"),
        pytest.param({"a": [1, 2.5]}, "float", id="nested-float"),
        pytest.param({"a": math.nan}, "float", id="nested-nan"),
        pytest.param([math.inf], "float", id="nested-infinity"),
        pytest.param({"a": -0.0}, "float", id="negative-zero"),
        pytest.param({"a": 1e100}, "float", id="float-with-exponent"),
        pytest.param(2**53, "beyond", id="two-to-the-53"),
        pytest.param(-(2**53), "beyond", id="minus-two-to-the-53"),
        pytest.param(2**64, "beyond", id="two-to-the-64"),
        pytest.param({1: "a"}, "not a string", id="int-key"),
        pytest.param({None: "a"}, "not a string", id="none-key"),
        pytest.param({("a",): "a"}, "not a string", id="tuple-key"),
        pytest.param({"a": {True: 1}}, "not a string", id="nested-bool-key"),
        pytest.param("\ud800", "lone surrogate", id="lone-high-surrogate"),
        pytest.param(["ok", "\udfff"], "lone surrogate", id="lone-low-surrogate-in-array"),
        pytest.param({"\udc00": 1}, "lone surrogate", id="lone-surrogate-in-key"),
        pytest.param({"\U0001f600": "\ud83d"}, "lone surrogate", id="lone-surrogate-beside-astral-key"),
        pytest.param(b"bytes", "bytes", id="bytes"),
        pytest.param({1, 2}, "set", id="set"),
        pytest.param(Decimal(1), "Decimal", id="decimal"),
        pytest.param(object(), "object", id="object"),
    ],
)
def test_refuses_values_outside_canonical_json(value: Any, message: str) -> None:
    with pytest.raises(NotCanonical, match=message):
        canonical(value)


@pytest.mark.parametrize(
    ("value", "pointer"),
    [
        pytest.param({"a": [1, 2.5]}, "/a/1", id="array-item"),
        pytest.param({"a/b": {"c~d": 0.5}}, "/a~1b/c~0d", id="escaped-keys"),
        pytest.param([[2**60]], "/0/0", id="nested-arrays"),
        pytest.param({"x": "\ud800"}, "/x", id="string"),
    ],
)
def test_refusal_points_at_the_offending_value(value: Any, pointer: str) -> None:
    with pytest.raises(NotCanonical) as caught:
        canonical(value)
    assert caught.value.pointer == pointer
    assert pointer in str(caught.value)


def test_not_canonical_is_invalid_input_answered_with_400() -> None:
    with pytest.raises(InvalidInput) as caught:
        canonical(0.5)
    assert caught.value.status == 400
    assert caught.value.type.endswith("/not-canonical")


# -- parse -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b'"\xff"', "UTF-8", id="invalid-byte"),
        pytest.param(b'"\xc3"', "UTF-8", id="truncated-sequence"),
        pytest.param(b'"\xc0\xaf"', "UTF-8", id="overlong-encoding"),
        pytest.param(b'"\xed\xa0\x80"', "UTF-8", id="encoded-surrogate"),
        pytest.param(b"1.5", "not an integer", id="decimal-fraction"),
        pytest.param(b"1.0", "not an integer", id="integral-fraction"),
        pytest.param(b"1e3", "not an integer", id="exponent"),
        pytest.param(b'{"a": [0.0]}', "not an integer", id="nested-float"),
        pytest.param(b"NaN", "not an integer", id="nan"),
        pytest.param(b"Infinity", "not an integer", id="infinity"),
        pytest.param(b"-Infinity", "not an integer", id="minus-infinity"),
        pytest.param(b"{", "not valid JSON", id="truncated-json"),
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(b"\xef\xbb\xbf{}", "not valid JSON", id="byte-order-mark"),
    ],
)
def test_parse_refuses(data: bytes, message: str) -> None:
    with pytest.raises(NotCanonical, match=message):
        parse(data)


def test_parse_reports_where_invalid_utf8_starts() -> None:
    with pytest.raises(NotCanonical, match="at byte 4"):
        parse(b'"abc\xff"')


def test_parse_reads_integers_strings_and_nesting() -> None:
    assert parse('{"a":[1,-2,"\u00e9",null,true]}'.encode()) == {"a": [1, -2, "\u00e9", None, True]}


def test_a_read_only_mapping_encodes_as_an_object() -> None:
    assert canonical(MappingProxyType({"b": 1, "a": 2})) == b'{"a":2,"b":1}'


def test_a_copied_json_value_is_equal_and_shares_no_object_or_array_with_the_original() -> None:
    original = {"a": [1, {"b": "text", "c": None, "d": True}], "e": {"f": []}}
    copy = copied(original)
    assert copy == original
    copy["a"][1]["b"] = "changed"
    copy["e"]["f"].append(1)
    assert original == {"a": [1, {"b": "text", "c": None, "d": True}], "e": {"f": []}}
