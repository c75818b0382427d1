"""playbooks/backup.yml on a fleet (Molecule verify, before test_fleet.py): only the central box is a Langfuse
box and is backed up, with the secrets of both its stacks. LiteLLM runs without its database here (its Prisma
engines cannot be downloaded), so no LiteLLM dump is expected: the dump itself is unit-tested."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import testinfra

CENTRAL, BOX = "llmops-fleet-central", "llmops-fleet-box"
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd()))


def test_only_the_central_box_is_backed_up_with_both_stacks_secrets():
    controller = Path(tempfile.mkdtemp(prefix="llmops-fleet-backups-"))
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".collections"))
    run = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                          str(PROJECT / "playbooks" / "backup.yml"), "-e",
                          json.dumps({"langfuse_backup_vault_password": "fleet-rehearsal-password",
                                      "langfuse_backup_controller_dir": str(controller)})],
                         env=env, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert [p.name for p in controller.iterdir()] == [CENTRAL]
    (backup,) = (controller / CENTRAL).iterdir()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert [f["name"] for f in manifest["files"]] == ["postgres.dump", "clickhouse.zip", "minio.tar",
                                                      "secrets.json.vault"]
    central = testinfra.get_host(f"ansible://{CENTRAL}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}",
                                 sudo=True)
    listing = central.check_output(
        f"docker exec -i langfuse-postgres-1 pg_restore -l < /var/backups/langfuse/{backup.name}/postgres.dump")
    assert "TABLE public" in listing, listing[:2000]
    # The secrets of both stacks, encrypted: /etc/litellm's master key is not readable in the file.
    master_key = central.check_output("cat /etc/litellm/master_key").strip()
    vaulted = (backup / "secrets.json.vault").read_text()
    assert vaulted.startswith("$ANSIBLE_VAULT;") and master_key not in vaulted
