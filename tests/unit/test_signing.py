"""Ed25519 keys named as signed-note keys, and what an event signature covers."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import canonical
from ledger.errors import InvalidInput, VerificationError
from ledger.signing import EVENT_CONTEXT, Signer, Verifier, key_id, signed_event_bytes
from tests.unit._builders import ORIGIN, draft, log_signer, seal

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
ENOCH_SKEY = "PRIVATE+KEY+EnochRoot+af0cfe78+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
# transparency-dev/formats note tests: a verifier key whose base64 holds a '+'.
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"

key_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(lambda c: c != "+"), min_size=1)
seeds = st.binary(min_size=32, max_size=32)


def signer_from(name: str, seed: bytes) -> Signer:
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


# -- key IDs and key strings ---------------------------------------------------------------------


def test_key_id_is_the_first_four_bytes_of_sha256_of_name_newline_0x01_key() -> None:
    public_key = bytes(range(32))
    expected = hashlib.sha256(b"example.com/log\n\x01" + public_key).digest()[:4]
    assert key_id("example.com/log", public_key) == expected


def test_verifier_key_of_the_go_example_parses() -> None:
    verifier = Verifier.from_vkey(PETER_VKEY)
    assert verifier.name == "PeterNeumann"
    assert verifier.key_id.hex() == "c74f20a3"
    assert verifier.public_key == base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]


@pytest.mark.parametrize("vkey", [PETER_VKEY, ENOCH_VKEY, PLUS_VKEY])
def test_verifier_key_formats_back_to_the_same_string(vkey: str) -> None:
    assert Verifier.from_vkey(vkey).vkey == vkey


@pytest.mark.parametrize(("skey", "vkey"), [(PETER_SKEY, PETER_VKEY), (ENOCH_SKEY, ENOCH_VKEY)])
def test_private_key_formats_back_to_the_same_string(skey: str, vkey: str) -> None:
    signer = Signer.from_skey(skey)
    assert signer.skey == skey
    assert signer.verifier.vkey == vkey


@given(key_names, seeds)
def test_any_verifier_key_round_trips(name: str, seed: bytes) -> None:
    verifier = signer_from(name, seed).verifier
    assert Verifier.from_vkey(verifier.vkey) == verifier


@given(key_names, seeds)
def test_any_private_key_round_trips(name: str, seed: bytes) -> None:
    signer = signer_from(name, seed)
    again = Signer.from_skey(signer.skey)
    assert again.skey == signer.skey
    assert again.verifier == signer.verifier


def test_key_strings_ignore_surrounding_whitespace() -> None:
    assert Verifier.from_vkey(f"  {PETER_VKEY}\n").vkey == PETER_VKEY
    assert Signer.from_skey(f"{PETER_SKEY}\n").skey == PETER_SKEY


@pytest.mark.parametrize(
    ("vkey", "reason"),
    [
        pytest.param(PETER_VKEY.replace("c74f20a3", "c74f20a4"), "does not match", id="wrong-key-id"),
        pytest.param(PETER_VKEY.replace("PeterNeumann", "PeterNeuman"), "does not match", id="wrong-name"),
        pytest.param(PETER_VKEY.replace("c74f20a3", "C74F20A3"), "hex", id="uppercase-key-id"),
        pytest.param(PETER_VKEY.replace("c74f20a3", "c74f20"), "hex", id="short-key-id"),
        pytest.param(PETER_VKEY.replace("+ARpc", "+Ahpc"), "Ed25519", id="other-algorithm"),
        pytest.param(PETER_VKEY[:-4], "Ed25519", id="short-key"),
        pytest.param(PETER_VKEY[:-1], "base64", id="bad-base64"),
        pytest.param("PeterNeumann+c74f20a3", "name\\+hexkeyid\\+base64key", id="two-fields"),
        pytest.param(PETER_VKEY.removeprefix("PeterNeumann"), "non-empty", id="empty-name"),
        pytest.param(PETER_VKEY.replace("PeterNeumann", "Peter Neumann"), "spaces", id="space-in-name"),
    ],
)
def test_malformed_verifier_key_is_refused(vkey: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        Verifier.from_vkey(vkey)


@pytest.mark.parametrize(
    ("skey", "reason"),
    [
        pytest.param(PETER_SKEY.removeprefix("PRIVATE+KEY+"), "must start with PRIVATE\\+KEY\\+", id="no-prefix"),
        pytest.param(PETER_SKEY.replace("c74f20a3", "c74f20a4"), "does not match", id="wrong-key-id"),
        pytest.param(PETER_SKEY.replace("+AYEK", "+AoEK"), "Ed25519", id="other-algorithm"),
        pytest.param(PETER_SKEY[:-4], "Ed25519", id="short-seed"),
    ],
)
def test_malformed_private_key_is_refused(skey: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        Signer.from_skey(skey)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there", "new\nline"])
def test_generate_refuses_a_key_name_a_note_cannot_carry(name: str) -> None:
    with pytest.raises(InvalidInput, match="key name"):
        Signer.generate(name)


def test_generated_keys_are_named_and_distinct() -> None:
    first, second = Signer.generate(ORIGIN), Signer.generate(ORIGIN)
    assert first.name == second.name == ORIGIN
    assert first.verifier.public_key != second.verifier.public_key


# -- signatures ------------------------------------------------------------------------------------


def test_verifier_accepts_the_signers_signature() -> None:
    signer = log_signer()
    signer.verifier.verify(signer.sign(b"message"), b"message")


# RFC 8032 §7.1, tests 1-3: secret key (seed), public key, message, signature.
RFC8032_ED25519 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032_ED25519)
def test_signatures_are_the_rfc_8032_test_vectors(seed: str, public: str, message: str, signature: str) -> None:
    signer = signer_from("rfc8032", bytes.fromhex(seed))
    assert signer.verifier.public_key.hex() == public
    assert signer.sign(bytes.fromhex(message)).hex() == signature


@given(seeds, st.binary(max_size=2048))
def test_signatures_are_byte_equal_to_openssls(seed: bytes, message: bytes) -> None:
    assert signer_from("log", seed).sign(message) == Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def test_verifier_refuses_a_signature_over_other_bytes() -> None:
    signer = log_signer()
    with pytest.raises(VerificationError, match=signer.key_id.hex()):
        signer.verifier.verify(signer.sign(b"message"), b"messagE")


def test_verifier_refuses_another_keys_signature() -> None:
    with pytest.raises(VerificationError):
        log_signer(seed=2).verifier.verify(log_signer().sign(b"message"), b"message")


# -- what an event signature covers --------------------------------------------------------------


def test_event_context_is_the_versioned_domain_separator() -> None:
    assert EVENT_CONTEXT == b"policy-ledger/event/v1\n"


def test_signed_event_bytes_are_the_context_then_the_canonical_event_without_sig() -> None:
    event = {"v": 1, "seq": 0, "data": {"b": 1, "a": "\u00e9"}, "sig": "ignored"}
    expected = b"policy-ledger/event/v1\n" + canonical({"v": 1, "seq": 0, "data": {"b": 1, "a": "\u00e9"}})
    assert signed_event_bytes(event) == expected


def test_signed_event_bytes_do_not_depend_on_the_sig() -> None:
    event = {"v": 1, "seq": 0}
    assert signed_event_bytes(event) == signed_event_bytes({**event, "sig": "anything"})


def test_event_signature_covers_context_and_canonical_event_without_sig() -> None:
    signer = log_signer()
    event = dict(seal(draft(), signer).event)
    unsigned = {k: v for k, v in event.items() if k != "sig"}
    signer.verifier.verify(base64.b64decode(event["sig"]), b"policy-ledger/event/v1\n" + canonical(unsigned))


def test_event_signature_does_not_verify_without_the_context() -> None:
    signer = log_signer()
    event = dict(seal(draft(), signer).event)
    unsigned = {k: v for k, v in event.items() if k != "sig"}
    with pytest.raises(VerificationError):
        signer.verifier.verify(base64.b64decode(event["sig"]), canonical(unsigned))


def test_sign_event_signs_the_signed_event_bytes() -> None:
    signer = log_signer()
    event = {"v": 1, "log": ORIGIN, "seq": 3}
    signer.verifier.verify(base64.b64decode(signer.sign_event(event)), signed_event_bytes(event))
