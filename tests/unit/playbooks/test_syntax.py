"""Every operations playbook parses (ansible-playbook --syntax-check), with the example inventory."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
OPS = ["status", "start", "stop", "restart", "logs", "diagnose", "port_forward", "verify"]


def test_operations_playbooks_pass_syntax_check():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run(
        [str(bin_dir / "ansible-playbook"), "--syntax-check", "-i", str(ROOT / "inventory.example"),
         *[str(ROOT / "playbooks" / f"{name}.yml") for name in OPS]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("playbook: ") == len(OPS)
