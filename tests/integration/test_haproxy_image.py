"""The HAProxy test image behaves as tests/contracts/haproxy.yml says the official image does (Docker).

The image (tests/test-images.yml: litellm_haproxy_image) runs with a configuration written here and
bind-mounted as a directory at the contract's config path, the runtime API socket in a mounted
directory, the way the litellm role deploys it. Checked: the process runs as the contract's uid, the
default command is master-worker in the foreground, `-c` accepts a valid and rejects a broken
configuration, each documented reload signal makes the running container serve a changed
configuration (and a broken one leaves the old one serving), the stop signal ends it cleanly,
/metrics answers from the built-in Prometheus exporter, and the runtime API and resolvers do what
the contract records (a slot that does not exist yet waits in MAINT (resolution); weight, drain and
`show stat`; runtime changes gone after a reload). It does not build the image: run
scripts/build-images.sh haproxy.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = yaml.safe_load((ROOT / "tests" / "contracts" / "haproxy.yml").read_text())
IMAGE = yaml.safe_load((ROOT / "tests" / "test-images.yml").read_text())[CONTRACT["image"]["role_variable"]]
CONFIG = CONTRACT["paths"]["config"]
CONFIG_DIR = CONTRACT["paths"]["config_dir"]
RUN_DIR = "/var/run/haproxy"
UID, GID = CONTRACT["process"]["uid"], CONTRACT["process"]["gid"]
# The socket is created by uid 99 inside the container; mode 600 (what the role uses) lets only root
# on this side connect, so a run as another user opens it up for the test.
SOCKET_MODE = "600" if os.geteuid() == 0 else "666"

GLOBAL = f"""global
    stats socket {RUN_DIR}/admin.sock mode {SOCKET_MODE} level admin
    hard-stop-after 5s
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend stats
    bind :8404
    http-request use-service prometheus-exporter if {{ path /metrics }}
"""


def answering(body: str) -> str:
    return GLOBAL + ("frontend main\n    bind :4000\n"
                     f'    http-request return status 200 content-type text/plain string "{body}"\n')


def docker(*args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        what = " ".join(args[:6])
        assert proc.returncode == 0, f"docker {what} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


def until(what: str, probe, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (OSError, KeyError, IndexError) as exc:   # not up yet, or mid-reload
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class HAProxy:
    """One container of the image: config directory and runtime directory mounted from tmp_path."""

    def __init__(self, tmp_path: Path, config: str, *docker_args: str):
        self.name = f"llmops-it-haproxy-{uuid.uuid4().hex[:8]}"
        self.conf, self.run = tmp_path / "conf", tmp_path / "run"
        self.conf.mkdir(exist_ok=True)
        self.run.mkdir(exist_ok=True)
        self.conf.chmod(0o755)   # read by uid 99
        self.run.chmod(0o777)    # the socket is created there by uid 99
        self.write(config)
        docker("run", "-d", "--name", self.name, "-v", f"{self.conf}:{CONFIG_DIR}:ro", "-v", f"{self.run}:{RUN_DIR}",
               "-p", "127.0.0.1::4000", "-p", "127.0.0.1::8404", *docker_args, IMAGE)
        self.url = "http://" + docker("port", self.name, "4000").stdout.split()[0]
        self.stats_url = "http://" + docker("port", self.name, "8404").stdout.split()[0]
        until("the stats socket", lambda: (self.run / "admin.sock").exists())

    def write(self, config: str) -> None:
        path = self.conf / Path(CONFIG).name
        path.write_text(config)
        path.chmod(0o644)

    def cli(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.run / "admin.sock"))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self, backend: str) -> dict[str, dict[str, str]]:
        """`show stat` rows of a backend's servers, by server name, keyed by the CSV header."""
        lines = self.cli("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r for r in rows if r["pxname"] == backend and r["svname"] not in ("FRONTEND", "BACKEND")}

    def state(self) -> dict:
        out = docker("inspect", "-f", "{{.State.Status}} {{.State.Pid}} {{.State.ExitCode}}", self.name).stdout.split()
        return {"status": out[0], "pid": int(out[1]), "exit": int(out[2])}

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


@pytest.fixture(scope="module", autouse=True)
def image():
    assert docker("info", check=False).returncode == 0, \
        "no Docker engine answers: run scripts/dockerd.sh start (or make setup)"
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail(f"test image {IMAGE} is missing: run scripts/build-images.sh haproxy")


@pytest.fixture
def haproxy(tmp_path):
    instance = HAProxy(tmp_path, answering("v1"))
    until("the frontend", lambda: get(instance.url) == (200, "v1"))
    yield instance
    instance.remove()


# --- the image's interface ------------------------------------------------------------------------

def test_image_metadata_is_upstreams():
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", IMAGE).stdout)
    assert config["User"] == CONTRACT["process"]["user"]
    assert config["WorkingDir"] == CONTRACT["paths"]["workdir"]
    assert config["StopSignal"] == CONTRACT["signals"]["stop"]
    assert config["Entrypoint"] == CONTRACT["facts"]["entrypoint"]["image_entrypoint"]
    assert config["Cmd"] == CONTRACT["facts"]["entrypoint"]["image_cmd"]
    assert f"HAPROXY_VERSION={CONTRACT['env']['image_env']['HAPROXY_VERSION']}" in config["Env"]


def test_runs_as_the_contracts_user_in_master_worker_mode(haproxy):
    top = docker("top", haproxy.name, "-eo", "pid,uid,gid,args").stdout.splitlines()[1:]
    assert len(top) >= 2, top   # master and at least one worker
    for line in top:
        _pid, uid, gid, args = line.split(None, 3)
        assert (int(uid), int(gid)) == (UID, GID), line
        assert args == f"haproxy -W -db -f {CONFIG}", line
    ident = docker("exec", haproxy.name, "id").stdout
    assert f"uid={UID}({CONTRACT['process']['user']}) gid={GID}({CONTRACT['process']['user']})" in ident, ident
    assert docker("exec", haproxy.name, "sh", "-c", "command -v haproxy").stdout.strip() == CONTRACT["paths"]["binary"]
    assert docker("exec", haproxy.name, "pwd").stdout.strip() == CONTRACT["paths"]["workdir"]


@pytest.mark.parametrize("tool", CONTRACT["health"][0]["image_lacks"])
def test_image_has_no_client_for_a_healthcheck(tool):
    proc = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", IMAGE, "-c", f"command -v {tool}",
                  check=False)
    assert proc.returncode != 0, f"{IMAGE} has {tool} ({proc.stdout.strip()}); the official image does not"


def test_no_config_is_shipped():
    proc = docker("run", "--rm", "--network", "none", IMAGE, check=False, timeout=60)
    assert proc.returncode != 0 and CONFIG in proc.stdout + proc.stderr, proc.stderr[-1000:]


def test_config_check_accepts_valid_and_rejects_broken(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    conf.chmod(0o755)
    (conf / "haproxy.cfg").write_text(answering("ok"))
    (conf / "broken.cfg").write_text(answering("ok") + "    no_such_keyword on\n")
    for f in conf.iterdir():
        f.chmod(0o644)
    mount = ["-v", f"{conf}:{CONFIG_DIR}:ro"]
    good = docker("run", "--rm", "--network", "none", *mount, "--entrypoint", "haproxy", IMAGE, "-c", "-f", CONFIG,
                  check=False)
    assert good.returncode == 0, good.stderr
    # The Hub description's form: through the entrypoint, which adds -W -db.
    via_entrypoint = docker("run", "--rm", "--network", "none", *mount, IMAGE, "haproxy", "-c", "-f", CONFIG,
                            check=False)
    assert via_entrypoint.returncode == 0, via_entrypoint.stderr
    broken = docker("run", "--rm", "--network", "none", *mount, "--entrypoint", "haproxy", IMAGE, "-c", "-f",
                    f"{CONFIG_DIR}/broken.cfg", check=False)
    assert broken.returncode != 0
    assert "no_such_keyword" in broken.stdout + broken.stderr


@pytest.mark.parametrize("signal", CONTRACT["signals"]["reload"])
def test_reload_signal_serves_the_changed_config(haproxy, signal):
    master = haproxy.state()["pid"]
    haproxy.write(answering("v2"))
    assert get(haproxy.url) == (200, "v1")   # nothing changes before the signal
    docker("kill", "-s", signal, haproxy.name)
    until(f"v2 after {signal}", lambda: get(haproxy.url) == (200, "v2"))
    assert haproxy.state() == {"status": "running", "pid": master, "exit": 0}
    assert "Loading success" in docker("logs", haproxy.name).stderr


def test_failed_reload_keeps_the_old_config_serving(haproxy):
    master = haproxy.state()["pid"]
    haproxy.write(answering("v2") + "    no_such_keyword on\n")
    docker("kill", "-s", CONTRACT["signals"]["reload"][0], haproxy.name)
    until("the failed reload", lambda: "Loading failure" in docker("logs", haproxy.name).stderr)
    assert get(haproxy.url) == (200, "v1")
    assert haproxy.state() == {"status": "running", "pid": master, "exit": 0}
    haproxy.write(answering("v3"))
    docker("kill", "-s", CONTRACT["signals"]["reload"][0], haproxy.name)
    until("v3 after the next reload", lambda: get(haproxy.url) == (200, "v3"))


def test_stop_signal_stops_cleanly(haproxy):
    start = time.monotonic()
    docker("stop", "-t", "20", haproxy.name)
    assert time.monotonic() - start < 15, "the stop signal did not end HAProxy; Docker had to kill it"
    assert haproxy.state()["exit"] == 0
    assert "All workers exited" in docker("logs", haproxy.name).stderr


def test_metrics_answer_from_the_built_in_exporter(haproxy):
    status, body = get(haproxy.stats_url + "/metrics")
    assert status == 200
    assert "# TYPE haproxy_process_nbthread gauge" in body
    assert 'haproxy_frontend_http_requests_total{proxy="main"}' in body


# --- runtime API and resolvers, as the role's blue/green push uses them -----------------------------

SLOT = """defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend slot
    bind :4000
    http-request return status 200 content-type text/plain string "{name}"
"""

BALANCER = GLOBAL + """resolvers docker
    nameserver docker 127.0.0.11:53
    hold valid 1s
    hold nx 1s
    hold other 1s
    hold refused 1s
    hold timeout 1s
frontend main
    bind :4000
    default_backend slots
backend slots
    balance roundrobin
    option httpchk GET /
    default-server check inter 300ms fall 2 rise 1 weight 100 resolvers docker init-addr last,libc,none
    server blue {prefix}-blue:4000
    server green {prefix}-green:4000
"""


@pytest.fixture
def slots(tmp_path):
    """A balancer on a user network with slot blue running and slot green absent (not started yet)."""
    prefix = f"llmops-it-slot-{uuid.uuid4().hex[:8]}"
    docker("network", "create", prefix)
    started: list[str] = []

    def start_slot(name: str) -> None:
        conf = tmp_path / name
        conf.mkdir()
        conf.chmod(0o755)
        (conf / "haproxy.cfg").write_text(SLOT.format(name=name))
        (conf / "haproxy.cfg").chmod(0o644)
        docker("run", "-d", "--name", f"{prefix}-{name}", "--network", prefix, "-v", f"{conf}:{CONFIG_DIR}:ro", IMAGE)
        started.append(f"{prefix}-{name}")

    start_slot("blue")
    lb_dir = tmp_path / "lb"
    lb_dir.mkdir()
    balancer = None
    try:
        balancer = HAProxy(lb_dir, BALANCER.replace("{prefix}", prefix), "--network", prefix)
        balancer.start_slot = start_slot
        until("blue up", lambda: balancer.servers("slots")["blue"]["status"] == "UP")
        yield balancer
    finally:
        if balancer:
            balancer.remove()
        for name in started:
            docker("rm", "-f", name, check=False)
        docker("network", "rm", prefix, check=False)


def bodies(url: str, n: int = 6) -> list[str]:
    return [get(url)[1] for _ in range(n)]


def test_absent_slot_waits_in_maintenance_until_it_resolves(slots):
    assert slots.servers("slots")["green"]["status"] == "MAINT (resolution)"
    assert set(bodies(slots.url)) == {"blue"}
    slots.start_slot("green")
    until("green up", lambda: slots.servers("slots")["green"]["status"] == "UP")
    until("both slots serving", lambda: set(bodies(slots.url)) == {"blue", "green"})


def test_runtime_api_moves_traffic_and_reload_forgets_it(slots):
    slots.start_slot("green")
    until("green up", lambda: slots.servers("slots")["green"]["status"] == "UP")
    assert slots.cli("set weight slots/blue 0").strip() == ""
    servers = slots.servers("slots")
    assert (servers["blue"]["status"], servers["blue"]["weight"]) == ("UP", "0")   # weight 0: still UP
    assert set(bodies(slots.url)) == {"green"}
    assert slots.cli("set server slots/green state drain").strip() == ""
    assert slots.servers("slots")["green"]["status"] == "DRAIN"
    assert {get(slots.url)[0] for _ in range(3)} == {503}   # no server left in load balancing
    assert slots.cli("set server slots/blue state maint").strip() == ""
    assert slots.servers("slots")["blue"]["status"] == "MAINT"
    assert slots.cli("set server slots/green state ready").strip() == ""
    assert set(bodies(slots.url)) == {"green"}
    # A reload starts from the configuration again: blue back at weight 100, out of maintenance.
    docker("kill", "-s", CONTRACT["signals"]["reload"][0], slots.name)
    until("blue back after the reload", lambda: slots.servers("slots")["blue"]["weight"] == "100"
          and slots.servers("slots")["blue"]["status"] == "UP")
    until("both slots serving", lambda: set(bodies(slots.url)) == {"blue", "green"})
