"""Sealing sensitive fields: salted digests in the leaf, disclosures that check against them."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from ledger import schemas
from ledger.canonical import canonical
from ledger.errors import VerificationError
from ledger.sensitive import Disclosure, digest_of, disclosed_value, is_sealed, reveal, seal

GRANTED = "exemption.granted/1"
ZERO_SALT = bytes(16)


def sealed_example() -> tuple[dict[str, Any], dict[str, Any], tuple[Disclosure, ...]]:
    clear = schemas.example(GRANTED)
    leaf, disclosures = seal(GRANTED, clear)
    return clear, leaf, disclosures


def test_sensitive_fields_are_replaced_by_digests() -> None:
    _, leaf, _ = sealed_example()
    assert is_sealed(leaf["devices"])
    assert is_sealed(leaf["mitigations"])
    assert set(leaf["devices"]) == {"_sd"}


def test_other_fields_stay_in_clear() -> None:
    clear, leaf, _ = sealed_example()
    assert {k: v for k, v in leaf.items() if k not in {"devices", "mitigations"}} == {
        k: v for k, v in clear.items() if k not in {"devices", "mitigations"}
    }


def test_the_disclosure_is_the_canonical_salt_and_value() -> None:
    clear = schemas.example(GRANTED)
    _, disclosures = seal(GRANTED, clear, salt=lambda: ZERO_SALT)
    devices = next(d for d in disclosures if d.field == "devices")
    assert devices.disclosure == canonical(["AAAAAAAAAAAAAAAAAAAAAA", clear["devices"]])
    assert devices.category == "personal-data"


def test_the_digest_is_unpadded_base64url_sha256_of_the_disclosure() -> None:
    _, leaf, disclosures = sealed_example()
    for disclosure in disclosures:
        expected = base64.urlsafe_b64encode(hashlib.sha256(disclosure.disclosure).digest()).rstrip(b"=").decode()
        assert disclosure.digest == expected == leaf[disclosure.field]["_sd"]
        assert len(disclosure.digest) == 43  # 32 bytes, unpadded


def test_each_seal_uses_a_fresh_16_byte_salt() -> None:
    _, first = seal(GRANTED, schemas.example(GRANTED))
    _, second = seal(GRANTED, schemas.example(GRANTED))
    salts = [json.loads(d.disclosure)[0] for d in (*first, *second)]
    assert len(set(salts)) == 4
    assert all(len(base64.urlsafe_b64decode(s + "==")) == 16 for s in salts)


def test_absent_optional_fields_are_not_sealed() -> None:
    leaf, disclosures = seal("exemption.amended/1", {"purpose": "New.", "reason": "Why."})
    assert (leaf, disclosures) == ({"purpose": "New.", "reason": "Why."}, ())


def test_sealed_leaf_data_is_canonical_json() -> None:
    _, leaf, _ = sealed_example()
    canonical(leaf)


def test_reveal_with_every_category_gives_back_the_clear_data() -> None:
    clear, leaf, disclosures = sealed_example()
    opened = reveal(GRANTED, leaf, {d.digest: d.disclosure for d in disclosures}, "all")
    assert opened == clear


def test_reveal_puts_back_only_the_categories_allowed() -> None:
    clear, leaf, disclosures = sealed_example()
    opened = reveal(GRANTED, leaf, {d.digest: d.disclosure for d in disclosures}, {"personal-data"})
    assert opened["devices"] == clear["devices"]
    assert opened["mitigations"] == leaf["mitigations"]


def test_a_field_without_its_disclosure_stays_sealed() -> None:
    _, leaf, _ = sealed_example()
    assert reveal(GRANTED, leaf, {}, "all") == leaf


def test_an_erased_disclosure_is_marked_erased() -> None:
    _, leaf, _ = sealed_example()
    digest = leaf["devices"]["_sd"]
    opened = reveal(GRANTED, leaf, {}, "all", erased={digest})
    assert opened["devices"] == {"_sd": digest, "erased": True}


def test_a_tampered_disclosure_is_refused() -> None:
    _, leaf, disclosures = sealed_example()
    devices = next(d for d in disclosures if d.field == "devices")
    forged = devices.disclosure.replace(b"CO-GCS-TT-001", b"CO-GCS-TT-999")
    with pytest.raises(VerificationError, match="disclosure for field 'devices' does not match its digest"):
        reveal(GRANTED, leaf, {devices.digest: forged}, "all")


def test_a_disclosure_that_is_not_a_salt_and_value_is_refused() -> None:
    bogus = canonical({"devices": ["x"]})
    with pytest.raises(VerificationError, match="not a \\[salt, value\\] array"):
        disclosed_value(digest_of(bogus), bogus, "devices")
