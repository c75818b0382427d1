"""What an operator checks after deploying Langfuse on a box (run by Molecule's verify step)."""

import json
import os
import subprocess
import time

# Box A only: box B is the restore target of test_backup_restore.py.
testinfra_hosts = ["llmops-langfuse"]

SERVICES = {"langfuse-web", "langfuse-worker", "postgres", "clickhouse", "redis", "minio"}
MARKER_TRACE = "0123456789abcdef0123456789abcdef"


def containers(host):
    out = host.check_output(
        "docker ps -a --filter label=com.docker.compose.project=langfuse "
        "--format '{{.Label \"com.docker.compose.service\"}}|{{.Status}}'"
    )
    return dict(line.split("|", 1) for line in out.splitlines() if line)


def wait_healthy(host, timeout=240):
    deadline = time.time() + timeout
    while True:
        state = containers(host)
        if set(state) == SERVICES and all("(healthy)" in s for s in state.values()):
            return state
        if time.time() > deadline:
            return state
        time.sleep(3)


def api_key(host):
    return json.loads(host.check_output("cat /etc/langfuse/api-key.json"))


def curl(host, path, auth=None):
    auth_opt = f"-u '{auth[0]}:{auth[1]}'" if auth else ""
    out = host.check_output(f"curl -s -o /tmp/body -w '%{{http_code}}' {auth_opt} http://127.0.0.1:3000{path}")
    return int(out), host.check_output("cat /tmp/body")


def test_every_service_is_healthy(host):
    state = wait_healthy(host)
    assert set(state) == SERVICES
    assert all("(healthy)" in s for s in state.values()), state


def test_only_loopback_listeners_besides_ssh(host):
    listeners = host.check_output("ss -Hltn | awk '{print $4}'").split()
    public = [a for a in listeners if not a.startswith(("127.", "[::1]")) and not a.endswith(":22")]
    assert public == [], f"published beyond loopback: {public}"
    assert any(a == "127.0.0.1:3000" for a in listeners)


def test_secrets_file_is_root_only_and_unchanged_by_rerun(host):
    f = host.file("/etc/langfuse/secrets.json")
    assert f.user == "root" and f.mode == 0o600
    assert f.sha256sum == host.file("/root/secrets.first.json").sha256sum
    secrets = json.loads(host.check_output("cat /etc/langfuse/secrets.json"))
    assert len(secrets["encryption_key"]) == 64
    int(secrets["encryption_key"], 16)
    assert host.file("/etc/langfuse/api-key.json").mode == 0o600
    for env in host.check_output("ls /opt/langfuse/*.env").split():
        assert host.file(env).mode == 0o600, env


def test_health_answers(host):
    status, body = curl(host, "/api/public/health?failIfDatabaseUnavailable=true")
    assert status == 200 and json.loads(body)["status"] == "OK"


def test_admin_key_pair_authenticates(host):
    key = api_key(host)
    assert key["public_key"].startswith("pk-lf-") and key["secret_key"].startswith("sk-lf-")
    status, body = curl(host, "/api/public/projects", (key["public_key"], key["secret_key"]))
    assert status == 200
    assert json.loads(body)["data"][0]["id"] == "devbox"
    status, _ = curl(host, "/api/public/projects", (key["public_key"], "sk-lf-wrong"))
    assert status == 401


def test_trace_written_before_rerun_is_still_there(host):
    key = api_key(host)
    auth = (key["public_key"], key["secret_key"])
    status, body = curl(host, f"/api/public/v2/observations?traceId={MARKER_TRACE}", auth)
    assert status == 200
    assert [o["name"] for o in json.loads(body)["data"]] == ["persistence-marker"]


def _rerun_converge():
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(env["MOLECULE_PROJECT_DIRECTORY"], ".collections")
    env["ANSIBLE_CONFIG"] = os.path.join(env["MOLECULE_PROJECT_DIRECTORY"], "ansible.cfg")
    # Plain, unwrapped text, so that a secret cannot hide behind colour codes or a line break.
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", COLUMNS="1000")
    return subprocess.run(
        ["ansible-playbook", "-i", env["MOLECULE_INVENTORY_FILE"], "-l", "llmops-langfuse", "-v", "--diff",
         os.path.join(env["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )


def test_rerun_repairs_a_broken_stack_without_printing_secrets(host):
    host.check_output("docker stop langfuse-langfuse-worker-1 && docker rm -f langfuse-langfuse-web-1")
    run = _rerun_converge()
    assert run.returncode == 0, run.stdout[-3000:]
    assert all("(healthy)" in s for s in wait_healthy(host).values())
    secrets = json.loads(host.check_output("cat /etc/langfuse/secrets.json"))
    secrets["api_secret_key"] = api_key(host)["secret_key"]
    leaked = [name for name, value in secrets.items() if value and value in run.stdout + run.stderr]
    assert leaked == [], f"secret values printed by ansible-playbook: {leaked}"


def test_box_restart_brings_every_service_back_with_its_data(host):
    # The target is a container on this controller: restarting it is rebooting the box.
    subprocess.run(["docker", "restart", "llmops-langfuse"], check=True, timeout=120)
    deadline = time.time() + 120
    while True:  # SSH comes back once systemd has started sshd
        try:
            host.check_output("true")
            break
        except Exception:  # noqa: BLE001 - any connection error means not up yet
            if time.time() > deadline:
                raise
            time.sleep(2)
    assert all("(healthy)" in s for s in wait_healthy(host).values())
    test_trace_written_before_rerun_is_still_there(host)
