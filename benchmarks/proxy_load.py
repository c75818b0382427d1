#!/usr/bin/env python3
"""Load on a LiteLLM proxy with the official OpenAI SDK, from the controller, through an SSH tunnel.

Used by benchmarks/litellm_push.py and by Molecule tests (they put this directory on sys.path and
``import proxy_load``). Four kinds of client run at once, each with its own counts:

``pool``
    one ``openai.OpenAI`` shared by ``pool_threads`` threads (the SDK's keep-alive connection pool)
    sending chat completions to ``model``, with idle gaps of 0-300 ms and now and then 2-5 s, so
    connections sit idle across a blue/green switch;
``fresh``
    ``fresh_threads`` threads, each request on a new client and connection (closed afterwards);
``stream``
    ``stream_threads`` threads sending streaming chat completions to ``slow_model`` (a mock model
    with ``mock_delay``, so each is in flight across the switch); every chunk is read, and a stream
    that errors, brings no content or ends without a finish reason counts as failed;
``watcher``
    (with ``new_model``) polls ``client.models.list()`` and records the controller's wall-clock time
    at which ``new_model`` is first listed (``new_model_at``).

``max_retries=0`` everywhere: the SDK never hides a failure. Everything is bounded: each request by
``request_timeout``, the whole load by ``max_seconds`` (it stops by itself), ``stop()`` by joining the
threads for at most ``request_timeout + 5`` s. API::

    from proxy_load import ProxyLoad
    with ProxyLoad(inventory, host, port=4000, model="mock-a", slow_model="mock-slow",
                   new_model="mock-b", pool_threads=4, fresh_threads=2, stream_threads=2) as load:
        ...                                   # push a config; load.snapshot() for counts so far
        load.wait_new_model(timeout=120)      # optional: True once new_model was listed
        result = load.stop()                  # joins the threads, closes the tunnel
    result["pool"]["failed"], result["stream"]["errors"], result["new_model_at"]
    load.in_flight_at(result["new_model_at"])  # per kind: requests under way at that moment

``ProxyLoad.direct(base_url, api_key, ...)`` skips SSH (a proxy the controller reaches itself, or a
test's fake server). With an inventory the master key is read on the target with
``sudo cat /etc/litellm/master_key`` (never printed) and the proxy on the target's
``127.0.0.1:<port>`` is reached through ``ssh -N -L <free local port>:127.0.0.1:<port>`` (``Tunnel``).

CLI (load for --seconds, then the result as JSON)::

    benchmarks/proxy_load.py --inventory INV --host HOST [--seconds 30] [--new-model mock-b]
    LITELLM_MASTER_KEY=... benchmarks/proxy_load.py --base-url http://127.0.0.1:4000 [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai

__all__ = ["KindStats", "ProxyLoad", "Tunnel", "classify_error", "free_port", "read_master_key",
           "ssh_from_inventory"]

MASTER_KEY_FILE = "/etc/litellm/master_key"
KINDS = ("pool", "fresh", "stream", "watcher")


# --- reaching the target -----------------------------------------------------------------------
def ssh_from_inventory(inventory: str, host: str) -> list[str]:
    """ssh argv for the host, from `ansible-inventory` (address, port, user, key, common args).

    The destination is the last element: options can be inserted before it, a remote command
    appended after it.
    """
    tool = Path(sys.executable).parent / "ansible-inventory"
    proc = subprocess.run([str(tool) if tool.exists() else "ansible-inventory", "-i", str(inventory), "--host", host],
                          capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ansible-inventory found no host {host} in {inventory}: {proc.stderr.strip()[-500:]}")
    data = json.loads(proc.stdout)
    argv = ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
    argv += shlex.split(str(data.get("ansible_ssh_common_args") or ""))
    if data.get("ansible_port"):
        argv += ["-p", str(data["ansible_port"])]
    key = data.get("ansible_ssh_private_key_file") or data.get("ansible_private_key_file")
    if key:
        argv += ["-i", os.path.expanduser(str(key))]
    user = data.get("ansible_user")
    addr = data.get("ansible_host", host)
    argv.append(f"{user}@{addr}" if user else str(addr))
    return argv


def read_master_key(ssh_argv: list[str], path: str = MASTER_KEY_FILE, timeout: float = 60) -> str:
    """The proxy's master key, read on the target with sudo. Never printed, nor put in an error."""
    proc = subprocess.run(list(ssh_argv) + ["sudo", "cat", path], capture_output=True, text=True,
                          check=False, timeout=timeout)
    key = proc.stdout.strip()
    if proc.returncode != 0 or not key:
        raise RuntimeError(f"could not read {path} on the target (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-500:]}")
    return key


def free_port() -> int:
    """A loopback port nothing listens on right now (the OS gave it out and it was closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Tunnel:
    """``ssh -N -L <local>:127.0.0.1:<remote_port> <dest>`` as a context manager.

    ``ssh_argv`` ends with the destination (as ``ssh_from_inventory`` builds it). Entering waits until
    the local port accepts connections (or ssh exits: RuntimeError with its stderr); leaving ends ssh.
    ``url`` is ``http://127.0.0.1:<local port>``.
    """

    def __init__(self, ssh_argv: list[str], remote_port: int, local_port: int | None = None,
                 remote_host: str = "127.0.0.1", ready_timeout: float = 30):
        self.ssh_argv = list(ssh_argv)
        self.remote_port = int(remote_port)
        self.remote_host = remote_host
        self.local_port = local_port
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def argv(self, local_port: int) -> list[str]:
        opts = ["-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=10",
                "-L", f"127.0.0.1:{local_port}:{self.remote_host}:{self.remote_port}"]
        return self.ssh_argv[:-1] + opts + self.ssh_argv[-1:]

    def open(self) -> Tunnel:
        # A port picked by free_port() can be taken by someone else before ssh binds it: try again.
        fixed = self.local_port is not None
        error = ""
        for _ in range(1 if fixed else 3):
            port = self.local_port if fixed else free_port()
            self.proc = subprocess.Popen(self.argv(port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + self.ready_timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    error = (self.proc.stderr.read() or "").strip()[-500:]
                    if "forward" not in error.lower() and "in use" not in error.lower():
                        self.proc = None
                        raise RuntimeError(f"SSH tunnel to port {self.remote_port} failed: {error or 'ssh exited'}")
                    break
                if _port_answers(port):
                    self.local_port = port
                    return self
                time.sleep(0.1)
            else:
                self.close()
                raise RuntimeError(f"SSH tunnel to port {self.remote_port}: local port {port} did not answer "
                                   f"within {self.ready_timeout:g} s")
        self.proc = None
        raise RuntimeError(f"SSH tunnel to port {self.remote_port} failed: {error or 'ssh exited'}")

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> Tunnel:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


# --- counting ----------------------------------------------------------------------------------
def classify_error(exc: BaseException) -> str:
    """A short, stable name for a failure: ``HTTP 502``, ``timeout``, ``connection: RemoteProtocolError``..."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return f"connection: {type(cause).__name__}" if cause is not None else "connection"
    if isinstance(exc, openai.APIError):
        return f"api error: {type(exc).__name__}"
    return type(exc).__name__


class KindStats:
    """Counts of one client kind; thread-safe. ``errors`` maps an error kind to its count."""

    MAX_FAILURES_KEPT = 20

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self.sent = 0
        self.ok = 0
        self.failed = 0
        self.in_flight = 0
        self.errors: dict[str, int] = {}
        self.latencies: list[float] = []
        self.spans: list[tuple[float, float]] = []  # (start, end) wall-clock time of each finished request
        self.failures: list[dict] = []  # the first few: wall-clock time, error kind, detail

    def begin(self) -> None:
        with self._lock:
            self.sent += 1
            self.in_flight += 1

    def success(self, seconds: float) -> None:
        now = time.time()
        with self._lock:
            self.ok += 1
            self.in_flight -= 1
            self.latencies.append(seconds)
            self.spans.append((now - seconds, now))

    def failure(self, kind: str, seconds: float, detail: str = "") -> None:
        now = time.time()
        with self._lock:
            self.failed += 1
            self.in_flight -= 1
            self.latencies.append(seconds)
            self.spans.append((now - seconds, now))
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if len(self.failures) < self.MAX_FAILURES_KEPT:
                self.failures.append({"at": round(time.time(), 3), "error": kind, "detail": detail[:300]})

    def in_flight_at(self, at: float) -> int:
        """How many finished requests were under way at wall-clock time ``at`` (started before, ended after)."""
        with self._lock:
            return sum(1 for start, end in self.spans if start <= at <= end)

    def as_dict(self) -> dict:
        with self._lock:
            lat = sorted(self.latencies)
            return {
                "sent": self.sent, "ok": self.ok, "failed": self.failed, "in_flight": self.in_flight,
                "errors": dict(sorted(self.errors.items())),
                "latency_max_s": round(lat[-1], 3) if lat else None,
                "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
                "first_failures": list(self.failures),
            }


# --- the load ----------------------------------------------------------------------------------
class ProxyLoad:
    """Pool, fresh-connection and streaming clients plus a model-list watcher against one proxy.

    ``ProxyLoad(inventory, host, ...)`` reaches the target's loopback through an SSH tunnel;
    ``ProxyLoad.direct(base_url, api_key, ...)`` talks to ``base_url`` itself. ``start()`` (or
    ``with``) checks the proxy lists the models the load asks for, then starts the threads;
    ``stop()`` returns the result (idempotent; leaving ``with`` stops too).
    """

    def __init__(self, inventory: str | None = None, host: str | None = None, port: int = 4000, *,
                 model: str = "mock-a", slow_model: str = "mock-slow", new_model: str | None = None,
                 pool_threads: int = 4, fresh_threads: int = 2, stream_threads: int = 2,
                 max_seconds: float = 900, request_timeout: float = 60, ready_timeout: float = 60,
                 poll_interval: float = 0.2, long_gap_probability: float = 0.1, fresh_gap: float = 0.02,
                 ssh_argv: list[str] | None = None, key_file: str = MASTER_KEY_FILE, seed: int | None = None,
                 base_url: str | None = None, api_key: str | None = None):
        if base_url is None and (inventory is None or host is None) and ssh_argv is None:
            raise ValueError("give inventory and host (or ssh_argv), or use ProxyLoad.direct(base_url, api_key)")
        self.inventory, self.host, self.port = inventory, host, int(port)
        self.model, self.slow_model, self.new_model = model, slow_model, new_model
        self.threads_per_kind = {"pool": int(pool_threads), "fresh": int(fresh_threads),
                                 "stream": int(stream_threads), "watcher": 1 if new_model else 0}
        self.max_seconds = float(max_seconds)
        self.request_timeout = float(request_timeout)
        self.ready_timeout = float(ready_timeout)
        self.poll_interval = float(poll_interval)
        self.long_gap_probability = float(long_gap_probability)
        self.fresh_gap = float(fresh_gap)
        self.ssh_argv = list(ssh_argv) if ssh_argv else None
        self.key_file = key_file
        self._base_url = base_url
        self._api_key = api_key
        self._random = random.Random(seed)  # noqa: S311 - idle gaps, not secrets
        self._random_lock = threading.Lock()
        self.stats = {kind: KindStats(kind) for kind in KINDS}
        self.new_model_at: float | None = None
        self.new_model_seen = threading.Event()
        self.tunnel: Tunnel | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list[openai.OpenAI] = []
        self._deadline = 0.0
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._result: dict | None = None

    @classmethod
    def direct(cls, base_url: str, api_key: str, **kwargs) -> ProxyLoad:
        """A load on ``base_url`` (the proxy's root, e.g. ``http://127.0.0.1:4000``) without SSH."""
        return cls(base_url=base_url, api_key=api_key, **kwargs)

    # lifecycle
    @property
    def base_url(self) -> str:
        """The SDK's base URL (``.../v1``)."""
        root = (self._base_url or "").rstrip("/")
        return root if root.endswith("/v1") else root + "/v1"

    def start(self) -> ProxyLoad:
        if self.started_at is not None:
            raise RuntimeError("this ProxyLoad was started already")
        try:
            if self._base_url is None:
                ssh = self.ssh_argv or ssh_from_inventory(self.inventory, self.host)
                self._api_key = read_master_key(ssh, self.key_file)
                self.tunnel = Tunnel(ssh, self.port).open()
                self._base_url = self.tunnel.url
            self._preflight()
        except BaseException:
            self._close()
            raise
        self.started_at = time.time()
        self._deadline = time.monotonic() + self.max_seconds
        targets = {"pool": self._pool_worker, "fresh": self._fresh_worker, "stream": self._stream_worker,
                   "watcher": self._watcher}
        pool = self._client()  # one client shared by every pool thread: one keep-alive connection pool
        for kind, count in self.threads_per_kind.items():
            for i in range(count):
                args = (pool,) if kind == "pool" else ()
                thread = threading.Thread(target=self._guard, args=(kind, targets[kind], *args),
                                          name=f"proxy-load-{kind}-{i}", daemon=True)
                self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> dict:
        """Stop the load (requests in flight finish, up to request_timeout) and return the result."""
        if self._result is not None:
            return self._result
        deadline_reached = self.started_at is not None and time.monotonic() >= self._deadline
        self._stop.set()
        hung = []
        join_until = time.monotonic() + self.request_timeout + 5
        for thread in self._threads:
            thread.join(max(0.0, join_until - time.monotonic()))
            if thread.is_alive():
                hung.append(thread.name)
        self.stopped_at = time.time()
        self._close()
        self._result = self.snapshot()
        self._result["hung_threads"] = hung
        # True when the load had stopped by itself (max_seconds) before stop() was called.
        self._result["deadline_reached"] = deadline_reached
        return self._result

    def __enter__(self) -> ProxyLoad:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _close(self) -> None:
        for client in self._clients:
            try:
                client.close()
            except Exception:  # noqa: S110 - closing is best effort; the result is what matters
                pass
        self._clients = []
        if self.tunnel is not None:
            self.tunnel.close()

    # results
    def snapshot(self) -> dict:
        """Counts so far (the same shape as ``stop()``'s result)."""
        end = self.stopped_at or time.time()
        result = {kind: self.stats[kind].as_dict() for kind in KINDS if self.threads_per_kind[kind]}
        result.update({
            "base_url": self.base_url,
            "model": self.model, "slow_model": self.slow_model,
            "new_model": self.new_model, "new_model_at": self.new_model_at,
            "started_at": self.started_at, "stopped_at": self.stopped_at,
            "seconds": round(end - self.started_at, 3) if self.started_at else 0.0,
            "failed_total": sum(result[k]["failed"] for k in ("pool", "fresh", "stream") if k in result),
            "sent_total": sum(result[k]["sent"] for k in ("pool", "fresh", "stream") if k in result),
        })
        return result

    def in_flight_at(self, at: float) -> dict:
        """Per client kind, how many requests were under way at wall-clock time ``at`` (e.g. a switch)."""
        return {kind: self.stats[kind].in_flight_at(at) for kind in KINDS if self.threads_per_kind[kind]}

    def wait_new_model(self, timeout: float) -> bool:
        """Block until ``new_model`` is listed (True) or ``timeout`` seconds pass (False)."""
        return self.new_model_seen.wait(timeout)

    # clients
    def _client(self) -> openai.OpenAI:
        client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key, max_retries=0,
                               timeout=self.request_timeout,
                               http_client=openai.DefaultHttpxClient(trust_env=False, timeout=self.request_timeout))
        self._clients.append(client)
        return client

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _pause(self, seconds: float) -> None:
        self._stop.wait(max(0.0, min(seconds, self._deadline - time.monotonic())))

    def _gap(self) -> float:
        with self._random_lock:
            if self._random.random() < self.long_gap_probability:
                return self._random.uniform(2.0, 5.0)
            return self._random.uniform(0.0, 0.3)

    def _preflight(self) -> None:
        """The proxy answers /v1/models with the models the load asks for (within ready_timeout)."""
        needed = [m for m, on in ((self.model, self.threads_per_kind["pool"] + self.threads_per_kind["fresh"]),
                                  (self.slow_model, self.threads_per_kind["stream"])) if on]
        deadline = time.monotonic() + self.ready_timeout
        error = ""
        with openai.OpenAI(base_url=self.base_url, api_key=self._api_key, max_retries=0, timeout=10,
                           http_client=openai.DefaultHttpxClient(trust_env=False, timeout=10)) as client:
            while True:
                try:
                    listed = {m.id for m in client.models.list()}
                    missing = [m for m in needed if m not in listed]
                    if not missing:
                        return
                    error = f"the proxy does not list {', '.join(missing)} (it lists {', '.join(sorted(listed))})"
                except openai.APIStatusError as exc:
                    if exc.status_code in (401, 403):
                        raise RuntimeError(f"the proxy refused the key: HTTP {exc.status_code}") from None
                    error = classify_error(exc)
                except openai.APIError as exc:
                    error = classify_error(exc)
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"proxy at {self.base_url} not ready for the load: {error}")
                time.sleep(0.5)

    def _messages(self, kind: str) -> list[dict]:
        return [{"role": "user", "content": f"proxy_load {kind} {time.time():.3f}"}]

    def _guard(self, kind: str, target, *args) -> None:
        """A worker that dies of a bug is a failure to see, not a silent thread."""
        try:
            target(*args)
        except Exception as exc:  # pragma: no cover - a bug in this file
            self.stats[kind].begin()
            self.stats[kind].failure(f"worker crashed: {type(exc).__name__}", 0.0, str(exc))

    def _complete(self, kind: str, client: openai.OpenAI) -> None:
        stats = self.stats[kind]
        stats.begin()
        t0 = time.monotonic()
        try:
            resp = client.chat.completions.create(model=self.model, messages=self._messages(kind))
            content = resp.choices[0].message.content if resp.choices else None
        except Exception as exc:
            stats.failure(classify_error(exc), time.monotonic() - t0, str(exc))
            return
        if not content:
            stats.failure("empty response", time.monotonic() - t0)
        else:
            stats.success(time.monotonic() - t0)

    def _pool_worker(self, client: openai.OpenAI) -> None:
        while self._running():
            self._complete("pool", client)
            self._pause(self._gap())

    def _fresh_worker(self) -> None:
        while self._running():
            http = openai.DefaultHttpxClient(trust_env=False, timeout=self.request_timeout)
            with openai.OpenAI(base_url=self.base_url, api_key=self._api_key, max_retries=0,
                               timeout=self.request_timeout, http_client=http) as client:
                self._complete("fresh", client)
            self._pause(self.fresh_gap)

    def _stream_worker(self) -> None:
        client = self._client()
        stats = self.stats["stream"]
        while self._running():
            stats.begin()
            t0 = time.monotonic()
            content, finish, chunks = [], None, 0
            try:
                stream = client.chat.completions.create(model=self.slow_model, messages=self._messages("stream"),
                                                        stream=True)
                with stream:
                    for chunk in stream:
                        chunks += 1
                        for choice in chunk.choices:
                            if choice.delta and choice.delta.content:
                                content.append(choice.delta.content)
                            finish = choice.finish_reason or finish
            except Exception as exc:
                stats.failure(classify_error(exc), time.monotonic() - t0, f"after {chunks} chunks: {exc}")
                continue
            if not content:
                stats.failure("stream without content", time.monotonic() - t0, f"{chunks} chunks")
            elif finish is None:
                stats.failure("stream ended early", time.monotonic() - t0, f"{chunks} chunks, no finish reason")
            else:
                stats.success(time.monotonic() - t0)
            self._pause(self._gap() / 10)

    def _watcher(self) -> None:
        client = self._client()
        stats = self.stats["watcher"]
        while self._running() and self.new_model_at is None:
            stats.begin()
            t0 = time.monotonic()
            try:
                ids = {m.id for m in client.models.list()}
            except Exception as exc:
                stats.failure(classify_error(exc), time.monotonic() - t0, str(exc))
            else:
                stats.success(time.monotonic() - t0)
                if self.new_model in ids:
                    self.new_model_at = time.time()
                    self.new_model_seen.set()
                    return
            self._pause(self.poll_interval)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inventory", help="ansible inventory (with --host): reach the proxy through SSH")
    ap.add_argument("--host", help="inventory host name of the target")
    ap.add_argument("--base-url", help="proxy root URL reached directly; the key from $LITELLM_MASTER_KEY")
    ap.add_argument("--port", type=int, default=4000, help="proxy port on the target's loopback")
    ap.add_argument("--model", default="mock-a")
    ap.add_argument("--slow-model", default="mock-slow", help="a mock model with mock_delay (streams)")
    ap.add_argument("--new-model", help="record when this model is first listed")
    ap.add_argument("--pool-threads", type=int, default=4)
    ap.add_argument("--fresh-threads", type=int, default=2)
    ap.add_argument("--stream-threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30, help="how long the load runs")
    ap.add_argument("--request-timeout", type=float, default=60)
    args = ap.parse_args(argv)
    kwargs = dict(port=args.port, model=args.model, slow_model=args.slow_model, new_model=args.new_model,
                  pool_threads=args.pool_threads, fresh_threads=args.fresh_threads,
                  stream_threads=args.stream_threads, max_seconds=args.seconds + 5,
                  request_timeout=args.request_timeout)
    if args.base_url:
        key = os.environ.get("LITELLM_MASTER_KEY")
        if not key:
            ap.error("--base-url needs the master key in $LITELLM_MASTER_KEY")
        load = ProxyLoad.direct(args.base_url, key, **kwargs)
    elif args.inventory and args.host:
        load = ProxyLoad(args.inventory, args.host, **kwargs)
    else:
        ap.error("give --inventory and --host, or --base-url")
    with load:
        time.sleep(args.seconds)
        result = load.stop()
    print(json.dumps(result, indent=2))
    return 0 if result["failed_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
