"""A push that brings a new LiteLLM image dumps the database first (Molecule verify, after the other pushes).

The new version is the same test image under another tag on the box (no registry here).
"""

import json
import os
import subprocess
from pathlib import Path

import yaml

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
IMAGE = yaml.safe_load((PROJECT / "tests" / "test-images.yml").read_text())["litellm_image"]


def test_a_new_image_is_pushed_after_a_dump_of_the_database(host):
    newer = IMAGE.rsplit(":", 1)[0] + ":1.108.8"
    host.check_output(f"docker tag {IMAGE} {newer}")
    before = set(host.check_output("ls /var/backups/litellm 2>/dev/null || true").split())
    proc = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "push.yml"),
                           "-e", f"litellm_image={newer}"], capture_output=True, text=True, timeout=900, cwd=PROJECT)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, out[-3000:]
    (taken,) = set(host.check_output("ls /var/backups/litellm").split()) - before
    folder = f"/var/backups/litellm/{taken}"
    manifest = json.loads(host.check_output(f"cat {folder}/manifest.json"))
    assert manifest["labels"]["to"] == newer and IMAGE in manifest["labels"]["from"]
    assert host.file(folder).mode == 0o700 and host.file(f"{folder}/litellm-postgres.dump").mode == 0o600
    # A real pg_dump archive of LiteLLM's schema, readable by pg_restore.
    listing = host.check_output(f"docker exec -i litellm-postgres pg_restore -l < {folder}/litellm-postgres.dump")
    assert "TABLE public" in listing and "LiteLLM_" in listing, listing[:2000]
    assert f"dumped to {folder}" in out
    slots = host.check_output("docker ps --filter name=litellm- --format '{{.Names}} {{.Image}}'")
    assert newer in slots, slots
