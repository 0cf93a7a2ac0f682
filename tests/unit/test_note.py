"""C2SP signed-note: a text, a blank line, and one signature line per key."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import VerificationError
from ledger.note import MAX_SIGNATURES, Note, NoteSignature, open_note, parse_note, sign_note
from ledger.signing import Signer, Verifier, key_id

# The example of golang.org/x/mod/sumdb/note (its documentation and note_test.go).
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"  # from an all-zero seed
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
NOTE = (TEXT + "\n" + PETER_SIG).encode()
COSIGNED_NOTE = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()

# The example of the C2SP signed-note specification.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()

PETER = Verifier.from_vkey(PETER_VKEY)
ENOCH = Verifier.from_vkey(ENOCH_VKEY)


def peter_signer() -> Signer:
    """The example's private key, built from its seed so this file tests notes alone."""
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]
    return Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))


def signature_line(name: str, key_id_: bytes, signature: bytes) -> str:
    return f"— {name} {base64.b64encode(key_id_ + signature).decode()}\n"


# -- the examples verify ---------------------------------------------------------------------------


def test_go_example_note_verifies() -> None:
    note = open_note(NOTE, [PETER])
    assert note.text == TEXT
    assert [(s.name, s.key_id.hex()) for s in note.signatures] == [("PeterNeumann", "c74f20a3")]


def test_spec_example_note_verifies() -> None:
    note = open_note(SPEC_NOTE, [Verifier.from_vkey(SPEC_VKEY)])
    assert note.text == "This is an example message.\n"


def test_signing_the_example_text_reproduces_the_example_note() -> None:
    assert sign_note(TEXT, [peter_signer()]).encode() == NOTE


def test_signing_with_two_keys_reproduces_the_cosigned_example() -> None:
    enoch = Signer("EnochRoot", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    assert sign_note(TEXT, [peter_signer(), enoch]).encode() == COSIGNED_NOTE


def test_parse_then_encode_gives_back_the_same_bytes() -> None:
    assert parse_note(COSIGNED_NOTE).encode() == COSIGNED_NOTE


def test_a_signature_carries_the_key_id_before_the_signature() -> None:
    (signature,) = parse_note(NOTE).signatures
    raw = base64.b64decode(PETER_SIG.split()[-1])
    assert signature == NoteSignature("PeterNeumann", raw[:4], raw[4:])
    assert len(signature.signature) == 64


# -- key IDs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vkey", [PETER_VKEY, ENOCH_VKEY, SPEC_VKEY])
def test_key_id_is_sha256_of_name_newline_algorithm_and_key(vkey: str) -> None:
    name, hex_id, encoded = vkey.split("+", 2)
    public_key = base64.b64decode(encoded)[1:]
    assert key_id(name, public_key) == hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]
    assert key_id(name, public_key).hex() == hex_id


def test_example_key_id_is_c74f20a3() -> None:
    assert PETER.key_id.hex() == "c74f20a3"


# -- what verification accepts and refuses -------------------------------------------------------


def test_a_changed_text_byte_fails() -> None:
    tampered = NOTE.replace(b"problem,", b"problem.")
    with pytest.raises(VerificationError, match="does not verify"):
        open_note(tampered, [PETER])


def test_a_changed_signature_byte_fails() -> None:
    line = PETER_SIG.split()[-1]
    raw = bytearray(base64.b64decode(line))
    raw[-1] ^= 1
    tampered = NOTE.replace(line.encode(), base64.b64encode(bytes(raw)))
    with pytest.raises(VerificationError, match="does not verify"):
        open_note(tampered, [PETER])


def test_an_unknown_cosignature_is_kept_and_ignored() -> None:
    note = open_note(COSIGNED_NOTE, [PETER])
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]


def test_an_unknown_cosignature_that_would_not_verify_is_ignored() -> None:
    garbage = signature_line("witness.example", b"\x01\x02\x03\x04", bytes(64))
    open_note(NOTE + garbage.encode(), [PETER])


def test_a_known_cosignature_must_verify_too() -> None:
    forged = signature_line("EnochRoot", ENOCH.key_id, bytes(64))
    with pytest.raises(VerificationError, match="EnochRoot"):
        open_note(NOTE + forged.encode(), [PETER, ENOCH])


def test_every_known_signature_verifies() -> None:
    note = open_note(COSIGNED_NOTE, [PETER, ENOCH])
    assert len(note.signatures) == 2


def test_a_note_signed_by_no_known_key_fails() -> None:
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_note(NOTE, [ENOCH])


def test_a_note_fails_without_any_verifier() -> None:
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_note(NOTE, [])


def test_a_known_name_with_another_key_id_counts_as_unknown() -> None:
    impostor = Verifier("PeterNeumann", ENOCH.public_key)
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_note(NOTE, [impostor])


def test_a_signature_under_another_name_counts_as_unknown() -> None:
    renamed = NOTE.replace("— PeterNeumann".encode(), "— PeterNeuman".encode())
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_note(renamed, [PETER])


# -- malformed notes -------------------------------------------------------------------------------

MALFORMED = [
    pytest.param(TEXT.encode() + PETER_SIG.encode(), "blank line", id="no-blank-line"),
    pytest.param(NOTE[:-1], "end with a newline", id="no-final-newline"),
    pytest.param(TEXT.encode() + b"\n", "end with a newline", id="no-signatures"),
    pytest.param(NOTE.replace(b"x08go/", b"x08go!"), "base64", id="bad-base64"),
    pytest.param(NOTE.replace(b"M=\n", b"M\n"), "base64", id="base64-without-padding"),
    pytest.param(NOTE.replace("—".encode(), b"-"), "malformed", id="hyphen-not-em-dash"),
    pytest.param(NOTE.replace("— ".encode(), "—".encode()), "malformed", id="no-space-after-dash"),
    pytest.param(NOTE.replace(b"PeterNeumann ", b""), "malformed", id="no-key-name"),
    pytest.param(NOTE.replace(b"PeterNeumann ", b" "), "malformed", id="empty-key-name"),
    pytest.param(TEXT.encode() + "\n— PeterNeumann AQIDBA==\n".encode(), "malformed", id="signature-too-short"),
    pytest.param(NOTE + b"\n", "end with a newline", id="blank-line-after-signatures"),
    pytest.param(NOTE.replace(b"problem,\n", b"problem,\r\n"), "control", id="carriage-return"),
    pytest.param(NOTE.replace(b"If you", b"If\tyou"), "control", id="tab"),
    pytest.param(NOTE.replace(b"If you", b"If\x00you"), "control", id="nul"),
    pytest.param(NOTE.replace(b"If you", b"If\x1byou"), "control", id="escape"),
    pytest.param(NOTE.replace(b"If you", b"If\xffyou"), "UTF-8", id="invalid-utf8"),
    pytest.param(b"", "blank line", id="empty"),
]


@pytest.mark.parametrize(("message", "reason"), MALFORMED)
def test_malformed_note_fails(message: bytes, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason):
        open_note(message, [PETER])


def test_more_than_a_hundred_signatures_fail() -> None:
    extra = signature_line("witness.example", b"\x01\x02\x03\x04", bytes(64)) * MAX_SIGNATURES
    with pytest.raises(VerificationError, match="more than 100 signatures"):
        open_note(NOTE + extra.encode(), [PETER])


def test_a_hundred_signatures_are_accepted() -> None:
    extra = signature_line("witness.example", b"\x01\x02\x03\x04", bytes(64)) * (MAX_SIGNATURES - 1)
    note = open_note(NOTE + extra.encode(), [PETER])
    assert len(note.signatures) == MAX_SIGNATURES == 100


def test_text_may_hold_blank_lines_before_the_last_one() -> None:
    text = "first paragraph\n\nsecond paragraph\n"
    message = sign_note(text, [peter_signer()]).encode()
    assert open_note(message, [PETER]).text == text


# -- signing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("no final newline", id="no-final-newline"),
        pytest.param("", id="empty"),
        pytest.param("tab\there\n", id="tab"),
        pytest.param("carriage\r\n", id="carriage-return"),
    ],
)
def test_sign_refuses_text_a_reader_would_refuse(text: str) -> None:
    with pytest.raises(VerificationError):
        sign_note(text, [peter_signer()])


def test_sign_note_keeps_signers_in_order() -> None:
    enoch = Signer("EnochRoot", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    note = sign_note(TEXT, [enoch, peter_signer()])
    assert [s.name for s in note.signatures] == ["EnochRoot", "PeterNeumann"]
    assert isinstance(note, Note)
