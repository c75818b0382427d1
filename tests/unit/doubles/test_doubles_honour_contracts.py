"""Each test double against its upstream contract (tests/contracts/): the health routes answer as
upstream's do, the Langfuse parts refuse to start without what upstream requires and listen where
upstream listens. A double that disagrees with its contract fails here.

The ClickHouse and MinIO doubles run as processes on free loopback ports; the Langfuse double's
start-up logic is called directly (its backing services are covered in tests/integration/).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "tests" / "images"


def contract(name: str) -> dict:
    return yaml.safe_load((ROOT / "tests" / "contracts" / f"{name}.yml").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def serve(argv: list[str], env: dict, url: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, *argv], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            get(url)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode()) from None
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"{argv[0]} did not answer on {url}")


def http_health(name: str) -> list[dict]:
    return [h for h in contract(name)["health"] if h.get("path") and h.get("status")]


@pytest.fixture(scope="module")
def clickhouse_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("ch")
    port = free_port()
    env = {"CLICKHOUSE_DOUBLE_HTTP_PORT": str(port), "CLICKHOUSE_DOUBLE_TCP_PORT": str(free_port()),
           "CLICKHOUSE_DOUBLE_DATA": str(data / "data"), "CLICKHOUSE_DOUBLE_LOGS": str(data / "logs"),
           "CLICKHOUSE_USER": "clickhouse", "CLICKHOUSE_PASSWORD": "pw"}
    proc = serve([str(IMAGES / "clickhouse-double" / "clickhouse_double.py")], env, f"http://127.0.0.1:{port}/ping")
    yield port
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def minio_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("minio")
    port = free_port()
    argv = [str(IMAGES / "minio-double" / "minio_double.py"), "server", "--address", f"127.0.0.1:{port}",
            "--console-address", f"127.0.0.1:{free_port()}", str(data)]
    proc = serve(argv, {"MINIO_ROOT_USER": "minio", "MINIO_ROOT_PASSWORD": "minio-password"},
                 f"http://127.0.0.1:{port}/minio/health/live")
    yield port
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("route", http_health("clickhouse"), ids=lambda h: h["path"])
def test_clickhouse_double_health_routes(clickhouse_server, route):
    status, body = get(f"http://127.0.0.1:{clickhouse_server}{route['path']}")
    assert status == route["status"]
    if isinstance(route.get("body"), str):
        assert body.decode() == route["body"]


@pytest.mark.parametrize("route", http_health("minio"), ids=lambda h: h["path"])
def test_minio_double_health_routes(minio_server, route):
    status, _ = get(f"http://127.0.0.1:{minio_server}{route['path']}")
    assert status == route["status"]


def test_mc_ready_probes_the_route_upstreams_client_probes(minio, minio_server, monkeypatch):
    spec = next(h for h in contract("minio")["health"] if h.get("command") == "mc ready local")
    probed = []
    real_urlopen = urllib.request.urlopen

    def recording(url, *args, **kwargs):
        probed.append(urllib.parse.urlsplit(url).path)
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setenv("MC_HOST_local", f"http://127.0.0.1:{minio_server}")
    monkeypatch.setattr(minio.urllib.request, "urlopen", recording)
    assert minio.mc_main(["ready", "local"]) == 0
    assert probed and all(path in spec["probe"] for path in probed), (probed, spec["probe"])


# --- Langfuse web and worker: start-up rules from their contracts ------------------------------

@pytest.mark.parametrize("part", ["web", "worker"])
def test_langfuse_double_refuses_each_required_variable_missing(langfuse, part):
    spec = contract(f"langfuse-{part}")
    env = {name: "x" for name in spec["env"]["required"]}
    env.update(DATABASE_URL="postgresql://u:p@db:5432/d", NEXTAUTH_URL="http://10.0.0.5:3000",
               CLICKHOUSE_CLUSTER_ENABLED="false", REDIS_HOST="redis", CLICKHOUSE_MIGRATION_URL="clickhouse://ch:9000")
    langfuse.load_config(env, part, spec)  # complete: accepted
    for name in spec["env"]["required"]:
        broken = {k: v for k, v in env.items() if k != name}
        with pytest.raises(langfuse.ConfigError, match=name):
            langfuse.load_config(broken, part, spec)


@pytest.mark.parametrize("part", ["web", "worker"])
def test_langfuse_double_listens_where_the_contract_says(langfuse, part):
    spec = contract(f"langfuse-{part}")
    env = {name: "x" for name in spec["env"]["required"]}
    env.update(DATABASE_URL="postgresql://u:p@db:5432/d", NEXTAUTH_URL="http://10.0.0.5:3000",
               CLICKHOUSE_CLUSTER_ENABLED="false", REDIS_HOST="redis", CLICKHOUSE_MIGRATION_URL="clickhouse://ch:9000")
    address, port = spec["listen"]["address"], spec["listen"]["port"]
    cfg = langfuse.load_config(env, part, spec)
    assert (cfg["host"], cfg["port"]) == (address["default"], port["default"])
    # Docker's HOSTNAME (the container id) decides the address unless the deployment overrides it.
    cfg = langfuse.load_config({**env, address["env"]: "c0ffee123456", port["env"]: "4321"}, part, spec)
    assert (cfg["host"], cfg["port"]) == ("c0ffee123456", 4321)
    assert langfuse.listen_address("localhost") == "127.0.0.1"


class _Recorder:
    def __init__(self):
        self.sent = []

    def send(self, status, payload=None, *args, **kwargs):
        self.sent.append((status, payload))

    def error(self, status, message, kind="Error"):
        self.sent.append((status, {"message": message, "error": kind}))


class _Backends:
    def __init__(self, healthy: bool):
        self.healthy = healthy

    def sql(self, _query):
        if not self.healthy:
            raise OSError("postgres down")

    def redis(self):
        return self

    def ping(self):
        return True


@pytest.mark.parametrize("path", ["/api/health", "/api/ready"])
def test_langfuse_worker_health_answers_like_upstream(langfuse, path):
    route = next(h for h in contract("langfuse-worker")["health"] if h.get("path") == path)
    for healthy in (True, False):
        app = langfuse.App({}, _Backends(healthy))
        h = _Recorder()
        app.worker(h, "GET", path)
        status, body = h.sent[-1]
        if healthy:
            assert (status, body) == (route["status"], route["body"])
        else:
            assert status >= 500 and body == {"status": "error"}


# --- Langfuse web: content API (LLM connection base URLs) --------------------------------------

def test_langfuse_double_blocks_the_ranges_upstream_blocks(langfuse):
    rules = contract("langfuse-web")["content_api"]["base_url_validation"]["value"]
    listed = {ipaddress.ip_network(c) for c in re.findall(r"[0-9a-f:.]+/\d+", rules["ip_check"])}
    assert listed == set(langfuse.BLOCKED_NETWORKS)
    prefix = "LANGFUSE_LLM_CONNECTION_WHITELISTED"
    assert prefix + "_HOST" in rules["whitelist_env"]
    assert set(langfuse.WHITELIST_ENV.values()) == {prefix + s for s in ("_HOST", "_IPS", "_IP_SEGMENTS")}
