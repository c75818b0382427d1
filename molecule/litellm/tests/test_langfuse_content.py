"""Langfuse as code on an all-in-one box (playbooks/langfuse_content.yml, run by converge): the LLM
connection Langfuse's playground and evaluators use, prompts and datasets from the repository.
What an operator would check: through Langfuse's public API with the project keys, and from inside
the Langfuse web container, the path the playground takes."""

import json
import os
import re
import subprocess
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
BASE_URL = "http://litellm-haproxy:4001/v1"


def flat(text):
    return " ".join(text.split())


def playbook(path, *extra):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(path), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=PROJECT)
    return proc.returncode, proc.stdout + proc.stderr


def api(host, path):
    """GET a Langfuse public API path with the project key pair kept on the box."""
    keys = json.loads(host.check_output("cat /etc/langfuse/api-key.json"))
    out = host.check_output(
        f"curl -s -u {keys['public_key']}:{keys['secret_key']} 'http://127.0.0.1:3000{path}'")
    return json.loads(out)


def container(host, service):
    """Id of the Compose service's container (the langfuse project names them langfuse-<service>-1)."""
    return host.check_output(f"docker ps -q --filter label=com.docker.compose.service={service}").strip()


def from_langfuse_web(host, key, model="mock-a"):
    """A chat completion sent from inside langfuse-web to the connection's base URL: (status, body)."""
    script = (
        "import json, sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1] + '/chat/completions', method='POST',\n"
        "    data=json.dumps({'model': sys.argv[3], 'messages': [{'role': 'user', 'content': 'hi'}]}).encode(),\n"
        "    headers={'Content-Type': 'application/json', 'Authorization': 'Bearer ' + sys.argv[2]})\n"
        "try:\n"
        "    r = urllib.request.urlopen(req, timeout=60); print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n")
    out = host.check_output(
        f"docker exec {container(host, 'langfuse-web')} python3 -c {quote(script)} {BASE_URL} {quote(key)} {model}")
    status, _, body = out.partition("\n")
    return int(status), body


def quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_langfuse_allows_exactly_the_proxy_host(host):
    for service in ("langfuse-web", "langfuse-worker"):
        env = host.check_output(f"docker inspect -f '{{{{json .Config.Env}}}}' {container(host, service)}")
        allowed = [e for e in json.loads(env) if e.startswith("LANGFUSE_LLM_CONNECTION_WHITELISTED")]
        assert allowed == ["LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST=litellm-haproxy"], service


def test_the_connection_points_at_the_proxy_with_the_dedicated_key(host):
    key = host.check_output("cat /etc/litellm/connection_key").strip()
    master = host.check_output("cat /etc/litellm/master_key").strip()
    assert key != master and len(key) == 67
    assert host.file("/etc/litellm/connection_key").mode == 0o600
    listing = api(host, "/api/public/llm-connections")
    [conn] = [c for c in listing["data"] if c["provider"] == "litellm"]
    assert conn["adapter"] == "openai"
    assert conn["baseURL"] == BASE_URL
    assert conn["customModels"] == ["mock-a", "mock-b", "mock-slow"]
    assert conn["withDefaultModels"] is False
    assert conn["displaySecretKey"] == "..." + key[-4:]
    assert key not in json.dumps(listing)


def test_the_playground_path_reaches_a_model_through_the_proxy(host):
    key = host.check_output("cat /etc/litellm/connection_key").strip()
    status, body = from_langfuse_web(host, key)
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == "pong from mock-a"


def test_the_connection_port_takes_only_its_key_and_is_not_published(host):
    master = host.check_output("cat /etc/litellm/master_key").strip()
    assert from_langfuse_web(host, master)[0] == 401
    assert from_langfuse_web(host, "sk-" + "0" * 64)[0] == 401
    listening = host.check_output("ss -Hltn")
    assert ":4001 " not in listening
    # From outside the Langfuse network (the box's loopback) the proxy still wants the master key.
    out = host.check_output(
        "curl -s -o /dev/null -w '%{http_code}' -H \"Authorization: Bearer $(cat /etc/litellm/connection_key)\" "
        "http://127.0.0.1:4000/v1/models")
    # Refused: LiteLLM answers 401 for a wrong key, or 400 without a database for any key but the master key.
    assert out in ("400", "401")


def test_prompt_versions_carry_their_labels(host):
    production = api(host, "/api/public/v2/prompts/greeting?label=production")
    variant = api(host, "/api/public/v2/prompts/greeting?label=experiment-b")
    assert production["prompt"] == "Say hello to {{name}}."
    assert production["config"] == {"model": "mock-a"}
    assert variant["prompt"] == "You are a terse assistant. Answer {{question}} in one sentence.\n"
    assert {production["version"], variant["version"]} == {1, 2}
    assert "latest" in variant["labels"]
    chat = api(host, "/api/public/v2/prompts/support%2Fchat?label=production")
    assert chat["type"] == "chat"
    assert [m["role"] for m in chat["prompt"]] == ["system", "user"]


def test_the_dataset_and_its_items_exist(host):
    dataset = api(host, "/api/public/v2/datasets/smoke")
    assert dataset["description"] == "Questions every model must answer"
    assert dataset["metadata"] == {"owner": "ops"}
    # Langfuse stores a string that is JSON as that JSON: "4" reads back as 4.
    for item_id, expected in (("smoke-1", "pong"), ("smoke-2", 4), ("smoke-3", "Paris")):
        item = api(host, f"/api/public/dataset-items/{item_id}")
        assert item["datasetName"] == "smoke"
        assert item["expectedOutput"] == expected


def test_a_changed_prompt_becomes_a_new_version_and_check_mode_says_so_first(host):
    extra = json.dumps({"langfuse_prompts": [
        {"name": "greeting", "prompt": "Say hello to {{ '{{' }}name{{ '}}' }}, warmly.", "labels": ["production"],
         "config": {"model": "mock-a"}}], "langfuse_datasets": []})
    rc, out = playbook(PROJECT / "playbooks" / "langfuse_content.yml", "--check", "--diff", "-e", extra)
    assert rc == 0, out
    assert re.search(r"changed=[1-9]", out), flat(out)[-2000:]
    before = api(host, "/api/public/v2/prompts/greeting?label=production")
    assert before["prompt"] == "Say hello to {{name}}."  # check mode sent nothing
    rc, out = playbook(PROJECT / "playbooks" / "langfuse_content.yml", "-e", extra)
    assert rc == 0, out
    after = api(host, "/api/public/v2/prompts/greeting?label=production")
    assert after["prompt"] == "Say hello to {{name}}, warmly."
    assert after["version"] == 3
    # History is kept: the earlier versions are still there.
    assert api(host, "/api/public/v2/prompts/greeting?version=1")["prompt"] == "Say hello to {{name}}."
    # Back to the converge's content: version 1 gets its label back, no new version.
    rc, out = playbook(PROJECT / "playbooks" / "langfuse_content.yml")
    assert rc == 0, out
    assert api(host, "/api/public/v2/prompts/greeting?label=production")["version"] == 1
    rc, out = playbook(PROJECT / "playbooks" / "langfuse_content.yml")
    assert rc == 0 and re.search(r"changed=0\s", out), flat(out)[-2000:]


def test_a_rotated_connection_key_reaches_langfuse_and_the_old_one_is_refused(host):
    old = host.check_output("cat /etc/litellm/connection_key").strip()
    # The two steps rotate_secrets.yml takes for litellm_connection_key (its code_server play needs an
    # npm registry this scenario does not have): the proxy gets a new key, then Langfuse does.
    rc, out = playbook(PROJECT / "playbooks" / "litellm.yml", "-e", '{"litellm_rotate_secrets": ["connection_key"]}')
    assert rc == 0, flat(out)[-3000:]
    rc, more = playbook(PROJECT / "playbooks" / "langfuse_content.yml")
    assert rc == 0 and re.search(r"changed=[1-9]", more), flat(more)[-3000:]
    out += more
    new = host.check_output("cat /etc/litellm/connection_key").strip()
    assert new != old
    assert from_langfuse_web(host, old)[0] == 401
    assert from_langfuse_web(host, new)[0] == 200
    [conn] = [c for c in api(host, "/api/public/llm-connections")["data"] if c["provider"] == "litellm"]
    assert conn["displaySecretKey"] == "..." + new[-4:]
    for secret in (old, new):
        assert secret not in out
