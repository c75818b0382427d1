"""llmops.devbox.langfuse_backup and langfuse_restore end to end: the modules' real main() against a fake `docker`
first on PATH that logs every call and plays Compose, Postgres, ClickHouse's HTTP interface and MinIO's volume.

The order of the Docker calls is the contract: writers stopped before pg_dump and started again after (also when a
step fails), the manifest written last, a damaged backup refused before Docker is called at all, the MinIO volume
replaced rather than merged. No secret is ever on a Docker command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import time

import pytest

from ansible_collections.llmops.devbox.plugins.module_utils._backup import (
    MANIFEST,
    PARTS,
    describe,
    is_backup_name,
    new_name,
    read_manifest,
    write_manifest,
)
from ansible_collections.llmops.devbox.plugins.module_utils._stack import (
    Stack,
    StackError,
    safe_name,
    sql_string,
    subprocess_run,
)
from ansible_collections.llmops.devbox.plugins.modules import langfuse_backup
from ansible_collections.llmops.devbox.tests.unit.httpserver import run_module

PROJECT = "/opt/langfuse"
NAME = "20261201T203000Z"
VAULT = "$ANSIBLE_VAULT;1.1;AES256\n61626364656667686970\n"
DUMP = b"PGDMP\x01\x0e\x00fake dump of "
TAR = b"data/\x00\x00\x00" + bytes(range(256)) * 8
VOLUME = "langfuse_langfuse_minio_data"
TABLES = ["observations", "traces"]

# The fake docker. Every call is one JSON line in calls.log next to it (argv, and for the calls that read stdin the
# size and SHA-256 of what they read). FAKE_DOCKER_FAIL names a step that exits 1; FAKE_DOCKER_RUNNING the services
# `ps --status running` lists; FAKE_BACKUP_DIR is where ClickHouse's /backups is (backup_dir/.clickhouse).
FAKE = r'''#!{python}
import hashlib, json, os, re, sys

here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
fail = os.environ.get("FAKE_DOCKER_FAIL", "")
entry = {"argv": args}


def log(**extra):
    entry.update(extra)
    with open(os.path.join(here, "calls.log"), "a") as fh:
        fh.write(json.dumps(entry) + "\n")


def out(data=b"", rc=0, err=""):
    sys.stdout.buffer.write(data if isinstance(data, bytes) else data.encode())
    sys.stderr.write(err)
    sys.exit(rc)


def read_stdin():
    data = sys.stdin.buffer.read()
    return {"stdin_bytes": len(data), "stdin_sha256": hashlib.sha256(data).hexdigest()}


if args[:1] == ["compose"]:
    assert args[1] == "--project-directory", args
    sub = args[3:]
    log()
    if sub[:3] == ["ps", "--all", "--quiet"]:
        out("id-%s\n" % sub[3])
    if sub == ["ps", "--status", "running", "--services"]:
        running = os.environ.get("FAKE_DOCKER_RUNNING", "langfuse-web langfuse-worker clickhouse postgres minio")
        out("\n".join(running.split()) + "\n")
    if sub[0] in ("stop", "start", "rm", "create", "up"):
        if fail == sub[0]:
            out(rc=1, err="compose %s failed\n" % sub[0])
        out()
if args[:3] == ["inspect", "--format", "{{.Config.Image}}"]:
    log()
    out("image-of-%s:1.0\n" % args[3])
if args[:3] == ["inspect", "--format", "{{json .Mounts}}"]:
    log()
    out(json.dumps([{"Type": "bind", "Source": "/etc/x", "Destination": "/etc/x"},
                    {"Type": "volume", "Name": @VOLUME@, "Destination": "/data"}]))
if args[:2] == ["exec", "-i"]:
    rest, env = args[2:], {}
    while rest[0] == "-e":
        key, value = rest[1].split("=", 1)
        env[key] = value
        rest = rest[2:]
    container, script = rest[0], rest[3]
    assert rest[1:3] == ["sh", "-c"], rest
    if "exec pg_dump " in script:
        log()
        if fail == "pg_dump":
            out(rc=1, err="pg_dump: error: connection to server failed\n")
        out(@DUMP@ + container.encode())
    if "exec pg_restore " in script:
        log(**read_stdin())
        if fail == "pg_restore":
            out(rc=1, err="pg_restore: error: could not execute query\n")
        out()
    if "exec wget " in script:
        sql = env["LLMOPS_QUERY"]
        staging = os.path.join(os.environ["FAKE_BACKUP_DIR"], ".clickhouse")
        m = re.match(r"BACKUP DATABASE (\w+) TO File\('(.+)'\)$", sql)
        if m:
            log(sql=sql)
            if fail == "BACKUP":
                out(rc=1, err="Code: 318. DB::Exception: Path is not allowed for backups\n")
            if fail != "no-archive":
                with open(os.path.join(staging, m.group(2)), "wb") as fh:
                    fh.write(b"PK\x03\x04clickhouse backup of " + m.group(1).encode())
            out("")
        m = re.match(r"RESTORE DATABASE (\w+) FROM File\('(.+)'\)$", sql)
        if m:
            path = os.path.join(staging, m.group(2))
            st = os.stat(path)
            log(sql=sql, archive_sha256=hashlib.sha256(open(path, "rb").read()).hexdigest(), archive_uid=st.st_uid,
                archive_mode=st.st_mode & 0o777)
            if fail == "RESTORE":
                out(rc=1, err="Code: 598. DB::Exception: RESTORE failed\n")
            out("")
        log(sql=sql)
        if sql.startswith("SHOW TABLES FROM "):
            out("\n".join(@TABLES@) + "\n")
        out("")
if args[:2] == ["cp", "-"]:
    log(**read_stdin())
    out()
if args[:1] == ["cp"] and args[1].endswith(":/data") and args[2] == "-":
    log()
    if fail == "cp-out":
        out(rc=1, err="Error response from daemon: No such container\n")
    out(@TAR@)
if args[:2] == ["volume", "rm"]:
    log()
    out("%s\n" % args[2])
log()
out(rc=2, err="fake docker: unexpected %r\n" % (args,))
'''


@pytest.fixture
def box(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker"
    script.write_text(FAKE.replace("{python}", sys.executable).replace("@VOLUME@", repr(VOLUME))
                      .replace("@DUMP@", repr(DUMP)).replace("@TABLES@", repr(TABLES)).replace("@TAR@", repr(TAR)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    backup_dir = tmp_path / "backups"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}")
    monkeypatch.setenv("FAKE_BACKUP_DIR", str(backup_dir))
    monkeypatch.delenv("FAKE_DOCKER_FAIL", raising=False)
    monkeypatch.delenv("FAKE_DOCKER_RUNNING", raising=False)
    if os.geteuid() != 0:
        # The modules chown ClickHouse's staging folder to its uid: without root, make that a no-op in the module's
        # own process (run_module keeps PYTHONPATH).
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text("import os\nos.chown = lambda *a, **k: None\n")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))

    class Box:
        dir = backup_dir
        log = bindir / "calls.log"

        def entries(self):
            return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

        def calls(self):
            return [short(e) for e in self.entries()]

        def forget(self):
            if self.log.exists():
                self.log.unlink()

    return Box()


def short(entry):
    """One Docker call as a short, readable step."""
    argv = entry["argv"]
    if argv[0] == "compose":
        assert argv[1:3] == ["--project-directory", PROJECT], argv
        sub = argv[3:]
        if sub[:3] == ["ps", "--all", "--quiet"]:
            return "find " + sub[3]
        if sub == ["ps", "--status", "running", "--services"]:
            return "running?"
        return "compose " + " ".join(sub)
    if argv[0] == "inspect":
        return f"inspect {'image' if 'Image' in argv[2] else 'mounts'} {argv[3]}"
    if argv[0] == "exec":
        if "sql" in entry:
            return f"sql {entry['sql']}"
        script = argv[-1]
        tool = "pg_dump" if "exec pg_dump " in script else "pg_restore"
        return f"{tool} {argv[-4]}"
    return " ".join(argv)


def backup(args=None, check_mode=False, **kw):
    return run_module("langfuse_backup", dict({"project_dir": PROJECT, "backup_dir": kw.pop("backup_dir"),
                                               "name": NAME}, **(args or {})), check_mode=check_mode)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


IMAGES = [step for s in ("langfuse-web", "langfuse-worker", "postgres", "clickhouse", "minio")
          for step in (f"find {s}", f"inspect image id-{s}")]
QUIESCED = ["running?", "compose stop langfuse-web langfuse-worker",
            "find postgres", "pg_dump id-postgres",
            "find clickhouse", f"sql BACKUP DATABASE default TO File('{NAME}.zip')",
            "find minio", "cp id-minio:/data -"]
RESTARTED = ["compose start langfuse-web langfuse-worker"]


def assert_no_secret_on_a_command_line(box):
    """Only the query goes in with -e; the scripts name the containers' own variables ($POSTGRES_PASSWORD...) and
    never hold a value; the vault text is never on a command line."""
    for entry in box.entries():
        argv = entry["argv"]
        for i, arg in enumerate(argv):
            if arg == "-e":
                assert argv[i + 1].startswith("LLMOPS_QUERY="), argv
            assert not re.search(r"PASSWORD=(?!\"\$[A-Z_]+\")", arg), argv
            assert not re.search(r"(KEY|PASSWORD|SECRET)[^ ]*: (?!\$[A-Z_]+\")", arg), argv
            assert "ANSIBLE_VAULT" not in arg and "6162636465" not in arg, argv


# --- langfuse_backup ---------------------------------------------------------------------------


def test_backup_takes_every_part_quiesced_and_writes_the_manifest_last(box):
    rc, result = backup({"secrets_vault": VAULT, "labels": {"host": "box1", "probe_trace_id": "t-1"}},
                        backup_dir=str(box.dir))
    assert rc == 0, result
    assert box.calls() == IMAGES + QUIESCED + RESTARTED
    folder = box.dir / NAME
    names = ["postgres.dump", "clickhouse.zip", "minio.tar", "secrets.json.vault"]
    assert sorted(os.listdir(folder)) == sorted(names + [MANIFEST])
    assert (folder / "postgres.dump").read_bytes() == DUMP + b"id-postgres"
    assert (folder / "clickhouse.zip").read_bytes() == b"PK\x03\x04clickhouse backup of default"
    assert (folder / "minio.tar").read_bytes() == TAR
    assert (folder / "secrets.json.vault").read_text() == VAULT
    # The archive was moved out of ClickHouse's staging folder, which stays ClickHouse's and private.
    staging = box.dir / ".clickhouse"
    assert os.listdir(staging) == []
    assert stat.S_IMODE(staging.stat().st_mode) == 0o700
    if os.geteuid() == 0:
        assert staging.stat().st_uid == 101
        assert (folder / "clickhouse.zip").stat().st_uid == 0
    for path in (box.dir, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for name in names + [MANIFEST]:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    # Written last: no part is newer than the manifest.
    manifest_time = (folder / MANIFEST).stat().st_mtime_ns
    assert all((folder / n).stat().st_mtime_ns <= manifest_time for n in names)

    manifest = read_manifest(str(folder))
    assert manifest["files"] == [{"name": n, "bytes": (folder / n).stat().st_size, "sha256": sha(folder / n),
                                  "what": PARTS[n]} for n in names]
    assert manifest["name"] == NAME and manifest["labels"] == {"host": "box1", "probe_trace_id": "t-1"}
    assert manifest["clickhouse_database"] == "default"
    assert manifest["images"] == {s: f"image-of-id-{s}:1.0"
                                  for s in ("langfuse-web", "langfuse-worker", "postgres", "clickhouse", "minio")}
    assert manifest["started"].endswith("Z") and isinstance(manifest["seconds"], float)

    assert result["changed"] is True
    assert result["name"] == NAME and result["path"] == str(folder)
    assert result["files"] == manifest["files"]
    # The result's manifest is the file's, less the format marker write_manifest adds.
    assert dict(result["manifest"], format=1) == manifest
    assert result["bytes"] == sum(f["bytes"] for f in manifest["files"]) > len(TAR)
    assert isinstance(result["seconds"], float) and result["seconds"] >= 0
    assert isinstance(result["quiesced_seconds"], float) and 0 <= result["quiesced_seconds"] <= result["seconds"] + 1
    assert result["removed"] == []
    assert_no_secret_on_a_command_line(box)


def test_backup_without_secrets_or_name(box):
    started = time.time()
    rc, result = run_module("langfuse_backup", {"project_dir": PROJECT, "backup_dir": str(box.dir)})
    assert rc == 0, result
    assert is_backup_name(result["name"]) and new_name(started - 5) <= result["name"] <= new_name(time.time() + 5)
    assert result["path"] == str(box.dir / result["name"])
    assert [f["name"] for f in result["files"]] == ["postgres.dump", "clickhouse.zip", "minio.tar"]
    assert sorted(os.listdir(box.dir / result["name"])) == sorted(["postgres.dump", "clickhouse.zip", "minio.tar",
                                                                   MANIFEST])
    assert f"sql BACKUP DATABASE default TO File('{result['name']}.zip')" in box.calls()


def make_complete(folder, content=b"x"):
    folder.mkdir(parents=True)
    (folder / "postgres.dump").write_bytes(content)
    write_manifest(str(folder), {"name": folder.name, "files": describe(str(folder), ["postgres.dump"])})


def test_backup_applies_retention_after_it_completed(box):
    older = ["20200101T000000Z", "20200102T000000Z", "20200103T000000Z", "20200104T000000Z"]
    for name in older:
        make_complete(box.dir / name)
    (box.dir / "20200103T120000Z").mkdir()  # interrupted, older than the newest complete
    (box.dir / "pre-upgrade").mkdir()  # not a backup name: never touched
    make_complete(box.dir / "manual")
    rc, result = backup({"keep": 3}, backup_dir=str(box.dir))
    assert rc == 0, result
    # keep counts this backup: it and the two newest older complete ones stay; the interrupted one goes.
    assert result["removed"] == ["20200101T000000Z", "20200102T000000Z", "20200103T120000Z"]
    assert sorted(os.listdir(box.dir)) == [".clickhouse", "20200103T000000Z", "20200104T000000Z", NAME, "manual",
                                           "pre-upgrade"]


def test_backup_keep_zero_keeps_every_backup(box):
    for name in ("20200101T000000Z", "20200102T000000Z"):
        make_complete(box.dir / name)
    rc, result = backup({"keep": 0}, backup_dir=str(box.dir))
    assert rc == 0, result
    assert result["removed"] == []
    assert sorted(os.listdir(box.dir)) == [".clickhouse", "20200101T000000Z", "20200102T000000Z", NAME]


def test_backup_retention_never_removes_the_backup_just_taken_even_if_older(box):
    make_complete(box.dir / "20300101T000000Z")
    rc, result = backup({"keep": 1, "name": "20200101T000000Z"}, backup_dir=str(box.dir))
    assert rc == 0, result
    assert result["removed"] == []
    assert (box.dir / "20200101T000000Z" / MANIFEST).exists()


def test_backup_starts_the_writers_again_when_pg_dump_fails(box, monkeypatch):
    make_complete(box.dir / "20200101T000000Z")
    (box.dir / "20200102T000000Z").mkdir()
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "pg_dump")
    rc, result = backup({"keep": 1, "secrets_vault": VAULT}, backup_dir=str(box.dir))
    assert rc == 1 and result["failed"] is True
    assert box.calls() == IMAGES + ["running?", "compose stop langfuse-web langfuse-worker", "find postgres",
                                    "pg_dump id-postgres"] + RESTARTED
    assert result["msg"].startswith(f"Backup {NAME} failed: dumping the Langfuse Postgres failed (exit 1): "
                                    "pg_dump: error: connection to server failed. Nothing was removed")
    assert result["name"] == NAME and result["path"] == str(box.dir / NAME)
    folder = box.dir / NAME
    assert not (folder / MANIFEST).exists() and read_manifest(str(folder)) is None
    assert "secrets.json.vault" not in os.listdir(folder)
    # Retention did not run: the interrupted and the surplus backups are still there.
    assert sorted(os.listdir(box.dir)) == [".clickhouse", "20200101T000000Z", "20200102T000000Z", NAME]


@pytest.mark.parametrize("fail,step,message", [
    ("BACKUP", f"sql BACKUP DATABASE default TO File('{NAME}.zip')", "ClickHouse BACKUP (is backup_dir/.clickhouse"),
    ("no-archive", f"sql BACKUP DATABASE default TO File('{NAME}.zip')", "ClickHouse reported its backup done but"),
    ("cp-out", "cp id-minio:/data -", "copying MinIO's /data failed (exit 1)"),
])
def test_backup_starts_the_writers_again_when_a_later_step_fails(box, monkeypatch, fail, step, message):
    monkeypatch.setenv("FAKE_DOCKER_FAIL", fail)
    rc, result = backup(backup_dir=str(box.dir))
    assert rc == 1
    calls = box.calls()
    assert calls == IMAGES + QUIESCED[:QUIESCED.index(step) + 1] + RESTARTED
    assert message in result["msg"]
    assert not (box.dir / NAME / MANIFEST).exists()


def test_backup_starts_only_the_writers_that_ran(box, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_RUNNING", "langfuse-worker postgres")
    rc, result = backup(backup_dir=str(box.dir))
    assert rc == 0, result
    calls = box.calls()
    assert "compose stop langfuse-worker" in calls and "compose start langfuse-worker" in calls
    assert calls.index("compose stop langfuse-worker") < calls.index("pg_dump id-postgres") < \
        calls.index("compose start langfuse-worker")


def test_backup_with_no_writer_running_stops_and_starts_nothing(box, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_RUNNING", "postgres clickhouse minio")
    rc, result = backup(backup_dir=str(box.dir))
    assert rc == 0, result
    assert not any(c.startswith(("compose stop", "compose start")) for c in box.calls())


def test_backup_without_quiesce(box):
    rc, result = backup({"quiesce": False}, backup_dir=str(box.dir))
    assert rc == 0, result
    assert box.calls() == IMAGES + QUIESCED[2:]


def test_backup_of_the_litellm_postgres_too(box):
    rc, result = backup({"litellm_postgres_container": "litellm-postgres", "secrets_vault": VAULT},
                        backup_dir=str(box.dir))
    assert rc == 0, result
    assert box.calls() == IMAGES + QUIESCED + ["pg_dump litellm-postgres"] + RESTARTED
    assert [f["name"] for f in result["files"]] == ["postgres.dump", "clickhouse.zip", "minio.tar",
                                                     "litellm-postgres.dump", "secrets.json.vault"]
    assert (box.dir / NAME / "litellm-postgres.dump").read_bytes() == DUMP + b"litellm-postgres"
    assert_no_secret_on_a_command_line(box)


def test_backup_of_another_clickhouse_database(box):
    rc, result = backup({"clickhouse_database": "langfuse"}, backup_dir=str(box.dir))
    assert rc == 0, result
    assert f"sql BACKUP DATABASE langfuse TO File('{NAME}.zip')" in box.calls()
    assert result["manifest"]["clickhouse_database"] == "langfuse"


@pytest.mark.parametrize("vault", ["ENCRYPTION_KEY=abc", '{"/etc/langfuse/env": {"content": "eA=="}}',
                                   " $ANSIBLE_VAULT;1.1;AES256"])
def test_backup_refuses_plain_text_secrets(box, vault):
    rc, result = backup({"secrets_vault": vault}, backup_dir=str(box.dir))
    assert rc == 1
    assert result["msg"].startswith("secrets_vault must be Ansible Vault text ($ANSIBLE_VAULT;...)")
    assert vault not in result["msg"]
    assert box.calls() == [] and not box.dir.exists()


def test_backup_refusal_does_not_echo_the_plain_text(box):
    rc, result = backup({"secrets_vault": "ENCRYPTION_KEY=abc"}, backup_dir=str(box.dir))
    assert rc == 1
    assert "ENCRYPTION_KEY=abc" not in json.dumps(result)


def test_backup_without_docker_fails_cleanly(box, monkeypatch):
    monkeypatch.setenv("PATH", str(box.dir.parent / "nowhere"))
    rc, result = backup(backup_dir=str(box.dir))
    assert rc == 1 and "docker" in result["msg"]


def test_backup_check_mode_changes_nothing(box):
    rc, result = backup({"secrets_vault": VAULT}, check_mode=True, backup_dir=str(box.dir))
    assert rc == 0, result
    assert result["changed"] is True and result["name"] == NAME and result["path"] == str(box.dir / NAME)
    assert "files" not in result and "manifest" not in result
    assert box.calls() == [] and not box.dir.exists()


def test_backup_refuses_an_existing_folder(box):
    (box.dir / NAME).mkdir(parents=True)
    rc, result = backup(backup_dir=str(box.dir))
    assert rc == 1 and result["msg"] == f"{box.dir / NAME} exists already: choose another name"
    assert box.calls() == [] and os.listdir(box.dir / NAME) == []


@pytest.mark.parametrize("args,msg", [
    ({"name": "../etc"}, "name '../etc' may only hold letters, digits and . _ : -"),
    ({"name": "a b"}, "name 'a b' may only hold"),
    ({"clickhouse_database": "default TO Disk('x')"}, "clickhouse_database"),
    ({"litellm_postgres_container": "x; rm -rf /"}, "litellm_postgres_container"),
    ({"keep": -1}, "keep must be 0 (keep all) or more"),
])
def test_backup_refuses_bad_arguments_before_docker(box, args, msg):
    rc, result = backup(args, backup_dir=str(box.dir))
    assert rc == 1 and msg in result["msg"]
    assert box.calls() == [] and not box.dir.exists()


# --- take(), with an in-process fake Stack ---------------------------------------------------------


def test_take_restarts_the_writers_even_on_an_unexpected_error(tmp_path):
    calls = []

    class Stack:
        def running(self, services):
            calls.append(("running", tuple(services)))
            return ["langfuse-web"]

        def stop(self, services):
            calls.append(("stop", tuple(services)))

        def start(self, services):
            calls.append(("start", tuple(services)))

        def container(self, service):
            return "id-" + service

        def pg(self, *args, **kw):
            raise KeyboardInterrupt

    params = {"backup_dir": str(tmp_path), "quiesce": True, "clickhouse_database": "default",
              "clickhouse_mount": "/backups", "litellm_postgres_container": ""}
    with pytest.raises(KeyboardInterrupt):
        langfuse_backup.take(Stack(), params, str(tmp_path), NAME)
    assert calls == [("running", ("langfuse-web", "langfuse-worker")), ("stop", ("langfuse-web",)),
                     ("start", ("langfuse-web",))]


# --- langfuse_restore --------------------------------------------------------------------------


def make_backup(backup_dir, name=NAME, litellm=False, database=None, parts=None):
    folder = backup_dir / name
    folder.mkdir(parents=True)
    content = {"postgres.dump": DUMP + b"id-postgres", "clickhouse.zip": b"PK\x03\x04clickhouse backup of default",
               "minio.tar": TAR, "secrets.json.vault": VAULT.encode()}
    if litellm:
        content["litellm-postgres.dump"] = DUMP + b"litellm-postgres"
    for part in parts or content:
        (folder / part).write_bytes(content[part])
    manifest = {"name": name, "files": describe(str(folder), list(parts or content))}
    if database:
        manifest["clickhouse_database"] = database
    write_manifest(str(folder), manifest)
    return folder


def restore(box, args=None, check_mode=False):
    return run_module("langfuse_restore", dict({"project_dir": PROJECT, "backup_dir": str(box.dir), "name": NAME},
                                               **(args or {})), check_mode=check_mode)


def restore_steps(database="default", tables=TABLES):
    return (["compose stop langfuse-web langfuse-worker", "find postgres", "pg_restore id-postgres",
             "find clickhouse", f"sql SHOW TABLES FROM {database}"]
            + [s for t in tables for s in ("find clickhouse", f"sql DROP TABLE IF EXISTS {database}.`{t}` SYNC")]
            + ["find clickhouse", f"sql RESTORE DATABASE {database} FROM File('{NAME}.restore.zip')",
               "find minio", "inspect mounts id-minio", "compose rm --stop --force minio", f"volume rm {VOLUME}",
               "compose create minio", "find minio", "cp - id-minio:/"])


def test_restore_replaces_every_part_then_starts_the_project(box):
    folder = make_backup(box.dir)
    rc, result = restore(box)
    assert rc == 0, result
    assert box.calls() == restore_steps() + ["compose up --detach"]
    assert result["changed"] is True and result["name"] == NAME
    assert result["restored"] == ["postgres.dump", "clickhouse.zip", "minio.tar"]
    assert result["skipped"] == []
    assert isinstance(result["seconds"], float)
    assert result["manifest"] == read_manifest(str(folder))
    by_step = {short(e): e for e in box.entries()}
    # Each part went in as it is in the backup.
    assert by_step["pg_restore id-postgres"]["stdin_sha256"] == sha(folder / "postgres.dump")
    assert by_step["cp - id-minio:/"]["stdin_sha256"] == sha(folder / "minio.tar")
    ch = by_step[f"sql RESTORE DATABASE default FROM File('{NAME}.restore.zip')"]
    assert ch["archive_sha256"] == sha(folder / "clickhouse.zip") and ch["archive_mode"] == 0o600
    if os.geteuid() == 0:
        assert ch["archive_uid"] == 101
    # pg_restore replaces in one transaction; the staged archive is gone; the backup is untouched.
    script = by_step["pg_restore id-postgres"]["argv"][-1]
    assert "--clean --if-exists --no-owner --single-transaction --exit-on-error" in script
    assert os.listdir(box.dir / ".clickhouse") == []
    assert read_manifest(str(folder)) is not None and sorted(os.listdir(folder)) == sorted(
        ["postgres.dump", "clickhouse.zip", "minio.tar", "secrets.json.vault", MANIFEST])
    assert_no_secret_on_a_command_line(box)


def test_restore_drops_every_table_before_restore_and_replaces_the_volume_before_cp(box):
    make_backup(box.dir)
    rc, result = restore(box)
    assert rc == 0, result
    calls = box.calls()
    restore_at = calls.index(f"sql RESTORE DATABASE default FROM File('{NAME}.restore.zip')")
    assert all(calls.index(f"sql DROP TABLE IF EXISTS default.`{t}` SYNC") < restore_at for t in TABLES)
    order = ["compose rm --stop --force minio", f"volume rm {VOLUME}", "compose create minio", "cp - id-minio:/",
             "compose up --detach"]
    assert [calls.index(s) for s in order] == sorted(calls.index(s) for s in order)
    assert calls.index("compose stop langfuse-web langfuse-worker") == 0
    assert calls[-1] == "compose up --detach"


def test_restore_into_the_database_the_manifest_names(box):
    make_backup(box.dir, database="langfuse")
    rc, result = restore(box)
    assert rc == 0, result
    assert box.calls() == restore_steps(database="langfuse") + ["compose up --detach"]


def test_restore_skips_the_litellm_dump_with_a_reason_when_no_container_is_given(box):
    make_backup(box.dir, litellm=True)
    rc, result = restore(box)
    assert rc == 0, result
    assert box.calls() == restore_steps() + ["compose up --detach"]
    assert result["restored"] == ["postgres.dump", "clickhouse.zip", "minio.tar"]
    (reason,) = result["skipped"]
    assert reason.startswith("litellm-postgres.dump: no LiteLLM Postgres container on this box")


def test_restore_the_litellm_dump_into_its_container(box):
    folder = make_backup(box.dir, litellm=True)
    rc, result = restore(box, {"litellm_postgres_container": "litellm-postgres"})
    assert rc == 0, result
    assert box.calls() == restore_steps() + ["pg_restore litellm-postgres", "compose up --detach"]
    assert result["restored"] == ["postgres.dump", "clickhouse.zip", "minio.tar", "litellm-postgres.dump"]
    assert result["skipped"] == []
    entry = [e for e in box.entries() if short(e) == "pg_restore litellm-postgres"][0]
    assert entry["stdin_sha256"] == sha(folder / "litellm-postgres.dump")


def test_restore_without_a_litellm_dump_ignores_the_container(box):
    make_backup(box.dir)
    rc, result = restore(box, {"litellm_postgres_container": "litellm-postgres"})
    assert rc == 0, result
    assert "pg_restore litellm-postgres" not in box.calls()
    assert result["skipped"] == []


@pytest.mark.parametrize("damage,problem", [
    (lambda f: (f / "minio.tar").write_bytes(TAR[:-1] + b"!"), "minio.tar differs from the manifest (size or SHA-256)"),
    (lambda f: (f / "postgres.dump").write_bytes(b"short"), "postgres.dump differs from the manifest"),
    (lambda f: (f / "clickhouse.zip").unlink(), "clickhouse.zip is missing"),
    (lambda f: (f / "secrets.json.vault").write_text(VAULT.replace("6", "7")), "secrets.json.vault differs"),
])
def test_restore_refuses_a_damaged_backup_before_calling_docker(box, damage, problem):
    folder = make_backup(box.dir)
    damage(folder)
    rc, result = restore(box)
    assert rc == 1 and result["changed"] is False
    assert result["msg"].startswith(f"Backup {NAME} is damaged, nothing was touched: ")
    assert problem in result["msg"]
    assert box.calls() == []
    assert not (box.dir / ".clickhouse").exists()


def test_restore_refuses_a_damaged_backup_in_check_mode_too(box):
    folder = make_backup(box.dir)
    (folder / "minio.tar").write_bytes(b"")
    rc, result = restore(box, check_mode=True)
    assert rc == 1 and "is damaged" in result["msg"]
    assert box.calls() == []


def test_restore_refuses_an_incomplete_backup(box):
    (box.dir / NAME).mkdir(parents=True)
    (box.dir / NAME / "postgres.dump").write_bytes(b"x")
    rc, result = restore(box)
    assert rc == 1
    assert result["msg"] == (f"{box.dir / NAME} has no manifest.json: the backup is incomplete (or not copied to this "
                             "box) and cannot be restored")
    assert box.calls() == []


def test_restore_refuses_a_manifest_not_ours(box):
    (box.dir / NAME).mkdir(parents=True)
    (box.dir / NAME / MANIFEST).write_text('{"format": 99, "files": []}')
    rc, result = restore(box)
    assert rc == 1 and "is not a llmops.devbox backup manifest" in result["msg"]
    assert box.calls() == []


def test_restore_refuses_a_backup_lacking_a_part(box):
    make_backup(box.dir, parts=["postgres.dump", "clickhouse.zip"])
    rc, result = restore(box)
    assert rc == 1 and result["msg"] == f"Backup {NAME} lacks minio.tar"
    assert box.calls() == []


@pytest.mark.parametrize("name", ["../x", "a/b", "x y", ""])
def test_restore_refuses_a_name_that_is_not_a_token(box, name):
    rc, result = restore(box, {"name": name})
    assert rc == 1 and "may only hold letters" in result["msg"]
    assert box.calls() == []


def test_restore_check_mode_verifies_and_changes_nothing(box):
    folder = make_backup(box.dir)
    rc, result = restore(box, check_mode=True)
    assert rc == 0, result
    assert result["changed"] is True and result["manifest"] == read_manifest(str(folder))
    assert "restored" not in result
    assert box.calls() == []


@pytest.mark.parametrize("fail,last,restored", [
    ("pg_restore", "pg_restore id-postgres", []),
    ("RESTORE", f"sql RESTORE DATABASE default FROM File('{NAME}.restore.zip')", ["postgres.dump"]),
])
def test_restore_stops_at_a_failing_step_and_says_how_far_it_got(box, monkeypatch, fail, last, restored):
    make_backup(box.dir)
    monkeypatch.setenv("FAKE_DOCKER_FAIL", fail)
    rc, result = restore(box)
    assert rc == 1
    steps = restore_steps()
    assert box.calls() == steps[:steps.index(last) + 1]
    assert result["restored"] == restored
    assert result["msg"].startswith(f"Restore of {NAME} failed after {', '.join(restored) or 'nothing'}: ")
    assert "rerun the restore" in result["msg"]
    # The staged ClickHouse archive is cleaned up whatever happened.
    assert not (box.dir / ".clickhouse").exists() or os.listdir(box.dir / ".clickhouse") == []


def test_backup_then_restore_round_trip(box):
    rc, taken = backup({"secrets_vault": VAULT, "litellm_postgres_container": "litellm-postgres"},
                       backup_dir=str(box.dir))
    assert rc == 0, taken
    box.forget()
    rc, result = restore(box, {"litellm_postgres_container": "litellm-postgres"})
    assert rc == 0, result
    assert result["manifest"] == dict(taken["manifest"], format=1)
    assert result["restored"] == ["postgres.dump", "clickhouse.zip", "minio.tar", "litellm-postgres.dump"]
    assert_no_secret_on_a_command_line(box)


# --- the Stack itself, with an injected runner -------------------------------------------------------


class Runner:
    """run(argv, data=None, stdin_path=None, stdout_path=None) answering from a list of (rc, out, err)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, argv, data=None, stdin_path=None, stdout_path=None):
        self.calls.append((argv, data, stdin_path, stdout_path))
        return self.answers.pop(0) if self.answers else (0, "", "")


def test_stack_container_and_a_missing_one():
    run = Runner((0, "abc123\ndef456\n", ""), (0, "\n", ""))
    stack = Stack(PROJECT, run=run)
    assert stack.container("postgres") == "abc123"
    with pytest.raises(StackError, match=f"the Compose project in {PROJECT} has no minio container: deploy it first"):
        stack.container("minio")
    assert run.calls[0][0] == ["docker", "compose", "--project-directory", PROJECT, "ps", "--all", "--quiet",
                               "postgres"]


def test_stack_running_stop_and_start():
    run = Runner((0, "postgres\nlangfuse-worker\n", ""))
    stack = Stack(PROJECT, run=run)
    assert stack.running(["langfuse-web", "langfuse-worker"]) == ["langfuse-worker"]
    stack.stop([])
    stack.start([])
    assert len(run.calls) == 1, "nothing to stop or start: no docker call"


def test_stack_a_failing_step_says_which_with_the_tail_of_its_output():
    stack = Stack(PROJECT, run=Runner((1, "", "x" * 1000 + "the end\n")))
    with pytest.raises(StackError) as err:
        stack.stop(["langfuse-web"])
    assert str(err.value).startswith("docker compose stop langfuse-web failed (exit 1): x")
    assert str(err.value).endswith("the end") and len(str(err.value)) < 700


def test_stack_volume():
    mounts = json.dumps([{"Destination": "/data", "Type": "bind", "Source": "/srv"},
                         {"Destination": "/data", "Name": "vol1"}])
    stack = Stack(PROJECT, run=Runner((0, "id-minio", ""), (0, mounts, "")))
    assert stack.volume("minio", "/data") == "vol1"
    stack = Stack(PROJECT, run=Runner((0, "id-minio", ""), (0, "[]", "")))
    with pytest.raises(StackError, match="the minio container has no named volume at /data"):
        stack.volume("minio", "/data")


def test_stack_clickhouse_passes_the_query_in_the_environment_and_names_it_on_failure():
    run = Runner((0, "id-ch\n", ""), (0, "1\n", ""), (0, "id-ch\n", ""), (1, "", "Code: 62. Syntax error"))
    stack = Stack(PROJECT, run=run)
    assert stack.clickhouse("SELECT 1") == "1\n"
    argv = run.calls[1][0]
    assert argv[:6] == ["docker", "exec", "-i", "-e", "LLMOPS_QUERY=SELECT 1", "id-ch"]
    assert argv[6:8] == ["sh", "-c"] and '"X-ClickHouse-Key: $CLICKHOUSE_PASSWORD"' in argv[8]
    with pytest.raises(StackError) as err:
        stack.clickhouse("SELEC 1", "a query")
    assert str(err.value) == "a query failed (exit 1): Code: 62. Syntax error [query: SELEC 1]"


def test_stack_pg_streams_through_files():
    run = Runner()
    Stack(PROJECT, run=run).pg("pg1", "pg_dump", "-Fc", "dump", stdout_path="/b/postgres.dump")
    argv, data, stdin_path, stdout_path = run.calls[0]
    assert argv[:4] == ["docker", "exec", "-i", "pg1"] and stdout_path == "/b/postgres.dump" and stdin_path is None
    assert argv[-1] == ('PGPASSWORD="$POSTGRES_PASSWORD" exec pg_dump -h 127.0.0.1 -U "$POSTGRES_USER" '
                        '-d "$POSTGRES_DB" -Fc')


def test_stack_mc_returns_what_mc_said():
    run = Runner((0, "id-minio\n", ""), (1, '{"status": "error"}', ""))
    assert Stack(PROJECT, run=run).mc("ilm rule export local/x", "x", data="{}") == (1, '{"status": "error"}', "")
    assert run.calls[1][1] == "{}"


def test_subprocess_run_with_files(tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"hello\x00world")
    dest = tmp_path / "out"
    assert subprocess_run(["cat"], stdin_path=str(src), stdout_path=str(dest)) == (0, "", "")
    assert dest.read_bytes() == b"hello\x00world"
    assert subprocess_run(["cat"], data="abc") == (0, "abc", "")
    rc, out, err = subprocess_run(["sh", "-c", "echo oops >&2; exit 3"])
    assert (rc, out, err) == (3, "", "oops\n")


@pytest.mark.parametrize("value,literal", [
    ("traces", "'traces'"), ("it's", "'it\\'s'"), ("a\\b", "'a\\\\b'"), ("\\'", "'\\\\\\''"), (7, "'7'"),
])
def test_sql_string(value, literal):
    assert sql_string(value) == literal


@pytest.mark.parametrize("value", ["default", "20261201T203000Z", "litellm-postgres", "a.b:c_d", ".inner_id.x-1"])
def test_safe_name_passes_plain_tokens(value):
    assert safe_name(value, "name") == value


@pytest.mark.parametrize("value", ["", None, "a b", "a/b", "a;b", "a'b", "$(id)", "`id`", "a\nb",
                                   pytest.param("default\n")])
def test_safe_name_refuses_anything_else(value):
    with pytest.raises(StackError, match="may only hold letters, digits and . _ : -"):
        safe_name(value, "name")


# --- postgres_backup (the litellm role's dump before a new image migrates its database) ------------------------

def pg_backup(box, check_mode=False, **args):
    _rc, result = run_module("postgres_backup", dict({"container": "litellm-postgres", "backup_dir": str(box.dir),
                                                      "file": "litellm-postgres.dump", "name": NAME}, **args),
                             check_mode=check_mode)
    return result


def test_postgres_backup_dumps_the_named_container_and_writes_the_manifest_last(box):
    result = pg_backup(box, labels={"reason": "upgrade", "to": "llmops-test/litellm:1.108.8"})
    assert result["changed"] and not result.get("failed"), result
    assert box.calls() == ["pg_dump litellm-postgres"]
    folder = box.dir / NAME
    dump = folder / "litellm-postgres.dump"
    assert dump.read_bytes().startswith(DUMP) and stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    manifest = read_manifest(str(folder))
    assert manifest["labels"]["to"] == "llmops-test/litellm:1.108.8" and manifest["container"] == "litellm-postgres"
    assert manifest["files"][0]["sha256"] == sha(dump) and result["bytes"] == dump.stat().st_size
    assert_no_secret_on_a_command_line(box)


def test_postgres_backup_failure_leaves_no_manifest_and_says_what_to_check(box, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "pg_dump")
    result = pg_backup(box)
    assert result.get("failed") and "Check that litellm-postgres runs" in result["msg"]
    assert not (box.dir / NAME / MANIFEST).exists()


def test_postgres_backup_keeps_the_newest(box):
    for old in ("20261101T000000Z", "20261102T000000Z"):
        make_complete(box.dir / old)
    result = pg_backup(box, keep=2)
    assert result["removed"] == ["20261101T000000Z"]
    assert sorted(p.name for p in box.dir.iterdir()) == ["20261102T000000Z", NAME]


def test_postgres_backup_check_mode_and_bad_names_change_nothing(box):
    assert pg_backup(box, check_mode=True)["changed"] and not box.dir.exists() and box.calls() == []
    assert "may only hold" in pg_backup(box, container="x; rm -rf /")["msg"] and box.calls() == []
