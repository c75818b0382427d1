"""The langfuse role's env files with hostile values, read by the real docker compose (Docker).

docker compose is Debian 13's docker-compose 2.26.1 - what the targets run (role docker installs it
from Debian 13) - taken from its package once into .cache/compose-cli/ (apt-get download in the
llmops-test/debian:trixie base image) and used as a CLI plugin with this machine's engine.

1. The render playbook of tests/unit/roles/langfuse renders the six env files and compose.yml with a
   hostile value in every variable that reaches them (quotes, $HOME, ${X}, " #", {{ }}, %41, @ : /,
   backslashes, unicode, spaces at both ends). For each env file a tiny service of the Postgres test
   image with that env_file runs `env -0`: the container's environment must hold exactly what the role
   meant, with docker compose running in an environment where $HOME, $X, ... are set.
2. The rendered compose.yml's own postgres and redis services (test images) start with the hostile
   passwords from postgres.env and redis.env; psql connects with the rendered DATABASE_URL (the
   password percent-encoded) and redis-cli authenticates with REDIS_AUTH, both read from
   langfuse-web.env as Langfuse would; the same URL with the password left unencoded, or a wrong
   password, is refused.
3. llmops.devbox.env_file_value's encoding of many more hostile and random values comes back exactly.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from ansible_collections.llmops.devbox.plugins.filter.env_file import env_file_value
from ansible_collections.llmops.devbox.tests.unit.plugins.filter.compose_dotenv import parse
from ansible_collections.llmops.devbox.tests.unit.plugins.filter.test_env_file import HOSTILE
from ansible_collections.llmops.devbox.tests.unit.roles.langfuse.hostile import (
    CLI_ENV,
    NAME,
    PASSWORD,
    SECRETS,
    TEXT,
    run_playbook,
    unsafe,
)

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "compose-cli"
PLUGIN = CACHE / "cli-plugins" / "docker-compose"
BASE_IMAGE = "llmops-test/debian:trixie"
IMAGES = yaml.safe_load((ROOT / "tests" / "test-images.yml").read_text())
PG_IMAGE = IMAGES["langfuse_postgres_image"]
REDIS_IMAGE = IMAGES["langfuse_redis_image"]
ROLE = ROOT / "roles" / "langfuse"
RENDER_PLAYBOOK = ROOT / "tests" / "unit" / "roles" / "langfuse" / "render_playbook.yml"
SERVICES = ["langfuse-web", "langfuse-worker", "postgres", "clickhouse", "redis", "minio"]
HOSTILE_VARS = {
    "langfuse_init_org_name": NAME,
    "langfuse_init_project_name": TEXT,
    "langfuse_admin_name": "Admin " + NAME + " \\",
    "langfuse_admin_email": "o'brien+ops@example.com",
    "langfuse_nextauth_url": "https://lf.example.com/?q='\"$HOME #1 {{ y }}%41&x=${X}",
    "langfuse_init_public_key": "pk-lf-" + NAME,
    "langfuse_init_secret_key": "sk-lf-" + TEXT,
    "langfuse_extra_env": {"SMTP_CONNECTION_URL": "smtp://u:p%40ss@mail:25/?x='\"$HOME #1", "AUTH_CUSTOM_NAME": NAME},
}


def docker(*args: str, check: bool = True, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        what = " ".join(args[:8])
        assert proc.returncode == 0, f"docker {what} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


def ensure_compose() -> Path:
    """Debian 13's docker compose plugin in .cache/compose-cli/cli-plugins (fetched once)."""
    if not PLUGIN.exists():
        PLUGIN.parent.mkdir(parents=True, exist_ok=True)
        fetch = ("set -e; apt-get update -qq >/dev/null; cd /tmp; apt-get download -qq docker-compose >/dev/null; "
                 "dpkg-deb -x docker-compose_*.deb /tmp/x; "
                 "cp /tmp/x/usr/libexec/docker/cli-plugins/docker-compose /out/docker-compose")
        docker("run", "--rm", "-v", f"{PLUGIN.parent}:/out", BASE_IMAGE, "sh", "-c", fetch, timeout=600)
    version = docker("compose", "version", "--short", env=compose_env()).stdout.strip()
    assert version.startswith("2.26"), f"expected Debian 13's docker compose 2.26, got {version!r}"
    return PLUGIN


def compose_env() -> dict:
    """The CLI's environment: its plugin, and variables an unprotected value would pick up."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_CONFIG": str(CACHE), **CLI_ENV}


class Project:
    def __init__(self, directory: Path, files: list[Path]):
        self.name = f"llmops-it-envfiles-{uuid.uuid4().hex[:8]}"
        self.dir = directory
        self.files = files

    def __call__(self, *args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
        base = ["compose", "-p", self.name, "--project-directory", str(self.dir)]
        for f in self.files:
            base += ["-f", str(f)]
        return docker(*base, *args, check=check, timeout=timeout, env=compose_env())

    def env_of(self, service: str, extra: list[str] | None = None) -> dict[str, str]:
        out = self("run", "--rm", "--no-deps", "-T", *(extra or []), service).stdout
        return dict(item.split("=", 1) for item in out.split("\0") if item)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    assert docker("info", check=False).returncode == 0, "no Docker engine answers: scripts/dockerd.sh start"
    build = subprocess.run([str(ROOT / "scripts/build-images.sh"), "postgres", "redis"], capture_output=True,
                           text=True, timeout=1800)
    assert build.returncode == 0, f"building the test images failed: {build.stderr[-2000:]}"
    ensure_compose()
    out = tmp_path_factory.mktemp("envfiles")
    host_dir = out / "box"
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    host = {**defaults, **unsafe(HOSTILE_VARS), "role_path": str(ROLE), "out_dir": str(out),
            "ansible_python_interpreter": sys.executable, "langfuse_project_dir": str(host_dir),
            **{k: v for k, v in IMAGES.items() if k.startswith("langfuse_")},
            "_langfuse_secrets": unsafe(SECRETS),
            "_langfuse_project_keys": unsafe({"public_key": HOSTILE_VARS["langfuse_init_public_key"],
                                              "secret_key": HOSTILE_VARS["langfuse_init_secret_key"]})}
    report = run_playbook(RENDER_PLAYBOOK, {"all": {"hosts": {"box": host}, "children": {
        "render": {"hosts": {"box": None}}}}}, out)
    assert report["stats"]["box"]["failures"] == 0, json.dumps(report)[-3000:]
    # One tiny service per env file (the Postgres test image printing its environment), and clients
    # that read their connection settings from langfuse-web.env, as Langfuse does.
    services = {f"env-{svc}": {"image": PG_IMAGE, "entrypoint": ["env", "-0"],
                               "env_file": [str(host_dir / f"{svc}.env")]} for svc in SERVICES}
    services["env-baseline"] = {"image": PG_IMAGE, "entrypoint": ["env", "-0"]}
    services["db-client"] = {"image": PG_IMAGE, "env_file": [str(host_dir / "langfuse-web.env")],
                             "entrypoint": ["sh", "-c", 'exec psql "$$DATABASE_URL" -tAX -c "select current_user"']}
    services["redis-client"] = {"image": REDIS_IMAGE, "env_file": [str(host_dir / "langfuse-web.env")],
                                "entrypoint": ["sh", "-c", 'REDISCLI_AUTH="$$REDIS_AUTH" exec redis-cli -h redis ping']}
    (out / "tests.yml").write_text(yaml.safe_dump({"services": services}))
    proj = Project(host_dir, [host_dir / "compose.yml", out / "tests.yml"])
    try:
        yield proj, json.loads((host_dir / "intended.json").read_text(encoding="utf-8")), host_dir
    finally:
        proj("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


def test_the_role_used_the_test_images(project):
    proj, _, _ = project
    config = yaml.safe_load(proj("config").stdout)
    assert config["services"]["postgres"]["image"] == PG_IMAGE and config["services"]["redis"]["image"] == REDIS_IMAGE


@pytest.mark.parametrize("service", SERVICES)
def test_containers_get_exactly_what_the_role_meant(project, service):
    proj, intended, host_dir = project
    want = {k: str(v) for k, v in intended[service].items()}
    baseline = proj.env_of("env-baseline")
    got = proj.env_of(f"env-{service}")
    assert {k: got.get(k) for k in want} == want
    # Nothing else arrived: every other variable is the image's own (PATH, PGDATA, HOSTNAME, ...).
    assert set(got) - set(want) <= set(baseline), set(got) - set(want) - set(baseline)
    # The tests' port of Compose's reader agrees with the real one on these files.
    assert parse((host_dir / f"{service}.env").read_text(encoding="utf-8"), CLI_ENV) == want


def test_hostile_values_reach_the_containers_unchanged(project):
    proj, _, _ = project
    web = proj.env_of("env-langfuse-web")
    assert web["LANGFUSE_INIT_ORG_NAME"] == NAME and web["LANGFUSE_INIT_PROJECT_NAME"] == TEXT
    assert web["NEXTAUTH_URL"] == HOSTILE_VARS["langfuse_nextauth_url"]
    assert web["LANGFUSE_INIT_PROJECT_SECRET_KEY"] == HOSTILE_VARS["langfuse_init_secret_key"]
    assert web["SALT"] == SECRETS["salt"] and web["REDIS_AUTH"] == SECRETS["redis_password"]
    assert web["AUTH_CUSTOM_NAME"] == NAME
    assert web["DATABASE_URL"] == f"postgresql://postgres:{quote(PASSWORD, safe='')}@postgres:5432/postgres"
    assert proj.env_of("env-postgres")["POSTGRES_PASSWORD"] == PASSWORD


@pytest.fixture(scope="module")
def databases(project):
    proj, _, _ = project
    proj("up", "--detach", "--wait", "postgres", "redis", timeout=240)
    return proj


def test_psql_connects_with_the_rendered_database_url(databases):
    out = databases("run", "--rm", "--no-deps", "-T", "db-client", check=False)
    assert out.returncode == 0 and out.stdout.strip() == "postgres", out.stderr[-2000:]


@pytest.mark.parametrize("password,why", [(PASSWORD, "left unencoded"), ("wrong-password-0123456789", "wrong")])
def test_the_database_refuses_other_urls(databases, password, why):
    userinfo = password if why == "left unencoded" else quote(password, safe="")
    url = f"postgresql://postgres:{userinfo}@postgres:5432/postgres"
    out = databases("run", "--rm", "--no-deps", "-T", "-e", f"DATABASE_URL={url}", "db-client", check=False)
    assert out.returncode != 0 and "postgres" not in out.stdout, (why, out.stdout, out.stderr[-1000:])
    if why == "wrong":
        assert "password authentication failed" in out.stderr


def test_redis_takes_the_rendered_password(databases):
    out = databases("run", "--rm", "--no-deps", "-T", "redis-client", check=False)
    assert out.returncode == 0 and out.stdout.strip() == "PONG", (out.stdout, out.stderr[-1000:])
    wrong = databases("run", "--rm", "--no-deps", "-T", "-e", "REDIS_AUTH=wrong-password", "redis-client", check=False)
    assert "PONG" not in wrong.stdout


def test_every_encoded_value_comes_back_exactly(project, tmp_path):
    """The encoding itself, beyond the role's variables: many hostile and random values (project: the plugin)."""
    rng = random.Random(20260301)  # noqa: S311 - test data, reproducible
    alphabet = string.printable.replace("\n", "").replace("\r", "").replace("\x0b", "").replace("\x0c", "")
    alphabet += "äöüß€日本🙂\\'\"$#{}%"
    values = [v for v in HOSTILE if "\x00" not in v] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(150)]
    want = {f"V{i:03d}": v for i, v in enumerate(values)}
    env_file = tmp_path / "values.env"
    env_file.write_text("".join(f"{k}={env_file_value(v)}\n" for k, v in want.items()), encoding="utf-8")
    override = tmp_path / "values.yml"
    override.write_text(yaml.safe_dump({"services": {"values": {"image": PG_IMAGE, "entrypoint": ["env", "-0"],
                                                                "env_file": [str(env_file)]}}}))
    values_project = Project(tmp_path, [override])
    try:
        got = values_project.env_of("values")
    finally:
        values_project("down", "--remove-orphans", check=False)
    assert {k: got.get(k) for k in want} == want
