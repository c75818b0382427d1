"""Set-up without what it needs must say, in one line, what is missing and how to get it."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def scripts_copy():
    # A private copy that user nobody can read: lib.sh creates .cache next to scripts/.
    top = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        shutil.copytree(ROOT / "scripts", top / "scripts")
        (top / ".cache").mkdir()
        for p in (top, top / "scripts", top / ".cache"):
            os.chmod(p, 0o777)  # noqa: S103 - a throwaway dir the test user must write to
        yield top / "scripts"
    finally:
        shutil.rmtree(top)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")
def test_no_engine_and_not_root_is_one_clear_line(scripts_copy):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    run = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "bash", str(scripts_copy / "dockerd.sh"), "start"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines == [
        "ERROR: no Docker engine answers and we are not root: start Docker (systemctl start docker) or rerun as root"
    ]

