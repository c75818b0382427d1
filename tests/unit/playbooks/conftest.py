"""Run the operations playbooks' task files on the controller only (no box), with given evidence."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOKS = ROOT / "playbooks"
BIN = Path(sys.executable).parent


class Harness:
    def __init__(self, tmp_path):
        self.tmp = tmp_path

    def run(self, playbook, inventory, extra_vars=None, host_vars=None, check=True):
        """Write playbook/inventory/host_vars/extra vars, run ansible-playbook, return the CompletedProcess."""
        (self.tmp / "play.yml").write_text(textwrap.dedent(playbook).replace("@ROOT@", str(ROOT)))
        (self.tmp / "inventory.ini").write_text(textwrap.dedent(inventory))
        (self.tmp / "host_vars").mkdir(exist_ok=True)
        for host, values in (host_vars or {}).items():
            (self.tmp / "host_vars" / f"{host}.json").write_text(json.dumps(values))
        (self.tmp / "extra.json").write_text(json.dumps(extra_vars or {}))
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                   ANSIBLE_PYTHON_INTERPRETER=sys.executable,
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        proc = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(self.tmp / "inventory.ini"),
             "-e", f"@{self.tmp / 'extra.json'}", str(self.tmp / "play.yml")],
            cwd=self.tmp, env=env, capture_output=True, text=True, timeout=300, check=False)
        if check:
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        return proc

    def out(self, name):
        return json.loads((self.tmp / name).read_text())


@pytest.fixture
def harness(tmp_path):
    return Harness(tmp_path)
