"""What an operator checks after deploying the LiteLLM proxy, and what a config push must guarantee
(run by Molecule's verify step, in file order: the pushes build on each other)."""

import json
import os
import subprocess
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]


def playbook(path, *extra):
    """ansible-playbook against the scenario's target, as users run it; (rc, output)."""
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(path), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=PROJECT)
    return proc.returncode, proc.stdout + proc.stderr


def push(vars_file):
    return playbook(SCENARIO / "push.yml", "-e", f"@{SCENARIO / 'vars' / vars_file}")


def served_models(host):
    key = host.check_output("cat /etc/litellm/master_key")
    out = host.check_output(f"curl -s -H 'Authorization: Bearer {key}' http://127.0.0.1:4000/v1/models")
    return sorted(m["id"] for m in json.loads(out)["data"])


def chat(host, model):
    key = host.check_output("cat /etc/litellm/master_key")
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    out = host.check_output(
        f"curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
        f"-d '{body}' http://127.0.0.1:4000/v1/chat/completions")
    return json.loads(out)["choices"][0]["message"]["content"]


def slots(host):
    out = host.check_output("docker ps -a --filter label=com.docker.compose.project=litellm "
                            "--format '{{.Names}} {{.State}}'")
    return dict(line.split() for line in out.splitlines())


def active(host):
    return host.check_output("cat /opt/litellm/serving").strip()


def test_only_haproxy_is_published_on_loopback(host):
    listening = host.check_output("ss -Hltn")
    for port in (4000, 8404):
        assert f"127.0.0.1:{port} " in listening
        assert f"0.0.0.0:{port} " not in listening and f"*:{port} " not in listening
    state = slots(host)
    assert state["litellm-haproxy"] == "running"
    serving = active(host)
    assert state[serving] == "running"
    idle = {"litellm-blue", "litellm-green"} - {serving}
    assert all(state.get(name, "absent") != "running" for name in idle)
    assert "litellm-postgres" not in state  # database mode off on this target


def test_secrets_on_disk(host):
    key = host.file("/etc/litellm/master_key")
    assert key.user == "root" and key.mode == 0o600
    assert len(key.content_string) == 67 and key.content_string.startswith("sk-")
    env = host.file("/opt/litellm/litellm.env")
    assert env.mode == 0o600
    config = host.file("/opt/litellm/litellm_config.yml").content_string
    assert key.content_string not in config
    assert "os.environ/LITELLM_MASTER_KEY" in config


def test_proxy_reaches_langfuse_by_service_name(host):
    env = host.check_output("grep ^LANGFUSE_HOST= /opt/litellm/litellm.env")
    assert env == "LANGFUSE_HOST=http://langfuse-web:3000"
    nets = host.check_output("docker inspect -f '{{json .NetworkSettings.Networks}}' " + active(host))
    assert "langfuse_default" in json.loads(nets)


def test_trace_check_passes(host):
    rc, out = playbook(PROJECT / "playbooks" / "verify.yml")
    assert rc == 0, out[-3000:]
    assert "visible" in out


def test_push_changes_the_served_model_list(host):
    before_slot = active(host)
    assert served_models(host) == ["mock-a", "mock-b"]
    rc, out = push("push_new_model.yml")
    assert rc == 0, out[-3000:]
    assert served_models(host) == ["mock-a", "mock-c"]
    assert chat(host, "mock-c") == "pong from mock-c"
    assert active(host) != before_slot  # served by the other slot now
    assert slots(host)[before_slot] != "running"
    # Pushing the same config again changes nothing and restarts nothing.
    rc, out = push("push_new_model.yml")
    assert rc == 0 and "changed=0" in out, out[-2000:]


def test_invalid_config_never_goes_live(host):
    slot = active(host)
    rc, out = push("push_invalid.yml")
    assert rc != 0
    assert "config validation failed" in out  # LiteLLM's own message
    assert active(host) == slot
    assert served_models(host) == ["mock-a", "mock-c"]
    assert chat(host, "mock-a") == "pong from mock-a"
    assert "no_such_callback" not in host.file("/opt/litellm/litellm_config.yml").content_string


def test_config_that_never_gets_healthy_is_rolled_back(host):
    slot = active(host)
    rc, out = push("push_unhealthy.yml")
    assert rc != 0
    assert "did not go live" in out and "kept serving" in out
    # The old proxy never stopped: same slot, same models, the failed slot is stopped.
    assert active(host) == slot
    assert served_models(host) == ["mock-a", "mock-c"]
    assert chat(host, "mock-c") == "pong from mock-c"
    failed = ({"litellm-blue", "litellm-green"} - {slot}).pop()
    assert slots(host).get(failed) != "running"
    assert "sk-1234" not in host.file("/opt/litellm/litellm_config.yml").content_string
    # The previous config is back in place: rerunning it is a no-op.
    rc, out = push("push_new_model.yml")
    assert rc == 0 and "changed=0" in out, out[-2000:]
