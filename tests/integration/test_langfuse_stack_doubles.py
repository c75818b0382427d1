"""The Langfuse stack's test images working together on this machine's Docker engine.

Real Postgres and Redis images plus the ClickHouse, MinIO and Langfuse TEST DOUBLES, started with
the commands and health checks of the langfuse role's compose file. Checks what the roles' tests
rely on: health, keys from headless initialisation, OTLP in and observations out, and that a
wiring mistake stops the Langfuse double with a message naming it.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {
    "postgres": "postgres:17.12",
    "redis": "redis:8.0.2",
    "clickhouse": "clickhouse/clickhouse-server:25.12",
    "minio": "minio/minio:RELEASE.2025-09-07T16-13-09Z",
    "web": "langfuse/langfuse:4.2.0",
    "worker": "langfuse/langfuse-worker:4.2.0",
}
PK, SK = "pk-lf-" + str(uuid.uuid4()), "sk-lf-" + str(uuid.uuid4())


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
    def __init__(self, name: str):
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
        self.web_env = dict(self.common, **{
            "NEXTAUTH_URL": "http://203.0.113.10:3000",
            "NEXTAUTH_SECRET": secrets.token_hex(16),
            "LANGFUSE_INIT_ORG_ID": "llmops",
            "LANGFUSE_INIT_ORG_NAME": "LLMOps",
            "LANGFUSE_INIT_PROJECT_ID": "devbox",
            "LANGFUSE_INIT_PROJECT_NAME": "Dev box",
            "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK,
            "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK,
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
                 "--health-cmd", "pg_isready -U postgres", *health, IMAGES["postgres"], alias="postgres")
        self.run("clickhouse", "--user", "101:101", "-e", "CLICKHOUSE_USER=clickhouse",
                 "-e", f"CLICKHOUSE_PASSWORD={pw['ch']}", "-v", f"{self.name}-ch:/var/lib/clickhouse",
                 "--health-cmd", "wget --no-verbose --tries=1 --spider http://localhost:8123/ping || exit 1",
                 *health, IMAGES["clickhouse"], alias="clickhouse")
        self.run("redis", "-e", f"REDIS_AUTH={pw['redis']}",
                 "--health-cmd", 'REDISCLI_AUTH="$REDIS_AUTH" redis-cli ping | grep -q PONG', *health,
                 IMAGES["redis"], "sh", "-c",
                 'exec redis-server --requirepass "$REDIS_AUTH" --maxmemory-policy noeviction', alias="redis")
        self.run("minio", "-e", "MINIO_ROOT_USER=minio", "-e", f"MINIO_ROOT_PASSWORD={pw['minio']}",
                 "--health-cmd", "mc ready local", *health, "--entrypoint", "sh", IMAGES["minio"],
                 "-c", "mkdir -p /data/langfuse && exec minio server --address ':9000' --console-address ':9001' /data",
                 alias="minio")
        self.wait_healthy([f"{self.name}-{s}" for s in ("postgres", "clickhouse", "redis", "minio")])
        self.run("worker", *self.env_args(self.common), "--health-cmd",
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


def otlp_json(trace_id: str, name: str) -> bytes:
    now = time.time_ns()
    span = {"traceId": trace_id, "spanId": trace_id[:16], "name": name,
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 10**9),
            "attributes": [
                {"key": "langfuse.observation.type", "value": {"stringValue": "generation"}},
                {"key": "langfuse.observation.model.name", "value": {"stringValue": "m1"}},
                {"key": "langfuse.observation.usage_details",
                 "value": {"stringValue": json.dumps({"input": 3, "output": 4, "total": 7})}},
            ]}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def observations(stack: Stack, trace_id: str, seconds: int = 20) -> list[dict]:
    deadline = time.monotonic() + seconds
    while True:
        status, body = call("GET", f"{stack.url}/api/public/v2/observations?traceId={trace_id}")
        assert status == 200, body
        data = json.loads(body)["data"]
        if data or time.monotonic() > deadline:
            return data
        time.sleep(0.5)


def test_health_and_version(stack):
    status, body = call("GET", stack.url + "/api/public/health", auth=None)
    assert (status, json.loads(body)) == (200, {"status": "OK", "version": "4.2.0"})
    status, _ = call("GET", stack.url + "/api/public/health?failIfDatabaseUnavailable=true", auth=None)
    assert status == 200
    assert call("GET", stack.url + "/api/public/ready", auth=None)[0] == 200


def test_worker_answers_only_on_its_own_port(stack):
    worker = f"{stack.name}-worker"
    assert docker("exec", worker, "wget", "-q", "-O-", "http://127.0.0.1:3030/api/health").returncode == 0
    # The worker env has no NEXTAUTH_SECRET: no web part there.
    assert docker("exec", worker, "wget", "-q", "-O-", "http://127.0.0.1:3000/api/public/health",
                  check=False).returncode != 0


def test_init_keys_reach_the_project_and_wrong_ones_do_not(stack):
    status, body = call("GET", stack.url + "/api/public/projects")
    assert status == 200
    assert json.loads(body)["data"] == [{"id": "devbox", "name": "Dev box", "metadata": {},
                                         "organization": {"id": "llmops", "name": "LLMOps"}}]
    assert call("GET", stack.url + "/api/public/projects", auth=(PK, "sk-lf-wrong"))[0] == 401


def test_otlp_trace_is_read_back_as_observation(stack):
    trace_id = uuid.uuid4().hex
    status, _ = call("POST", stack.url + "/api/public/otel/v1/traces", gzip.compress(otlp_json(trace_id, "t1")),
                     {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 200
    (obs,) = observations(stack, trace_id)
    assert (obs["traceId"], obs["type"], obs["name"], obs["providedModelName"]) == (trace_id, "GENERATION", "t1", "m1")
    assert obs["usageDetails"] == {"input": 3, "output": 4, "total": 7}
    # v4: the v1 trace read is gone; clients must use v2 observations.
    assert call("GET", f"{stack.url}/api/public/traces/{trace_id}")[0] == 404


def test_traces_survive_clickhouse_restart_and_outage(stack):
    kept, late = uuid.uuid4().hex, uuid.uuid4().hex
    assert call("POST", stack.url + "/api/public/otel/v1/traces", otlp_json(kept, "kept"),
                {"Content-Type": "application/json"})[0] == 200
    assert observations(stack, kept)
    clickhouse = f"{stack.name}-clickhouse"
    docker("stop", clickhouse)
    # Ingestion only needs S3 and Redis: the trace waits in the queue until ClickHouse is back.
    assert call("POST", stack.url + "/api/public/otel/v1/traces", otlp_json(late, "late"),
                {"Content-Type": "application/json"})[0] == 200
    docker("start", clickhouse)
    stack.wait_healthy([clickhouse])
    assert [o["name"] for o in observations(stack, kept)] == ["kept"]
    assert [o["name"] for o in observations(stack, late)] == ["late"]


def test_headless_init_never_updates_an_existing_key(stack):
    rotated = "sk-lf-" + str(uuid.uuid4())
    env = dict(stack.web_env, LANGFUSE_INIT_PROJECT_SECRET_KEY=rotated)
    second = stack.run("web2", *stack.env_args(env), "--health-cmd",
                       "wget -q -O /dev/null http://127.0.0.1:3000/api/public/health || exit 1",
                       "--health-interval", "1s", IMAGES["web"])
    stack.wait_healthy([second])
    assert call("GET", stack.url + "/api/public/projects")[0] == 200
    assert call("GET", stack.url + "/api/public/projects", auth=(PK, rotated))[0] == 401


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("CLICKHOUSE_PASSWORD", "wrong", "AUTHENTICATION_FAILED"),
    ("REDIS_AUTH", "wrong", "password was refused"),
    ("LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY", "wrong-secret", "S3 refused the credentials"),
    ("LANGFUSE_S3_EVENT_UPLOAD_BUCKET", "missing", "does not exist"),
    ("DATABASE_URL", "postgresql://postgres:wrong@postgres:5432/postgres", "password authentication failed"),
    ("CLICKHOUSE_CLUSTER_ENABLED", "true", "CLICKHOUSE_CLUSTER_ENABLED=false"),
])
def test_wiring_mistake_stops_the_double_with_the_reason(stack, variable, value, reason):
    result = stack.one_shot(IMAGES["worker"], dict(stack.common, **{variable: value}))
    assert result.returncode == 1
    assert "refusing to start" in result.stdout and reason in result.stdout, result.stdout[-800:]


def test_root_redirects_to_sign_in_at_nextauth_url(stack):
    host, port = stack.url[len("http://"):].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("Location")) == (307, "http://203.0.113.10:3000/auth/sign-in")
