"""The code-server user stays unprivileged: the role works in that user's home only with the user's
rights, so links the user plants there never make root read, create or chown anything for them.

- Links to root's files, planted by the user (generated-password -> a root-only file, Cline's
  settings folder -> a root-owned folder): the rerun refuses in preflight, naming them, before
  changing anything. Refusing is right rather than carrying on around them: the role cannot write
  its files there with the user's rights (it would stop half-way, or silently leave code-server or
  Cline unconfigured), and the operator should see a link that points at root's files.
- A link preflight lets through (to a folder that does not exist yet, which the user could create
  if allowed): the role runs into it as the user and gets "Permission denied" instead of creating a
  user-owned folder in /etc as root would.
- Another login user than the one Ansible connects as: Ansible must hand its temp files to that
  user (setfacl), so the role installs acl and the whole role works for that user.
"""

from __future__ import annotations

import pytest
from test_reruns import assert_fails_with, run_role

USER = "admin"
HOME = f"/home/{USER}"
PASSWORD_FILE = f"{HOME}/.config/code-server/generated-password"
SETTINGS_DIR = f"{HOME}/.cline/data/settings"
ROOT_FILE = "/etc/llmops-test-root-only"
ROOT_DIR = "/etc/llmops-test-dir"
ABSENT_DIR = "/etc/llmops-test-absent"
MARKER = "llmops-test-root-only-7f3a9c1e"  # the root-only file's content
SAVED = ".llmops-test-saved"
OTHER = "llmops-dev"
OTHER_PORT = 18081


def as_user(host, command: str) -> str:
    """Run a shell command as the code-server user (the SSH login, not root)."""
    assert host.check_output("id -un") == USER
    return host.check_output(command)


def main_pid(host) -> str:
    return host.check_output(f"systemctl show code-server@{USER} -P MainPID")


@pytest.fixture
def root_owned(host):
    """A root-only file holding MARKER and an empty root-owned folder, made by root."""
    host.check_output(f"sudo sh -c 'umask 077; printf %s {MARKER} > {ROOT_FILE}'")
    host.check_output(f"sudo install -d -o root -g root -m 0755 {ROOT_DIR}")
    yield
    host.run(f"sudo rm -f {ROOT_FILE}")
    host.run(f"sudo rmdir {ROOT_DIR}")


@pytest.fixture
def planted_links(host, root_owned):
    """The user moves their own generated-password and settings folder aside and links root's in."""
    as_user(host, f"mv {PASSWORD_FILE} {PASSWORD_FILE}{SAVED} && ln -s {ROOT_FILE} {PASSWORD_FILE}")
    as_user(host, f"mv {SETTINGS_DIR} {SETTINGS_DIR}{SAVED} && ln -s {ROOT_DIR} {SETTINGS_DIR}")
    yield
    for path in (PASSWORD_FILE, SETTINGS_DIR):
        as_user(host, f"rm -f {path} && mv {path}{SAVED} {path}")


def test_links_to_roots_files_are_refused_before_any_change(host, planted_links):
    pid = main_pid(host)
    result = run_role({})
    assert_fails_with(
        result,
        f"{PASSWORD_FILE} -> {ROOT_FILE} (owned by root)",
        f"{SETTINGS_DIR} -> {ROOT_DIR} (owned by root)",
        "does not own",
        "before changing anything",
        "Remove those links",
    )
    # The root-only content reached no file the user owns, nor the run's output.
    leaked = host.run(
        f"sudo find / \\( -path /proc -o -path /sys \\) -prune -o -user {USER} -type f -print0"
        f" | sudo xargs -0 grep -l -s -F {MARKER}"
    )
    assert leaked.stdout.strip() == ""
    assert MARKER not in result.stdout + result.stderr
    with host.sudo():
        folder = host.file(ROOT_DIR)
        assert (folder.user, folder.group, folder.mode) == ("root", "root", 0o755)
        assert folder.listdir() == []
        secret = host.file(ROOT_FILE)
        assert (secret.user, secret.mode, secret.content_string) == ("root", 0o600, MARKER)
    # The links are left as planted, and code-server was not restarted.
    assert host.file(PASSWORD_FILE).linked_to == ROOT_FILE
    assert host.file(SETTINGS_DIR).linked_to == ROOT_DIR
    assert main_pid(host) == pid


@pytest.fixture
def link_to_absent_folder(host):
    as_user(host, f"mv {SETTINGS_DIR} {SETTINGS_DIR}{SAVED} && ln -s {ABSENT_DIR} {SETTINGS_DIR}")
    yield
    as_user(host, f"rm -f {SETTINGS_DIR} && mv {SETTINGS_DIR}{SAVED} {SETTINGS_DIR}")
    host.run(f"sudo rm -rf {ABSENT_DIR}")


def test_the_role_writes_in_the_home_with_the_users_rights(host, link_to_absent_folder):
    # Nothing there is root's, so preflight lets it through; as root, the role would create
    # /etc/llmops-test-absent owned by the user and put Cline's key file in it.
    result = run_role({})
    assert_fails_with(result, f"There was an issue creating {ABSENT_DIR}", "Permission denied")
    assert not host.file(ABSENT_DIR).exists
    assert host.file(SETTINGS_DIR).linked_to == ABSENT_DIR


@pytest.fixture
def other_user(host):
    host.check_output(f"getent passwd {OTHER} >/dev/null || sudo useradd -m -s /bin/bash {OTHER}")
    yield OTHER
    host.run(f"sudo systemctl disable --now code-server@{OTHER}")


def test_another_login_user_gets_the_whole_role(host, other_user):
    """Ansible logs in as admin and becomes llmops-dev: an unprivileged user other than the login,
    which needs setfacl for the temp files of copy/template (the role installs acl)."""
    result = run_role({"code_server_user": other_user, "code_server_port": OTHER_PORT})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert host.package("acl").is_installed
    assert host.service(f"code-server@{other_user}").is_running
    assert host.socket(f"tcp://127.0.0.1:{OTHER_PORT}").is_listening
    home = f"/home/{other_user}"
    with host.sudo():
        for path in (
            f"{home}/.config/code-server/config.yaml",
            f"{home}/.config/code-server/generated-password",
            f"{home}/.cline/data/settings/providers.json",
            f"{home}/.cline/data/globalState.json",
            f"{home}/.cline/data/secrets.json",
        ):
            f = host.file(path)
            assert (f.user, f.mode) == (other_user, 0o600), path
        assert host.file(f"{home}/.local/share/code-server/vsix/llmops-test.hello.vsix").user == other_user
    out = host.check_output(f"sudo -u {other_user} -H code-server --list-extensions")
    assert "llmops-test.hello" in out.split()
