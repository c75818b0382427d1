"""Hostile values and a small harness for rendering the roles with them (no Docker).

Used by tests/unit/roles/{langfuse,litellm} and tests/integration/test_env_files_compose.py. Values
go into a YAML inventory tagged !unsafe: they arrive as data, the way a secrets file, a module result
or Ansible Vault hands them to the roles, so Ansible never treats their "{{ }}" as a template. The
roles must then write them so that Compose reads back exactly that data (or refuse them in the
preflight, naming the variable).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[4]
TOOLS = Path(sys.executable).parent

# Quotes, shell and Compose interpolation, an inline comment, a Jinja expression, percent-escapes,
# URL delimiters, a backslash, unicode: everything an env file or a URL could misread.
NAME = "Jöe's \"team\" $HOME ${X} #1 {{ y }}"
TEXT = "  %41 p@ss/w:rd?&=+ ~ \\ `id` $(id) ; | <x> * ! {{ 1 + 1 }} 🙂 日本  "
# Every value below is longer than 16 characters (the langfuse role's minimum for a supplied secret).
PASSWORD = "p@ss/w:rd #%41 Jöe's \"x\" $HOME ${X} {{ y }} \\"  # noqa: S105 - test value
SECRETS = {
    "salt": "salt " + NAME,
    "encryption_key": "ab" * 32,
    "nextauth_secret": "nextauth " + TEXT,
    "postgres_password": PASSWORD,
    # Langfuse puts it unescaped into a URL query: letters, digits and . _ ~ - only (see the refusals).
    "clickhouse_password": "Click.House_Pass~word-1",
    "redis_password": "redis '\" $REDIS #1 {{ x }} \\' end\\",
    "minio_password": "minio %41 @:/ ${X} 'q' \"q\"",
    "admin_password": "admin $HOME #1 'x' {{ y }}",
}
# The environment docker compose runs in: a value left open to interpolation would come back changed.
CLI_ENV = {"HOME": "/root", "X": "from-the-cli", "y": "from-the-cli", "REDIS": "from-the-cli", "x": "from-the-cli"}


class Unsafe(str):
    """A string that goes into the inventory as !unsafe."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, lambda d, v: d.represent_scalar("!unsafe", str(v), style='"'))


def unsafe(value):
    """Tag every string in value (nested) as !unsafe (but the empty one, which !unsafe turns into null)."""
    if isinstance(value, str):
        return Unsafe(value) if value else value
    if isinstance(value, dict):
        return {k: unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsafe(v) for v in value]
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_playbook(playbook: Path, inventory: dict, workdir: Path, timeout: int = 600, check: bool = False) -> dict:
    """Run playbook over the inventory (a dict, written as YAML); return the json callback's report.

    check=True runs it with --check, so the roles' tasks see ansible_check_mode (plays that must
    write files say check_mode: false).
    """
    inv = workdir / "inventory.yml"
    inv.write_text(yaml.dump(inventory, Dumper=_Dumper, allow_unicode=True, sort_keys=False))
    env = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json",
           "PATH": f"{TOOLS}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(workdir),
           "LANG": "C.UTF-8"}
    args = [str(TOOLS / "ansible-playbook"), "-i", str(inv), str(playbook), "--forks", "25"]
    args += ["--check"] if check else []
    proc = subprocess.run(args, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)
    if "{" not in proc.stdout:
        raise AssertionError(f"ansible-playbook printed no report:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def failures(report: dict, host: str) -> list[tuple[str, dict]]:
    """(task name, result) of every failed task of host, in order."""
    return [(task["task"]["name"], res) for play in report["plays"] for task in play["tasks"]
            for name, res in task["hosts"].items() if name == host and res.get("failed")]


def flat(message: str) -> str:
    """A message with its line breaks and runs of spaces (from YAML folding) made single spaces."""
    return " ".join(str(message).split())
