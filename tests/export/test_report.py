"""The readable response: one plain-English line per decision, as CSV and printable HTML."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from ledger.offline import Bundle, LogKey, verify_bundle
from ledger.report import csv_report, html_report, lines
from ledger.signing import Signer
from tests.domain.conftest import Ledger
from tests.export.conftest import ALL, export_policy, raw


@pytest.fixture
async def public(told: Ledger, signer: Signer, key: LogKey) -> Bundle:
    return verify_bundle(raw(await export_policy(told, signer)), key)


@pytest.fixture
async def full(told: Ledger, signer: Signer, key: LogKey) -> Bundle:
    return verify_bundle(raw(await export_policy(told, signer, ALL)), key)


def grant_line(bundle: Bundle) -> str:
    return next(line.statement for line in lines(bundle) if line.stream == "exemption/EX-2025-UKGOV")


def test_one_line_per_decision_dated_by_the_decision(public: Bundle) -> None:
    assert [(line.date, line.type) for line in lines(public)] == [
        ("2023-03-16", "policy.issued"),
        ("2024-05-13", "exemption.granted"),
        ("2024-11-29", "exemption.revoked"),
        ("2025-02-03", "exemption.granted"),
        ("2025-02-11", "policy.reviewed"),
        ("2025-07-28", "exemption.renewed"),
    ]


def test_the_grant_says_who_granted_it_for_what(public: Bundle) -> None:
    line = grant_line(public)
    assert line.startswith("Exemption EX-2025-UKGOV under policy POL-2023-TIKTOK granted by Cabinet Office "
                           "Departmental Security Team (case CO-DST-2025-0042)")  # fmt: skip
    assert "for the purpose: Publishing public service information" in line


def test_the_public_report_says_the_mitigations_are_withheld_under_section_24(public: Bundle) -> None:
    assert "mitigations: withheld under section 24(1)" in grant_line(public)
    assert "devices: withheld under section 40(2)" in grant_line(public)


def test_the_full_report_shows_the_mitigations(full: Bundle) -> None:
    assert "mitigations: A dedicated handset used only for the ukgov account." in grant_line(full)
    assert "devices: CO-GCS-TT-001;" in grant_line(full)


def test_times_that_are_not_midnight_keep_their_time_and_each_part_ends_its_sentence(public: Bundle) -> None:
    entry = next(e for e in public.entries if e.event["stream"] == "exemption/EX-2025-UKGOV")
    data = {**entry.event["data"], "purpose": "Publish notices", "valid_from": "2025-02-03T09:30:00+01:00"}
    changed = dataclasses.replace(entry, event={**entry.event, "data": data})
    [line] = lines(dataclasses.replace(public, entries=(changed,)))
    assert "for the purpose: Publish notices. Valid 2025-02-03 08:30 UTC to 2025-08-03;" in line.statement


def test_the_review_reads_as_no_change(public: Bundle) -> None:
    review = next(line.statement for line in lines(public) if line.type == "policy.reviewed")
    assert review.startswith("Policy POL-2023-TIKTOK reviewed; outcome: no-change. There have been no changes")


def test_the_csv_has_a_header_and_a_row_per_decision(public: Bundle) -> None:
    rows = list(csv.reader(io.StringIO(csv_report(public))))
    assert rows[0] == ["date", "seq", "stream", "type", "recorded_at", "recorded_by", "statement"]
    assert len(rows) == 7
    assert rows[4][6] == grant_line(public)


def test_the_html_shows_the_checkpoint_and_how_to_verify(public: Bundle) -> None:
    page = html_report(public, "answer.bundle.json")
    assert public.checkpoint.note.splitlines()[2] in page
    assert "policy-ledger verify --bundle answer.bundle.json --key" in page
    assert public.manifest["key"] in page


def test_the_html_escapes_what_the_ledger_holds(public: Bundle) -> None:
    first = public.entries[0]
    event = {**first.event, "data": {**first.event["data"], "authority": "<script>alert(1)</script>"}}
    page = html_report(dataclasses.replace(public, entries=(dataclasses.replace(first, event=event),)))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_csv_keeps_a_cell_that_starts_like_a_formula_as_text(public: Bundle) -> None:
    first = public.entries[0]
    event = {**first.event, "actor": {"id": '=HYPERLINK("http://evil.example","x")', "role": "policy-officer"}}
    rows = list(
        csv.reader(
            io.StringIO(csv_report(dataclasses.replace(public, entries=(dataclasses.replace(first, event=event),))))
        )
    )
    assert rows[1][5].startswith("'=HYPERLINK(")
