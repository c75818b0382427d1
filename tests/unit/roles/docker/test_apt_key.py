"""The docker role installs Docker's apt key only when its fingerprint is the published one: a
throwaway key made here with gpg stands in for the download (file:// URL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home)]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "Test Repo <repo@example.com>", "ed25519", "sign",
                    "never"], check=True, capture_output=True)
    armored = subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True).stdout
    path = home / "repo.asc"
    path.write_bytes(armored)
    colons = subprocess.run([*gpg, "--with-colons", "--fingerprint"], check=True, capture_output=True, text=True).stdout
    fingerprint = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
    return path, fingerprint


def run(tmp_path, key_path, fingerprint):
    signed_by = tmp_path / "keyrings" / "docker.asc"
    signed_by.parent.mkdir()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(HERE / "apt_key_playbook.yml"),
         "-e", f"key_url=file://{key_path}", "-e", f"signed_by={signed_by}",
         "-e", f"role_tasks={ROOT}/roles/docker/tasks",
         "-e", f"docker_ce_repo_gpg_fingerprint='{fingerprint}'", "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"})
    return proc, signed_by


def test_key_with_the_published_fingerprint_is_installed(tmp_path, key):
    path, fingerprint = key
    spaced = " ".join(fingerprint[i:i + 4] for i in range(0, 40, 4))  # as Docker's docs print it
    proc, signed_by = run(tmp_path, path, spaced)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert signed_by.read_bytes() == path.read_bytes()


def test_key_with_another_fingerprint_is_refused_and_not_installed(tmp_path, key):
    path, _ = key
    proc, signed_by = run(tmp_path, path, "9DC858229FC7DD38854AE2D88D81803C0EBFCD88")
    assert proc.returncode != 0
    assert "docker_ce_repo_gpg_fingerprint" in proc.stdout
    assert "not 9DC858229FC7DD38854AE2D88D81803C0EBFCD88" in proc.stdout
    assert not signed_by.exists()
