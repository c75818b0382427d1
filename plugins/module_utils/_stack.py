# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""What the day-2 modules (langfuse_backup, langfuse_restore, clickhouse_system_logs, minio_lifecycle)
do inside the Langfuse stack's containers, written once.

Everything goes through `docker` / `docker compose` on the box, and every secret is read INSIDE the
container from the environment the role's env file gave it ($POSTGRES_PASSWORD, $CLICKHOUSE_PASSWORD,
$MINIO_ROOT_PASSWORD): no secret is ever on a command line, in a module argument or in a result.

`run(argv, data=None, stdin_path=None, stdout_path=None)` -> (rc, stdout, stderr) is injected, so unit
tests drive the logic with a fake Docker.
"""

from __future__ import annotations

import json
import re
import subprocess

# Only what upstream's images are known to have: sh and wget in ClickHouse's (its compose health
# check), pg_dump/pg_restore in Postgres', mc in MinIO's (tests/contracts/*.yml).
_CLICKHOUSE_HTTP = (
    'exec wget -q -O - --content-on-error --header "X-ClickHouse-User: $CLICKHOUSE_USER" '
    '--header "X-ClickHouse-Key: $CLICKHOUSE_PASSWORD" --post-data="$LLMOPS_QUERY" '
    "http://127.0.0.1:8123/")
_PG = 'PGPASSWORD="$POSTGRES_PASSWORD" exec {tool} -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" {args}'
_MC = ('MC_HOST_local="http://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD@127.0.0.1:9000" '
       "exec mc --json {args}")


# The option every module acting on the project takes (documented in doc_fragments/langfuse_stack.py).
PROJECT_DIR_ARG = dict(type="path", required=True)


class StackError(Exception):
    """A step failed: the message says which and what to check."""


def subprocess_run(argv, data=None, stdin_path=None, stdout_path=None):
    """The real runner: docker on this box."""
    stdin = open(stdin_path, "rb") if stdin_path else None
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    try:
        proc = subprocess.run(argv, input=data.encode() if isinstance(data, str) else data,
                              stdin=stdin if data is None else None, stdout=stdout,
                              stderr=subprocess.PIPE, check=False)
    except OSError as exc:  # no docker on the box
        return 127, "", f"{argv[0]}: {exc}"
    finally:
        for fh in (stdin, stdout if stdout_path else None):
            if fh:
                fh.close()
    out = proc.stdout.decode("utf-8", "replace") if proc.stdout is not None else ""
    return proc.returncode, out, proc.stderr.decode("utf-8", "replace")


class Stack:
    """The Compose project in `project_dir` (the langfuse role's)."""

    def __init__(self, project_dir, run=subprocess_run):
        self.project_dir = project_dir
        self.run = run

    def _check(self, argv, what, **kw):
        rc, out, err = self.run(argv, **kw)
        if rc != 0:
            raise StackError(f"{what} failed (exit {rc}): {(err or out).strip()[-600:]}")
        return out

    def compose(self, *args, what=None):
        return self._check(["docker", "compose", "--project-directory", self.project_dir, *args],
                           what or "docker compose " + " ".join(args))

    def container(self, service):
        """The id of the service's container, running or not; StackError when there is none."""
        out = self.compose("ps", "--all", "--quiet", service, what=f"finding the {service} container")
        ids = out.split()
        if not ids:
            raise StackError(f"the Compose project in {self.project_dir} has no {service} container: "
                             "deploy it first (site.yml or the langfuse role)")
        return ids[0]

    def running(self, services):
        """Which of these services have a running container."""
        out = self.compose("ps", "--status", "running", "--services", what="listing running services")
        up = set(out.split())
        return [s for s in services if s in up]

    def stop(self, services):
        if services:
            self.compose("stop", *services)

    def start(self, services):
        if services:
            self.compose("start", *services)

    def image(self, service):
        return self._check(["docker", "inspect", "--format", "{{.Config.Image}}", self.container(service)],
                           f"reading the {service} image").strip()

    def volume(self, service, destination):
        """The named volume mounted at `destination` in the service's container."""
        out = self._check(["docker", "inspect", "--format", "{{json .Mounts}}", self.container(service)],
                          f"reading the {service} mounts")
        for mount in json.loads(out or "[]"):
            if mount.get("Destination") == destination and mount.get("Name"):
                return mount["Name"]
        raise StackError(f"the {service} container has no named volume at {destination}")

    # -- inside the containers ------------------------------------------------------------------

    def sh(self, container, script, what, env=None, **kw):
        argv = ["docker", "exec", "-i"]
        for key, value in (env or {}).items():
            argv += ["-e", f"{key}={value}"]
        return self._check(argv + [container, "sh", "-c", script], what, **kw)

    def clickhouse(self, sql, what=None):
        """One statement over ClickHouse's HTTP interface, as its own user, inside its container."""
        try:
            return self.sh(self.container("clickhouse"), _CLICKHOUSE_HTTP, what or "ClickHouse query",
                           env={"LLMOPS_QUERY": sql})
        except StackError as exc:
            raise StackError(f"{exc} [query: {sql[:200]}]") from None

    def pg(self, container, tool, args, what, **kw):
        """pg_dump / pg_restore / psql inside a Postgres container, over TCP as its POSTGRES_USER."""
        return self.sh(container, _PG.format(tool=tool, args=args), what, **kw)

    def mc(self, args, what, data=None):
        rc, out, err = self.run(["docker", "exec", "-i", self.container("minio"), "sh", "-c",
                                 _MC.format(args=args)], data=data)
        return rc, out, err


def sql_string(value):
    """A ClickHouse string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


def safe_name(value, what):
    """Backup names and paths that end up inside shell scripts and SQL: a plain token or refused."""
    if not _NAME.fullmatch(str(value or "")):
        raise StackError(f"{what} {value!r} may only hold letters, digits and . _ : -")
    return str(value)
