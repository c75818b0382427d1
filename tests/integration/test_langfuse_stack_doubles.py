"""The Langfuse stack's test images working together on this machine's Docker engine.

Real Postgres and Redis images plus the ClickHouse, MinIO and Langfuse TEST DOUBLES, started with
the commands and health checks of the langfuse role's compose file. Checks what the roles' tests
rely on: health, keys from headless initialisation, OTLP in and observations out, and that a
wiring mistake stops the Langfuse double with a message naming it.
"""

from __future__ import annotations

import gzip
import http.client
import json
import time
import uuid

import pytest
from langfuse_stack import IMAGES, PK, Stack, call, docker, started_stack


@pytest.fixture(scope="module")
def stack():
    yield from started_stack("pytest-doubles")


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
        query = f"traceId={trace_id}&fields=core,basic,model,usage"
        status, body = call("GET", f"{stack.url}/api/public/v2/observations?{query}")
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


def test_worker_without_hostname_override_listens_on_the_container_address_only(stack):
    """Upstream's worker listens on $HOSTNAME, which Docker sets to the container id (contract
    langfuse-worker: listen): a healthcheck on 127.0.0.1 can only pass with HOSTNAME=0.0.0.0."""
    name = stack.run("worker-no-hostname", *stack.env_args(stack.common), IMAGES["worker"])
    deadline = time.monotonic() + 60
    while "listening on" not in docker("logs", name, check=False).stdout and time.monotonic() < deadline:
        time.sleep(0.5)
    own = docker("exec", name, "sh", "-c", 'wget -q -O- "http://$(hostname -i):3030/api/health"', check=False)
    assert own.returncode == 0, docker("logs", name, check=False).stdout[-800:]
    loopback = docker("exec", name, "wget", "-q", "-O-", "http://127.0.0.1:3030/api/health", check=False)
    assert loopback.returncode != 0
    docker("rm", "-f", name, check=False)


def test_traces_wait_in_the_queue_while_the_worker_is_down(stack):
    """Web only stores and queues a batch; the worker makes it visible (contract langfuse-web)."""
    trace_id = uuid.uuid4().hex
    worker = f"{stack.name}-worker"
    docker("stop", worker)
    try:
        assert call("POST", stack.url + "/api/public/otel/v1/traces", otlp_json(trace_id, "queued"),
                    {"Content-Type": "application/json"})[0] == 200
        assert observations(stack, trace_id, seconds=5) == []
    finally:
        docker("start", worker)
    stack.wait_healthy([worker])
    assert [o["name"] for o in observations(stack, trace_id)] == ["queued"]
