"""A push that brings a new LiteLLM image (Molecule verify, after the other pushes).

The new version is the same test image under another tag on the box (no registry here). This scenario runs
LiteLLM without its database (Prisma's engines cannot be downloaded here), so the push must go ahead without a
dump; the dump taken in database mode (module postgres_backup) is unit-tested against a fake docker.
"""

import os
import re
import subprocess
from pathlib import Path

import yaml

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
IMAGE = yaml.safe_load((PROJECT / "tests" / "test-images.yml").read_text())["litellm_image"]


def test_a_new_image_without_database_mode_is_pushed_without_a_dump(host):
    newer = IMAGE.rsplit(":", 1)[0] + ":1.108.8"
    host.check_output(f"docker tag {IMAGE} {newer}")
    proc = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "push.yml"),
                           "-e", f"litellm_image={newer}"], capture_output=True, text=True, timeout=900, cwd=PROJECT)
    # Molecule forces colour: read the output without its escape codes.
    out = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, out[-3000:]
    assert "Dump the database before a new image migrates it] *" in out and "dumped to" not in out
    assert not host.file("/var/backups/litellm").exists
    slots = host.check_output("docker ps --filter name=litellm- --format '{{.Names}} {{.Image}}'")
    assert newer in slots, slots
