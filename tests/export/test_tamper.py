"""Any change to a bundle makes offline verification fail, naming what is wrong.

The ukgov exemption gets a third event (a second renewal) so that an event can be
dropped from the middle of a stream as well as from its end.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.bundle import encode
from ledger.canonical import canonical
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.offline import MANIFEST_CONTEXT, BundleError, LogKey, parse_vkey, verify_bundle
from ledger.policy import RenewExemption
from ledger.seed import CO_SECURITY, UKGOV_ID
from ledger.signing import Signer
from ledger.states import exemption_stream
from tests.domain.conftest import Ledger
from tests.export.conftest import ALL, export_policy, raw

UKGOV = exemption_stream(UKGOV_ID)
Doc = dict[str, Any]


@pytest.fixture
async def bundle(told: Ledger, signer: Signer) -> Doc:
    told.clock.now = datetime(2026, 1, 20, tzinfo=UTC)
    renewal = {"expires_at": "2026-08-03T00:00:00Z", "reason": "Mitigations checked again by the security team."}
    await told.service.execute(RenewExemption(UKGOV_ID, renewal), CO_SECURITY.id, CO_SECURITY.role)
    return await export_policy(told, signer, ALL)


def refused(document: Doc, key: LogKey, complaint: str) -> None:
    with pytest.raises(BundleError, match=complaint):
        verify_bundle(raw(document), key)


def altered(document: Doc, change: Callable[[Doc], object]) -> Doc:
    changed = copy.deepcopy(document)
    change(changed)
    return changed


def event_of(document: Doc, stream: str, version: int) -> int:
    """The position in ``events`` of the event ``version`` of ``stream``."""
    for i, item in enumerate(document["events"]):
        event = json.loads(item["leaf"])
        if (event["stream"], event["version"]) == (stream, version):
            return i
    raise AssertionError(f"no {stream} version {version}")


def re_leaf(item: dict[str, Any], edit: Callable[[dict[str, Any]], object]) -> None:
    event = json.loads(item["leaf"])
    edit(event)
    item["leaf"] = canonical(event).decode()


def test_the_untouched_bundle_verifies(bundle: Doc, key: LogKey) -> None:
    assert verify_bundle(raw(bundle), key).manifest["streams"][UKGOV] == 3


def test_a_changed_byte_in_an_event_breaks_its_signature(bundle: Doc, key: LogKey) -> None:
    i = event_of(bundle, UKGOV, 1)
    changed = altered(bundle, lambda d: re_leaf(d["events"][i], lambda e: e["data"].update(purpose="Anything.")))
    refused(changed, key, f"seq {bundle['events'][i]['seq']}: the event's signature does not verify")


def test_an_event_re_encoded_with_spaces_is_not_canonical(bundle: Doc, key: LogKey) -> None:
    def spaced(d: Doc) -> None:
        d["events"][0]["leaf"] = json.dumps(json.loads(d["events"][0]["leaf"]))

    refused(altered(bundle, spaced), key, "seq 0: the event is not in canonical JSON form")


def test_a_changed_proof_hash_does_not_lead_to_the_root(bundle: Doc, key: LogKey) -> None:
    changed = altered(bundle, lambda d: d["events"][2]["hashes"].__setitem__(0, base64.b64encode(bytes(32)).decode()))
    refused(changed, key, "seq 2: the inclusion proof does not lead to the checkpoint's root")


def test_a_changed_checkpoint_loses_its_signature(bundle: Doc, key: LogKey) -> None:
    changed = altered(bundle, lambda d: d.update(checkpoint=d["checkpoint"].replace("\n7\n", "\n8\n", 1)))
    refused(changed, key, "the checkpoint carries no valid signature")


def test_another_checkpoint_signed_by_the_log_does_not_match_the_manifest(
    bundle: Doc, key: LogKey, signer: Signer
) -> None:
    other = sign_checkpoint(Checkpoint(signer.name, 6, bytes(32)), signer).decode()
    refused(altered(bundle, lambda d: d.update(checkpoint=other)), key, "the manifest names another checkpoint")


def test_a_changed_disclosure_value_does_not_match_its_digest(bundle: Doc, key: LogKey) -> None:
    def forge(d: Doc) -> None:
        digest = next(iter(d["disclosures"]))
        salt, _ = json.loads(d["disclosures"][digest])
        d["disclosures"][digest] = canonical([salt, ["No mitigations at all."]]).decode()

    refused(altered(bundle, forge), key, "the disclosed value does not match the digest recorded in the event")


def test_a_dropped_disclosure_of_a_released_category_is_missed(bundle: Doc, key: LogKey) -> None:
    refused(altered(bundle, lambda d: d["disclosures"].popitem()), key, "is released but its disclosure is missing")


def test_an_event_dropped_from_the_middle_of_a_stream_is_missed(bundle: Doc, key: LogKey) -> None:
    i = event_of(bundle, UKGOV, 2)
    refused(altered(bundle, lambda d: d["events"].pop(i)), key, f"stream {UKGOV} is incomplete: version 2 is missing")


def test_an_event_dropped_from_the_end_of_a_stream_is_missed(bundle: Doc, key: LogKey) -> None:
    i = event_of(bundle, UKGOV, 3)
    refused(altered(bundle, lambda d: d["events"].pop(i)), key,
            f"stream {UKGOV} is incomplete: the manifest says it has 3 events, the bundle holds 2")  # fmt: skip


def test_a_manifest_edited_to_hide_a_dropped_event_loses_its_signature(bundle: Doc, key: LogKey) -> None:
    i = event_of(bundle, UKGOV, 3)

    def hide(d: Doc) -> None:
        d["events"].pop(i)
        d["manifest"]["streams"][UKGOV] = 2

    refused(altered(bundle, hide), key, "the manifest's signature does not verify")


def test_a_whole_stream_left_out_is_missed(bundle: Doc, key: LogKey) -> None:
    kept = [item for j, item in enumerate(bundle["events"]) if j not in (event_of(bundle, UKGOV, v) for v in (1, 2, 3))]
    refused(altered(bundle, lambda d: d.update(events=kept)), key, f"stream {UKGOV} is missing")


def test_events_out_of_order_are_refused(bundle: Doc, key: LogKey) -> None:
    refused(altered(bundle, lambda d: d["events"].reverse()), key, "not in increasing seq order")


def test_a_bundle_checked_with_another_key_fails(bundle: Doc, signer: Signer) -> None:
    stranger = parse_vkey(Signer.generate(signer.name).verifier.vkey)
    refused(bundle, stranger, "the checkpoint carries no valid signature by a trusted log key")


def test_a_truncated_file_is_refused_as_not_json(bundle: Doc, key: LogKey) -> None:
    with pytest.raises(BundleError, match="is not valid UTF-8 JSON"):
        verify_bundle(raw(bundle)[:-10], key)


# -- files built to break the verifier, and an operator signing what is not so -------------


def test_a_damaged_gzip_file_is_named_as_such(bundle: Doc, key: LogKey) -> None:
    packed = bytearray(encode(bundle, compress=True))
    packed[len(packed) // 2] ^= 0xFF
    with pytest.raises(BundleError, match="damaged gzip file"):
        verify_bundle(bytes(packed), key)


def test_an_integer_beyond_two_to_the_53_is_refused(key: LogKey, bundle: Doc) -> None:
    with pytest.raises(BundleError, match="integer beyond 2\\^53"):
        verify_bundle(raw(bundle)[:-1] + b',"x":' + b"9" * 5000 + b"}", key)


def test_a_member_named_twice_is_refused(bundle: Doc, key: LogKey) -> None:
    forged = json.dumps({**bundle["manifest"], "streams": {}})
    with pytest.raises(BundleError, match="names the same member twice"):
        verify_bundle(b'{"manifest":' + forged.encode() + b"," + raw(bundle)[1:], key)


def test_a_lone_surrogate_is_refused(bundle: Doc, key: LogKey) -> None:
    text = raw(bundle).replace(b'"exported_at":"', b'"exported_at":"\\ud800', 1)
    with pytest.raises(BundleError, match="lone surrogate"):
        verify_bundle(text, key)


def test_a_proof_hash_in_another_base64_spelling_is_refused(bundle: Doc, key: LogKey) -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def respell(d: Doc) -> None:  # the same 32 bytes, with a padding bit set in the last character
        text = d["events"][0]["hashes"][0]
        d["events"][0]["hashes"][0] = text[:42] + alphabet[alphabet.index(text[42]) ^ 1] + "="

    changed = altered(bundle, respell)
    assert base64.b64decode(changed["events"][0]["hashes"][0]) == base64.b64decode(bundle["events"][0]["hashes"][0])
    refused(changed, key, "not in its one canonical base64 spelling")


def resigned(document: Doc, signer: Signer, change: Callable[[Doc], object]) -> Doc:
    """What a dishonest operator could sign: the manifest changed, then signed again."""
    changed = altered(document, lambda d: change(d["manifest"]))
    signature = signer.sign(MANIFEST_CONTEXT + canonical(changed["manifest"]))
    changed["manifest_sig"] = base64.b64encode(signature).decode()
    return changed


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda m: m.update(events=999), "the manifest says the bundle holds 999 events"),
        (lambda m: m.update(origin="evil.example"), "the manifest's 'origin'"),
        (lambda m: m.update(selection={"kind": "policy"}), "the manifest's 'selection'"),
        (lambda m: m.update(exported_by="someone"), "the manifest's 'exported_by'"),
        (lambda m: m["withheld"].update({"national-security": "section 24(1)"}), "released or withheld, not both"),
    ],
    ids=["event-count", "origin", "selection", "exported-by", "released-and-withheld"],
)
def test_a_manifest_the_operator_signed_must_still_agree_with_itself(
    bundle: Doc, key: LogKey, signer: Signer, change: Any, complaint: str
) -> None:
    refused(resigned(bundle, signer, change), key, complaint)


def test_a_disclosure_not_in_canonical_form_is_refused(bundle: Doc, key: LogKey) -> None:
    digest, text = next(iter(bundle["disclosures"].items()))
    salt = json.loads(text)[0]
    spaced = json.dumps([salt, ["A dedicated handset."]])
    crafted = altered(bundle, lambda d: d["disclosures"].update({digest: spaced}))
    refused(crafted, key, "(does not match the digest|not in canonical JSON form)")
