"""benchmarks/proxy_load.py against a local fake OpenAI-compatible proxy (no SSH, no target).

The fake serves /v1/models, /v1/chat/completions (JSON, and SSE when the request asks to stream) and
can fail on purpose: HTTP 500, a connection dropped before the answer, a stream cut or ended early,
an answer that never comes. The load runs the real OpenAI SDK against it, directly
(``ProxyLoad.direct``) or through ``Tunnel`` with a stand-in for ssh that forwards the port itself.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))

import proxy_load  # noqa: E402 - from the benchmarks directory, as the Molecule tests import it
from proxy_load import ProxyLoad, Tunnel  # noqa: E402

KEY = "sk-test-master"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass

    def _json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        fake = self.server.fake
        fake.record(self, None)
        if self.path.rstrip("/") != "/v1/models":
            return self._json(404, {"error": {"message": "not found"}})
        with fake.lock:
            models = list(fake.models)
        self._json(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                                                     for m in models]})

    def do_POST(self):  # noqa: N802 - http.server's naming
        fake = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        fake.record(self, body)
        if self.path != "/v1/chat/completions":
            return self._json(404, {"error": {"message": "not found"}})
        if fake.hang:
            time.sleep(fake.hang)
        if fake.mode == "500":
            return self._json(500, {"error": {"message": "boom", "type": "internal_error"}})
        if fake.mode == "drop":  # close the connection without a word
            self.close_connection = True
            return None
        if body.get("stream"):
            time.sleep(fake.stream_delay)  # LiteLLM's mock_delay: nothing is sent before it has passed
            return self._stream(body["model"], fake.stream_mode)
        self._json(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                                      "finish_reason": "stop"}]})

    def _stream(self, model, mode):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(delta, finish=None):
            data = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            send(f"data: {json.dumps(data)}\n\n")

        def send(text):
            raw = text.encode()
            self.wfile.write(f"{len(raw):X}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()

        event({"role": "assistant", "content": ""})
        if mode == "empty":
            send("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        event({"content": "po"})
        if mode == "cut":  # the connection drops mid-stream: no last chunk, no end of the body
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        event({"content": "ng"})
        if mode != "no-finish":
            event({}, "stop")
        send("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")


class FakeProxy:
    """A LiteLLM-like proxy on 127.0.0.1 (``url``); ``models``, ``mode``, ``stream_mode``, ``hang`` script it."""

    def __init__(self, models=("mock-a", "mock-slow")):
        self.lock = threading.Lock()
        self.models = list(models)
        self.mode = "ok"  # ok | 500 | drop
        self.stream_mode = "ok"  # ok | cut | empty | no-finish
        self.hang = 0.0
        self.stream_delay = 0.0
        self.requests = []  # (method, path, client port, authorization, body)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._httpd.server_address[1]

    def record(self, handler, body):
        with self.lock:
            self.requests.append((handler.command, handler.path, handler.client_address[1],
                                  handler.headers.get("Authorization"), body))

    def chat_ports(self, kind):
        """Client ports of the chat completions a kind of client sent (its message names the kind)."""
        with self.lock:
            return [port for method, _, port, _, body in self.requests
                    if method == "POST" and body and body["messages"][0]["content"].startswith(f"proxy_load {kind} ")]

    def add_model(self, name):
        with self.lock:
            self.models.append(name)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def fake():
    with FakeProxy() as srv:
        yield srv


def run_load(url, each=5, **kwargs):
    """Load until every client kind has finished ``each`` requests (bounded: 30 s), then stop."""
    kwargs.setdefault("long_gap_probability", 0.0)
    kwargs.setdefault("request_timeout", 10)
    with ProxyLoad.direct(url, KEY, **kwargs) as load:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts = load.snapshot()
            if all(counts[k]["ok"] + counts[k]["failed"] >= each for k in ("pool", "fresh", "stream") if k in counts):
                break
            time.sleep(0.05)
        return load.stop()


def test_counts_successes_of_every_kind(fake):
    result = run_load(fake.url, pool_threads=3, fresh_threads=2, stream_threads=2, seed=1)

    for kind in ("pool", "fresh", "stream"):
        stats = result[kind]
        assert stats["sent"] > 0, kind
        assert stats["ok"] == stats["sent"] and stats["failed"] == 0 and stats["errors"] == {}, (kind, stats)
        assert stats["in_flight"] == 0 and stats["latency_max_s"] is not None
    assert "watcher" not in result and result["new_model_at"] is None
    assert result["failed_total"] == 0 and result["hung_threads"] == [] and not result["deadline_reached"]
    assert result["sent_total"] == sum(result[k]["sent"] for k in ("pool", "fresh", "stream"))
    # The master key is the bearer token of every request.
    assert {auth for *_, auth, _ in fake.requests} == {f"Bearer {KEY}"}
    # pool: 3 threads share one keep-alive pool: at most 3 connections for all their requests;
    # fresh: a new connection for every request.
    pool, fresh = fake.chat_ports("pool"), fake.chat_ports("fresh")
    assert len(pool) > 3 and len(set(pool)) <= 3
    assert len(fresh) > 2 and len(set(fresh)) == len(fresh)
    # The streams asked the slow model to stream, the others the normal model.
    bodies = [body for method, *_, body in fake.requests if method == "POST"]
    assert {(b["model"], bool(b.get("stream"))) for b in bodies} == {("mock-a", False), ("mock-slow", True)}


@pytest.mark.parametrize("mode, error", [("500", "HTTP 500"), ("drop", "connection: RemoteProtocolError")])
def test_counts_failures_of_every_kind(fake, mode, error):
    fake.mode = mode
    result = run_load(fake.url, pool_threads=2, fresh_threads=1, stream_threads=1)

    for kind in ("pool", "fresh", "stream"):
        stats = result[kind]
        assert stats["sent"] > 0 and stats["failed"] == stats["sent"] and stats["ok"] == 0, (kind, stats)
        assert stats["errors"] == {error: stats["sent"]}, (kind, stats)
        assert stats["first_failures"][0]["error"] == error
    assert result["failed_total"] == result["sent_total"]


@pytest.mark.parametrize("stream_mode, error", [
    ("cut", "connection: RemoteProtocolError"),  # connection gone mid-stream
    ("empty", "stream without content"),  # a well-formed stream that says nothing
    ("no-finish", "stream ended early"),  # content, then [DONE] without a finish reason
])
def test_counts_streams_that_end_early(fake, stream_mode, error):
    fake.stream_mode = stream_mode
    result = run_load(fake.url, pool_threads=1, fresh_threads=0, stream_threads=2)

    assert result["stream"]["sent"] > 0
    assert result["stream"]["errors"] == {error: result["stream"]["sent"]}
    assert result["pool"]["failed"] == 0 and result["pool"]["ok"] > 0  # non-streamed answers were whole
    assert "fresh" not in result


def test_records_when_the_new_model_is_listed(fake):
    with ProxyLoad.direct(fake.url, KEY, new_model="mock-b", pool_threads=1, fresh_threads=0, stream_threads=0,
                          poll_interval=0.05) as load:
        deadline = time.monotonic() + 30
        while load.snapshot()["watcher"]["ok"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert load.new_model_at is None and not load.wait_new_model(0.1)
        added = time.time()
        fake.add_model("mock-b")
        assert load.wait_new_model(5)
        result = load.stop()

    assert added <= result["new_model_at"] <= added + 3
    assert result["watcher"]["sent"] >= 3 and result["watcher"]["failed"] == 0


def test_watcher_counts_failed_polls_and_keeps_polling(fake):
    fake.models = []  # preflight needs no model: no pool, fresh or stream thread
    with ProxyLoad.direct(fake.url, KEY, new_model="mock-b", pool_threads=0, fresh_threads=0, stream_threads=0,
                          poll_interval=0.05) as load:
        time.sleep(0.3)
        fake._httpd.fake = None  # every handler now crashes: the connection closes without an answer
        time.sleep(0.6)
        fake._httpd.fake = fake
        fake.add_model("mock-b")
        assert load.wait_new_model(5)
        result = load.stop()

    assert result["watcher"]["failed"] > 0 and result["new_model_at"] is not None
    assert all(e.startswith("connection: ") for e in result["watcher"]["errors"])


def test_counts_requests_in_flight_at_a_moment(fake):
    fake.stream_delay = 2.0
    with ProxyLoad.direct(fake.url, KEY, pool_threads=1, fresh_threads=0, stream_threads=1,
                          long_gap_probability=0.0) as load:
        time.sleep(0.5)
        moment = time.time()  # the first stream started about 0.5 s ago and lasts 2 s
        time.sleep(2.0)
        result = load.stop()

    assert result["stream"]["ok"] >= 1 and result["stream"]["latency_max_s"] >= 2.0
    during = load.in_flight_at(moment)
    assert during["stream"] == 1 and set(during) == {"pool", "stream"}
    assert load.in_flight_at(time.time() + 10) == {"pool": 0, "stream": 0}


def test_hung_proxy_is_bounded(fake):
    fake.hang = 30
    start = time.monotonic()
    with ProxyLoad.direct(fake.url, KEY, pool_threads=2, fresh_threads=1, stream_threads=1,
                          request_timeout=1, max_seconds=60) as load:
        time.sleep(1.5)
        result = load.stop()

    assert time.monotonic() - start < 10  # 1.5 s of load, then at most request_timeout + 5 to stop
    assert result["hung_threads"] == []
    for kind in ("pool", "fresh", "stream"):
        assert result[kind]["errors"] == {"timeout": result[kind]["sent"]}, (kind, result[kind])


def test_load_stops_by_itself_after_max_seconds(fake):
    load = ProxyLoad.direct(fake.url, KEY, pool_threads=2, fresh_threads=1, stream_threads=1, max_seconds=2,
                            long_gap_probability=0.0).start()
    try:
        deadline = time.monotonic() + 20
        while any(t.is_alive() for t in load._threads) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(t.is_alive() for t in load._threads)
        sent = load.snapshot()["sent_total"]
        time.sleep(0.3)
        assert load.snapshot()["sent_total"] == sent
    finally:
        result = load.stop()
    assert result["failed_total"] == 0 and result["sent_total"] > 0 and result["deadline_reached"]


def test_refuses_to_start_without_the_models_it_needs(fake):
    fake.models = ["mock-a"]
    with pytest.raises(RuntimeError, match="does not list mock-slow"):
        ProxyLoad.direct(fake.url, KEY, ready_timeout=0.5).start()
    assert not [r for r in fake.requests if r[0] == "POST"]


def test_refuses_a_key_the_proxy_refuses():
    class Refusing(_Handler):
        def do_GET(self):  # noqa: N802
            self._json(401, {"error": {"message": "Authentication Error"}})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(RuntimeError, match="refused the key: HTTP 401"):
            ProxyLoad.direct(f"http://127.0.0.1:{httpd.server_address[1]}", KEY, ready_timeout=5).start()
    finally:
        httpd.shutdown()
        httpd.server_close()


# A stand-in for ssh: `... dest sudo cat FILE` prints a key; `... -N -L l:host:r dest` listens on l
# (after a delay, as ssh does once authenticated) and relays every connection to host:r.
FAKE_SSH = r"""
import socket, sys, threading, time
args = sys.argv[1:]
if "-N" not in args:
    print("sk-test-master") if args[-3:-1] == ["sudo", "cat"] else sys.exit(255)
    sys.exit(0)
lport, rhost, rport = args[args.index("-L") + 1].split(":")[1:]
time.sleep(0.5)
srv = socket.create_server(("127.0.0.1", int(lport)))
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    u = socket.create_connection((rhost, int(rport)))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
"""
FAKE_SSH_ARGV = [sys.executable, "-c", FAKE_SSH, "admin@box"]


def test_through_a_tunnel_read_key_and_close(fake):
    port = int(fake.url.rsplit(":", 1)[1])
    load = ProxyLoad(ssh_argv=FAKE_SSH_ARGV, port=port, new_model="mock-a", pool_threads=2, fresh_threads=1,
                     stream_threads=1, long_gap_probability=0.0)
    with load:
        local = load.tunnel.local_port
        assert load.base_url == f"http://127.0.0.1:{local}/v1" and local != port
        assert load.wait_new_model(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(load.snapshot()[k]["ok"] for k in ("pool", "fresh", "stream")):
            time.sleep(0.05)
        result = load.stop()

    assert result["failed_total"] == 0 and all(result[k]["ok"] > 0 for k in ("pool", "fresh", "stream"))
    assert {auth for *_, auth, _ in fake.requests} == {f"Bearer {KEY}"}
    assert load.tunnel.proc is None and not proxy_load._port_answers(local)


def test_tunnel_argv_and_failures():
    tunnel = Tunnel(["ssh", "-i", "k", "admin@box"], 4000)
    argv = tunnel.argv(5555)
    assert argv[0] == "ssh" and argv[-1] == "admin@box" and "-N" in argv
    assert argv[argv.index("-L") + 1] == "127.0.0.1:5555:127.0.0.1:4000"
    assert "ExitOnForwardFailure=yes" in argv
    # ssh exits at once (here: a refused login): its stderr in the error, no process left.
    refused = Tunnel([sys.executable, "-c", "import sys; sys.exit('Permission denied (publickey).')", "x"], 4000)
    with pytest.raises(RuntimeError, match="Permission denied"):
        refused.open()
    assert refused.proc is None
    # ssh that never listens: bounded by ready_timeout, and the process is ended.
    silent = Tunnel([sys.executable, "-c", "import time; time.sleep(60)", "x"], 4000, ready_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="did not answer"):
        silent.open()
    assert time.monotonic() - start < 5 and silent.proc is None


def test_read_master_key():
    assert proxy_load.read_master_key(FAKE_SSH_ARGV) == KEY
    with pytest.raises(RuntimeError, match="could not read /etc/litellm/master_key") as err:
        proxy_load.read_master_key([sys.executable, "-c", "import sys; sys.exit(3)", "x"])
    assert KEY not in str(err.value)


def test_ssh_from_inventory(tmp_path):
    inv = tmp_path / "inventory.ini"
    inv.write_text("[devboxes]\nbox1 ansible_host=10.0.0.5 ansible_port=2222\nbox2\n\n[all:vars]\n"
                   "ansible_user=admin\nansible_ssh_private_key_file=~/k/id\n"
                   "ansible_ssh_common_args='-o ProxyJump=bastion'\n")
    argv = proxy_load.ssh_from_inventory(str(inv), "box1")
    assert argv[0] == "ssh" and argv[-1] == "admin@10.0.0.5"
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == str(Path("~/k/id").expanduser())
    assert "ProxyJump=bastion" in argv and "BatchMode=yes" in argv
    assert proxy_load.ssh_from_inventory(str(inv), "box2")[-1] == "admin@box2"
    with pytest.raises(RuntimeError, match="no host nobox"):
        proxy_load.ssh_from_inventory(str(inv), "nobox")


def test_cli_direct(fake):
    env = {"LITELLM_MASTER_KEY": KEY, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "proxy_load.py"), "--base-url", fake.url,
                           "--seconds", "1", "--pool-threads", "1", "--fresh-threads", "1", "--stream-threads", "1"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["failed_total"] == 0 and result["sent_total"] > 0
    assert KEY not in proc.stdout
