"""Whole-log verification: leaves, signatures, links, the tree, and signed checkpoints."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import VerificationError
from ledger.events import Recorded
from ledger.note import sign_note
from ledger.signing import Signer
from ledger.verify import CheckedLeaf, LogAuditor, TrustedKey, check_leaves, key_terms
from tests.unit._builders import ORIGIN, build_log, draft, leaves_of, log_signer, reseal, seal

LOG_KEY = log_signer()
OTHER_KEY = log_signer(seed=2)  # same name, another key
KEYS = [TrustedKey(LOG_KEY.verifier)]
SIZE = 6
LOG = build_log(LOG_KEY, SIZE)


def audit(log: list[Recorded], *, roots_at: tuple[int, ...] = (), keys: list[TrustedKey] = KEYS) -> LogAuditor:
    auditor = LogAuditor(ORIGIN, keys, roots_at=roots_at)
    auditor.feed(check_leaves(ORIGIN, keys, leaves_of(log)))
    return auditor


def checkpoint(size: int, root: bytes | None = None, signer: Signer = LOG_KEY, origin: str = ORIGIN) -> bytes:
    if root is None:
        root = merkle.root_from_leaf_hashes([r.leaf_hash for r in LOG[:size]])
    return sign_checkpoint(Checkpoint(origin, size, root), signer)


def audit_against_checkpoint(leaves: list[tuple[int, bytes]]) -> None:
    """Everything a verifier does: each leaf, then the chain and tree, then the signed head."""
    auditor = LogAuditor(ORIGIN, KEYS)
    auditor.feed(check_leaves(ORIGIN, KEYS, leaves))
    auditor.check_checkpoint(checkpoint(SIZE))


def flip_byte(leaf: bytes, old: bytes, new: bytes) -> bytes:
    assert leaf.count(old) == 1
    return leaf.replace(old, new)


# -- an honest log verifies -------------------------------------------------------------------


def test_check_leaves_accepts_every_leaf_of_an_honest_log() -> None:
    checked = check_leaves(ORIGIN, KEYS, leaves_of(LOG))
    assert checked == [CheckedLeaf(r.seq, r.leaf_hash, base64.b64decode(str(r.event["prev"]))) for r in LOG]


def test_auditor_folds_an_honest_log_to_its_root() -> None:
    auditor = audit(LOG)
    assert auditor.size == SIZE
    assert auditor.root == merkle.root_from_leaf_hashes([r.leaf_hash for r in LOG])


def test_auditor_of_an_empty_log_has_the_empty_root() -> None:
    auditor = audit([])
    assert (auditor.size, auditor.root) == (0, merkle.EMPTY_ROOT)


def test_feeding_in_chunks_equals_feeding_at_once() -> None:
    auditor = LogAuditor(ORIGIN, KEYS)
    for start in range(0, SIZE, 4):
        auditor.feed(check_leaves(ORIGIN, KEYS, leaves_of(LOG[start : start + 4])))
    assert (auditor.size, auditor.root) == (SIZE, audit(LOG).root)


def test_checkpoint_of_the_whole_log_verifies() -> None:
    verified = audit(LOG).check_checkpoint(checkpoint(SIZE))
    assert (verified.origin, verified.size) == (ORIGIN, SIZE)


def test_older_checkpoints_verify_against_the_roots_kept_for_them() -> None:
    auditor = audit(LOG, roots_at=(1, 3, 4))
    for size in (1, 3, 4, SIZE):
        assert auditor.check_checkpoint(checkpoint(size)).size == size


def test_cosigned_checkpoint_verifies_with_the_log_key_alone() -> None:
    witness = log_signer("witness.example/w1", seed=3)
    body = Checkpoint(ORIGIN, SIZE, audit(LOG).root).body()
    audit(LOG).check_checkpoint(sign_note(body, [LOG_KEY, witness]).encode())


def test_rotated_key_verifies_from_its_first_seq() -> None:
    new_key = log_signer(seed=4)
    log = build_log(LOG_KEY, SIZE, rotate_to=new_key, at=4)
    keys = [TrustedKey(LOG_KEY.verifier), TrustedKey(new_key.verifier, from_seq=4)]
    assert audit(log, keys=keys).size == SIZE


def test_rotated_key_is_refused_before_its_first_seq() -> None:
    new_key = log_signer(seed=4)
    log = build_log(LOG_KEY, SIZE, rotate_to=new_key, at=4)
    keys = [TrustedKey(LOG_KEY.verifier), TrustedKey(new_key.verifier, from_seq=5)]
    with pytest.raises(VerificationError, match="before it was in use") as caught:
        audit(log, keys=keys)
    assert caught.value.seq == 4


def test_each_key_a_log_states_is_trusted_until_the_next_one_begins() -> None:
    new_key = log_signer(seed=4)
    stated = [TrustedKey(new_key.verifier, from_seq=4), TrustedKey(LOG_KEY.verifier)]
    assert key_terms(stated) == (TrustedKey(LOG_KEY.verifier, 0, 4), TrustedKey(new_key.verifier, 4, None))


def test_a_rotated_log_verifies_with_each_key_in_its_term() -> None:
    new_key = log_signer(seed=4)
    log = build_log(LOG_KEY, SIZE, rotate_to=new_key, at=4)
    stated = [TrustedKey(LOG_KEY.verifier), TrustedKey(new_key.verifier, from_seq=4)]
    assert audit(log, keys=list(key_terms(stated))).size == SIZE


def test_an_event_signed_by_a_key_the_log_moved_on_from_fails_at_its_seq() -> None:
    new_key = log_signer(seed=4)
    log = reseal(build_log(LOG_KEY, SIZE, rotate_to=new_key, at=4), 5, LOG_KEY)  # the old key, leaked, signs seq 5
    stated = [TrustedKey(LOG_KEY.verifier), TrustedKey(new_key.verifier, from_seq=4)]
    with pytest.raises(VerificationError, match="which the log moved on from at seq 4") as caught:
        check_leaves(ORIGIN, key_terms(stated), leaves_of(log))
    assert caught.value.seq == 5


def test_keys_handed_to_the_verifier_take_the_terms_the_log_states_for_them() -> None:
    new_key = log_signer(seed=4)
    stated = [TrustedKey(LOG_KEY.verifier), TrustedKey(new_key.verifier, from_seq=4)]
    given = [TrustedKey(LOG_KEY.verifier), TrustedKey(OTHER_KEY.verifier)]
    assert key_terms(stated, given) == (TrustedKey(LOG_KEY.verifier, 0, 4), TrustedKey(OTHER_KEY.verifier))


def test_a_term_given_with_a_key_and_the_one_the_log_states_both_hold() -> None:
    new_key = log_signer(seed=4)
    stated = [TrustedKey(LOG_KEY.verifier), TrustedKey(new_key.verifier, from_seq=4)]
    given = [TrustedKey(LOG_KEY.verifier, from_seq=1), TrustedKey(new_key.verifier, from_seq=3)]
    assert key_terms(stated, given) == (TrustedKey(LOG_KEY.verifier, 1, 3), TrustedKey(new_key.verifier, 4, None))


def test_keys_a_log_recorded_at_one_seq_share_their_term() -> None:
    new_key, third = log_signer(seed=4), log_signer(seed=5)  # the first two recorded before any event was signed
    stated = [TrustedKey(new_key.verifier), TrustedKey(LOG_KEY.verifier), TrustedKey(third.verifier, from_seq=3)]
    assert {k.until_seq for k in key_terms(stated) if k.from_seq == 0} == {3}


def test_keys_handed_to_the_verifier_of_a_log_that_lists_none_are_kept_as_given() -> None:
    assert key_terms([], KEYS) == tuple(KEYS)


# -- tampered leaves: each failure names the seq ---------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        pytest.param(b"Ban number 3", b"Ban number 8", "signature does not verify", id="data-byte"),
        pytest.param(b'"policy/p-3"', b'"policy/p-8"', "signature does not verify", id="stream-byte"),
        pytest.param(b'"seq":3', b'"seq":8', "says seq 8", id="seq-byte"),
        pytest.param(b'"v":1', b'"v":2', "signature does not verify", id="format-version-byte"),
        pytest.param(b'"actor":{', b'"actor" {', "not valid JSON", id="syntax-byte"),
    ],
)
def test_a_flipped_byte_in_one_leaf_fails_at_its_seq(old: bytes, new: bytes, reason: str) -> None:
    leaves = leaves_of(LOG)
    leaves[3] = (3, flip_byte(leaves[3][1], old, new))
    with pytest.raises(VerificationError, match=reason) as caught:
        check_leaves(ORIGIN, KEYS, leaves)
    assert caught.value.seq == 3


@settings(max_examples=200)
@given(st.data())
def test_any_changed_byte_in_any_leaf_fails_the_audit(data: st.DataObject) -> None:
    seq = data.draw(st.integers(0, SIZE - 1), label="seq")
    leaf = bytearray(LOG[seq].leaf)
    at = data.draw(st.integers(0, len(leaf) - 1), label="at")
    leaf[at] ^= data.draw(st.integers(1, 255), label="mask")
    leaves = leaves_of(LOG)
    leaves[seq] = (seq, bytes(leaf))
    with pytest.raises(VerificationError):
        audit_against_checkpoint(leaves)


def test_a_flipped_signature_byte_fails_at_its_seq() -> None:
    sig = str(LOG[3].event["sig"]).encode()
    forged = base64.b64encode(bytes([base64.b64decode(sig)[0] ^ 1]) + base64.b64decode(sig)[1:])
    leaves = leaves_of(LOG)
    leaves[3] = (3, flip_byte(leaves[3][1], sig, forged))
    with pytest.raises(VerificationError, match="signature does not verify") as caught:
        check_leaves(ORIGIN, KEYS, leaves)
    assert caught.value.seq == 3


def test_a_signature_cut_short_fails_at_its_seq() -> None:
    sig = str(LOG[3].event["sig"]).encode()
    short = base64.b64encode(base64.b64decode(sig)[:48])  # canonical base64, but 48 bytes, not 64
    leaves = leaves_of(LOG)
    leaves[3] = (3, flip_byte(leaves[3][1], sig, short))
    with pytest.raises(VerificationError, match="signature does not verify") as caught:
        check_leaves(ORIGIN, KEYS, leaves)
    assert caught.value.seq == 3


def test_a_missing_leaf_fails_at_the_seq_after_the_gap() -> None:
    leaves = [leaf for leaf in leaves_of(LOG) if leaf[0] != 2]
    auditor = LogAuditor(ORIGIN, KEYS)
    with pytest.raises(VerificationError, match="expected seq 2") as caught:
        auditor.feed(check_leaves(ORIGIN, KEYS, leaves))
    assert caught.value.seq == 3


def test_a_missing_leaf_fails_at_its_position_when_leaves_are_numbered_by_position() -> None:
    leaves = [(position, leaf) for position, (_, leaf) in enumerate(leaves_of([*LOG[:2], *LOG[3:]]))]
    with pytest.raises(VerificationError, match="says seq 3") as caught:
        check_leaves(ORIGIN, KEYS, leaves)
    assert caught.value.seq == 2


def test_two_swapped_leaves_fail_at_the_first_out_of_place() -> None:
    leaves = leaves_of(LOG)
    leaves[1], leaves[2] = leaves[2], leaves[1]
    auditor = LogAuditor(ORIGIN, KEYS)
    with pytest.raises(VerificationError, match="expected seq 1") as caught:
        auditor.feed(check_leaves(ORIGIN, KEYS, leaves))
    assert caught.value.seq == 2


def test_two_swapped_leaves_fail_at_their_position_when_numbered_by_position() -> None:
    swapped = [LOG[0], LOG[2], LOG[1], *LOG[3:]]
    leaves = [(position, r.leaf) for position, r in enumerate(swapped)]
    with pytest.raises(VerificationError, match="says seq 2") as caught:
        check_leaves(ORIGIN, KEYS, leaves)
    assert caught.value.seq == 1


def test_a_leaf_resigned_by_an_untrusted_key_fails_at_its_seq() -> None:
    log = reseal(LOG, 3, OTHER_KEY)
    with pytest.raises(VerificationError, match="not a trusted key") as caught:
        check_leaves(ORIGIN, KEYS, leaves_of(log))
    assert caught.value.seq == 3


def test_a_leaf_resigned_by_another_key_under_the_log_key_id_fails_at_its_seq() -> None:
    resigned = reseal(LOG, 3, OTHER_KEY)[3].leaf
    forged = flip_byte(resigned, OTHER_KEY.key_id.hex().encode(), LOG_KEY.key_id.hex().encode())
    leaves = leaves_of(LOG)
    leaves[3] = (3, forged)
    with pytest.raises(VerificationError, match="signature does not verify") as caught:
        check_leaves(ORIGIN, KEYS, leaves)
    assert caught.value.seq == 3


def test_a_key_used_before_its_first_seq_fails_at_that_seq() -> None:
    keys = [TrustedKey(LOG_KEY.verifier, from_seq=4)]
    with pytest.raises(VerificationError, match="before it was in use") as caught:
        check_leaves(ORIGIN, keys, leaves_of(LOG))
    assert caught.value.seq == 0


def test_an_event_of_another_log_fails_at_its_seq() -> None:
    stranger = log_signer("other.example/log", seed=1)
    log = reseal(LOG, 2, stranger)
    with pytest.raises(VerificationError, match="belongs to log") as caught:
        check_leaves(ORIGIN, [TrustedKey(stranger.verifier), *KEYS], leaves_of(log))
    assert caught.value.seq == 2


def test_a_broken_prev_link_fails_at_its_seq() -> None:
    log = reseal(LOG, 4, LOG_KEY, prev=LOG[2].leaf_hash)
    checked = check_leaves(ORIGIN, KEYS, leaves_of(log))  # each leaf is fine on its own
    with pytest.raises(VerificationError, match="prev does not match the leaf hash of seq 3") as caught:
        LogAuditor(ORIGIN, KEYS).feed(checked)
    assert caught.value.seq == 4


def test_a_first_event_not_linked_to_zero_fails_at_seq_0() -> None:
    log = reseal(LOG, 0, LOG_KEY, prev=LOG[0].leaf_hash)
    with pytest.raises(VerificationError, match="prev") as caught:
        audit(log)
    assert caught.value.seq == 0


def test_a_rewritten_event_breaks_the_link_of_the_next_one() -> None:
    log = [*LOG[:2], rewritten(2), *LOG[3:]]
    with pytest.raises(VerificationError, match="prev") as caught:
        audit(log)
    assert caught.value.seq == 3


def rewritten(seq: int) -> Recorded:
    """Event ``seq`` with other data, validly signed by the log key: an insider's rewrite."""
    return seal(draft(seq, data={"rationale": "rewritten"}), LOG_KEY, seq=seq, prev=LOG[seq - 1].leaf_hash)


# -- checkpoints ---------------------------------------------------------------------------------


def test_a_checkpoint_beyond_the_log_means_events_were_removed() -> None:
    auditor = audit(LOG[:4])
    with pytest.raises(VerificationError, match="covers 6 events but the log holds only 4") as caught:
        auditor.check_checkpoint(checkpoint(SIZE))
    assert caught.value.seq is None


def test_a_checkpoint_with_a_wrong_root_fails() -> None:
    wrong = merkle.root_from_leaf_hashes([r.leaf_hash for r in LOG[:5]])
    with pytest.raises(VerificationError, match="root for size 6 does not match"):
        audit(LOG).check_checkpoint(checkpoint(SIZE, root=wrong))


def test_a_checkpoint_of_a_forked_log_fails() -> None:
    forked = [*LOG[:2], rewritten(2)]
    fork_root = merkle.root_from_leaf_hashes([r.leaf_hash for r in forked])
    with pytest.raises(VerificationError, match="does not match"):
        audit(LOG[:3]).check_checkpoint(checkpoint(3, root=fork_root))


def test_a_checkpoint_signed_by_an_unknown_key_fails() -> None:
    with pytest.raises(VerificationError, match="not signed by any known key"):
        audit(LOG).check_checkpoint(checkpoint(SIZE, signer=OTHER_KEY))


def test_a_checkpoint_of_another_origin_fails() -> None:
    stranger = log_signer("other.example/log", seed=1)
    auditor = LogAuditor(ORIGIN, [*KEYS, TrustedKey(stranger.verifier)])
    with pytest.raises(VerificationError, match="origin"):
        auditor.check_checkpoint(checkpoint(0, merkle.EMPTY_ROOT, signer=stranger, origin="other.example/log"))


def test_a_tampered_checkpoint_fails_its_signature() -> None:
    tampered = checkpoint(SIZE).replace(b"\n6\n", b"\n5\n", 1)
    with pytest.raises(VerificationError, match="does not verify"):
        audit(LOG).check_checkpoint(tampered)


def test_checkpoint_errors_say_which_checkpoint() -> None:
    with pytest.raises(VerificationError, match=r"^witnessed checkpoint: "):
        audit(LOG).check_checkpoint(checkpoint(SIZE, signer=OTHER_KEY), "witnessed checkpoint")


def test_an_older_checkpoint_needs_its_root_kept() -> None:
    with pytest.raises(VerificationError, match="no root was kept for size 3"):
        audit(LOG).check_checkpoint(checkpoint(3))


def test_a_leaf_whose_key_id_is_not_a_string_fails_at_its_seq() -> None:
    leaves = leaves_of(LOG)
    leaves[3] = (3, flip_byte(leaves[3][1], f'"{LOG_KEY.key_id.hex()}"'.encode(), b"[]"))
    with pytest.raises(VerificationError) as caught:
        check_leaves(ORIGIN, KEYS, leaves)
    assert caught.value.seq == 3


def test_a_leaf_holding_an_escaped_lone_surrogate_fails_at_its_seq() -> None:
    leaves = leaves_of(LOG)
    leaves[3] = (3, flip_byte(leaves[3][1], b"Ban number 3", b"Ban \\udc00"))
    with pytest.raises(VerificationError) as caught:
        check_leaves(ORIGIN, KEYS, leaves)
    assert caught.value.seq == 3


def test_checkpoint_of_the_empty_tree_verifies_against_a_longer_log() -> None:
    audit(LOG, roots_at=(0,)).check_checkpoint(checkpoint(0, merkle.EMPTY_ROOT))


def test_a_sig_in_non_canonical_base64_fails_at_its_seq() -> None:
    sig = str(LOG[3].event["sig"])
    assert sig.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    same_bytes = sig[:-3] + alphabet[alphabet.index(sig[-3]) ^ 1] + "=="
    assert base64.b64decode(same_bytes) == base64.b64decode(sig)
    leaves = leaves_of(LOG)
    leaves[3] = (3, flip_byte(leaves[3][1], sig.encode(), same_bytes.encode()))
    with pytest.raises(VerificationError) as caught:  # today: accepted here, reported at seq 4 by the auditor
        check_leaves(ORIGIN, KEYS, leaves)
    assert caught.value.seq == 3
