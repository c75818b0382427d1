"""A real, scriptable HTTP server on 127.0.0.1 for unit tests (no patched open_url).

Import it through the collection path, the way ansible-test unit does::

    from ansible_collections.llmops.devbox.tests.unit.httpserver import HttpServer, unused_url

    @pytest.fixture
    def server():
        with HttpServer() as srv:
            yield srv

    def test_x(server):
        server.respond("/api/public/health", 503, {"status": "DOWN"})
        server.respond("/api/public/health", 200, {"status": "OK", "version": "4.0.0"})
        ...  # point the code under test at server.url
        assert server.requests_to("/api/public/health")[0].query == {}

Public API (keep it this small):

``HttpServer()``
    Not listening until ``start()`` or ``with``; ``stop()`` (or leaving ``with``) closes it.
``.url``
    ``"http://127.0.0.1:<port>"``; the OS picks a free port.
``.respond(path, status=200, body=None, headers=None, delay=0.0, method=None)``
    Queue one response for ``path`` (exact path; the query string is ignored when matching)
    and ``method`` (``None``: any method; a method-specific queue wins over the any-method one).
    ``body``: bytes/str are sent as they are, anything else is JSON-encoded with
    ``Content-Type: application/json``; ``None`` sends an empty body. ``delay`` seconds are
    slept before answering (for client timeouts). Queued responses are served in order and
    the LAST one repeats for every later request. Unscripted paths answer 404.
``.requests``
    Every request received, in arrival order, as ``Recorded`` objects with ``method``,
    ``path``, ``query`` (dict of the first value of each parameter), ``headers`` (lower-cased
    names), ``body`` (bytes) and ``json()``.
``.requests_to(path, method=None)``
    The recorded requests for one path (and method).
``unused_url()``
    ``"http://127.0.0.1:<port>"`` for a port nothing listens on (connection refused).
``run_module(name, args, check_mode=False, diff=False, timeout=120)``
    Run ``llmops.devbox.<name>``'s real ``main()`` in a subprocess with ``args`` as
    ANSIBLE_MODULE_ARGS on stdin; returns ``(rc, result_dict)``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

__all__ = ["HttpServer", "Recorded", "run_module", "unused_url"]


class Recorded:
    """One request as the server saw it."""

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"Recorded({self.method} {self.path} {self.query})"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner = self.server.owner
        owner._record(Recorded(self.command, parts.path, query, headers, body))
        delay, status, payload, extra = owner._next(self.command, parts.path)
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its own timeout); nothing to answer

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass  # keep pytest output clean


def _encode(body, headers):
    headers = dict(headers or {})
    if body is None:
        return b"", headers
    if isinstance(body, bytes):
        return body, headers
    if isinstance(body, str):
        return body.encode("utf-8"), headers
    headers.setdefault("Content-Type", "application/json")
    return json.dumps(body).encode("utf-8"), headers


class HttpServer:
    """Threaded HTTP server on 127.0.0.1 answering from per-path response queues."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queues = {}
        self.requests = []
        self._httpd = None
        self._thread = None

    # lifecycle
    def start(self):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        # A short poll interval makes stop() (and so every test) fast.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="test-httpserver", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # scripting
    def respond(self, path, status=200, body=None, headers=None, delay=0.0, method=None):
        payload, hdrs = _encode(body, headers)
        key = (method.upper() if method else None, path)
        with self._lock:
            self._queues.setdefault(key, []).append((float(delay), int(status), payload, hdrs))

    def requests_to(self, path, method=None):
        with self._lock:
            return [r for r in self.requests
                    if r.path == path and (method is None or r.method == method.upper())]

    # used by the handler threads
    def _record(self, rec):
        with self._lock:
            self.requests.append(rec)

    def _next(self, method, path):
        with self._lock:
            queue = self._queues.get((method, path)) or self._queues.get((None, path))
            if not queue:
                msg = {"message": f"no response scripted for {method} {path}"}
                return (0.0, 404) + _encode(msg, None)
            return queue.pop(0) if len(queue) > 1 else queue[0]


def unused_url():
    """URL of a loopback port with no listener (the OS gave it out and it was closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_module(name, args, check_mode=False, diff=False, timeout=120):
    """Run llmops.devbox module ``name`` in a fresh Python process, the way Ansible feeds it.

    The module's real ``main()`` reads ``{"ANSIBLE_MODULE_ARGS": ...}`` from stdin; returns
    ``(rc, result)`` where ``result`` is the JSON the module printed (fail_json gives rc 1).
    Loopback is exempted from any proxy set in the environment.
    """
    import ansible_collections.llmops.devbox as collection

    collections_root = Path(list(collection.__path__)[0]).parents[2]
    payload = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    pythonpath = [str(collections_root)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               PYTHONPATH=os.pathsep.join(pythonpath))
    proc = subprocess.run(
        [sys.executable, "-m", f"ansible_collections.llmops.devbox.plugins.modules.{name}"],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}).encode("utf-8"),
        capture_output=True, env=env, timeout=timeout, check=False,
    )
    try:
        result = json.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        raise AssertionError(f"module {name} printed no JSON (rc {proc.returncode}):\n"
                             f"stdout: {proc.stdout!r}\nstderr: {proc.stderr!r}") from None
    return proc.returncode, result
