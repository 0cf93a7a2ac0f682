"""OpenAPI-driven fuzzing of the running service: no 5xx, every error a problem+json.

schemathesis generates requests from /openapi.json (examples, boundary cases, random
data and stateful sequences) against ``policy-ledger serve`` holding the demo story, on
each backend. Each operation is fuzzed with a token of the role that may use it, so
that command bodies get past authorisation into the rules, the writer and the store:
policy commands as a policy officer, exemption commands as a security officer, the
queries, the log and exports as an auditor.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import _free_port, environment, start

pytestmark = pytest.mark.slow
MAX_EXAMPLES = "25"  # per operation and phase: about half a minute per backend on two cores

PASSES = {
    "policy-officer": ["--include-name", "POST /v1/policies",
                       "--include-name", "POST /v1/policies/{policy_id}/amendments",
                       "--include-name", "POST /v1/policies/{policy_id}/reviews",
                       "--include-name", "POST /v1/policies/{policy_id}/lift"],
    "security-officer": ["--include-name", "POST /v1/policies/{policy_id}/exemptions",
                         "--include-name", "POST /v1/exemptions/{exemption_id}/amendments",
                         "--include-name", "POST /v1/exemptions/{exemption_id}/renewals",
                         "--include-name", "POST /v1/exemptions/{exemption_id}/revoke"],
    "auditor": ["--include-method", "GET", "--include-name", "POST /v1/exports"],  # either matches
}  # fmt: skip


def run(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "ledger", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_fuzzing_the_api_finds_no_server_error_and_only_problem_json_errors(tmp_path: Path, database_url: str) -> None:
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert schemathesis is not None, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    env = environment(tmp_path, database_url, _free_port())
    run(env, tmp_path, "demo")
    tokens = {role: run(env, tmp_path, "tokens", "create", "--role", role, "--name", "fuzzer") for role in PASSES}
    server = start(env, tmp_path, "server")
    try:
        for role, operations in PASSES.items():
            fuzz = subprocess.run(
                [schemathesis, "run", f"{server.url}/openapi.json", "--checks",
                 "not_a_server_error,content_type_conformance", "--max-examples", MAX_EXAMPLES,
                 "--seed", "20261124", "-H", f"Authorization: Bearer {tokens[role]}", "--no-color", *operations],
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert fuzz.returncode == 0, f"as {role}:\n{fuzz.stdout[-6000:]}"
            assert "generated" in fuzz.stdout, fuzz.stdout[-2000:]  # the pass did run requests
        assert server.stop() == 0
        lines = [json.loads(line) for line in server.output().splitlines()]  # every line is JSON
        assert not [line for line in lines if line.get("event") == "unhandled_error"]
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
