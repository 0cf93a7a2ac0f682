"""The event envelope: drafts are checked, sealed into canonical signed leaves, decoded."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import MAX_SAFE_INTEGER, canonical
from ledger.errors import EventTooLarge, InvalidInput, NotCanonical, VerificationError
from ledger.events import (
    MAX_EVENT_BYTES,
    ZERO_HASH,
    _leaf_parts,
    check_draft,
    decode_leaf,
    format_time,
    seal_event,
    widest_size,
)
from tests.unit._builders import ORIGIN, draft, log_signer, recorded_at, seal

SIGNER = log_signer()
ENVELOPE = {"v", "log", "seq", "id", "stream", "version", "type", "schema", "recorded_at",
            "actor", "data", "prev", "key_id", "sig"}  # fmt: skip

any_character = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")  # the ledger keeps no NUL
json_text = st.text(any_character, max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | json_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4),
    max_leaves=15,
)
key_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(lambda c: c != "+"), min_size=1)


def with_text(length: int) -> dict[str, Any]:
    return {"text": "x" * length}


def sealed_size(data: dict[str, Any]) -> int:
    return len(seal(draft(data=data), SIGNER).leaf)


# -- sealing ---------------------------------------------------------------------------------------


def test_sealed_event_holds_exactly_the_envelope_fields() -> None:
    assert set(seal(draft(), SIGNER).event) == ENVELOPE


def test_sealed_event_places_the_draft_in_the_log() -> None:
    d = draft(7)
    prev = hashlib.sha256(b"previous leaf").digest()
    event = seal(d, SIGNER, seq=41, prev=prev, version=3).event
    assert event["v"] == 1
    assert event["log"] == ORIGIN
    assert (event["seq"], event["version"]) == (41, 3)
    assert (event["id"], event["stream"], event["type"]) == (d.id, "policy/p-7", "policy.issued")
    assert event["schema"] == "policy.issued/1"
    assert event["recorded_at"] == recorded_at(41)
    assert (event["actor"], event["data"]) == (dict(d.actor), dict(d.data))
    assert event["prev"] == base64.b64encode(prev).decode()
    assert event["key_id"] == SIGNER.key_id.hex()


def test_first_event_links_to_32_zero_bytes() -> None:
    assert bytes(32) == ZERO_HASH
    assert seal(draft(), SIGNER, prev=ZERO_HASH).event["prev"] == "A" * 43 + "="


def test_sig_is_standard_base64_of_a_64_byte_signature() -> None:
    sig = seal(draft(), SIGNER).event["sig"]
    assert len(base64.b64decode(sig, validate=True)) == 64


def test_leaf_is_the_canonical_event_signature_included() -> None:
    recorded = seal(draft(), SIGNER)
    assert recorded.leaf == canonical(recorded.event)


def test_leaf_hash_is_sha256_of_zero_byte_and_leaf() -> None:
    recorded = seal(draft(), SIGNER)
    assert recorded.leaf_hash == hashlib.sha256(b"\x00" + recorded.leaf).digest()


def test_recorded_exposes_stream_and_version() -> None:
    recorded = seal(draft(3), SIGNER, version=5)
    assert (recorded.stream, recorded.version) == ("policy/p-3", 5)


def test_schema_names_type_and_schema_version() -> None:
    assert draft(type="policy.amended", schema_version=2).schema == "policy.amended/2"


def test_sealing_is_deterministic() -> None:
    assert seal(draft(), SIGNER).leaf == seal(draft(), SIGNER).leaf


@settings(max_examples=150)
@given(
    st.dictionaries(json_text, json_values, max_size=5),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", fullmatch=True),
    key_names,
    st.integers(0, MAX_SAFE_INTEGER),
    st.integers(1, 2**31),
    st.binary(min_size=32, max_size=32),
)
def test_sealed_leaf_is_canonical_json_of_the_event(
    data: dict[str, Any], id_: str, origin: str, seq: int, version: int, prev: bytes
) -> None:
    signer = log_signer(origin)
    checked = check_draft(draft(data=data, id=id_), origin)
    recorded = seal_event(checked, signer, seq=seq, version=version, recorded_at=recorded_at(0), prev=prev)
    assert recorded.leaf == canonical(recorded.event)
    assert decode_leaf(recorded.leaf, seq) == recorded.event


# -- decoding a leaf ----------------------------------------------------------------------------


def test_decode_leaf_accepts_a_sealed_leaf() -> None:
    recorded = seal(draft(), SIGNER, seq=4)
    assert decode_leaf(recorded.leaf, 4) == recorded.event


def leaf_variants() -> list[Any]:
    leaf = seal(draft(), SIGNER, seq=4).leaf
    return [
        pytest.param(leaf.replace(b'"seq":4', b'"seq":5'), "says seq 5", id="other-seq"),
        pytest.param(leaf.replace(b'"v":1,', b""), "envelope", id="missing-field"),
        pytest.param(leaf.replace(b'"v":1,', b'"v":1,"w":1,'), "envelope", id="extra-field"),
        pytest.param(b"[" + leaf + b"]", "envelope", id="array"),
        pytest.param(b'"text"', "envelope", id="string"),
        pytest.param(leaf.replace(b'"v":1,', b'"v": 1,'), "canonical", id="whitespace"),
        pytest.param(leaf + b"\n", "canonical", id="trailing-newline"),
        pytest.param(leaf.replace(b'"v":1,', b'"v":1,"v":1,'), "canonical", id="duplicate-key"),
        pytest.param(_unsorted(leaf), "canonical", id="keys-out-of-order"),
        pytest.param(leaf.replace(b"TikTok", b"TikTo\\u006b"), "canonical", id="needless-escape"),
        pytest.param(leaf.replace(b'"v":1,', b'"v":1.0,'), "not an integer", id="float"),
        pytest.param(leaf.replace(b'"seq":4', b'"seq":9007199254740993'), "beyond", id="unsafe-integer"),
        pytest.param(leaf.replace(b"TikTok", b"TikT\xffk"), "UTF-8", id="invalid-utf8"),
        pytest.param(leaf[:-1], "not valid JSON", id="truncated"),
    ]


def _unsorted(leaf: bytes) -> bytes:
    """The same members, with "v" moved to the front, out of sorted order."""
    return leaf.replace(b'"v":1,', b"").replace(b'{"actor"', b'{"v":1,"actor"', 1)


@pytest.mark.parametrize(("leaf", "reason"), leaf_variants())
def test_decode_leaf_refuses(leaf: bytes, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason) as caught:
        decode_leaf(leaf, 4)
    assert caught.value.seq == 4


def test_decode_leaf_names_the_seq_in_the_message() -> None:
    with pytest.raises(VerificationError, match=r"^seq 9: "):
        decode_leaf(b"{}", 9)


# -- checking a draft -------------------------------------------------------------------------


def test_check_draft_accepts_a_valid_draft_and_keeps_canonical_pieces() -> None:
    d = draft()
    checked = check_draft(d, ORIGIN)
    assert checked.draft == d
    assert checked.data == canonical(dict(d.data))
    assert checked.actor == canonical(dict(d.actor))


@pytest.mark.parametrize("stream", ["policy/p-1", "exemption/ex-2025-001", "policy/A.b_c:d-1", "policy/" + "a" * 128])
def test_check_draft_accepts_stream(stream: str) -> None:
    check_draft(draft(stream=stream), ORIGIN)


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param("", id="empty"),
        pytest.param("policy", id="no-id"),
        pytest.param("policy/", id="empty-id"),
        pytest.param("/p-1", id="no-kind"),
        pytest.param("Policy/p-1", id="uppercase-kind"),
        pytest.param("policy/p 1", id="space"),
        pytest.param("policy/p/1", id="second-slash"),
        pytest.param("policy/-p", id="id-starts-with-dash"),
        pytest.param("policy/p-1\n", id="trailing-newline"),
        pytest.param("policy/" + "a" * 129, id="id-too-long"),
        pytest.param("a" * 33 + "/p-1", id="kind-too-long"),
        pytest.param("policy/p\u00e9", id="non-ascii"),
    ],
)
def test_check_draft_refuses_stream(stream: str) -> None:
    with pytest.raises(InvalidInput, match="stream") as caught:
        check_draft(draft(stream=stream), ORIGIN)
    assert caught.value.pointer == "/stream"


@pytest.mark.parametrize(
    "type_",
    [
        pytest.param("policy", id="no-dot"),
        pytest.param("Policy.issued", id="uppercase"),
        pytest.param("policy.issued.again", id="two-dots"),
        pytest.param("policy.", id="empty-action"),
        pytest.param(".issued", id="empty-subject"),
        pytest.param("policy issued", id="space"),
        pytest.param("policy.issued/1", id="with-version"),
        pytest.param("", id="empty"),
    ],
)
def test_check_draft_refuses_type(type_: str) -> None:
    with pytest.raises(InvalidInput, match="event type") as caught:
        check_draft(draft(type=type_), ORIGIN)
    assert caught.value.pointer == "/type"


@pytest.mark.parametrize("data", [["a", "list"], "text", 1, None], ids=["list", "string", "integer", "null"])
def test_check_draft_refuses_data_that_is_not_an_object(data: Any) -> None:
    with pytest.raises(InvalidInput, match="JSON object") as caught:
        check_draft(draft(data=data), ORIGIN)
    assert caught.value.pointer == "/data"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"score": 0.5}, id="float"),
        pytest.param({"nested": {"deeper": [1, 2.0]}}, id="nested-float"),
        pytest.param({"n": float("nan")}, id="nan"),
        pytest.param({"n": 2**53}, id="unsafe-integer"),
        pytest.param({1: "key"}, id="integer-key"),
        pytest.param({"text": "\ud800"}, id="lone-surrogate"),
        pytest.param({"when": datetime(2025, 1, 1, tzinfo=UTC)}, id="datetime"),
    ],
)
def test_check_draft_refuses_data_canonical_json_cannot_hold(data: dict[Any, Any]) -> None:
    with pytest.raises(NotCanonical):
        check_draft(draft(data=data), ORIGIN)


@pytest.mark.parametrize(
    "actor",
    [
        pytest.param({"id": "officer-1"}, id="no-role"),
        pytest.param({"role": "policy-officer"}, id="no-id"),
        pytest.param({"id": "officer-1", "role": "policy-officer", "name": "A"}, id="extra-field"),
        pytest.param({"id": "", "role": "policy-officer"}, id="empty-id"),
        pytest.param({"id": 7, "role": "policy-officer"}, id="integer-id"),
        pytest.param({"id": "officer-1", "role": ""}, id="empty-role"),
        pytest.param({}, id="empty"),
    ],
)
def test_check_draft_refuses_malformed_actor(actor: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="actor") as caught:
        check_draft(draft(actor=actor), ORIGIN)
    assert caught.value.pointer == "/actor"


@pytest.mark.parametrize("role", ["Policy-Officer", "policy officer", "policy_officer", "1st", "a" * 33])
def test_check_draft_refuses_an_actor_role_that_is_not_a_role_name(role: str) -> None:
    with pytest.raises(InvalidInput, match="role") as caught:
        check_draft(draft(actor={"id": "officer-1", "role": role}), ORIGIN)
    assert caught.value.pointer == "/actor/role"


def test_check_draft_refuses_a_negative_expected_version() -> None:
    with pytest.raises(InvalidInput, match="expected version"):
        check_draft(draft(expected_version=-1), ORIGIN)


@pytest.mark.parametrize("version", [0, 1, 12])
def test_check_draft_accepts_an_expected_version(version: int) -> None:
    check_draft(draft(expected_version=version), ORIGIN)


# -- the size limit --------------------------------------------------------------------------------


def test_size_limit_is_64_kib_of_canonical_json() -> None:
    assert MAX_EVENT_BYTES == 64 * 1024


def test_draft_whose_event_would_be_just_under_the_limit_is_accepted() -> None:
    length = MAX_EVENT_BYTES - 64 - sealed_size(with_text(0))
    check_draft(draft(data=with_text(length)), ORIGIN)
    assert sealed_size(with_text(length)) == MAX_EVENT_BYTES - 64


def test_draft_whose_event_would_exceed_the_limit_is_refused_with_413() -> None:
    length = MAX_EVENT_BYTES + 1 - sealed_size(with_text(0))
    with pytest.raises(EventTooLarge, match="limit is 65536 bytes") as caught:
        check_draft(draft(data=with_text(length)), ORIGIN)
    assert caught.value.status == 413


def test_size_limit_is_inclusive_and_counts_the_widest_event_the_draft_can_become() -> None:
    over = MAX_EVENT_BYTES - sealed_size(with_text(0)) + 1
    with pytest.raises(EventTooLarge) as caught:
        check_draft(draft(data=with_text(over)), ORIGIN)
    reported = int(re.search(r"would be (\d+) bytes", str(caught.value)).group(1))  # type: ignore[union-attr]
    at_limit = over - (reported - MAX_EVENT_BYTES)
    check_draft(draft(data=with_text(at_limit)), ORIGIN)
    with pytest.raises(EventTooLarge):
        check_draft(draft(data=with_text(at_limit + 1)), ORIGIN)


def test_size_limit_counts_bytes_not_characters() -> None:
    length = (MAX_EVENT_BYTES - sealed_size(with_text(0))) // 2
    check_draft(draft(data={"text": "x" * length}), ORIGIN)
    with pytest.raises(EventTooLarge):
        check_draft(draft(data={"text": "\u00e9" * length}), ORIGIN)


# -- time --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(datetime(2025, 2, 7, 10, 0, tzinfo=UTC), "2025-02-07T10:00:00.000000Z", id="whole-minute"),
        pytest.param(datetime(2025, 2, 7, 10, 0, 1, 5, tzinfo=UTC), "2025-02-07T10:00:01.000005Z", id="microseconds"),
        pytest.param(
            datetime(2025, 2, 7, 11, 0, tzinfo=timezone(timedelta(hours=1))),
            "2025-02-07T10:00:00.000000Z",
            id="converted-to-utc",
        ),
        pytest.param(
            datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
            "2025-01-01T04:59:59.999999Z",
            id="across-a-year",
        ),
    ],
)
def test_format_time_is_rfc3339_utc_with_microseconds(moment: datetime, text: str) -> None:
    assert format_time(moment) == text


def test_check_draft_accepts_data_in_a_read_only_mapping() -> None:
    check_draft(draft(data=MappingProxyType({"rationale": "read-only"})), ORIGIN)


def test_decode_leaf_refuses_an_escaped_lone_surrogate() -> None:
    leaf = seal(draft(), SIGNER, seq=4).leaf.replace(b"TikTok", b"TikTok\\ud800")
    with pytest.raises(VerificationError) as caught:
        decode_leaf(leaf, 4)
    assert caught.value.seq == 4


def test_check_draft_refuses_an_id_with_a_lone_surrogate() -> None:
    with pytest.raises(InvalidInput):
        check_draft(draft(id="event-\ud800"), ORIGIN)


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [({"data": {"app": {"name": "Tik\x00Tok"}}}, "/data/app/name"), ({"data": {"a\x00": 1}}, "/data/a\x00"),
     ({"data": {"list": ["x", "\x00"]}}, "/data/list/1"), ({"actor": {"id": "o\x00", "role": "x"}}, "/actor/id")],
    ids=["value", "member-name", "array-item", "actor"],
)  # fmt: skip
def test_check_draft_refuses_a_nul_saying_where(changes: dict[str, Any], pointer: str) -> None:
    with pytest.raises(InvalidInput, match="U\\+0000") as caught:
        check_draft(draft(**changes), ORIGIN)
    assert caught.value.pointer == pointer


def test_check_draft_keeps_text_that_only_spells_an_escaped_nul() -> None:
    assert check_draft(draft(data={"note": "\\u0000"}), ORIGIN).data == b'{"note":"\\\\u0000"}'


@given(st.text(any_character, max_size=40), st.sampled_from(["policy/P-1", "exemption/E:2"]))
def test_widest_size_is_the_length_of_the_widest_leaf(text: str, stream: str) -> None:
    checked = check_draft(draft(data={"note": text}, stream=stream), ORIGIN)
    head, tail = _leaf_parts(checked, ORIGIN, seq=2**53 - 1, version=2**31, recorded_at=format_time(datetime.now(UTC)),
                             prev64=base64.b64encode(ZERO_HASH), key_id="0" * 8)  # fmt: skip
    widest = b"".join((head, b',"sig":"', b"=" * 88, b'"', tail))
    assert widest_size(checked, ORIGIN) == len(widest)


@given(st.text(any_character, min_size=1, max_size=20), st.sampled_from(["policy-officer", "security-officer"]))
def test_the_actor_is_written_as_canonical_json_writes_it(actor_id: str, role: str) -> None:
    try:
        expected = canonical({"id": actor_id, "role": role})
    except NotCanonical:
        with pytest.raises(NotCanonical):
            check_draft(draft(actor={"id": actor_id, "role": role}), ORIGIN)
        return
    assert check_draft(draft(actor={"id": actor_id, "role": role}), ORIGIN).actor == expected


def test_an_actor_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(NotCanonical, match="lone surrogate"):
        check_draft(draft(actor={"id": "officer-\ud800", "role": "policy-officer"}), ORIGIN)
