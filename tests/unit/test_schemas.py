"""Event schemas: strict, documented, with examples that validate and errors that point."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import schemas
from ledger.errors import NotFound, SchemaViolation

NAMES = [
    "exemption.amended/1", "exemption.granted/1", "exemption.renewed/1", "exemption.revoked/1",
    "policy.amended/1", "policy.issued/1", "policy.lifted/1", "policy.reviewed/1",
]  # fmt: skip


def objects(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema that describes an object, with where it is."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, child in node.items():
            if key != "examples":
                yield from objects(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from objects(child, f"{path}/{i}")


def test_there_is_one_schema_per_event_type() -> None:
    assert list(schemas.names()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_the_example_validates(name: str) -> None:
    schemas.validate(name, schemas.example(name))


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_top_level_field_is_refused(name: str) -> None:
    with pytest.raises(SchemaViolation, match="'/colour' is not a known field; remove it") as raised:
        schemas.validate(name, {**schemas.example(name), "colour": "red"})
    assert raised.value.pointer == "/colour"


@pytest.mark.parametrize("name", NAMES)
def test_every_object_refuses_unknown_fields(name: str) -> None:
    for path, node in objects(dict(schemas.schema(name))):
        assert node.get("additionalProperties") is False, path


@pytest.mark.parametrize("name", NAMES)
def test_every_property_is_described(name: str) -> None:
    for path, node in objects(dict(schemas.schema(name))):
        for field, spec in node["properties"].items():
            assert spec.get("description"), f"{path}/{field}"


@pytest.mark.parametrize("name", NAMES)
def test_no_schema_admits_a_float(name: str) -> None:
    text = json.dumps(schemas.schema(name))
    assert '"number"' not in text


@pytest.mark.parametrize("name", NAMES)
def test_the_id_and_title_name_the_schema(name: str) -> None:
    document = schemas.schema(name)
    file_name = name.replace("/", ".") + ".json"
    assert document["$id"] == f"https://policy-ledger.dev/schemas/events/{file_name}"
    assert document["title"] == name
    assert (Path(__file__).parents[2] / "schemas" / "events" / file_name).is_file()


def test_a_nested_unknown_field_is_refused_with_its_pointer() -> None:
    data = schemas.example("exemption.granted/1")
    data["grantee"]["phone"] = "07700 900000"
    with pytest.raises(SchemaViolation) as raised:
        schemas.validate("exemption.granted/1", data)
    assert raised.value.pointer == "/grantee/phone"


def test_a_missing_field_is_named_by_its_pointer() -> None:
    data = schemas.example("policy.issued/1")
    del data["app"]["vendor"]
    with pytest.raises(SchemaViolation, match="'/app/vendor' is required; add it") as raised:
        schemas.validate("policy.issued/1", data)
    assert raised.value.pointer == "/app/vendor"


def test_a_float_is_refused() -> None:
    with pytest.raises(SchemaViolation, match="'/effective_from' must be of type string"):
        schemas.validate("policy.issued/1", {**schemas.example("policy.issued/1"), "effective_from": 1.5})


def test_an_unknown_review_outcome_is_refused_with_the_choices() -> None:
    data = {**schemas.example("policy.reviewed/1"), "outcome": "maybe"}
    with pytest.raises(SchemaViolation, match="must be one of: no-change, amended, lift-recommended"):
        schemas.validate("policy.reviewed/1", data)


def test_an_exemption_amendment_must_change_something() -> None:
    with pytest.raises(SchemaViolation, match="at least one of: mitigations, devices, purpose"):
        schemas.validate("exemption.amended/1", {"reason": "Nothing."})


def test_data_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(SchemaViolation, match="the data must be of type object") as raised:
        schemas.validate("policy.lifted/1", ["reason"])
    assert raised.value.pointer == ""


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2025-02-07T10:00:00Z", datetime(2025, 2, 7, 10, tzinfo=UTC)),
        ("2025-02-07t10:00:00z", datetime(2025, 2, 7, 10, tzinfo=UTC)),
        ("2025-02-07T10:00:00.000000Z", datetime(2025, 2, 7, 10, tzinfo=UTC)),
        ("2025-02-07T10:00:00.1234567Z", datetime(2025, 2, 7, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2025-02-07T11:30:00+01:30", datetime(2025, 2, 7, 10, tzinfo=UTC)),
        ("2025-02-07T05:00:00-05:00", datetime(2025, 2, 7, 10, tzinfo=timezone(timedelta(0)))),
    ],
)
def test_rfc3339_date_times_parse_to_utc(text: str, moment: datetime) -> None:
    parsed = schemas.parse_time(text)
    assert (parsed, parsed.utcoffset()) == (moment, timedelta(0))


@pytest.mark.parametrize(
    "text",
    [
        "2025-02-07T10:00:00",  # no time zone
        "2025-02-07 10:00:00Z",  # no T
        "2025-02-30T10:00:00Z",  # no such day
        "2025-02-07T24:00:00Z",  # no such hour
        "2025-02-07T10:00:00+24:00",  # no such offset
        "2025-02-07",  # a date only
        "2025-02-07T10:00Z",  # no seconds
    ],
)
def test_a_bad_date_time_is_refused(text: str) -> None:
    data = {**schemas.example("policy.lifted/1"), "effective_at": text}
    with pytest.raises(SchemaViolation, match="must be an RFC 3339 date-time with a time zone") as raised:
        schemas.validate("policy.lifted/1", data)
    assert raised.value.pointer == "/effective_at"


def test_sensitive_fields_name_their_categories() -> None:
    assert dict(schemas.sensitive_fields("exemption.granted/1")) == {
        "devices": "personal-data",
        "mitigations": "national-security",
    }


def test_the_sensitive_fields_of_a_schema_are_made_once_and_cannot_be_changed() -> None:
    fields = schemas.sensitive_fields("exemption.granted/1")
    assert schemas.sensitive_fields("exemption.granted/1") is fields
    with pytest.raises(TypeError):
        fields["purpose"] = "personal-data"  # type: ignore[index]


def test_policy_events_hold_nothing_sensitive() -> None:
    assert all(not schemas.sensitive_fields(n) for n in NAMES if n.startswith("policy."))


def test_an_unknown_schema_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"no event schema 'policy\.banned/1'"):
        schemas.validate("policy.banned/1", {})


def test_example_returns_a_fresh_copy() -> None:
    schemas.example("policy.issued/1")["app"]["name"] = "Changed"
    assert schemas.example("policy.issued/1")["app"]["name"] == "TikTok"


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=12)
    | st.sampled_from(
        ["2025-02-07T10:00:00Z", "2025-02-07T10:00:00+24:00", "2025-02-07", "x", "", "corporate-mobile", "no change"]
    )
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _mutated(example: dict[str, Any], field: str, value: Any, drop: bool) -> dict[str, Any]:
    changed = dict(example)
    if drop:
        changed.pop(field, None)
    else:
        changed[field] = value
    return changed


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_compiled_validator_agrees_with_the_thorough_one(name: str, data: st.DataObject) -> None:
    example = schemas.example(name)
    field = data.draw(st.sampled_from([*example, "unknown"]))
    nested = example.get(field)
    value = data.draw(_VALUES if not isinstance(nested, dict | list) or data.draw(st.booleans()) else
                      st.just(_nudge(nested, data.draw(_VALUES))))  # fmt: skip
    candidate = _mutated(example, field, value, data.draw(st.booleans()))
    thorough = not list(schemas._validator(name).iter_errors(candidate))
    assert schemas._quick_check(name, candidate) == thorough


def _nudge(nested: dict[str, Any] | list[Any], value: Any) -> Any:
    """``nested`` with its first member (or a new one) set to ``value``."""
    if isinstance(nested, list):
        return [value, *nested[1:]]
    first = next(iter(nested), "new")
    return {**nested, first: value}


def _issued(**changes: Any) -> dict[str, Any]:
    data = schemas.example("policy.issued/1")
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data
        for parent in parents:
            node = node[parent]
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "pointer", "sentence"),
    [
        (_issued(rationale=""), "/rationale", "'/rationale' must not be empty"),
        (_issued(rationale="x" * 4001), "/rationale", "'/rationale' must be at most 4000 characters"),
        (_issued(applies_to__organisations=[]), "/applies_to/organisations", "must list at least 1 item(s)"),
        (
            _issued(applies_to__organisations=["a", "a"]),
            "/applies_to/organisations",
            "must not list the same item twice",
        ),
        (_issued(app__name=7), "/app/name", "'/app/name' must be of type string"),
        (_issued(review_due="2025-02-07"), "/review_due", "must be an RFC 3339 date-time with a time zone"),
        (_issued(review_due="9999-12-31T23:59:59-01:00"), "/review_due", "must be an RFC 3339 date-time"),
    ],
    ids=["minLength", "maxLength", "minItems", "uniqueItems", "type", "format", "format-beyond-year-9999"],
)
def test_each_kind_of_violation_is_refused_saying_what_to_fix(
    data: dict[str, Any], pointer: str, sentence: str
) -> None:
    with pytest.raises(SchemaViolation) as refused:
        schemas.validate("policy.issued/1", data)
    assert refused.value.pointer == pointer
    assert sentence in refused.value.detail


def test_a_tuple_is_an_array_to_both_validators() -> None:
    data = _issued(applies_to__organisations=("cabinet-office",))
    schemas.validate("policy.issued/1", data)
    assert not list(schemas._validator("policy.issued/1").iter_errors(data))
