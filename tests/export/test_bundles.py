"""Export bundles of the seed story, on both backends, verified offline."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger import exporting
from ledger.bundle import Selection, encode
from ledger.errors import ExportTooLarge, InvalidInput, NotFound
from ledger.offline import LogKey, verdict_of_bundle, verify_bundle
from ledger.report import html_report
from ledger.seed import POLICY_ID, RESEARCH_ID, UKGOV_ID
from ledger.signing import Signer
from ledger.states import exemption_stream, policy_stream
from tests.domain.conftest import Ledger
from tests.export.conftest import ALL, EXPORTED_AT, FOI_OFFICER, export_policy, raw

STORY_STREAMS = {policy_stream(POLICY_ID): 2, exemption_stream(RESEARCH_ID): 2, exemption_stream(UKGOV_ID): 2}


def granted(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The grant of the ukgov exemption."""
    return next(e for e in events if e["type"] == "exemption.granted" and e["stream"].endswith(UKGOV_ID))


async def test_the_public_export_verifies_offline(told: Ledger, signer: Signer, key: LogKey) -> None:
    bundle = verify_bundle(raw(await export_policy(told, signer)), key)
    assert [e.seq for e in bundle.entries] == [0, 1, 2, 3, 4, 5]


async def test_the_public_export_withholds_mitigations_under_section_24(
    told: Ledger, signer: Signer, key: LogKey
) -> None:
    bundle = verify_bundle(raw(await export_policy(told, signer)), key)
    mitigations = granted([e.event for e in bundle.entries])["data"]["mitigations"]
    assert set(mitigations) == {"_sd"}
    assert mitigations["_sd"] not in bundle.released
    assert bundle.manifest["withheld"]["national-security"].startswith("section 24(1)")
    assert bundle.manifest["withheld"]["personal-data"].startswith("section 40(2)")


async def test_the_public_export_holds_no_disclosure(told: Ledger, signer: Signer) -> None:
    assert (await export_policy(told, signer))["disclosures"] == {}


async def test_the_full_export_shows_the_mitigations_proven_against_their_digests(
    told: Ledger, signer: Signer, key: LogKey
) -> None:
    bundle = verify_bundle(raw(await export_policy(told, signer, ALL)), key)
    digest = granted([e.event for e in bundle.entries])["data"]["mitigations"]["_sd"]
    assert bundle.released[digest][0] == "A dedicated handset used only for the ukgov account."
    assert bundle.manifest["withheld"] == {}


async def test_a_policy_export_holds_each_of_its_streams_complete(told: Ledger, signer: Signer) -> None:
    manifest = (await export_policy(told, signer))["manifest"]
    assert manifest["streams"] == STORY_STREAMS
    assert manifest["events"] == 6


async def test_the_manifest_says_who_exported_when_and_what(told: Ledger, signer: Signer) -> None:
    manifest = (await export_policy(told, signer, ("national-security",)))["manifest"]
    assert manifest["exported_by"] == FOI_OFFICER
    assert manifest["exported_at"] == "2026-01-05T09:30:00.000000Z"
    assert manifest["selection"] == {"kind": "policy", "policy_id": POLICY_ID}
    assert manifest["released"] == ["national-security"]
    assert list(manifest["withheld"]) == ["personal-data"]


async def test_an_erased_disclosure_shows_as_erased_and_the_bundle_still_verifies(
    told: Ledger, signer: Signer, key: LogKey
) -> None:
    recorded = [e.event for e in verify_bundle(raw(await export_policy(told, signer)), key).entries]
    devices = granted(recorded)["data"]["devices"]["_sd"]
    assert await told.store.erase_disclosure(devices)
    bundle = verify_bundle(raw(await export_policy(told, signer, ALL)), key)
    assert devices in bundle.erased
    assert devices not in bundle.released
    assert "Erased from the ledger, at the data subject's request: 1 field." in verdict_of_bundle(bundle)
    assert "<li>fields erased from the ledger at the data subject's request: 1</li>" in html_report(bundle)


async def test_a_time_range_export_holds_the_streams_decided_in_it(told: Ledger, signer: Signer, key: LogKey) -> None:
    selection = Selection("range", start=EXPORTED_AT.replace(year=2025, month=2, day=1),
                          end=EXPORTED_AT.replace(year=2025, month=2, day=5))  # fmt: skip
    document = await exporting.export(told.store, signer, selection, (), FOI_OFFICER, EXPORTED_AT)
    bundle = verify_bundle(raw(document), key)
    assert bundle.manifest["streams"] == {exemption_stream(UKGOV_ID): 2}


async def test_a_whole_log_export_verifies(told: Ledger, signer: Signer, key: LogKey) -> None:
    document = await exporting.export(told.store, signer, Selection("log"), ALL, FOI_OFFICER, EXPORTED_AT)
    assert len(verify_bundle(raw(document), key).entries) == 6


async def test_a_gzip_compressed_bundle_verifies_as_it_is(told: Ledger, signer: Signer, key: LogKey) -> None:
    document = await export_policy(told, signer, ALL)
    assert verify_bundle(encode(document, compress=True), key).manifest == document["manifest"]


async def test_exporting_an_unknown_policy_is_not_found(told: Ledger, signer: Signer) -> None:
    with pytest.raises(NotFound, match="no policy 'POL-NONE'"):
        await exporting.export(told.store, signer, Selection("policy", "POL-NONE"), (), FOI_OFFICER, EXPORTED_AT)


async def test_an_export_beyond_its_limit_is_refused_before_it_is_built(told: Ledger, signer: Signer) -> None:
    with pytest.raises(ExportTooLarge, match="holds 6 events, more than the 5"):
        await exporting.export(told.store, signer, Selection("log"), (), FOI_OFFICER, EXPORTED_AT, max_events=5)
    with pytest.raises(ExportTooLarge, match="holds 6 events, more than the 5"):
        await export_policy_limited(told, signer, 5)


async def test_a_time_range_beyond_the_limit_is_refused_before_its_streams_are_read(
    told: Ledger, signer: Signer
) -> None:
    selection = Selection("range", start=EXPORTED_AT.replace(year=2020), end=EXPORTED_AT.replace(year=2030))
    with pytest.raises(ExportTooLarge, match="holds at least 6 events, more than the 5"):
        await exporting.export(told.store, signer, selection, (), FOI_OFFICER, EXPORTED_AT, max_events=5)


async def export_policy_limited(told: Ledger, signer: Signer, limit: int) -> dict[str, Any]:
    selection = Selection("policy", POLICY_ID)
    return await exporting.export(told.store, signer, selection, (), FOI_OFFICER, EXPORTED_AT, max_events=limit)


async def test_releasing_an_unknown_category_is_refused(told: Ledger, signer: Signer) -> None:
    with pytest.raises(InvalidInput, match="unknown category 'secrets'"):
        await exporting.export(told.store, signer, Selection("log"), ("secrets",), FOI_OFFICER, EXPORTED_AT)


async def test_a_bundle_is_plain_json_a_reader_can_open(told: Ledger, signer: Signer) -> None:
    document = json.loads(raw(await export_policy(told, signer)))
    assert document["format"] == "policy-ledger-bundle/1"
    assert document["checkpoint"].startswith(signer.name + "\n6\n")
