"""What an operator checks after deploying the LiteLLM proxy, and what a config push must guarantee
(run by Molecule's verify step, in file order: the pushes build on each other)."""

import json
import os
import re
import subprocess
import sys
import time
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
    assert served_models(host) == ["mock-a", "mock-b", "mock-slow"]
    rc, out = push("push_new_model.yml")
    assert rc == 0, out[-3000:]
    assert served_models(host) == ["mock-a", "mock-c", "mock-slow"]
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
    # The new slot's own start is the validation: LiteLLM refuses it, the slot never takes a request.
    assert "did not go live" in out and "Application startup failed" in out
    assert active(host) == slot
    assert served_models(host) == ["mock-a", "mock-c", "mock-slow"]
    assert chat(host, "mock-a") == "pong from mock-a"
    assert "no_such_callback" not in host.file("/opt/litellm/litellm_config.yml").content_string


def test_config_that_never_gets_healthy_is_rolled_back(host):
    slot = active(host)
    rc, out = push("push_unhealthy.yml")
    assert rc != 0
    assert "did not go live" in out and "kept serving" in out
    # The old proxy never stopped: same slot, same models, the failed slot is stopped.
    assert active(host) == slot
    assert served_models(host) == ["mock-a", "mock-c", "mock-slow"]
    assert chat(host, "mock-c") == "pong from mock-c"
    failed = ({"litellm-blue", "litellm-green"} - {slot}).pop()
    assert slots(host).get(failed) != "running"
    assert "sk-1234" not in host.file("/opt/litellm/litellm_config.yml").content_string
    # The previous config is back in place: rerunning it is a no-op.
    rc, out = push("push_new_model.yml")
    assert rc == 0 and "changed=0" in out, out[-2000:]


# --- Pushes under load (benchmarks/proxy_load.py: the official openai SDK through an SSH tunnel) ---

sys.path.insert(0, str(PROJECT / "benchmarks"))
from proxy_load import ProxyLoad  # noqa: E402

HOST = "llmops-litellm"
LOCK = "/run/lock/llmops-litellm-push.lock"
TEST_IMAGE = "llmops-test/litellm:1.108.7"


def flat(text):
    """Playbook output with the YAML result format's line folding undone."""
    return " ".join(text.split())


def under_load(action, new_model=None):
    """Run action() while keep-alive, fresh-connection and long streaming clients load the proxy."""
    with ProxyLoad(os.environ["MOLECULE_INVENTORY_FILE"], HOST, model="mock-a", slow_model="mock-slow",
                   new_model=new_model) as load:
        time.sleep(3)
        outcome = action()
        time.sleep(3)
        result = load.stop()
    return outcome, result


def assert_no_failed_request(result):
    for kind in ("pool", "fresh", "stream"):
        stats = result[kind]
        assert stats["sent"] > 0, (kind, stats)
        assert stats["failed"] == 0, (kind, stats)


def test_an_image_bump_under_load_fails_no_request_and_keeps_the_listener(host):
    bumped = TEST_IMAGE + "-bump"
    host.check_output(f"docker tag {TEST_IMAGE} {bumped}")
    listener = host.check_output("docker inspect -f '{{.Id}} {{.State.StartedAt}}' litellm-haproxy")
    (rc, out), result = under_load(
        lambda: playbook(SCENARIO / "push.yml", "-e", f"@{SCENARIO / 'vars' / 'push_back.yml'}",
                         "-e", f"litellm_image={bumped}"))
    assert rc == 0, out[-3000:]
    assert_no_failed_request(result)
    assert host.check_output("docker inspect -f '{{.Config.Image}}' " + active(host)) == bumped
    # HAProxy has its own image: a LiteLLM bump never recreates the published listener.
    assert host.check_output("docker inspect -f '{{.Id}} {{.State.StartedAt}}' litellm-haproxy") == listener


def test_a_lost_state_with_both_slots_up_is_repaired_by_a_rerun(host):
    serving = active(host)
    idle = ({"litellm-blue", "litellm-green"} - {serving}).pop()
    host.check_output(f"docker start {idle}")
    host.check_output("rm -f /opt/litellm/serving /opt/litellm/live.sha1")
    rc, out = push("push_back.yml")  # back to the test image too
    assert rc == 0, out[-3000:]
    now = active(host)
    state = slots(host)
    assert state[now] == "running"
    assert [s for s in ("litellm-blue", "litellm-green") if state.get(s) == "running"] == [now]
    assert host.check_output("docker inspect -f '{{.Config.Image}}' " + now) == TEST_IMAGE
    assert served_models(host) == ["mock-a", "mock-b", "mock-slow"]
    rc, out = push("push_back.yml")
    assert rc == 0 and "changed=0" in out, out[-2000:]


def test_two_pushes_at_once_under_load_are_serialised_and_fail_no_request(host):
    def both():
        runs = [subprocess.Popen(
            ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "push.yml"),
             "-e", f"@{SCENARIO / 'vars' / name}"],
            cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for name in ("push_new_model.yml", "push_back.yml")]
        return [(run.communicate(timeout=900)[0], run.returncode) for run in runs]

    outcome, result = under_load(both)
    for out, rc in outcome:
        assert rc == 0, out[-3000:]
    said = re.compile(r"Waited \d+(\.\d+)? s for the push lock")
    waited = [i for i, (out, _) in enumerate(outcome) if said.search(flat(out))]
    assert len(waited) == 1, [out[-1500:] for out, _ in outcome]
    assert_no_failed_request(result)
    # The push that waited went last: its config is the one served.
    expected = ["mock-a", "mock-c", "mock-slow"] if waited == [0] else ["mock-a", "mock-b", "mock-slow"]
    assert served_models(host) == expected
    assert not host.file(LOCK).exists


def test_a_push_while_another_holds_the_lock_names_the_holder(host):
    before = served_models(host), active(host)
    taken = subprocess.run(
        ["ansible", "-i", os.environ["MOLECULE_INVENTORY_FILE"], HOST, "-b", "-m", "llmops.devbox.box_lock",
         "-a", f"path={LOCK} holder='bob@laptop (play \"site\")' purpose='LiteLLM config push'"],
        cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    try:
        rc, out = playbook(SCENARIO / "push.yml", "-e", f"@{SCENARIO / 'vars' / 'push_new_model.yml'}",
                           "-e", "litellm_push_lock_wait=2")
        assert rc != 0
        assert "Cannot take the lock" in flat(out) and "bob@laptop" in flat(out), out[-3000:]
    finally:
        host.check_output(f"rm -f {LOCK}")
    # Nothing was pushed: the proxy serves what it served, from the same slot.
    assert (served_models(host), active(host)) == before
