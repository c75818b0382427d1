"""What a user checks after the code_server role: the service, the login, extensions, Cline."""

from __future__ import annotations

import html
import json
import re

USER = "admin"
HOME = "/home/admin"
PASSWORD_FILE = f"{HOME}/.config/code-server/generated-password"
CONFIG = f"{HOME}/.config/code-server/config.yaml"
LOGIN = "http://127.0.0.1:8080/login"
KEY = "sk-llmops-test-0123456789abcdef"  # written by prepare.yml where the litellm role keeps it


def test_service_runs_as_the_user(host):
    svc = host.service(f"code-server@{USER}")
    assert svc.is_enabled
    assert svc.is_running
    users = {p.user for p in host.process.filter(comm="node") if "code-server" in p.args}
    assert users == {USER}


def test_listens_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:8080").is_listening
    on_8080 = [s for s in host.socket.get_listening_sockets() if s.endswith(":8080")]
    assert on_8080 == ["tcp://127.0.0.1:8080"]


def test_config_and_password_are_private(host):
    with host.sudo():
        for path in (f"{HOME}/.config/code-server/config.yaml", PASSWORD_FILE):
            f = host.file(path)
            assert (f.user, f.mode) == (USER, 0o600), path
        config = host.file(f"{HOME}/.config/code-server/config.yaml").content_string
    assert 'bind-addr: "127.0.0.1:8080"' in config
    assert "auth: password" in config


def _post_login(host, password_source):
    """POST /login on the box with the password read from stdin (never on a command line)."""
    cmd = f"{password_source} | curl -s -o /tmp/llmops-test-login.html -D - --data-urlencode password@- {LOGIN}"
    headers = host.check_output(cmd)
    body = host.file("/tmp/llmops-test-login.html").content_string
    return headers, body


def test_login_page_answers(host):
    out = host.check_output("curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1:8080/")
    code, location = out.split(" ", 1)
    assert code == "302"
    assert location.endswith("/login")
    assert "password" in host.check_output(f"curl -s {LOGIN}").lower()


def test_generated_password_logs_in(host):
    headers, _ = _post_login(host, f"sudo tr -d '\\n' < {PASSWORD_FILE}")
    assert headers.startswith("HTTP/1.1 302")
    assert "set-cookie: code-server-session=" in headers.lower()


def test_wrong_password_is_refused(host):
    headers, body = _post_login(host, "printf not-the-password")
    assert headers.startswith("HTTP/1.1 200")
    assert "code-server-session=" not in headers
    assert "Incorrect password" in body


def test_vsix_extension_is_installed(host):
    out = host.check_output(f"sudo -u {USER} -H code-server --list-extensions")
    assert "llmops-test.hello" in out.split()


def test_cline_points_at_the_proxy(host):
    path = f"{HOME}/.cline/data/settings/providers.json"
    with host.sudo():
        f = host.file(path)
        assert (f.user, f.mode) == (USER, 0o600)
        doc = json.loads(f.content_string)
    assert doc["lastUsedProvider"] == "litellm"
    settings = doc["providers"]["litellm"]["settings"]
    assert settings["baseUrl"] == "http://localhost:4000"
    assert settings["apiKey"] == KEY
    assert settings["provider"] == "litellm"


def test_cline_legacy_files(host):
    with host.sudo():
        state = json.loads(host.file(f"{HOME}/.cline/data/globalState.json").content_string)
        secrets = host.file(f"{HOME}/.cline/data/secrets.json")
        assert (secrets.user, secrets.mode) == (USER, 0o600)
        assert json.loads(secrets.content_string)["liteLlmApiKey"] == KEY
    assert state["liteLlmBaseUrl"] == "http://localhost:4000"
    assert state["actModeApiProvider"] == "litellm"


def _workbench_settings(host) -> dict:
    """Log in and read the settings the running code-server put into its workbench page."""
    jar = "/tmp/llmops-test-cookies"
    password = f"sudo tr -d '\\n' < {PASSWORD_FILE}"
    host.check_output(f"{password} | curl -s -o /dev/null -c {jar} --data-urlencode password@- {LOGIN}")
    page = host.check_output(f"curl -s -b {jar} http://127.0.0.1:8080/")
    found = re.search(r'id="vscode-workbench-web-configuration" data-settings="([^"]*)"', page)
    assert found, page[:500]
    return json.loads(html.unescape(found.group(1)))


def test_telemetry_and_update_check_are_off(host):
    """code_server_telemetry_enabled false (the default), checked on the running code-server."""
    with host.sudo():
        config = host.file(CONFIG)
        assert "disable-telemetry: true" in config.content_string
        assert "disable-update-check: true" in config.content_string
        written = config.mtime.timestamp()
        state = json.loads(host.file(f"{HOME}/.cline/data/globalState.json").content_string)
    # The running process started after config.yaml was last written, so it runs with these options.
    started = host.check_output(f"systemctl show code-server@{USER} -P ExecMainStartTimestamp --timestamp=unix")
    assert float(started.lstrip("@")) >= int(written)
    product = _workbench_settings(host)["productConfiguration"]
    assert product["codeServerVersion"] == "4.100.3"
    # disable-update-check: the page gets no update endpoint (code-server 4.100.3 webClientServer).
    assert "updateEndpoint" not in product
    # disable-telemetry: the VS Code server that page load started has no telemetry service, so no
    # remoteTelemetry.log next to its remoteagent.log (with telemetry on, both are written).
    logs = f"{HOME}/.local/share/code-server/logs"
    sessions = host.check_output(f"ls -1 {logs} | sort").split()
    latest = [s for s in sessions if host.file(f"{logs}/{s}/remoteagent.log").exists][-1]
    assert not host.file(f"{logs}/{latest}/remoteTelemetry.log").exists
    # Cline's own telemetry (tests/contracts/cline.yml, facts.telemetry).
    assert state["telemetrySetting"] == "disabled"
