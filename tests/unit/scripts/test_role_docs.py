"""scripts/role-docs.sh: the generated part of a role README follows meta/argument_specs.yml, the prose stays.

Runs the real script (and the pinned aar-doc in .venv) on a copy of role docker, never on the checkout.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "role-docs.sh"
OLD = "description: V(docker-ce) source only, the repository component."
NEW = "description: V(docker-ce) source only, the component of Docker's apt repository."


def run(*args):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def role():
    # aar-doc names the role from the galaxy.yml two levels up: llmops.devbox.docker, as in the checkout.
    top = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        shutil.copy(ROOT / "galaxy.yml", top / "galaxy.yml")
        shutil.copytree(ROOT / "roles" / "docker", top / "roles" / "docker")
        yield top / "roles" / "docker"
    finally:
        shutil.rmtree(top)


def test_stale_readme_fails_with_diff_and_command_then_regenerates(role):
    readme = role / "README.md"
    specs = role / "meta" / "argument_specs.yml"
    assert run(str(role)).returncode == 0  # current whatever state the checkout's README is in
    before = readme.read_text()
    check = run("--check", str(role))
    assert check.returncode == 0, check.stdout + check.stderr

    assert specs.read_text().count(OLD) == 1
    specs.write_text(specs.read_text().replace(OLD, NEW))
    check = run("--check", str(role))
    assert check.returncode == 1
    row = "| `docker_ce_repo_channel` | `docker-ce` source only, "
    assert f"-{row}the repository component." in check.stdout
    assert f"+{row}the component of Docker's apt repository." in check.stdout
    assert f"run 'scripts/role-docs.sh {role}'" in check.stderr
    assert readme.read_text() == before  # --check never writes

    assert run(str(role)).returncode == 0
    after = readme.read_text()
    assert run("--check", str(role)).returncode == 0
    # Only the generated part changed: the hand-written text before and after the markers is as it was.
    begin, end = "<!-- BEGIN_ANSIBLE_DOCS -->\n", "<!-- END_ANSIBLE_DOCS -->\n"
    assert after.split(begin)[0] == before.split(begin)[0]
    assert after.split(end)[1] == before.split(end)[1]
    # Deterministic: another run changes nothing.
    again = run(str(role))
    assert again.returncode == 0 and "updated" not in again.stderr
    assert readme.read_text() == after


def test_hand_edit_inside_the_generated_part_is_stale(role):
    readme = role / "README.md"
    assert run(str(role)).returncode == 0
    text = readme.read_text()
    readme.write_text(text.replace("| `docker_min_free_disk_gib` |", "| `docker_min_free_disk_gb` |"))
    assert run("--check", str(role)).returncode == 1
