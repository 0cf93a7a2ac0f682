"""OpenAPI-driven fuzzing of the running service: no 5xx, every error a problem+json.

schemathesis generates requests from /openapi.json (examples, boundary cases, random
data and stateful sequences) against ``policy-ledger serve`` holding the demo story,
with an admin token, so that the commands get past authentication.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, _free_port, _wait_ready

pytestmark = pytest.mark.slow
MAX_EXAMPLES = "25"  # per operation and phase: about a minute on two cores


def run(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "ledger", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_fuzzing_the_api_finds_no_server_error_and_only_problem_json_errors(tmp_path: Path) -> None:
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert schemathesis is not None, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {"LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.db", "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "key"),
            "LEDGER_PORT": str(port), "LEDGER_LOG_LEVEL": "warning"}  # fmt: skip
    run(env, tmp_path, "demo")
    token = run(env, tmp_path, "tokens", "create", "--role", "admin", "--name", "fuzzer")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "ledger", "serve"], env=env, cwd=tmp_path, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", process, None, log)  # type: ignore[arg-type]
    try:
        _wait_ready(server)
        fuzz = subprocess.run(
            [schemathesis, "run", f"{server.url}/openapi.json", "--checks",
             "not_a_server_error,content_type_conformance", "--max-examples", MAX_EXAMPLES,
             "--seed", "20261124", "-H", f"Authorization: Bearer {token}", "--no-color"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert fuzz.returncode == 0, fuzz.stdout[-6000:]
        assert server.stop() == 0
        lines = [json.loads(line) for line in server.output().splitlines()]  # every line is JSON
        assert not [line for line in lines if line.get("event") == "unhandled_error"]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
