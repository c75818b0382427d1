"""Render tests of the code_server role for what the local target does not run: the standalone,
.deb, .rpm and local install paths (x86_64 and arm64), hashed passwords and auth none, and a wildcard
bind. test_code_server_os_defaults.py covers the install method each OS gets.

Each case runs tests/unit/roles/code_server/render_playbook.yml on the controller with the
role's defaults and vars overridden by the case's settings. Expected values are written out
here on purpose, so a typo in the role's vars fails a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
RELEASES = "https://github.com/coder/code-server/releases/download"
# Stands in for the password the role generates on the box (a set_fact there).
PASSWORD = "s3cret-Pass"  # noqa: S105 - test value
HASH = "$argon2id$v=19$m=65536,t=3,p=4$abc$def"
# The box: Debian 13 on x86_64, as setup reports it.
DEBIAN13 = {"architecture": "x86_64", "distribution": "Debian", "distribution_version": "13.1",
            "distribution_major_version": "13", "os_family": "Debian"}
SUM = "sha256:" + "ab" * 32


def render(tmp_path: Path, **settings) -> tuple[dict, str, dict]:
    extra = {
        "out_dir": str(tmp_path),
        "ansible_python_interpreter": sys.executable,
        "ansible_facts": DEBIAN13,
        "_code_server_password": PASSWORD,
        **settings,
    }
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="false")
    bindir = Path(sys.executable).parent
    result = subprocess.run(
        [
            str(bindir / "ansible-playbook"),
            "-i",
            "localhost,",
            str(HERE / "render_playbook.yml"),
            "-e",
            json.dumps(extra),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    config_text = (tmp_path / "config.yaml").read_text()
    unit = (tmp_path / "code-server@.service").read_text()
    variables = json.loads((tmp_path / "vars.json").read_text())
    return yaml.safe_load(config_text), unit, variables | {"config_text": config_text}


def test_npm_with_a_generated_password_on_loopback(tmp_path):
    config, unit, v = render(tmp_path, code_server_install_method="npm")
    assert config == {
        "bind-addr": "127.0.0.1:8080",
        "auth": "password",
        "password": PASSWORD,
        "cert": False,
        # code_server_telemetry_enabled: false (the default): option names of code-server 4.100.3's --help
        "disable-telemetry": True,
        "disable-update-check": True,
    }
    assert v["config_text"].startswith("#")  # ansible_managed header
    assert v["method"] == "npm"
    assert v["install"]["url"] == ""
    assert v["bin"] == "/usr/local/bin/code-server"
    assert "ExecStart=/usr/local/bin/code-server\n" in unit
    assert "User=%i\n" in unit
    assert v["service"] == "code-server@admin"
    assert v["ripgrep_cache"] == "/var/tmp/code-server-npm/vscode-ripgrep-cache-1.15.11"
    assert v["ripgrep_asset"] == "ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
    assert v["probe_url"] == "http://127.0.0.1:8080"


def test_hashed_password_wins(tmp_path):
    config, _, _ = render(tmp_path, code_server_hashed_password=HASH)
    assert config["hashed-password"] == HASH
    assert "password" not in config


def test_auth_none_has_no_password(tmp_path):
    config, _, _ = render(tmp_path, code_server_auth="none", code_server_port=9000)
    assert config["auth"] == "none"
    assert "password" not in config and "hashed-password" not in config


def test_telemetry_and_update_check_left_on_when_asked(tmp_path):
    config, _, _ = render(tmp_path, code_server_telemetry_enabled=True)
    assert config == {"bind-addr": "127.0.0.1:8080", "auth": "password", "password": PASSWORD, "cert": False}


def test_config_yaml_options_exist_in_code_server():
    """Every key config.yaml may get is an option of code-server 4.100.3 (`code-server --help` on the
    Molecule target; code-server also refuses unknown keys when the role validates the file)."""
    options = {"bind-addr", "auth", "password", "hashed-password", "cert", "disable-telemetry",
               "disable-update-check"}
    template = (ROOT / "roles" / "code_server" / "templates" / "config.yaml.j2").read_text()
    keys = {line.split(":", 1)[0] for line in template.splitlines() if line and line[0].isalpha()}
    assert keys <= options, keys - options


def test_wildcard_bind_is_probed_on_loopback(tmp_path):
    _, _, v = render(tmp_path, code_server_bind_address="0.0.0.0", code_server_port=9000)
    assert v["probe_url"] == "http://127.0.0.1:9000"
    assert v["bind_is_loopback"] is False


def test_paths_checked_in_the_home_cover_every_file_the_role_writes(tmp_path):
    _, _, v = render(
        tmp_path,
        ansible_facts=DEBIAN13,
        _code_server_account={"uid": 1000, "gid": 1000, "home": "/home/admin", "shell": "/bin/bash"},
        _code_server_cline_key="sk-test",
        code_server_extensions=["/srv/ext/my.ext-1.0.vsix", "publisher.name"],
    )
    home = "/home/admin"
    for path in v["cline_paths"] + [
        f"{home}/.config/code-server/config.yaml",
        f"{home}/.config/code-server/generated-password",
        f"{home}/.local/share/code-server/vsix/my.ext-1.0.vsix",
        f"{home}/.local/share/code-server/extensions",
        f"{home}/.cline/data/settings",
    ]:
        assert path in v["user_paths"], path
    # And every parent of those up to the home: a link there redirects everything below it.
    for path in v["user_paths"]:
        parent = path.rsplit("/", 1)[0]
        assert parent == home or parent in v["user_paths"], parent


def test_default_on_debian_13_is_the_standalone_release(tmp_path):
    _, unit, v = render(tmp_path)
    assert v["method"] == "standalone"
    assert v["install"]["url"] == f"{RELEASES}/v4.100.3/code-server-4.100.3-linux-amd64.tar.gz"
    assert v["download_path"] == "/var/cache/code-server/code-server-4.100.3-linux-amd64.tar.gz"
    assert v["standalone_dir"] == "/usr/local/lib/code-server-4.100.3"
    assert v["bin"] == "/usr/local/bin/code-server"
    assert "ExecStart=/usr/local/bin/code-server\n" in unit


def test_deb_from_the_upstream_release(tmp_path):
    _, _, v = render(tmp_path, code_server_install_method="deb", code_server_deb_checksum=SUM)
    assert v["install"]["url"] == f"{RELEASES}/v4.100.3/code-server_4.100.3_amd64.deb"
    assert v["install"]["checksum"] == SUM
    assert v["download_path"] == "/var/cache/code-server/code-server_4.100.3_amd64.deb"
    assert v["bin"] == "/usr/bin/code-server"


def test_deb_on_arm64(tmp_path):
    _, _, v = render(
        tmp_path,
        code_server_install_method="deb",
        code_server_deb_checksum=SUM,
        code_server_version="4.99.0",
        ansible_facts={**DEBIAN13, "architecture": "aarch64"},
    )
    assert v["install"]["url"] == f"{RELEASES}/v4.99.0/code-server_4.99.0_arm64.deb"
    assert v["ripgrep_asset"] == "ripgrep-v13.0.0-10-aarch64-unknown-linux-musl.tar.gz"


def test_rpm_from_the_upstream_release(tmp_path):
    _, unit, v = render(
        tmp_path,
        code_server_install_method="rpm",
        code_server_rpm_checksum=SUM,
        ansible_facts={"architecture": "aarch64", "distribution": "Amazon", "distribution_version": "2023",
                       "distribution_major_version": "2023", "os_family": "RedHat"},
    )
    assert v["install"]["url"] == f"{RELEASES}/v4.100.3/code-server-4.100.3-arm64.rpm"
    assert v["download_path"] == "/var/cache/code-server/code-server-4.100.3-arm64.rpm"
    assert v["bin"] == "/usr/bin/code-server"
    assert "ExecStart=/usr/bin/code-server\n" in unit


def test_local_deb_keeps_its_file_name(tmp_path):
    _, _, v = render(
        tmp_path, code_server_install_method="local", code_server_deb_src="/srv/artifacts/code-server_4.100.3_amd64.deb"
    )
    assert v["download_path"] == "/var/cache/code-server/code-server_4.100.3_amd64.deb"
    assert v["bin"] == "/usr/bin/code-server"


@pytest.mark.parametrize("name", ["config.yaml.j2", "code-server@.service.j2"])
def test_templates_start_with_ansible_managed(name):
    first = (ROOT / "roles" / "code_server" / "templates" / name).read_text().splitlines()[0]
    assert first == "{{ ansible_managed | comment }}"
