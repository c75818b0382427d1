"""End-to-end proof of the fleet topology, checked the way an operator would (Molecule's verify).

One central box (Langfuse + LiteLLM + code-server) and one dev box (LiteLLM + code-server) whose
proxy sends its traces to the central Langfuse over the network. The tests run the operations
playbooks against Molecule's inventory and look at the boxes over SSH. They run in file order:
the outage and restart tests come last because they disturb the stacks.
"""

import base64
import html
import json
import os
import re
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import testinfra

CENTRAL = "llmops-fleet-central"
BOX = "llmops-fleet-box"
BOXES = (CENTRAL, BOX)
OWNERS = {CENTRAL: "alice", BOX: "bob"}  # devbox_owner in molecule.yml
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
GENERATED_PASSWORD = "/home/admin/.config/code-server/generated-password"  # noqa: S105 - a path
SEEN = {}  # trace ids written by earlier tests, read back after the restart


def box(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}", sudo=True)


def playbook(name, *args, timeout=900):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".collections"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         os.path.join(PROJECT, "playbooks", f"{name}.yml"), *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def flat(stdout):
    """Playbook output as one line: the YAML result format folds long strings over several lines."""
    return " ".join(ANSI.sub("", stdout).split())


def central_address():
    return box(CENTRAL).check_output("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1").strip()


def complete(name, trace_id=None, timeout=20, model="claude-sonnet"):
    """One chat completion through the box's own proxy; the master key never leaves the box."""
    body = {"model": model, "messages": [{"role": "user", "content": "ping"}]}
    if trace_id:
        body["metadata"] = {"trace_id": trace_id}
    cmd = (f"curl -s -o /tmp/fleet-completion.json -w '%{{http_code}} %{{time_total}}' -m {timeout} "
           "-H \"Authorization: Bearer $(cat /etc/litellm/master_key)\" -H 'Content-Type: application/json' "
           f"-d '{json.dumps(body)}' http://127.0.0.1:4000/v1/chat/completions")
    status, seconds = box(name).check_output(cmd).split()
    return int(status), float(seconds)


def observations(trace_id):
    """Generations of a trace, read from the central Langfuse with its own key pair (on the box)."""
    script = (
        "import base64, json, urllib.request; k = json.load(open('/etc/langfuse/api-key.json')); "
        "auth = base64.b64encode((k['public_key'] + ':' + k['secret_key']).encode()).decode(); "
        f"r = urllib.request.Request('http://{central_address()}:3000/api/public/v2/observations?traceId={trace_id}', "
        "headers={'Authorization': 'Basic ' + auth}); "
        "print(json.dumps(json.load(urllib.request.urlopen(r, timeout=10))['data']))"
    )
    return json.loads(box(CENTRAL).check_output(f"python3 -c {json.dumps(script)}"))


def wait_visible(trace_id, timeout=60):
    deadline = time.time() + timeout
    while True:
        found = observations(trace_id)
        if found or time.time() > deadline:
            return found
        time.sleep(2)


def test_central_langfuse_listens_on_its_network_address_and_the_rest_on_loopback():
    listening = box(CENTRAL).socket.get_listening_sockets()
    assert f"tcp://{central_address()}:3000" in listening
    for name in BOXES:
        ports = {s.rsplit(":", 1)[1]: s for s in box(name).socket.get_listening_sockets() if s.startswith("tcp://")}
        assert ports["4000"] == "tcp://127.0.0.1:4000", name
        assert ports["8080"] == "tcp://127.0.0.1:8080", name


def test_the_dev_box_proxy_sends_to_the_central_langfuse_with_its_own_master_key():
    fmt = '{{range .Config.Env}}{{if eq (index (split . "=") 0) "LANGFUSE_HOST"}}{{.}}{{end}}{{end}}'
    env = box(BOX).check_output(f"docker inspect -f '{fmt}' $(cat /opt/litellm/serving)")
    assert env.strip() == f"LANGFUSE_HOST=http://{central_address()}:3000"
    keys = {name: box(name).file("/etc/litellm/master_key").sha256sum for name in BOXES}
    assert keys[CENTRAL] != keys[BOX]


def test_a_trace_sent_through_each_proxy_is_visible_in_the_central_langfuse():
    for name in BOXES:
        trace_id = uuid.uuid4().hex
        status, _ = complete(name, trace_id)
        assert status == 200, name
        found = wait_visible(trace_id)
        assert [o["traceId"] for o in found] == [trace_id], f"trace from {name} not in the central Langfuse"
        assert found[0]["type"] == "GENERATION"
        SEEN[name] = trace_id


def test_status_is_one_clean_table_for_both_boxes():
    run = playbook("status")
    assert run.returncode == 0, run.stdout[-4000:]
    assert "All " in run.stdout and "on 2 box(es) are up and healthy" in run.stdout
    for name in BOXES:
        assert f"{name} " in run.stdout
    # Usage-analysis warnings: Cline uses each box's master key (no database mode here); the demo's
    # models are priced, so nothing is logged at $0.
    for name in BOXES:
        assert f"{name}: WARNING: Cline holds the proxy master key (admin)" in flat(run.stdout), run.stdout[-3000:]
    assert "WARNING: models logged at $0" not in flat(run.stdout)  # the task title says "logged at $0" too


def test_diagnose_finds_nothing():
    run = playbook("diagnose")
    assert run.returncode == 0, run.stdout[-6000:]
    assert "No findings" in run.stdout
    assert run.stdout.count("trace check OK") == 2


def test_verify_prints_one_ok_line_per_box():
    run = playbook("verify")
    assert run.returncode == 0, run.stdout[-4000:]
    for name in BOXES:
        assert f"{name}" in run.stdout
    assert run.stdout.count("OK: trace ") == 2
    # Each box's trace names its owner and box, set by its proxy, and has a real cost.
    for name, owner in OWNERS.items():
        found = re.search(rf"{re.escape(name)} OK: trace (.*?Langfuse [^)]*\))", flat(run.stdout))
        assert found, run.stdout[-4000:]
        line = found.group(1)
        assert f"owner {owner}, environment {name}," in line, line
        assert f"box:{name} owner:{owner} model_group:" in line, line
        cost = re.search(r"cost ([0-9.e-]+),", line)
        assert cost and float(cost.group(1)) > 0, line


GENERATIONS_SCRIPT = """
import base64, json, sys, urllib.parse, urllib.request
key = json.load(open("/etc/langfuse/api-key.json"))
auth = base64.b64encode((key["public_key"] + ":" + key["secret_key"]).encode()).decode()
found, cursor = [], ""
while True:
    query = {"type": "GENERATION", "fields": "core,basic,usage", "limit": 1000}
    if cursor:
        query["cursor"] = cursor
    request = urllib.request.Request(sys.argv[1] + "/api/public/v2/observations?" + urllib.parse.urlencode(query),
                                     headers={"Authorization": "Basic " + auth})
    page = json.load(urllib.request.urlopen(request, timeout=10))
    found += page["data"]
    cursor = page.get("meta", {}).get("cursor")
    if not cursor:
        break
print(json.dumps(found))
"""


def generations_between(start, end):
    """Every generation Langfuse holds in [start, end), read back one by one (observations API, all pages)."""
    encoded = base64.b64encode(GENERATIONS_SCRIPT.encode()).decode()
    found = json.loads(box(CENTRAL).check_output(
        f"echo {encoded} | base64 -d > /tmp/generations.py && python3 /tmp/generations.py http://{central_address()}:3000"))
    return [g for g in found if start <= g["startTime"].replace("Z", "+00:00") < end]


def test_the_usage_report_lists_both_owners_boxes_and_models_and_its_totals_add_up(tmp_path):
    # A call to each model from each box, visible before the report is asked for.
    for name in BOXES:
        for model in ("claude-sonnet", "claude-haiku"):
            trace_id = uuid.uuid4().hex
            assert complete(name, trace_id, model=model)[0] == 200
            assert wait_visible(trace_id), f"{model} call from {name} never reached Langfuse"
    now = datetime.now(timezone.utc)
    start, end = (now - timedelta(hours=3)).isoformat(), (now + timedelta(minutes=5)).isoformat()
    began = time.monotonic()
    run = playbook("usage_report", "-e", f"usage_report_dir={tmp_path}", "-e", f"usage_from={start}",
                   "-e", f"usage_to={end}")
    seconds = time.monotonic() - began
    assert run.returncode == 0, run.stdout[-4000:]
    report = json.loads((tmp_path / "usage.json").read_text())
    rows = report["rows"]
    assert {row["owner"] for row in rows} == set(OWNERS.values())
    assert {row["box"] for row in rows} == set(BOXES)
    for name, owner in OWNERS.items():
        models = {row["model"] for row in rows if row["box"] == name and row["owner"] == owner}
        assert len(models) == 2, f"{name}: {models}"  # the Bedrock Sonnet and Haiku ids
    for row in rows:
        assert row["cost"] > 0 and row["requests"] > 0 and row["latency_p95_ms"] is not None, row
    # The report's totals are the sums of the single generations, read back from the observations API.
    generations = generations_between(report["reports"][0]["window"]["from"].replace("Z", "+00:00"),
                                      report["reports"][0]["window"]["to"].replace("Z", "+00:00"))
    assert report["totals"]["requests"] == len(generations)
    assert abs(report["totals"]["cost"] - sum(g["totalCost"] or 0 for g in generations)) < 1e-9
    for owner in OWNERS.values():
        assert abs(sum(r["cost"] for r in rows if r["owner"] == owner)
                   - sum(g["totalCost"] or 0 for g in generations if g["userId"] == owner)) < 1e-9
    # The table printed for the operator, and the CSV beside it.
    printed = flat(run.stdout)
    assert "TOTAL" in printed and " alice " in printed and " bob " in printed
    assert (tmp_path / "usage.csv").read_text().count("\n") == len(rows) + 1
    table = html.unescape(re.search(r"<pre>(.*?)</pre>", (tmp_path / "usage.html").read_text(), re.S).group(1))
    assert "cost_usd" in table and "TOTAL" in table
    (Path(PROJECT) / ".cache").mkdir(exist_ok=True)
    (Path(PROJECT) / ".cache" / "fleet-usage-report.txt").write_text(
        f"usage_report.yml for 2 boxes: {seconds:.1f} s\n{table}\n")
    # The chart page, as a person opens it: headless Chromium, and the charts are on the picture.
    shot = subprocess.run(["make", "-C", PROJECT, "usage-screenshot", f"USAGE_HTML={tmp_path / 'usage.html'}",
                           f"USAGE_PNG={tmp_path / 'usage.png'}"], capture_output=True, text=True, timeout=900)
    assert shot.returncode == 0, shot.stdout[-2000:] + shot.stderr[-2000:]
    assert (tmp_path / "usage.png").stat().st_size > 10_000


def test_port_forward_gives_each_box_its_own_local_ports(tmp_path):
    conf = tmp_path / "ssh_config"
    run = playbook("port_forward", "-e", f"port_forward_file={conf}")
    assert run.returncode == 0, run.stdout[-3000:]
    text = conf.read_text()
    # The boxes are already named llmops-...: the alias is not prefixed twice.
    assert f"Host {CENTRAL}\n" in text and f"Host {BOX}\n" in text and "llmops-llmops" not in text
    assert f"LocalForward 127.0.0.1:3000 {central_address()}:3000" in text
    assert "LocalForward 127.0.0.1:4010 127.0.0.1:4000" in text and "LocalForward 127.0.0.1:8090 127.0.0.1:8080" in text
    # The printed way to read a credential works as typed in a non-interactive shell: the config
    # carries the SSH options the inventory gives Ansible (the targets' host keys are new each start).
    printed = next(line for line in flat(run.stdout).split("'") if "read a credential on the box" in line)
    command = printed.split(": ", 1)[1].replace("<file>", "/opt/litellm/serving").split()
    assert command[:4] == ["ssh", "-F", str(conf), CENTRAL], command
    read = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() in ("litellm-blue", "litellm-green")


def test_logs_are_fetched_per_service_with_secrets_masked(tmp_path):
    run = playbook("logs", "-e", f"logs_dir={tmp_path}", "-e", "lines=200")
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / CENTRAL / "langfuse-web.log").exists()
    assert (tmp_path / BOX / "litellm-haproxy.log").exists()
    assert (tmp_path / BOX / "code-server@admin.log").exists()
    secrets = [box(n).check_output("cat /etc/litellm/master_key").strip() for n in BOXES]
    secrets += list(json.loads(box(CENTRAL).check_output("cat /etc/langfuse/secrets.json")).values())
    secrets.append(json.loads(box(CENTRAL).check_output("cat /etc/langfuse/api-key.json"))["secret_key"])
    text = "".join(p.read_text() for p in tmp_path.rglob("*.log")) + run.stdout
    assert [s for s in secrets if s and s in text] == []


def _cline_keys(name):
    data = "/home/admin/.cline/data"
    providers = json.loads(box(name).check_output(f"cat {data}/settings/providers.json"))
    legacy = json.loads(box(name).check_output(f"cat {data}/secrets.json"))
    return providers["providers"]["litellm"]["settings"]["apiKey"], legacy["liteLlmApiKey"]


def _models_status(name, key):
    return box(name).check_output(
        f"curl -s -o /dev/null -w '%{{http_code}}' -m 20 -H 'Authorization: Bearer {key}' http://127.0.0.1:4000/v1/models")


def _login_gets_session(name, password):
    """code-server's own login form: a session cookie only for the right password."""
    jar = "/tmp/fleet-login-cookies"
    box(name).check_output(f"rm -f {jar}; printf %s {json.dumps(password)} | "
                           f"curl -s -o /dev/null -c {jar} --data-urlencode password@- http://127.0.0.1:8080/login")
    return "code-server-session" in box(name).check_output(f"cat {jar}")


def test_site_with_each_role_tag_converges_without_changes():
    """The README's way to push one role (site.yml --tags litellm), for every role tag."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".collections"), ANSIBLE_NOCOLOR="1")
    for tag in ("docker", "langfuse", "litellm", "code_server", "langfuse_content"):
        run = subprocess.run(
            ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(PROJECT, "site.yml"),
             "-e", f"@{PROJECT}/tests/demo-vars.yml", "--tags", tag],
            env=env, capture_output=True, text=True, timeout=900, check=False)
        assert run.returncode == 0, f"--tags {tag}: " + run.stdout[-4000:]
        recap = ANSI.sub("", run.stdout).split("PLAY RECAP")[-1]  # Molecule forces colour
        for name in BOXES:
            line = next(row for row in recap.splitlines() if row.startswith(name))
            assert " changed=0 " in line and " failed=0 " in line, f"--tags {tag}: {line}"
        assert f"llmops.devbox.{tag}" in run.stdout or tag == "langfuse_content", tag


def test_rotating_the_master_key_reaches_cline_and_the_old_key_is_refused():
    password_file = GENERATED_PASSWORD
    old_keys = {n: box(n).check_output("cat /etc/litellm/master_key").strip() for n in BOXES}
    old_password = box(BOX).check_output(f"cat {password_file}").strip()
    for name in BOXES:
        assert _cline_keys(name) == (old_keys[name], old_keys[name])
    # The demo settings converge loaded (mock models, no LiteLLM database), as an operator keeps them
    # in group_vars.
    run = playbook("rotate_secrets", "-e", f"@{PROJECT}/tests/demo-vars.yml",
                   "-e", json.dumps({"rotate": ["litellm_master_key", "code_server_password"]}), timeout=1800)
    assert run.returncode == 0, run.stdout[-5000:]
    assert old_keys[CENTRAL] not in run.stdout and old_password not in run.stdout
    for name in BOXES:
        new_key = box(name).check_output("cat /etc/litellm/master_key").strip()
        assert new_key != old_keys[name] and new_key not in run.stdout, name
        assert _cline_keys(name) == (new_key, new_key), f"Cline on {name} still holds the old key"
        assert _models_status(name, new_key) == "200", name
        # 400 "No connected db": the demo's proxies run without their database (tests/demo-vars.yml).
        assert _models_status(name, old_keys[name]) in ("400", "401"), f"{name} proxy still takes the old master key"
        status, _ = complete(name)
        assert status == 200, name
    new_password = box(BOX).check_output(f"cat {password_file}").strip()
    assert new_password != old_password
    assert not _login_gets_session(BOX, old_password)
    assert _login_gets_session(BOX, new_password)
    # Nothing asked to rotate: refused before anything changes.
    refused = playbook("rotate_secrets", "-e", json.dumps({"rotate": ["langfuse_salt"]}))
    assert refused.returncode != 0 and "Unknown: langfuse_salt" in refused.stdout, refused.stdout[-3000:]


def test_proxies_answer_while_langfuse_is_down_and_traces_resume_after_start():
    stop = playbook("stop", "-e", "stack=langfuse")
    assert stop.returncode == 0, stop.stdout[-3000:]
    try:
        assert box(CENTRAL).check_output("docker ps -q --filter label=com.docker.compose.project=langfuse") == ""
        for name in BOXES:
            status, seconds = complete(name)
            assert status == 200, f"{name} proxy failed while Langfuse was down"
            assert seconds < 5, f"{name} proxy took {seconds} s while Langfuse was down"
    finally:
        start = playbook("start", "-e", "stack=langfuse")
    assert start.returncode == 0, start.stdout[-3000:]
    run = playbook("verify")
    assert run.returncode == 0 and run.stdout.count("OK: trace ") == 2, run.stdout[-4000:]


def test_restarting_the_central_target_brings_every_service_back_with_its_data():
    before_ip = central_address()
    kept = {
        "langfuse secrets": box(CENTRAL).file("/etc/langfuse/secrets.json").sha256sum,
        "master key": box(CENTRAL).file("/etc/litellm/master_key").sha256sum,
        "code-server config": box(CENTRAL).file("/home/admin/.config/code-server/config.yaml").sha256sum,
    }
    # The target is a container on this controller: restarting it is rebooting the box.
    subprocess.run(["docker", "restart", CENTRAL], check=True, timeout=180, capture_output=True)
    deadline = time.time() + 120
    while True:  # SSH answers once systemd has started sshd
        try:
            box(CENTRAL).check_output("true")
            break
        except Exception:  # noqa: BLE001 - any connection error means not up yet
            assert time.time() < deadline, "the central target did not come back over SSH"
            time.sleep(3)
    assert central_address() == before_ip, "the target came back on another address (test environment)"
    deadline = time.time() + 300
    while True:  # containers and code-server start on boot; status passes once all are healthy
        run = playbook("status")
        if run.returncode == 0 or time.time() > deadline:
            break
        time.sleep(10)
    assert run.returncode == 0, run.stdout[-4000:]
    assert kept == {
        "langfuse secrets": box(CENTRAL).file("/etc/langfuse/secrets.json").sha256sum,
        "master key": box(CENTRAL).file("/etc/litellm/master_key").sha256sum,
        "code-server config": box(CENTRAL).file("/home/admin/.config/code-server/config.yaml").sha256sum,
    }
    for name, trace_id in SEEN.items():
        assert [o["traceId"] for o in observations(trace_id)] == [trace_id], f"trace from {name} lost"
    run = playbook("verify")
    assert run.returncode == 0 and run.stdout.count("OK: trace ") == 2, run.stdout[-4000:]
