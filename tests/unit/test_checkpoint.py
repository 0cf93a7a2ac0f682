"""C2SP tlog-checkpoint: origin, tree size and root hash, signed as a note."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.errors import VerificationError
from ledger.note import sign_note
from tests.unit._builders import ORIGIN, log_signer

ROOT = bytes(range(32))
ROOT_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
LOG_KEY = log_signer()
WITNESS = log_signer("witness.example/w1", seed=2)


def body(size: str = "5", root: str = ROOT_B64, origin: str = ORIGIN, *extensions: str) -> str:
    return "".join(f"{line}\n" for line in (origin, size, root, *extensions))


# -- the body --------------------------------------------------------------------------------------


def test_body_is_origin_size_and_base64_root_each_on_a_line() -> None:
    checkpoint = Checkpoint("example.com/log", 5, ROOT)
    assert checkpoint.body() == f"example.com/log\n5\n{ROOT_B64}\n"


def test_body_of_the_empty_tree() -> None:
    assert Checkpoint("example.com/log", 0, ROOT).body() == f"example.com/log\n0\n{ROOT_B64}\n"


def test_body_ends_with_extension_lines() -> None:
    checkpoint = Checkpoint("example.com/log", 5, ROOT, ("— time 1700000000", "ext"))
    assert checkpoint.body() == f"example.com/log\n5\n{ROOT_B64}\n— time 1700000000\next\n"


def test_parse_reads_origin_size_and_root() -> None:
    assert Checkpoint.from_body(body("5")) == Checkpoint(ORIGIN, 5, ROOT)


def test_parse_keeps_extension_lines() -> None:
    parsed = Checkpoint.from_body(body("5", ROOT_B64, ORIGIN, "first extension", "second"))
    assert parsed.extensions == ("first extension", "second")


@given(
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1), max_size=3),
)
def test_body_parses_back_to_the_same_checkpoint(size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = Checkpoint(ORIGIN, size, root, tuple(extensions))
    assert Checkpoint.from_body(checkpoint.body()) == checkpoint


@pytest.mark.parametrize(
    "size",
    [
        pytest.param("05", id="leading-zero"),
        pytest.param("00", id="double-zero"),
        pytest.param("-1", id="negative"),
        pytest.param("+5", id="plus-sign"),
        pytest.param("", id="empty"),
        pytest.param(" 5", id="leading-space"),
        pytest.param("5 ", id="trailing-space"),
        pytest.param("5.0", id="decimal-point"),
        pytest.param("1e3", id="exponent"),
        pytest.param("0x10", id="hexadecimal"),
        pytest.param("1_000", id="underscore"),
        pytest.param("\u0665", id="arabic-indic-digit"),
        pytest.param("\uff15", id="fullwidth-digit"),
        pytest.param("1" * 21, id="twenty-one-digits"),
        pytest.param(str(2**64), id="two-to-the-64"),
    ],
)
def test_parse_refuses_a_size_that_is_not_plain_decimal(size: str) -> None:
    with pytest.raises(VerificationError, match="tree size"):
        Checkpoint.from_body(body(size))


def test_parse_accepts_the_largest_uint64_size() -> None:
    assert Checkpoint.from_body(body(str(2**64 - 1))).size == 2**64 - 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(f"{ORIGIN}\n5\n", "needs origin, size and root", id="no-root-line"),
        pytest.param(f"{ORIGIN}\n5\n{ROOT_B64}", "needs origin, size and root", id="no-final-newline"),
        pytest.param("", "needs origin, size and root", id="empty"),
        pytest.param(body("5", ROOT_B64, ""), "origin line is empty", id="empty-origin"),
        pytest.param(body("5", "not base64!"), "not valid base64", id="root-not-base64"),
        pytest.param(body("5", ROOT_B64.rstrip("=")), "not valid base64", id="root-without-padding"),
        pytest.param(body("5", ROOT_B64, ORIGIN, ""), "extension lines must not be empty", id="empty-extension"),
    ],
)
def test_parse_refuses_a_malformed_body(text: str, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason):
        Checkpoint.from_body(text)


# -- signed checkpoints ----------------------------------------------------------------------------


def test_signed_checkpoint_opens_with_the_log_key() -> None:
    checkpoint = Checkpoint(ORIGIN, 5, ROOT)
    opened, note = open_checkpoint(sign_checkpoint(checkpoint, LOG_KEY), ORIGIN, [LOG_KEY.verifier])
    assert opened == checkpoint
    assert note.text == checkpoint.body()


def test_signed_checkpoint_is_a_signed_note_of_the_body() -> None:
    checkpoint = Checkpoint(ORIGIN, 5, ROOT)
    assert sign_checkpoint(checkpoint, LOG_KEY) == sign_note(checkpoint.body(), [LOG_KEY]).encode()


def test_checkpoint_for_another_origin_fails() -> None:
    other = log_signer("other.example/log", seed=3)
    message = sign_checkpoint(Checkpoint("other.example/log", 5, ROOT), other)
    with pytest.raises(VerificationError, match="origin"):
        open_checkpoint(message, ORIGIN, [other.verifier])


def test_checkpoint_signed_by_an_unknown_key_fails() -> None:
    impostor = log_signer(ORIGIN, seed=9)
    message = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT), impostor)
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_checkpoint(message, ORIGIN, [LOG_KEY.verifier])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(b"\n5\n", b"\n6\n", id="size"),
        pytest.param(b"\n5\n", b"\n4\n", id="smaller-size"),
        pytest.param(b"AAEC", b"AAED", id="root"),
        pytest.param(ORIGIN.encode() + b"\n", ORIGIN.encode() + b"2\n", id="origin"),
    ],
)
def test_tampered_checkpoint_fails_its_signature(old: bytes, new: bytes) -> None:
    message = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT), LOG_KEY)
    tampered = message.replace(old, new, 1)
    assert tampered != message
    with pytest.raises(VerificationError, match="does not verify"):
        open_checkpoint(tampered, ORIGIN, [LOG_KEY.verifier])


def test_witness_cosignature_is_accepted_by_a_reader_who_does_not_know_the_witness() -> None:
    message = sign_note(Checkpoint(ORIGIN, 5, ROOT).body(), [LOG_KEY, WITNESS]).encode()
    checkpoint, note = open_checkpoint(message, ORIGIN, [LOG_KEY.verifier])
    assert checkpoint.size == 5
    assert [s.name for s in note.signatures] == [ORIGIN, "witness.example/w1"]


def test_checkpoint_root_is_the_standard_base64_of_the_hash() -> None:
    (_, _, root_line, _) = Checkpoint(ORIGIN, 1, b"\xfb" * 32).body().split("\n")
    assert root_line == base64.b64encode(b"\xfb" * 32).decode()
    assert "+" in root_line or "/" in root_line
