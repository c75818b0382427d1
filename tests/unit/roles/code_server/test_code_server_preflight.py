"""Preflight refusals of the code_server role: settings that would expose code-server (a shell as
its user) or install something unpinned stop the run before anything changes, with a message naming
the variable and its fix; the settings just inside each limit pass.

One ansible-playbook run (tests/unit/roles/code_server/preflight_playbook.yml, connection local) runs
the role's tasks/preflight_settings.yml, with the role's defaults and vars, for made-up hosts: one
per case below, its inventory variables being the case's settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
SHORT_PASSWORD = "elevenChars"  # noqa: S105 - test value, 11 characters
FIX_BIND = "code_server_allow_remote_bind: true"
FIX_AUTH = "Set code_server_auth: password"

# case -> (settings, words the message must hold; None: the settings pass)
CASES = {
    # Loopback binds pass as they are.
    "defaults": ({}, None),
    "loopback_other": ({"code_server_bind_address": "127.0.0.2"}, None),
    "loopback_v6": ({"code_server_bind_address": "::1"}, None),
    "loopback_v6_brackets": ({"code_server_bind_address": "[::1]"}, None),
    "loopback_name": ({"code_server_bind_address": "localhost"}, None),
    "auth_none_on_loopback": ({"code_server_auth": "none"}, None),
    # Any other address needs the opt-in, and then passes with a password.
    "remote_wildcard": ({"code_server_bind_address": "0.0.0.0"},
                        ["[code_server_bind_address] '0.0.0.0' is not a loopback address", FIX_BIND,
                         "ssh -L 8080:127.0.0.1:8080"]),
    "remote_address": ({"code_server_bind_address": "10.1.2.3"},
                       ["[code_server_bind_address] '10.1.2.3'", FIX_BIND]),
    "remote_v6_wildcard": ({"code_server_bind_address": "::"}, ["[code_server_bind_address] '::'", FIX_BIND]),
    "remote_lookalike": ({"code_server_bind_address": "127.0.0.1.example.com"},
                         ["[code_server_bind_address] '127.0.0.1.example.com'", FIX_BIND]),
    "remote_opted_in": ({"code_server_bind_address": "0.0.0.0", "code_server_allow_remote_bind": True}, None),
    # auth none on a non-loopback address is refused, opt-in or not.
    "remote_auth_none_opted_in": (
        {"code_server_bind_address": "0.0.0.0", "code_server_allow_remote_bind": True, "code_server_auth": "none"},
        ["[code_server_auth] 'none' with code_server_bind_address '0.0.0.0'",
         "refused even with code_server_allow_remote_bind", FIX_AUTH]),
    "remote_auth_none": (
        {"code_server_bind_address": "10.1.2.3", "code_server_auth": "none"},
        ["[code_server_auth] 'none'", FIX_AUTH, "[code_server_bind_address] '10.1.2.3'", FIX_BIND]),
    # Ports.
    "port_0": ({"code_server_port": 0}, ["[code_server_port] must be a TCP port, 1-65535 (got '0')"]),
    "port_65536": ({"code_server_port": 65536}, ["[code_server_port] must be a TCP port, 1-65535 (got '65536')"]),
    "port_negative": ({"code_server_port": -1}, ["[code_server_port]", "(got '-1')"]),
    "port_text": ({"code_server_port": "http"}, ["[code_server_port]", "(got 'http')"]),
    "port_1": ({"code_server_port": 1}, None),
    "port_65535": ({"code_server_port": 65535}, None),
    # Passwords: a supplied one needs 12 characters; empty means generated.
    "password_short": ({"code_server_password": SHORT_PASSWORD},
                       ["[code_server_password] is shorter than 12 characters", "code_server_hashed_password",
                        "leave code_server_password empty"]),
    "password_12": ({"code_server_password": "twelve-chars"}, None),
    "password_hashed": ({"code_server_hashed_password": "$argon2id$v=19$m=65536,t=3,p=4$abc$def"}, None),
    # Versions: pinned X.Y.Z only.
    "version_latest": ({"code_server_version": "latest"},
                       ["[code_server_version] must be a pinned release X.Y.Z (got 'latest')", "4.100.3"]),
    "version_empty": ({"code_server_version": ""}, ["[code_server_version] must be a pinned release X.Y.Z (got '')"]),
    "version_partial": ({"code_server_version": "4.100"}, ["[code_server_version]", "(got '4.100')"]),
    # Install sources (kept from before).
    "deb_without_checksum": ({"code_server_install_method": "deb"}, ["[code_server_deb_checksum]", "sha256:<hex>",
                                                                     "code_server_install_method at auto"]),
    "rpm_without_checksum": ({"code_server_install_method": "rpm"}, ["[code_server_rpm_checksum]", "sha256:<hex>",
                                                                     "upstream publishes none for its .rpm"]),
    "rpm_with_checksum": ({"code_server_install_method": "rpm", "code_server_rpm_checksum": "sha256:" + "ab" * 32},
                          None),
    "standalone_checksum_malformed": ({"code_server_standalone_checksum": "5c4cee53"},
                                      ["[code_server_standalone_checksum] must be 'sha256:<hex>'", "(got '5c4cee53')"]),
    "standalone_checksum_given": ({"code_server_standalone_checksum": "sha512:" + "cd" * 64}, None),
    "local_without_file": ({"code_server_install_method": "local", "code_server_deb_src": "/nonexistent.deb"},
                           ["[code_server_deb_src]", "/nonexistent.deb"]),
    # Several problems: all of them in one message.
    "everything_wrong": (
        {"code_server_version": "latest", "code_server_port": 0, "code_server_bind_address": "0.0.0.0",
         "code_server_auth": "none", "code_server_password": SHORT_PASSWORD},
        ["[code_server_version]", "[code_server_port]", "[code_server_auth]", "[code_server_bind_address]",
         "[code_server_password]"]),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """host -> ("ok", "") or ("error", message), and the whole output of the run."""
    top = tmp_path_factory.mktemp("preflight")
    out = top / "out"
    out.mkdir()
    common = {"ansible_python_interpreter": sys.executable, "out_dir": str(out)}
    inventory = top / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {name: {**common, **settings}
                                                       for name, (settings, _) in CASES.items()}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
         str(HERE / "preflight_playbook.yml")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    results = {}
    for name in CASES:
        if (out / f"{name}.ok").exists():
            results[name] = ("ok", "")
        else:
            results[name] = ("error", " ".join((out / f"{name}.error").read_text().split()))
    return results, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", [c for c, (_, words) in CASES.items() if words is None])
def test_settings_pass(outcomes, case):
    results, _ = outcomes
    assert results[case] == ("ok", ""), results[case][1]


@pytest.mark.parametrize("case", [c for c, (_, words) in CASES.items() if words is not None])
def test_settings_refused_naming_variable_and_fix(outcomes, case):
    results, _ = outcomes
    status, message = results[case]
    assert status == "error", f"{case} passed the checks"
    assert message.startswith("code_server settings refused on")
    assert "(nothing was changed)" in message
    for words in CASES[case][1]:
        assert words in message


def test_only_the_wrong_settings_are_named(outcomes):
    results, _ = outcomes
    message = results["password_short"][1]
    for other in ("[code_server_version]", "[code_server_port]", "[code_server_auth]", "[code_server_bind_address]"):
        assert other not in message


def test_short_password_is_never_printed(outcomes):
    results, output = outcomes
    assert SHORT_PASSWORD not in results["password_short"][1]
    assert SHORT_PASSWORD not in output


def test_settings_are_checked_first():
    """main.yml checks the settings before anything else, and preflight before installing."""
    import yaml

    tasks = ROOT / "roles" / "code_server" / "tasks"
    main = yaml.safe_load((tasks / "main.yml").read_text())
    assert main[0]["ansible.builtin.include_tasks"] == "preflight.yml"
    preflight = yaml.safe_load((tasks / "preflight.yml").read_text())
    assert preflight[0]["ansible.builtin.include_tasks"] == "preflight_settings.yml"
