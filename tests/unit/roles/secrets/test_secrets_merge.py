"""The roles' secrets (llmops.devbox.secret_file), run for real: stored secrets are kept, only missing
ones are generated, and a value the user supplies wins over a generated one; it replaces a stored one
only when its rotation is asked for (otherwise the run fails, naming the secret). While the data
volumes exist, a lost secrets file fails the run with how to restore it instead of generating new
secrets, and a rotated database password is changed inside the database before it goes live.

One ansible-playbook run (tests/unit/roles/secrets/secrets_playbook.yml, connection local) runs the
secret tasks of the langfuse and litellm roles (tasks/secrets.yml) and the password tasks of the
code_server role (tasks/configure.yml) for made-up hosts, each with its secrets directory in a tmp
folder, some with secrets stored there beforehand. A second run over the same folders must settle on
exactly the same values. The tasks are the role's own, copied from the role file (owner/group are
dropped when the tests do not run as root, who alone can chown to root). The docker CLI is a fake
first on PATH: per host it lists the volumes the case says exist, says whether the database runs,
and logs every call (with the SQL sent to psql) so the test can see what the role asked of Docker.
"""

from __future__ import annotations

import getpass
import grp
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
ROLES = ROOT / "roles"

# Stored before the first run (made-up values in the format the roles generate).
LF_SALT = "StoredSalt" + "s" * 38
LF_ENCRYPTION_KEY = "ab" * 32
LF_REDIS_STORED = "StoredRedisPassw0rdStoredRedisPw"
LF_REDIS_SUPPLIED = "SuppliedRedisPassword"
LF_ADMIN_SUPPLIED = "SuppliedAdminPassword"
LF_POSTGRES_STORED = "StoredPostgresPassw0rdStoredPgPw"
LF_FULL = {"salt": LF_SALT, "encryption_key": LF_ENCRYPTION_KEY, "nextauth_secret": "StoredNextauth" + "n" * 34,
           "postgres_password": LF_POSTGRES_STORED, "clickhouse_password": "StoredClickhousePassw0rdStoredCh",
           "redis_password": LF_REDIS_STORED, "minio_password": "StoredMinioPassw0rdStoredMinioPw",
           "admin_password": "StoredAdminPassw0rdAdmin"}
LF_VOLUMES = " ".join(f"langfuse_{v}" for v in ("postgres_data", "clickhouse_data", "clickhouse_logs", "redis_data",
                                                   "minio_data"))
LL_MASTER = "sk-" + "3c" * 32
LL_SALT = "sk-" + "4d" * 32
LL_POSTGRES_STORED = "StoredLitellmPassw0rdStoredLlmPw"
LL_VOLUMES = "litellm_postgres"
CS_STORED = "StoredCodeServerPassw0rd"
CS_SUPPLIED = "Supplied-Code-Server-1"

ALNUM = "[A-Za-z0-9]"
LANGFUSE_FORMATS = {
    "salt": f"{ALNUM}{{48}}", "encryption_key": "[0-9a-f]{64}", "nextauth_secret": f"{ALNUM}{{48}}",
    "postgres_password": f"{ALNUM}{{32}}", "clickhouse_password": f"{ALNUM}{{32}}",
    "redis_password": f"{ALNUM}{{32}}", "minio_password": f"{ALNUM}{{32}}", "admin_password": f"{ALNUM}{{24}}",
}
LITELLM_FORMATS = {"master_key": "sk-[0-9a-f]{64}", "salt_key": "sk-[0-9a-f]{64}",
                   "postgres_password": f"{ALNUM}{{32}}", "connection_key": "sk-[0-9a-f]{64}"}
CODE_SERVER_TASKS = ["Keep the generated password on the box", "Settle the login password"]

FAKE_DOCKER = """#!/bin/sh
# Stand-in for the docker CLI (tests/unit/roles/secrets): volumes from $FAKE_DOCKER_VOLUMES, a running
# database when $FAKE_DOCKER_RUNNING is set, psql's exit code from $FAKE_DOCKER_EXEC_RC; logs each call.
log=${FAKE_DOCKER_LOG:-/dev/null}
echo "docker $*" >>"$log"
case "$1 $2" in
  "volume ls") for v in ${FAKE_DOCKER_VOLUMES:-}; do echo "$v"; done ;;
  "compose ps") if [ -n "${FAKE_DOCKER_RUNNING:-}" ]; then echo 0123456789ab; fi ;;
  "compose exec") printf 'stdin: %s\\n' "$(cat)" >>"$log"; exit "${FAKE_DOCKER_EXEC_RC:-0}" ;;
  *) echo "fake docker: unexpected call: $*" >&2; exit 1 ;;
esac
exit 0
"""


class _RoleLoader(yaml.SafeLoader):
    """Reads role variable files; their !unsafe values are never passed on (see role_vars)."""


_RoleLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def role_vars(role, names=()):
    """The role's defaults plus the named role vars the tasks need (as include_role sees them)."""
    defaults = yaml.load((ROLES / role / "defaults" / "main.yml").read_text(), Loader=_RoleLoader) or {}  # noqa: S506
    variables = yaml.load((ROLES / role / "vars" / "main.yml").read_text(), Loader=_RoleLoader) or {}  # noqa: S506
    return {**defaults, **{name: variables[name] for name in names}}


def _drop_owner(tasks):
    for task in tasks:
        for key, args in task.items():
            if key in ("block", "rescue", "always") and isinstance(args, list):
                _drop_owner(args)
            elif isinstance(args, dict):
                args.pop("owner", None)
                args.pop("group", None)


def copy_tasks(role, tasks_file, dest, names=None):
    """Copy the role's tasks (only those named, in the role's order) to dest."""
    tasks = yaml.safe_load((ROLES / role / "tasks" / tasks_file).read_text())
    if names:
        tasks = [t for t in tasks if t.get("name") in names]
        assert [t["name"] for t in tasks] == names, f"roles/{role}/tasks/{tasks_file} no longer has {names}"
    if os.geteuid() != 0:
        _drop_owner(tasks)
    dest.write_text(yaml.safe_dump(tasks, sort_keys=False))
    return str(dest)


def run_playbook(inventory_file, bin_dir):
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory_file),
         str(HERE / "secrets_playbook.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_LOCALHOST_WARNING": "false",
             "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(inventory_file.parent)},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = inventory_file.parent / "out"
    results = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    errors = {p.stem: p.read_text() for p in out.glob("*.error")}
    for p in list(out.iterdir()):
        p.unlink()
    return {"results": results, "errors": errors, "output": proc.stdout + proc.stderr}


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def store(directory, files):
    directory.mkdir(mode=0o700)
    for name, content in files.items():
        (directory / name).write_text(content if isinstance(content, str) else json.dumps(content))
        (directory / name).chmod(0o600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """first and second run ({results, errors, output}), the per-host directories and docker logs."""
    top = tmp_path_factory.mktemp("secrets")
    (top / "out").mkdir()
    (top / "opt").mkdir()  # the Compose project directory the role runs `docker compose` in
    bin_dir = top / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    lf_tasks = copy_tasks("langfuse", "secrets.yml", top / "langfuse_secrets.yml")
    ll_tasks = copy_tasks("litellm", "secrets.yml", top / "litellm_secrets.yml")
    cs_tasks = copy_tasks("code_server", "configure.yml", top / "code_server_password.yml", CODE_SERVER_TASKS)
    names = ("langfuse_stored", "langfuse_fresh", "langfuse_with_data", "langfuse_lost", "langfuse_conflict",
             "langfuse_rotate_refused", "langfuse_rotated", "langfuse_rotate_db_down",
             "litellm_stored", "litellm_fresh", "litellm_fleet", "litellm_lost", "litellm_rotated",
             "litellm_alter_fails",
             "code_server_stored", "code_server_supplied", "code_server_fresh")
    dirs = {name: top / name for name in names}

    # What an earlier run left on the box.
    store(dirs["langfuse_stored"], {"secrets.json": {"salt": LF_SALT, "encryption_key": LF_ENCRYPTION_KEY,
                                                     "redis_password": LF_REDIS_STORED}})
    for name in ("langfuse_with_data", "langfuse_conflict", "langfuse_rotate_refused", "langfuse_rotated",
                 "langfuse_rotate_db_down"):
        store(dirs[name], {"secrets.json": LF_FULL})
    dirs["langfuse_lost"].mkdir(mode=0o700)  # secrets.json lost, the volumes are still there
    store(dirs["litellm_stored"], {"master_key": LL_MASTER + "\n", "secrets.json": {"salt_key": LL_SALT}})
    store(dirs["litellm_lost"], {"master_key": LL_MASTER})
    for name in ("litellm_rotated", "litellm_alter_fails"):
        store(dirs[name], {"master_key": LL_MASTER,
                           "secrets.json": {"salt_key": LL_SALT, "postgres_password": LL_POSTGRES_STORED}})
    for name in ("code_server_stored", "code_server_supplied"):
        store(dirs[name], {"generated-password": CS_STORED + "\n"})
    dirs["code_server_fresh"].mkdir(mode=0o700)

    common = {"ansible_python_interpreter": sys.executable, "out_dir": str(top / "out")}
    langfuse = {**role_vars("langfuse", ["_langfuse_secret_names", "_langfuse_compose_project"]), **common,
                "tasks_file": lf_tasks, "result_var": "_langfuse_secrets"}
    litellm = {**role_vars("litellm", ["_litellm_master_key_file", "_litellm_compose_project",
                                       "_litellm_postgres_service", "_litellm_connection_enabled",
                                       "_litellm_connection_key_file"]),
               **common, "tasks_file": ll_tasks, "result_var": "_litellm_secrets"}
    code_server = {**role_vars("code_server", ["_code_server_password_file", "_code_server_generate_password"]),
                   **common, "tasks_file": cs_tasks, "result_var": "_code_server_password",
                   "code_server_user": getpass.getuser(), "_code_server_group": grp.getgrgid(os.getegid()).gr_name}

    def lf(name, **extra):
        return {**langfuse, "langfuse_secrets_dir": str(dirs[name]), "langfuse_project_dir": str(top / "opt"),
                **extra}

    def ll(name, **extra):
        return {**litellm, "litellm_secrets_dir": str(dirs[name]), "litellm_project_dir": str(top / "opt"),
                **extra}

    def docker(name, volumes="", running=False, exec_rc=0):
        return {"fake_docker": {"FAKE_DOCKER_VOLUMES": volumes, "FAKE_DOCKER_RUNNING": "1" if running else "",
                                "FAKE_DOCKER_EXEC_RC": str(exec_rc),
                                "FAKE_DOCKER_LOG": str(top / f"{name}.docker.log")}}

    hosts = {
        # Empty means "not supplied": the stored salt stays. The supplied redis password replaces the
        # stored one because its rotation is asked for; admin_password was not stored.
        "langfuse_stored": lf("langfuse_stored", langfuse_rotate_secrets=["redis_password"],
                              langfuse_secrets={"admin_password": LF_ADMIN_SUPPLIED,
                                                "redis_password": LF_REDIS_SUPPLIED, "salt": ""},
                              **docker("langfuse_stored")),
        "langfuse_fresh": lf("langfuse_fresh", **docker("langfuse_fresh")),
        "langfuse_with_data": lf("langfuse_with_data", **docker("langfuse_with_data", LF_VOLUMES)),
        "langfuse_lost": lf("langfuse_lost", **docker("langfuse_lost", LF_VOLUMES, running=True)),
        "langfuse_conflict": lf("langfuse_conflict", langfuse_secrets={"redis_password": LF_REDIS_SUPPLIED},
                                **docker("langfuse_conflict", LF_VOLUMES)),
        "langfuse_rotate_refused": lf("langfuse_rotate_refused", langfuse_rotate_secrets=["encryption_key", "salt"],
                                      **docker("langfuse_rotate_refused", LF_VOLUMES)),
        "langfuse_rotated": lf("langfuse_rotated", langfuse_rotate_secrets=["postgres_password"],
                               **docker("langfuse_rotated", LF_VOLUMES, running=True)),
        "langfuse_rotate_db_down": lf("langfuse_rotate_db_down", langfuse_rotate_secrets=["postgres_password"],
                                      **docker("langfuse_rotate_db_down", LF_VOLUMES)),
        "litellm_stored": ll("litellm_stored", **docker("litellm_stored")),
        "litellm_fresh": ll("litellm_fresh", **docker("litellm_fresh")),
        # A fleet dev box: its Langfuse is elsewhere, so no connection key (the task is skipped).
        "litellm_fleet": ll("litellm_fleet", _litellm_connection_enabled=False, **docker("litellm_fleet")),
        "litellm_lost": ll("litellm_lost", **docker("litellm_lost", LL_VOLUMES, running=True)),
        "litellm_rotated": ll("litellm_rotated", litellm_rotate_secrets=["postgres_password"],
                              **docker("litellm_rotated", LL_VOLUMES, running=True)),
        "litellm_alter_fails": ll("litellm_alter_fails", litellm_rotate_secrets=["postgres_password"],
                                  **docker("litellm_alter_fails", LL_VOLUMES, running=True, exec_rc=1)),
        "code_server_stored": {**code_server, "_code_server_config_dir": str(dirs["code_server_stored"])},
        "code_server_supplied": {**code_server, "_code_server_config_dir": str(dirs["code_server_supplied"]),
                                 "code_server_password": CS_SUPPLIED},
        "code_server_fresh": {**code_server, "_code_server_config_dir": str(dirs["code_server_fresh"])},
    }
    inventory = top / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    first = run_playbook(inventory, bin_dir)
    first["files"] = {name: {p.name: p.read_text() for p in d.iterdir()} for name, d in dirs.items()}
    first["docker"] = {p.name.split(".")[0]: p.read_text() for p in top.glob("*.docker.log")}
    second = run_playbook(inventory, bin_dir)
    return first, second, dirs


def assert_formats(secrets, formats):
    assert set(secrets) == set(formats)
    for key, pattern in formats.items():
        assert re.fullmatch(pattern, secrets[key]), f"{key} {secrets[key]!r} is not {pattern}"


def settled(run, host):
    assert host not in run["errors"], run["errors"][host]
    return run["results"][host]


def refused(run, host):
    assert host not in run["results"], f"{host} was expected to fail"
    return run["errors"][host]


def assert_no_value(text, values):
    leaked = [v for v in values if v and v in text]
    assert not leaked, "a secret value is in the message"


# --- kept, generated, supplied ----------------------------------------------------------------------

def test_langfuse_keeps_stored_and_generates_only_missing(runs):
    first, _, dirs = runs
    secrets = settled(first, "langfuse_stored")
    assert secrets["salt"] == LF_SALT  # an empty supplied value does not replace a stored one
    assert secrets["encryption_key"] == LF_ENCRYPTION_KEY
    assert_formats(secrets, {**LANGFUSE_FORMATS, "salt": "StoredSalts+", "redis_password": ".+",
                             "admin_password": ".+"})
    stored = json.loads((dirs["langfuse_stored"] / "secrets.json").read_text())
    assert stored == secrets
    assert mode(dirs["langfuse_stored"] / "secrets.json") == 0o600


def test_langfuse_supplied_wins_over_generated_and_over_stored_when_rotated(runs):
    first, _, _ = runs
    assert settled(first, "langfuse_stored")["admin_password"] == LF_ADMIN_SUPPLIED  # not stored: not generated
    assert settled(first, "langfuse_stored")["redis_password"] == LF_REDIS_SUPPLIED  # stored: LF_REDIS_STORED


def test_langfuse_generates_everything_once(runs):
    first, second, dirs = runs
    secrets = settled(first, "langfuse_fresh")
    assert_formats(secrets, LANGFUSE_FORMATS)
    assert len(set(secrets.values())) == len(secrets)  # each one generated on its own
    assert json.loads((dirs["langfuse_fresh"] / "secrets.json").read_text()) == secrets
    assert settled(second, "langfuse_fresh") == secrets
    # The rotation of redis_password is asked for on every run, and its supplied value is already stored.
    assert settled(second, "langfuse_stored") == settled(first, "langfuse_stored")


def test_langfuse_with_data_and_every_secret_stored_changes_nothing(runs):
    first, second, dirs = runs
    assert settled(first, "langfuse_with_data") == LF_FULL
    assert settled(second, "langfuse_with_data") == LF_FULL
    assert json.loads((dirs["langfuse_with_data"] / "secrets.json").read_text()) == LF_FULL


def test_litellm_keeps_stored_and_generates_only_missing(runs):
    first, second, dirs = runs
    secrets = settled(first, "litellm_stored")
    assert secrets["master_key"] == LL_MASTER  # read from the master_key file, trimmed
    assert secrets["salt_key"] == LL_SALT
    assert_formats(secrets, LITELLM_FORMATS)
    assert (dirs["litellm_stored"] / "master_key").read_text() == LL_MASTER + "\n"  # same key: file untouched
    assert json.loads((dirs["litellm_stored"] / "secrets.json").read_text()) == {
        "salt_key": LL_SALT, "postgres_password": secrets["postgres_password"]}
    assert settled(second, "litellm_stored") == secrets


def test_litellm_generates_everything_once(runs):
    first, second, dirs = runs
    secrets = settled(first, "litellm_fresh")
    assert_formats(secrets, LITELLM_FORMATS)
    assert secrets["master_key"] != secrets["salt_key"]
    assert (dirs["litellm_fresh"] / "master_key").read_text() == secrets["master_key"]  # the key alone
    assert mode(dirs["litellm_fresh"] / "master_key") == 0o600
    # Langfuse's own key to the proxy: a different one, kept the same way.
    assert secrets["connection_key"] not in (secrets["master_key"], secrets["salt_key"])
    assert (dirs["litellm_fresh"] / "connection_key").read_text() == secrets["connection_key"]
    assert mode(dirs["litellm_fresh"] / "connection_key") == 0o600
    assert mode(dirs["litellm_fresh"] / "secrets.json") == 0o600
    assert settled(second, "litellm_fresh") == secrets


def test_litellm_without_the_langfuse_connection_has_no_connection_key(runs):
    first, second, dirs = runs
    secrets = settled(first, "litellm_fleet")
    assert_formats(secrets, {k: v for k, v in LITELLM_FORMATS.items() if k != "connection_key"})
    assert not (dirs["litellm_fleet"] / "connection_key").exists()
    assert settled(second, "litellm_fleet") == secrets


def test_code_server_keeps_the_stored_password(runs):
    first, second, dirs = runs
    assert settled(first, "code_server_stored") == CS_STORED
    assert settled(second, "code_server_stored") == CS_STORED
    assert (dirs["code_server_stored"] / "generated-password").read_text() == CS_STORED + "\n"


def test_code_server_supplied_password_wins(runs):
    first, _, dirs = runs
    assert settled(first, "code_server_supplied") == CS_SUPPLIED
    # A supplied password is not written over the generated one.
    assert (dirs["code_server_supplied"] / "generated-password").read_text() == CS_STORED + "\n"


def test_code_server_generates_a_password_once(runs):
    first, second, dirs = runs
    password = settled(first, "code_server_fresh")
    assert re.fullmatch(f"{ALNUM}{{32}}", password)
    assert (dirs["code_server_fresh"] / "generated-password").read_text() == password + "\n"
    assert mode(dirs["code_server_fresh"] / "generated-password") == 0o600
    assert settled(second, "code_server_fresh") == password


# --- refused: nothing is generated or replaced silently ------------------------------------------------

def test_langfuse_lost_secrets_with_data_fail_with_restore_instructions(runs):
    first, second, dirs = runs
    for run in (first, second):
        msg = refused(run, "langfuse_lost")
        assert f"{dirs['langfuse_lost']}/secrets.json does not exist, but data already depends on" in msg
        assert "salt, encryption_key, postgres_password, clickhouse_password, minio_password, admin_password" in msg
        assert f"Restore {dirs['langfuse_lost']}/secrets.json" in msg
        assert "langfuse-web.env" in msg and "docker compose down --volumes" in msg
    assert first["files"]["langfuse_lost"] == {}  # nothing written, nothing generated
    assert list(dirs["langfuse_lost"].iterdir()) == []


def test_langfuse_differing_supplied_value_is_refused_without_rotation(runs):
    first, _, dirs = runs
    msg = refused(first, "langfuse_conflict")
    assert "The value supplied for redis_password differs from the one stored in" in msg
    assert "langfuse_rotate_secrets" in msg
    assert_no_value(msg, [LF_REDIS_SUPPLIED, *LF_FULL.values()])
    assert json.loads((dirs["langfuse_conflict"] / "secrets.json").read_text()) == LF_FULL


def test_langfuse_refuses_to_rotate_what_it_cannot(runs):
    first, _, dirs = runs
    msg = refused(first, "langfuse_rotate_refused")
    assert re.search("asks to rotate (encryption_key, salt|salt, encryption_key), which this role cannot rotate", msg)
    assert "It can rotate nextauth_secret, postgres_password, clickhouse_password, redis_password" in msg
    assert json.loads((dirs["langfuse_rotate_refused"] / "secrets.json").read_text()) == LF_FULL


def test_litellm_lost_secrets_with_data_fail_with_restore_instructions(runs):
    first, _, dirs = runs
    msg = refused(first, "litellm_lost")
    assert "data already depends on salt_key, postgres_password" in msg
    assert "LITELLM_SALT_KEY in litellm.env" in msg
    assert not (dirs["litellm_lost"] / "secrets.json").exists()
    assert (dirs["litellm_lost"] / "master_key").read_text() == LL_MASTER


# --- rotation of a database password ---------------------------------------------------------------

@pytest.mark.parametrize("host, user, old", [("langfuse_rotated", "postgres", LF_POSTGRES_STORED),
                                             ("litellm_rotated", "litellm", LL_POSTGRES_STORED)])
def test_rotated_database_password_is_changed_inside_the_database(runs, host, user, old):
    first, _, dirs = runs
    secrets = settled(first, host)
    new = secrets["postgres_password"]
    assert new != old and re.fullmatch(f"{ALNUM}{{32}}", new)
    assert json.loads(first["files"][host]["secrets.json"])["postgres_password"] == new
    log = first["docker"][host]
    assert re.search(r"docker compose exec -T \S*postgres psql -v ON_ERROR_STOP=1 .*-U " + user, log), log
    assert f"stdin: ALTER ROLE \"{user}\" WITH PASSWORD '{new}';" in log
    assert new not in first["output"] and old not in first["output"]


def test_rotation_needs_the_running_database(runs):
    first, _, dirs = runs
    msg = refused(first, "langfuse_rotate_db_down")
    assert "Postgres must be running" in msg
    assert json.loads((dirs["langfuse_rotate_db_down"] / "secrets.json").read_text()) == LF_FULL
    assert "compose exec" not in first["docker"]["langfuse_rotate_db_down"]


def test_failed_alter_user_puts_the_old_password_back(runs):
    first, _, dirs = runs
    msg = refused(first, "litellm_alter_fails")
    assert "Rotating postgres_password failed" in msg and "holds the old password again" in msg
    assert "ALTER ROLE" in first["docker"]["litellm_alter_fails"]  # it was tried
    assert json.loads((dirs["litellm_alter_fails"] / "secrets.json").read_text()) == {
        "salt_key": LL_SALT, "postgres_password": LL_POSTGRES_STORED}
