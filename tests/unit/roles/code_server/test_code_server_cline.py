"""Cline's telemetry choice as the code_server role writes it (telemetrySetting in
~/.cline/data/globalState.json, the key every Cline 4.0.x/4.1.x reads: tests/contracts/cline.yml,
facts.telemetry). With code_server_telemetry_enabled false (the default) it is "disabled" after
every run, even when the user turned it on, and the user's LiteLLM settings stay; with true the role
leaves it alone. It is written even with the legacy LiteLLM files turned off.

One ansible-playbook run (tests/unit/roles/code_server/cline_playbook.yml, connection local) runs
the role's tasks/cline.yml for made-up hosts, each with its home in a tmp folder; a second run over
the same homes must leave every file as it is.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
KEY = "sk-test-cline-0123456789"
USERS_STATE = {"liteLlmBaseUrl": "http://users-own-proxy:4000", "actModeApiProvider": "anthropic",
               "telemetrySetting": "enabled", "mode": "plan"}

# case -> (settings, globalState.json before the run or None)
CASES = {
    "fresh": ({}, None),
    "user_opted_in": ({}, USERS_STATE),
    "telemetry_left_on": ({"code_server_telemetry_enabled": True}, USERS_STATE),
    "telemetry_left_on_fresh": ({"code_server_telemetry_enabled": True}, None),
    "legacy_off": ({"code_server_cline_legacy_files": False}, None),
    "legacy_off_telemetry_on": ({"code_server_cline_legacy_files": False, "code_server_telemetry_enabled": True},
                                None),
}


def run(inventory: Path) -> str:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(HERE / "cline_playbook.yml")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc.stdout


def files(home: Path) -> dict[str, str]:
    data = home / ".cline" / "data"
    return {str(p.relative_to(data)): p.read_text() for p in sorted(data.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(files after the first run, files after the second run, second run's output) per case."""
    top = tmp_path_factory.mktemp("cline")
    hosts = {}
    for name, (settings, state) in CASES.items():
        home = top / name
        if state is not None:
            (home / ".cline" / "data").mkdir(parents=True)
            (home / ".cline" / "data" / "globalState.json").write_text(json.dumps(state))
        hosts[name] = {"ansible_python_interpreter": sys.executable, "home_dir": str(home),
                       "code_server_user": getpass.getuser(), "user_uid": str(os.getuid()),
                       "user_gid": str(os.getgid()), "_code_server_cline_key": KEY, **settings}
    inventory = top / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    run(inventory)
    first = {name: files(top / name) for name in CASES}
    second_out = run(inventory)
    second = {name: files(top / name) for name in CASES}
    return first, second, second_out


def state(runs, case) -> dict:
    return json.loads(runs[0][case]["globalState.json"])


def test_telemetry_off_on_a_fresh_box(runs):
    doc = state(runs, "fresh")
    assert doc["telemetrySetting"] == "disabled"
    assert doc["liteLlmBaseUrl"] == "http://localhost:4000"  # the preset is written as before
    assert doc["actModeApiProvider"] == "litellm"


def test_users_opt_in_is_turned_off_and_their_settings_stay(runs):
    assert state(runs, "user_opted_in") == {**USERS_STATE, "telemetrySetting": "disabled"}


def test_telemetry_left_to_the_user_when_enabled(runs):
    assert state(runs, "telemetry_left_on") == USERS_STATE
    assert "telemetrySetting" not in state(runs, "telemetry_left_on_fresh")


def test_telemetry_written_without_the_legacy_preset(runs):
    first = runs[0]["legacy_off"]
    assert json.loads(first["globalState.json"]) == {"telemetrySetting": "disabled"}
    assert "secrets.json" not in first
    assert "globalState.json" not in runs[0]["legacy_off_telemetry_on"]


def test_telemetry_is_only_in_global_state(runs):
    providers = runs[0]["fresh"]["settings/providers.json"]
    assert "telemetry" not in providers
    assert KEY in providers


def test_second_run_changes_nothing(runs):
    first, second, output = runs
    assert second == first
    assert "changed=0" in output
    for case in CASES:
        assert f"{case} " in output and "failed=0" in output


def test_key_and_value_are_the_ones_cline_reads(runs):
    """What the role writes is what tests/contracts/cline.yml says Cline reads for its telemetry choice."""
    fact = yaml.safe_load((ROOT / "tests" / "contracts" / "cline.yml").read_text())["facts"]["telemetry"]["value"]
    assert fact["key"]["file"] == "globalState.json"
    assert "disabled" in fact["key"]["values"]
    assert state(runs, "fresh")[fact["key"]["key"]] == "disabled"
