"""The blue/green switch (roles/litellm/files/litellm_switch.py) between two local HTTP backends."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SWITCH = Path(__file__).resolve().parents[4] / "roles" / "litellm" / "files" / "litellm_switch.py"


def backend(name):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like uvicorn

        def log_message(self, *args):
            pass

        def do_GET(self):
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_active(path, text):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # what Ansible's copy does: a new inode, atomically


@pytest.fixture
def setup(tmp_path):
    blue, green = backend("blue"), backend("green")
    active = tmp_path / "active"
    write_active(active, f"127.0.0.1:{blue.server_address[1]}\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SWITCH), "--listen", f"127.0.0.1:{port}", "--active-file",
                             str(active)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port, active, blue, green
    proc.terminate()
    proc.wait(5)
    blue.shutdown()
    green.shutdown()


def get(conn):
    conn.request("GET", "/")
    return conn.getresponse().read().decode()


def test_new_connections_follow_the_active_file_open_ones_stay(setup):
    port, active, _, green = setup
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    assert get(kept) == "blue"
    assert get(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) == "blue"

    write_active(active, f"127.0.0.1:{green.server_address[1]}\n")

    assert get(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) == "green"
    # A keep-alive connection opened before the switch finishes on the old backend.
    assert get(kept) == "blue"
    assert get(kept) == "blue"


def test_unreadable_target_keeps_the_last_good_backend(setup):
    port, active, _, _ = setup
    write_active(active, "not a host and port\n")
    assert get(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) == "blue"


def test_missing_active_file_closes_new_connections(setup):
    port, active, _, _ = setup
    active.unlink()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        get(http.client.HTTPConnection("127.0.0.1", port, timeout=5))


def test_backend_down_closes_the_client_connection(setup):
    port, active, _, _ = setup
    write_active(active, f"127.0.0.1:{free_port()}\n")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        get(http.client.HTTPConnection("127.0.0.1", port, timeout=5))
