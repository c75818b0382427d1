"""Reruns of the role with other settings: bad input stops with a message naming the problem,
and the Cline preset keeps what the user chose unless told to overwrite."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

PLAYBOOK = Path(__file__).resolve().parents[1] / "bad_input.yml"
PROVIDERS = "/home/admin/.cline/data/settings/providers.json"


def run_role(extra_vars: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(PLAYBOOK), "-e", json.dumps(extra_vars)],
        capture_output=True,
        text=True,
        timeout=600,
        # Plain, unwrapped text: Molecule forces colour and a narrow width, which split messages.
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "COLUMNS": "1000"},
        check=False,
    )


def assert_fails_with(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0, result.stdout[-2000:]
    # ansible-core 2.19 prints the failure message on stderr, line-wrapped.
    text = " ".join((result.stdout + result.stderr).split())
    for word in words:
        assert word in text, result.stderr[-3000:]


def test_unknown_user_is_named(host):
    assert_fails_with(
        run_role({"code_server_user": "llmops-nobody"}), "code_server_user 'llmops-nobody' does not exist"
    )


@pytest.fixture
def port_hog(host):
    unit = "llmops-test-porthog"
    host.check_output(f"sudo systemd-run --unit={unit} python3 -m http.server 18099 --bind 127.0.0.1")
    host.run("for i in $(seq 20); do ss -Hltn 'sport = :18099' | grep -q . && break; sleep 0.5; done")
    yield 18099
    host.run(f"sudo systemctl stop {unit}")


def test_taken_port_is_named(host, port_hog):
    assert_fails_with(run_role({"code_server_port": port_hog}), f"Port {port_hog}", "python3", "code_server_port")
    # Nothing changed: the running code-server still listens where it did.
    assert host.socket("tcp://127.0.0.1:8080").is_listening


def test_failing_extension_is_named(host):
    assert_fails_with(
        run_role({"code_server_extensions": ["llmops-test.no-such-extension"]}),
        "llmops-test.no-such-extension",
        "failed",
    )


def test_missing_proxy_key_is_explained(host):
    assert_fails_with(
        run_role({"code_server_cline_api_key_file": "/etc/litellm/llmops-test-absent"}),
        "code_server_cline_api_key",
        "/etc/litellm/llmops-test-absent",
    )


def _providers(host) -> dict:
    with host.sudo():
        return json.loads(host.file(PROVIDERS).content_string)


def test_user_choices_kept_unless_overwrite(host):
    doc = _providers(host)
    doc["lastUsedProvider"] = "anthropic"
    doc["providers"]["anthropic"] = {"settings": {"provider": "anthropic", "model": "mine"}}
    doc["providers"]["litellm"]["settings"]["model"] = "users-own-model"
    edited = json.dumps(doc)
    host.check_output(f"printf '%s' '{edited}' | sudo -u admin tee {PROVIDERS} >/dev/null")

    kept = run_role({})
    assert kept.returncode == 0, kept.stdout[-3000:]
    assert _providers(host) == doc

    forced = run_role({"code_server_cline_overwrite": True})
    assert forced.returncode == 0, forced.stdout[-3000:]
    now = _providers(host)
    assert now["lastUsedProvider"] == "litellm"
    assert now["providers"]["litellm"]["settings"]["model"] == "claude-sonnet"
    assert now["providers"]["anthropic"] == doc["providers"]["anthropic"]
