"""An FOI answer from the command line: export the story, verify it offline, tamper, report.

The oversight body's side runs with nothing but the bundle, the published key and the
single file ``ledger/offline.py`` copied to a folder of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledger import offline
from ledger.cli import main
from tests.e2e.test_cli import cli

WITHHELD = "withheld under section 24(1)"


@pytest.fixture(scope="module")
def answered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo database, its public and full exports, and the verifier key in a file."""
    folder = tmp_path_factory.mktemp("foi")
    assert cli(folder, "demo").returncode == 0
    for name, release in (("public.json", ["--no-compress"]), ("full.json.gz", ["--release", "all"])):
        result = cli(folder, "export", "--policy", "POL-2023-TIKTOK", *release, "--by", "foi-team", "-o", name)
        assert result.returncode == 0, result.stderr
    (folder / "log.vkey").write_text(cli(folder, "keys", "show").stdout)
    return folder


def test_export_says_what_it_wrote_and_how_to_check_it(answered: Path) -> None:
    result = cli(answered, "export", "--policy", "POL-2023-TIKTOK", "-o", "again.json.gz")
    assert "wrote 6 events" in result.stderr
    assert "policy-ledger verify --bundle again.json.gz --key" in result.stderr
    assert (answered / "again.json.gz").read_bytes()[:2] == b"\x1f\x8b"


@pytest.mark.parametrize("name", ["public.json", "full.json.gz"])
def test_both_exports_verify_offline_with_a_lay_verdict(answered: Path, name: str) -> None:
    result = cli(answered, "verify", "--bundle", name, "--key", "log.vkey")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("VERIFIED: 6 events in 3 streams are exactly as recorded")


def test_a_bundle_with_one_changed_byte_fails_saying_what_is_wrong(answered: Path) -> None:
    document = json.loads((answered / "public.json").read_text())
    document["events"][3]["leaf"] = document["events"][3]["leaf"].replace("Publishing", "publishing")
    (answered / "altered.json").write_text(json.dumps(document))
    result = cli(answered, "verify", "--bundle", "altered.json", "--key", "log.vkey")
    assert result.returncode == 1
    assert result.stderr.strip() == "NOT VERIFIED: seq 3: the event's signature does not verify: it was altered"


def test_verify_of_a_bundle_needs_a_key(answered: Path) -> None:
    result = cli(answered, "verify", "--bundle", "public.json")
    assert result.returncode == 2
    assert "needs --key" in result.stderr


def test_verify_of_a_bundle_refuses_a_saved_checkpoint_it_cannot_check(answered: Path) -> None:
    (answered / "saved.checkpoint").write_text("a checkpoint saved from the log earlier\n")
    result = cli(answered, "verify", "--bundle", "public.json", "--key", "log.vkey", "--checkpoint", "saved.checkpoint")
    assert result.returncode == 2
    assert "--checkpoint is checked against a whole log" in result.stderr
    assert (answered / "saved.checkpoint").read_text() == "a checkpoint saved from the log earlier\n"


def test_report_writes_html_and_csv_from_a_verified_bundle(answered: Path) -> None:
    result = cli(
        answered, "report", "--bundle", "public.json", "--key", "log.vkey", "--html", "r.html", "--csv", "r.csv"
    )
    assert result.returncode == 0, result.stderr
    assert WITHHELD in (answered / "r.html").read_text()
    assert len((answered / "r.csv").read_text().splitlines()) == 7


def test_the_verifier_file_alone_checks_a_bundle(answered: Path, tmp_path: Path) -> None:
    shutil.copy(offline.__file__, tmp_path / "offline.py")
    shutil.copy(answered / "full.json.gz", tmp_path / "answer.json.gz")
    key = (answered / "log.vkey").read_text().strip()
    result = subprocess.run([sys.executable, "-I", "offline.py", "--bundle", "answer.json.gz", "--key", key],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Released and checked against their digests: 4 fields" in result.stdout


def test_report_of_a_missing_file_says_so(answered: Path) -> None:
    result = cli(answered, "report", "--bundle", "nowhere.json", "--key", "log.vkey", "--csv", "r2.csv")
    assert result.returncode == 2
    assert "cannot read the bundle nowhere.json: No such file or directory" in result.stderr


@pytest.mark.parametrize("command", ["report", "verify"])
def test_a_bundle_larger_than_the_limit_is_refused_even_an_endless_one(
    answered: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    monkeypatch.setattr(offline, "MAX_DOCUMENT_BYTES", 4096)
    outputs = ["--csv", str(answered / "endless.csv")] if command == "report" else []
    code = main([command, "--bundle", "/dev/zero", "--key", str(answered / "log.vkey"), *outputs])
    assert code != 0
    assert "the bundle file is larger than 4,096 bytes" in capsys.readouterr().err
    assert not (answered / "endless.csv").exists()


def test_verify_takes_one_source_at_a_time(answered: Path) -> None:
    result = cli(answered, "verify", "--bundle", "public.json", "--receipt", "r.json", "--key", "log.vkey")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


@pytest.mark.parametrize("output", ["ledger.db", "ledger.key"])
def test_export_refuses_to_write_over_the_log_or_its_key(answered: Path, output: str) -> None:
    before = (answered / output).read_bytes()
    result = cli(answered, "export", "--all", "-o", output)
    assert result.returncode == 2
    assert "write to another file" in result.stderr
    assert (answered / output).read_bytes() == before


def test_export_of_an_empty_policy_id_is_refused_not_the_whole_log(answered: Path) -> None:
    result = cli(answered, "export", "--policy", "", "-o", "empty.json")
    assert result.returncode == 2
    assert not (answered / "empty.json").exists()


@pytest.mark.parametrize(
    "outputs",
    [
        ["--html", "public.json"],
        ["--html", "same.out", "--csv", "same.out"],
        ["--html", "written.html", "--csv", "nowhere/x.csv"],
    ],
    ids=["over-the-bundle", "both-reports-in-one-file", "one-into-no-folder"],
)
def test_report_refuses_to_write_over_its_bundle_or_itself_or_into_no_folder(
    answered: Path, outputs: list[str]
) -> None:
    before = (answered / "public.json").read_bytes()
    result = cli(answered, "report", "--bundle", "public.json", "--key", "log.vkey", *outputs)
    assert result.returncode == 2
    assert (answered / "public.json").read_bytes() == before
    assert not (answered / "written.html").exists()
