"""The container's entrypoint works from a built wheel in a fresh virtualenv (no Docker engine needed)."""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, _free_port, _wait_ready

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_cmd() -> list[str]:
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)
    assert cmd is not None
    return list(json.loads(cmd.group(1)))


def dockerfile_healthcheck() -> list[str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    check = re.search(r"CMD (\[\"python\".*\])$", text, re.MULTILINE)
    assert check is not None
    return list(json.loads(check.group(1)))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project installed from its wheel (dependencies shared from this one)."""
    where = tmp_path_factory.mktemp("package")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(where / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    env_dir = where / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    packages = next((env_dir / "lib").glob("python3*/site-packages"))
    (packages / "shared-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    [wheel] = (where / "dist").glob("policy_ledger-*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install", "--no-deps",
         "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    return env_dir


def test_the_wheel_carries_migrations_and_schemas(installed: Path) -> None:
    code = (
        "from ledger.store.migrations import migrations; from ledger import schemas;"
        " print(len(migrations('sqlite')), len(schemas.names()))"
    )
    result = subprocess.run([str(installed / "bin" / "python"), "-c", code], capture_output=True, text=True,
                            cwd=installed, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    migrations, schemas = map(int, result.stdout.split())
    assert migrations >= 1
    assert schemas == 8


def test_the_dockerfile_command_serves_from_a_fresh_install(installed: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {"LEDGER_HOST": "127.0.0.1", "LEDGER_PORT": str(port), "PATH": f"{installed / 'bin'}:{env['PATH']}",
            "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/policy-ledger.db",
            "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "policy-ledger.key")}  # fmt: skip
    command = dockerfile_cmd()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(installed / "bin" / command[0]), *command[1:]], env=env, cwd=tmp_path,
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", process, None, log)  # type: ignore[arg-type]
    try:
        _wait_ready(server)
        check = [c.replace("8080", str(port)) for c in dockerfile_healthcheck()]
        assert subprocess.run([str(installed / "bin" / check[0]), *check[1:]], timeout=30).returncode == 0
        assert server.stop() == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
