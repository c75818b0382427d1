"""Day-2 operations as an operator runs them (Molecule verify): a backup of box A, restored onto the fresh
box B, read back through Langfuse's API with A's keys; retention on A; and an install made by the previous
release of the role, rerun with this one, gets the TTLs and nothing else.

Runs before test_langfuse.py (file order): box A is left as it was (its writers pause during the backup).
"""

import json
import os
import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import testinfra

A, B = "llmops-langfuse", "llmops-langfuse-b"
testinfra_hosts = [A]
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd()))
VAULT_PASSWORD = "restore-rehearsal-" + "x" * 8  # noqa: S105 - a test's vault password
# The last release before backups and bounded disk (what boxes in the field were converged with).
OLD_RELEASE = "2bbf1b2"
CONTROLLER = Path(tempfile.mkdtemp(prefix="llmops-backups-"))
TIMES = {}


def box(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}", sudo=True)


def playbook(path, *args, inventories=(), collections=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_PATH=collections or str(PROJECT / ".collections"))
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"]]
    for inv in inventories:
        cmd += ["-i", str(inv)]
    start = time.monotonic()
    run = subprocess.run([*cmd, str(path), *args], env=env, capture_output=True, text=True, timeout=1200, check=False)
    return run, run.stdout + run.stderr, time.monotonic() - start


def vault_args():
    return ["-e", json.dumps({"langfuse_backup_vault_password": VAULT_PASSWORD,
                              "langfuse_backup_controller_dir": str(CONTROLLER)})]


def api(host, path):
    keys = json.loads(host.check_output("cat /etc/langfuse/api-key.json"))
    out = host.check_output(f"curl -s -w '\\n%{{http_code}}' -u '{keys['public_key']}:{keys['secret_key']}' "
                            f"'http://127.0.0.1:3000{path}'")
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body) if body.strip().startswith(("{", "[")) else body


def trace_ids(host):
    status, body = api(host, "/api/public/v2/observations?limit=100")
    assert status == 200, body
    return sorted({o["traceId"] for o in body["data"]})


def send_trace(host, trace_id, name):
    keys = json.loads(host.check_output("cat /etc/langfuse/api-key.json"))
    span = {"traceId": trace_id, "spanId": uuid.uuid4().hex[:16], "name": name, "kind": 1,
            "startTimeUnixNano": str(time.time_ns()), "endTimeUnixNano": str(time.time_ns() + 10**9)}
    body = {"resourceSpans": [{"resource": {"attributes": []},
                               "scopeSpans": [{"scope": {"name": "t"}, "spans": [span]}]}]}
    host.check_output(f"curl -sf -u '{keys['public_key']}:{keys['secret_key']}' -H 'Content-Type: application/json' "
                      f"-d '{json.dumps(body)}' http://127.0.0.1:3000/api/public/otel/v1/traces")


def wait_for(fn, timeout=60):
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value or time.time() > deadline:
            return value
        time.sleep(2)


def secrets_of(host):
    values = json.loads(host.check_output("cat /etc/langfuse/secrets.json"))
    values.update(json.loads(host.check_output("cat /etc/langfuse/api-key.json")))
    return {k: v for k, v in values.items() if isinstance(v, str) and len(v) >= 8}


def leaked(out, secrets):
    return sorted(k for k, v in secrets.items() if v in out)


def test_backup_of_a_restores_on_fresh_b_with_its_traces_keys_and_login(host):
    a, b = box(A), box(B)
    for i in range(3):
        send_trace(a, uuid.uuid4().hex, f"before-backup-{i}")
    before = wait_for(lambda: len(trace_ids(a)) >= 4 and trace_ids(a))
    assert before and len(before) >= 4, before

    run, out, TIMES["backup"] = playbook(PROJECT / "playbooks" / "backup.yml", *vault_args())
    assert run.returncode == 0, out[-4000:]
    assert leaked(out, secrets_of(a)) == []
    (name,) = [p.name for p in (CONTROLLER / A).iterdir()]
    local = CONTROLLER / A / name
    manifest = json.loads((local / "manifest.json").read_text())
    parts = {f["name"]: f["bytes"] for f in manifest["files"]}
    assert set(parts) == {"postgres.dump", "clickhouse.zip", "minio.tar", "secrets.json.vault"}, parts
    assert (local / "secrets.json.vault").read_text().startswith("$ANSIBLE_VAULT;")
    assert {oct(p.stat().st_mode & 0o777) for p in local.iterdir()} == {"0o600"}
    assert oct(local.stat().st_mode & 0o777) == "0o700"
    vaulted = (local / "secrets.json.vault").read_text()
    assert leaked(vaulted, secrets_of(a)) == []
    assert a.file(f"/var/backups/langfuse/{name}/manifest.json").mode == 0o600
    assert manifest["labels"]["probe_trace_id"] in before
    TIMES["sizes"] = parts
    # Writers are back after the pause.
    assert wait_for(lambda: trace_ids(a) == before)

    assert not b.file("/etc/langfuse").exists  # fresh: Docker and images only
    extra = CONTROLLER / "b-is-a-langfuse-box.ini"
    extra.write_text(f"[langfuse]\n{B}\n")
    run, out, TIMES["restore"] = playbook(PROJECT / "playbooks" / "restore.yml", "-l", B,
                                          "-e", f"langfuse_restore_source={A}", *vault_args(), inventories=[extra])
    assert run.returncode == 0, out[-4000:]
    assert leaked(out, secrets_of(a)) == []
    assert "logged in" in " ".join(out.split())
    # The same traces, read with A's keys through B's API; the same key pair; the same admin.
    assert trace_ids(b) == before
    assert json.loads(b.check_output("cat /etc/langfuse/api-key.json")) == \
        json.loads(a.check_output("cat /etc/langfuse/api-key.json"))
    status, body = api(b, "/api/public/projects")
    assert status == 200 and body["data"][0]["id"] == "devbox", body
    # The figures for a closing note (wall times of the playbooks, part sizes), kept beside the backups.
    (CONTROLLER / "figures.json").write_text(json.dumps(TIMES, indent=1))


def test_retention_removes_the_oldest_backup_after_newer_ones(host):
    # keep=1: one newer complete backup is enough to remove the first, on the box and on the controller.
    (oldest,) = [p.name for p in (CONTROLLER / A).iterdir()]
    time.sleep(1)  # names are start times to the second
    run, out, _ = playbook(PROJECT / "playbooks" / "backup.yml", "-e", "langfuse_backup_keep=1", *vault_args())
    assert run.returncode == 0, out[-3000:]
    on_box = host.check_output("ls /var/backups/langfuse").split()
    assert oldest not in on_box and len(on_box) == 1, on_box
    on_controller = [p.name for p in (CONTROLLER / A).iterdir()]
    assert on_controller == on_box, on_controller
    assert f"removed by retention: {oldest}" in " ".join(out.split())


def test_status_shows_disk_use_per_volume(host):
    # The backups just taken restarted langfuse-web/worker: their health checks report "starting" for a while.
    for _ in range(12):
        run, out, _ = playbook(PROJECT / "playbooks" / "status.yml", "-l", A, "-e", "stack=langfuse",
                               "-e", "status_disk_warn_percent=0")
        if run.returncode == 0:
            break
        time.sleep(10)
    assert run.returncode == 0, out[-3000:]
    flat = " ".join(out.split())
    assert re.search(r"langfuse_clickhouse_data \d+\.\d MiB", flat), flat[-3000:]
    assert re.search(r"% used of [\d.]+ GiB", flat)
    assert f"{A}: /" in flat and "full (warning above 0 %)" in flat


def test_minio_expires_raw_events_and_never_media(host):
    out = host.check_output(
        "docker exec langfuse-minio-1 sh -c 'MC_HOST_local="
        "\"http://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD@127.0.0.1:9000\" mc --json ilm rule export local/langfuse'")
    rules = json.loads(out)["config"]["Rules"]
    got = [(r["Filter"]["Prefix"], r["Expiration"]["Days"], r["Status"]) for r in rules]
    assert got == [("events/", 30, "Enabled")], rules


def _old_collection(tmp):
    dest = tmp / "ansible_collections" / "llmops" / "devbox"
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(PROJECT), "archive", OLD_RELEASE, "galaxy.yml", "meta", "plugins",
                              "roles"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return f"{tmp}:{PROJECT / '.collections'}"


def test_rerun_on_an_install_of_the_previous_release_adds_the_ttls_and_changes_nothing_else(host):
    b = box(B)
    # B becomes a box installed by the previous release: its own empty stack, no config.d file, logs unbounded.
    b.check_output("docker compose --project-directory /opt/langfuse down --volumes --remove-orphans; "
                   "rm -rf /opt/langfuse /etc/langfuse /var/backups/langfuse")
    play = CONTROLLER / "langfuse-on-b.yml"
    play.write_text(f"- hosts: {B}\n  become: true\n  roles: [llmops.devbox.langfuse]\n")
    run, out, _ = playbook(play, collections=_old_collection(Path(tempfile.mkdtemp())))
    assert run.returncode == 0, out[-3000:]
    assert not b.file("/opt/langfuse/clickhouse-config.xml").exists
    ids = {s: b.check_output(f"docker compose --project-directory /opt/langfuse ps -q {s}")
           for s in ("langfuse-web", "langfuse-worker", "postgres", "redis", "minio", "clickhouse")}

    run, out, _ = playbook(play, "-v")
    assert run.returncode == 0, out[-3000:]
    changed = [block.split("]", 1)[0].split(" : ", 1)[-1] for block in out.split("\nTASK [")[1:]
               if re.search(r"^changed: \[", block, re.M)]
    files_task = "Put the project folder, the env files, ClickHouse's config and compose.yml in place"
    allowed = {files_task,
               "Bring the Compose project up",
               "Bound ClickHouse's tables (system log TTLs on tables created before the config, retention)",
               "Expire raw ingestion events in MinIO (never media)"}
    assert set(changed) <= allowed, set(changed) - allowed
    # In the one llmops.devbox.file_set task (its result, printed with -v): the backup folders, ClickHouse's
    # config file and compose.yml (the new mount and label) may change; the env files and the rest may not.
    block = next(b for b in out.split("\nTASK [")[1:] if b.split("]", 1)[0].endswith(files_task))
    files = {dest: flag == "true"
             for flag, dest in re.findall(r"changed: (true|false)\s+checksum: \S+\s+dest: (\S+)", block)}
    folders = {path: flag == "true" for flag, path in re.findall(r"changed: (true|false)\s+path: (\S+)", block)}
    assert any(d.endswith(".env") for d in files), block[:3000]  # the env files were reported, unchanged below
    assert {d for d, flag in files.items() if flag} <= {"/opt/langfuse/clickhouse-config.xml",
                                                        "/opt/langfuse/compose.yml"}, files
    assert files["/opt/langfuse/clickhouse-config.xml"], files
    assert {p for p, flag in folders.items() if flag} <= {"/var/backups/langfuse", "/var/backups/langfuse/.clickhouse"}
    assert "Bound ClickHouse's tables (system log TTLs on tables created before the config, retention)" in changed
    after = {s: b.check_output(f"docker compose --project-directory /opt/langfuse ps -q {s}") for s in ids}
    # ClickHouse is recreated with its config file; Compose recreates the two services that depend on it
    # (stateless); the stateful ones keep running.
    assert {s for s in ids if ids[s] != after[s]} <= {"clickhouse", "langfuse-web", "langfuse-worker"}
    assert ids["clickhouse"] != after["clickhouse"]
    logs = b.check_output(
        "docker exec -e Q=%s " + after["clickhouse"] + " sh -c 'wget -q -O - --header \"X-ClickHouse-User: "
        "$CLICKHOUSE_USER\" --header \"X-ClickHouse-Key: $CLICKHOUSE_PASSWORD\" --post-data \"$Q\" http://127.0.0.1:8123/'",
        "SELECT name, engine_full FROM system.tables WHERE database = 'system' FORMAT JSONEachRow")
    engines = {r["name"]: r["engine_full"] for r in map(json.loads, logs.splitlines())}
    assert "TTL event_date + toIntervalDay(30)" in engines["query_log"], engines
