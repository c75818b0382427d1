"""The Langfuse stack's test images on this machine's Docker engine, wired as the langfuse role
wires them: real Postgres and Redis images plus the ClickHouse, MinIO and Langfuse web/worker TEST
DOUBLES, with the role's commands, health checks and listen settings. Web is published on a free
loopback port. Used by the integration tests that need a Langfuse (tests/integration/)."""

from __future__ import annotations

import base64
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_LISTED = yaml.safe_load((ROOT / "tests" / "test-images.yml").read_text())
IMAGES = {part: _LISTED[f"langfuse_{part}_image"]
          for part in ("postgres", "redis", "clickhouse", "minio", "web", "worker")}
PK, SK = "pk-lf-" + str(uuid.uuid4()), "sk-lf-" + str(uuid.uuid4())
# Docker sets HOSTNAME to the container id; both servers listen on $HOSTNAME (contracts), so the
# role sets it to 0.0.0.0 for web and worker, and so does this stack.
LISTEN = {"HOSTNAME": "0.0.0.0"}


def docker(*args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


def call(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         auth: tuple[str, str] | None = (PK, SK)) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Stack:
    def __init__(self, name: str, public_key: str = PK, secret_key: str = SK):
        self.name = name
        self.net = name
        self.containers: list[str] = []
        pw = {k: secrets.token_hex(12) for k in ("pg", "ch", "redis", "minio")}
        self.common = {
            "DATABASE_URL": f"postgresql://postgres:{pw['pg']}@postgres:5432/postgres",
            "SALT": secrets.token_hex(16),
            "ENCRYPTION_KEY": secrets.token_hex(32),
            "TELEMETRY_ENABLED": "false",
            "CLICKHOUSE_MIGRATION_URL": "clickhouse://clickhouse:9000",
            "CLICKHOUSE_URL": "http://clickhouse:8123",
            "CLICKHOUSE_USER": "clickhouse",
            "CLICKHOUSE_PASSWORD": pw["ch"],
            "CLICKHOUSE_CLUSTER_ENABLED": "false",
            "LANGFUSE_S3_EVENT_UPLOAD_BUCKET": "langfuse",
            "LANGFUSE_S3_EVENT_UPLOAD_REGION": "auto",
            "LANGFUSE_S3_EVENT_UPLOAD_ACCESS_KEY_ID": "minio",
            "LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY": pw["minio"],
            "LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT": "http://minio:9000",
            "LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE": "true",
            "LANGFUSE_S3_EVENT_UPLOAD_PREFIX": "events/",
            "REDIS_HOST": "redis",
            "REDIS_PORT": "6379",
            "REDIS_AUTH": pw["redis"],
        }
        self.web_env = dict(self.common, **LISTEN, **{
            "NEXTAUTH_URL": "http://203.0.113.10:3000",
            "NEXTAUTH_SECRET": secrets.token_hex(16),
            "LANGFUSE_INIT_ORG_ID": "llmops",
            "LANGFUSE_INIT_ORG_NAME": "LLMOps",
            "LANGFUSE_INIT_PROJECT_ID": "devbox",
            "LANGFUSE_INIT_PROJECT_NAME": "Dev box",
            "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": public_key,
            "LANGFUSE_INIT_PROJECT_SECRET_KEY": secret_key,
        })
        self.pw = pw
        self.url = ""

    @staticmethod
    def env_args(env: dict) -> list[str]:
        return [a for k, v in env.items() for a in ("-e", f"{k}={v}")]

    def run(self, service: str, *args: str, alias: str | None = None) -> str:
        cname = f"{self.name}-{service}"
        docker("run", "-d", "--name", cname, "--network", self.net,
               *(["--network-alias", alias] if alias else []), *args)
        self.containers.append(cname)
        return cname

    def wait_healthy(self, names: list[str], seconds: int = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            states = [docker("inspect", "-f", "{{.State.Health.Status}}", n).stdout.strip() for n in names]
            if all(s == "healthy" for s in states):
                return
            time.sleep(1)
        logs = {n: docker("logs", "--tail", "5", n, check=False).stdout for n in names}
        pytest.fail(f"not healthy after {seconds} s: {dict(zip(names, states))}; logs: {logs}")

    def start(self) -> None:
        docker("network", "create", self.net)
        pw = self.pw
        health = ["--health-interval", "2s", "--health-retries", "40"]
        self.run("postgres", "-e", f"POSTGRES_PASSWORD={pw['pg']}", "-e", "TZ=UTC",
                 "--health-cmd", "pg_isready -h 127.0.0.1 -U postgres", *health, IMAGES["postgres"], alias="postgres")
        self.run("clickhouse", "--user", "101:101", "-e", "CLICKHOUSE_USER=clickhouse",
                 "-e", f"CLICKHOUSE_PASSWORD={pw['ch']}", "-v", f"{self.name}-ch:/var/lib/clickhouse",
                 "--health-cmd", "wget --no-verbose --tries=1 --spider http://localhost:8123/ping || exit 1",
                 *health, IMAGES["clickhouse"], alias="clickhouse")
        self.run("redis", "-e", f"REDIS_AUTH={pw['redis']}",
                 "--health-cmd", 'REDISCLI_AUTH="$REDIS_AUTH" redis-cli ping | grep -q PONG', *health,
                 IMAGES["redis"], "sh", "-c",
                 'exec docker-entrypoint.sh redis-server --requirepass "$REDIS_AUTH" --maxmemory-policy noeviction',
                 alias="redis")
        self.run("minio", "-e", "MINIO_ROOT_USER=minio", "-e", f"MINIO_ROOT_PASSWORD={pw['minio']}",
                 "--health-cmd", "mc ready local", *health, "--entrypoint", "sh", IMAGES["minio"],
                 "-c", "mkdir -p /data/langfuse && exec minio server --address ':9000' --console-address ':9001' /data",
                 alias="minio")
        self.wait_healthy([f"{self.name}-{s}" for s in ("postgres", "clickhouse", "redis", "minio")])
        self.run("worker", *self.env_args(dict(self.common, **LISTEN)), "--health-cmd",
                 "wget -q -O /dev/null http://127.0.0.1:3030/api/health || exit 1", *health, IMAGES["worker"])
        web = self.run("web", *self.env_args(self.web_env), "-p", "127.0.0.1::3000", "--health-cmd",
                       "wget -q -O /dev/null http://127.0.0.1:3000/api/public/health || exit 1", *health,
                       IMAGES["web"])
        self.wait_healthy([f"{self.name}-worker", web])
        self.url = "http://" + docker("port", web, "3000/tcp").stdout.split()[0]

    def stop(self) -> None:
        for name in reversed(self.containers):
            docker("rm", "-f", "-v", name, check=False)
        docker("volume", "rm", f"{self.name}-ch", check=False)
        docker("network", "rm", self.net, check=False)

    def one_shot(self, image: str, env: dict) -> subprocess.CompletedProcess:
        """Run the Langfuse double in the foreground (it must stop by itself)."""
        return docker("run", "--rm", "--network", self.net, "-e", "LANGFUSE_DOUBLE_WAIT=5",
                      *self.env_args(env), image, check=False, timeout=60)


@pytest.fixture(scope="module")
def stack():
    if docker("info", check=False).returncode != 0:
        pytest.skip("no Docker engine answers (scripts/dockerd.sh start, or make setup)")
    build = subprocess.run([str(ROOT / "scripts/build-images.sh"), "postgres", "redis", "clickhouse-double",
                            "minio-double", "langfuse-double"], capture_output=True, text=True, timeout=1200)
    assert build.returncode == 0, f"building the test images failed: {build.stderr[-2000:]}"
    s = Stack(f"pytest-doubles-{uuid.uuid4().hex[:6]}")
    try:
        s.start()
        yield s
    finally:
        s.stop()




RECIPES = ["postgres", "redis", "clickhouse-double", "minio-double", "langfuse-web-double",
           "langfuse-worker-double"]


def started_stack(prefix: str, public_key: str = PK, secret_key: str = SK):
    """Build the images if needed, start a stack, yield it, remove it (a fixture's body)."""
    assert docker("info", check=False).returncode == 0, \
        "no Docker engine answers: run scripts/dockerd.sh start (or make setup)"
    build = subprocess.run([str(ROOT / "scripts/build-images.sh"), *RECIPES], capture_output=True, text=True,
                           timeout=1200)
    assert build.returncode == 0, f"building the test images failed: {build.stderr[-2000:]}"
    s = Stack(f"{prefix}-{uuid.uuid4().hex[:6]}", public_key, secret_key)
    try:
        s.start()
        yield s
    finally:
        s.stop()
