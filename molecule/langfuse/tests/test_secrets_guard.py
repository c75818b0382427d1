"""Secrets are never regenerated or replaced silently on a box whose data depends on them (verify step).

Each test reruns the scenario's converge.yml against the converged box: with /etc/langfuse/secrets.json
deleted (the run must fail with how to restore it, write nothing and leave the running stack alone),
with a supplied value that differs from the stored one (refused, naming the secret), and with the
rotation of postgres_password asked for (the real Postgres gets the new password in the same run and
the stack comes back healthy on it). The file is put back after each test so later tests keep working.
"""

import json
import os
import subprocess
import time

# Box A only: box B is the restore target of test_backup_restore.py.
testinfra_hosts = ["llmops-langfuse"]

SECRETS = "/etc/langfuse/secrets.json"
BACKUP = "/root/secrets.guard-backup.json"
SERVICES = {"langfuse-web", "langfuse-worker", "postgres", "clickhouse", "redis", "minio"}


def containers(host):
    """service -> (container id, started at, status) of the langfuse project."""
    out = host.check_output(
        "docker ps -a --filter label=com.docker.compose.project=langfuse "
        "--format '{{.Label \"com.docker.compose.service\"}}|{{.ID}}|{{.Status}}'")
    state = {}
    for line in out.splitlines():
        service, cid, status = line.split("|", 2)
        started = host.check_output(f"docker inspect -f '{{{{.State.StartedAt}}}}' {cid}")
        state[service] = (cid, started, status)
    return state


def wait_healthy(host, timeout=240):
    deadline = time.time() + timeout
    while True:
        state = containers(host)
        if set(state) == SERVICES and all("(healthy)" in s[2] for s in state.values()):
            return state
        if time.time() > deadline:
            return state
        time.sleep(3)


def fingerprint(host):
    """What a failed run must not touch: the containers (id, start time) and the rendered env files."""
    state = wait_healthy(host)
    assert set(state) == SERVICES and all("(healthy)" in s[2] for s in state.values()), state
    envs = {env: host.file(env).sha256sum for env in host.check_output("ls /opt/langfuse/*.env").split()}
    return {service: s[:2] for service, s in state.items()}, envs


def health(host):
    return host.check_output("curl -s -o /dev/null -w '%{http_code}' "
                             "'http://127.0.0.1:3000/api/public/health?failIfDatabaseUnavailable=true'")


def converge(*extra):
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(env["MOLECULE_PROJECT_DIRECTORY"], ".collections")
    env["ANSIBLE_CONFIG"] = os.path.join(env["MOLECULE_PROJECT_DIRECTORY"], "ansible.cfg")
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", COLUMNS="1000")
    run = subprocess.run(
        ["ansible-playbook", "-i", env["MOLECULE_INVENTORY_FILE"], "-l", "llmops-langfuse", "-v", "--diff", *extra,
         os.path.join(env["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    return run, run.stdout + run.stderr


def stored(host):
    return json.loads(host.check_output(f"cat {SECRETS}"))


def leaked(text, secrets):
    return [name for name, value in secrets.items() if value and value in text]


def restore(host):
    host.check_output(f"cp -p {BACKUP} {SECRETS}")


def test_lost_secrets_file_fails_with_restore_instructions_and_changes_nothing(host):
    before = fingerprint(host)
    secrets = stored(host)
    host.check_output(f"cp -p {SECRETS} {BACKUP} && rm {SECRETS}")
    try:
        run, out = converge()
        written = host.file(SECRETS).exists
    finally:
        restore(host)

    assert run.returncode != 0, out[-3000:]
    assert f"{SECRETS} does not exist, but data already depends on salt, encryption_key, postgres_password" in out
    assert "Nothing was written and nothing was generated" in out
    assert f"Restore {SECRETS}" in out and "docker compose down --volumes in /opt/langfuse" in out
    assert not written, "the failed run wrote a new secrets.json"
    assert leaked(out, secrets) == []
    # The stack keeps running with its old secrets: no container recreated or restarted, no env file rewritten.
    assert fingerprint(host) == before
    assert health(host) == "200"
    assert host.file(SECRETS).sha256sum == host.file(BACKUP).sha256sum
    assert (host.file(SECRETS).user, host.file(SECRETS).mode) == ("root", 0o600)


def test_differing_supplied_secret_is_refused_and_changes_nothing(host):
    before = fingerprint(host)
    secrets = stored(host)
    checksum = host.file(SECRETS).sha256sum
    supplied = "Supplied-redis-password-0123456789"

    run, out = converge("-e", json.dumps({"langfuse_secrets": {"redis_password": supplied}}))

    assert run.returncode != 0, out[-3000:]
    assert "The value supplied for redis_password differs from the one stored in " + SECRETS in out
    assert "langfuse_rotate_secrets" in out
    assert supplied not in out and leaked(out, secrets) == []
    assert host.file(SECRETS).sha256sum == checksum
    assert fingerprint(host) == before


def test_rotating_the_postgres_password_changes_it_in_the_database(host):
    old = stored(host)

    run, out = converge("-e", json.dumps({"langfuse_rotate_secrets": ["postgres_password"]}))

    assert run.returncode == 0, out[-3000:]
    new = stored(host)
    assert new["postgres_password"] != old["postgres_password"]
    assert {k: v for k, v in new.items() if k != "postgres_password"} == \
        {k: v for k, v in old.items() if k != "postgres_password"}
    assert leaked(out, {"old": old["postgres_password"], "new": new["postgres_password"]}) == []
    state = wait_healthy(host)
    assert all("(healthy)" in s[2] for s in state.values()), state
    assert health(host) == "200"  # langfuse-web reads Postgres with the new password

    def login(password):
        return host.run(f"docker exec -e PGPASSWORD='{password}' langfuse-postgres-1 "
                        "psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1'").rc

    assert login(new["postgres_password"]) == 0
    assert login(old["postgres_password"]) != 0
