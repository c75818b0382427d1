"""The Langfuse test double's content API on a real local server, for module unit tests.

Import it through the collection path, the way ansible-test unit does::

    from ansible_collections.llmops.devbox.tests.unit.langfuse_content_server import ContentServer

    def test_x():
        with ContentServer(whitelisted_hosts=["llm-gateway"]) as srv:
            ...  # point the module at srv.url with srv.public_key / srv.secret_key
            assert srv.requests == [("PUT", "/api/public/llm-connections")]
            assert srv.api.store.all("llm_connection", srv.project_id)

It loads the double's program (tests/images/langfuse-double/langfuse_double.py) and serves its own
``Handler`` and ``App.web`` code: the same Basic-auth check (only the one key pair given here is
valid), the same routes, validation, status codes and answers as the image (contract
tests/contracts/langfuse-web.yml, content_api). Only the storage differs: an in-memory store
instead of Postgres, so only the Python standard library is needed.

Public API:

``ContentServer(whitelisted_hosts=(), public_key="pk-lf-unit", secret_key="sk-lf-unit",
whitelisted_ips=(), whitelisted_ip_segments=(), resolver=None)``
    A ThreadingHTTPServer on 127.0.0.1 with an OS-chosen port, started by ``with`` or
    ``start()``, stopped by leaving ``with`` or ``stop()``. The whitelists are the values of
    LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST / _IPS / _IP_SEGMENTS, parsed as upstream does.
    ``resolver`` (host -> list of addresses) replaces DNS for base URL checks.
``.url``, ``.public_key``, ``.secret_key``, ``.project_id``
``.api``
    The double's ``ContentApi`` (``.api.store`` is its ``MemoryContentStore``).
``.requests``
    ``(method, path)`` of every request received, in order (path without the query string).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

DOUBLE = Path(__file__).resolve().parents[1] / "images" / "langfuse-double" / "langfuse_double.py"
_MODULE = "langfuse_double_for_unit_tests"


def load_double():
    """The double's program as a module (loaded once per process)."""
    if _MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(_MODULE, DOUBLE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[_MODULE]


class ContentServer:
    project_id = "project-unit"
    salt = "unit-salt"

    def __init__(self, whitelisted_hosts=(), public_key="pk-lf-unit", secret_key="sk-lf-unit",  # noqa: S107 - a test key pair
                 whitelisted_ips=(), whitelisted_ip_segments=(), resolver=None):
        lf = load_double()
        self.public_key, self.secret_key = public_key, secret_key
        env = {"LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST": ",".join(whitelisted_hosts),
               "LANGFUSE_LLM_CONNECTION_WHITELISTED_IPS": ",".join(whitelisted_ips),
               "LANGFUSE_LLM_CONNECTION_WHITELISTED_IP_SEGMENTS": ",".join(whitelisted_ip_segments)}
        whitelist = lf.parse_whitelist(env)
        self.api = lf.ContentApi(lf.MemoryContentStore(), whitelist, resolver or lf.resolve_host)
        keys = {public_key: (lf.hash_secret(secret_key, self.salt), self.project_id,
                             "Unit Project", "org-unit", "Unit Org")}
        cfg = {"salt": self.salt, "nextauth_url": "http://127.0.0.1", "signup_disabled": False,
               "llm_connection_whitelist": whitelist}
        self.app = lf.App(cfg, backends=None, content=self.api, keys=keys)
        self.requests: list[tuple[str, str]] = []
        recorded = self.requests

        class Handler(lf.Handler):
            app = self.app

            def _route(self, method):
                recorded.append((method, urlsplit(self.path).path))
                return super()._route(method)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.part = "web"
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = None

    def start(self) -> ContentServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ContentServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
