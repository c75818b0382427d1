"""llmops.devbox.litellm_trace_check against scripted local HTTP servers (proxy and Langfuse)."""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.llmops.devbox.tests.unit.httpserver import HttpServer, run_module, unused_url

MASTER = "sk-" + "ab" * 32
PK, SK = "pk-lf-unit", "sk-lf-unit-secret"
MODELS = {"data": [{"id": "mock-a", "object": "model"}, {"id": "mock-b", "object": "model"}]}
COMPLETION = {"id": "chatcmpl-1", "model": "gpt-4o-mini", "choices": [{"message": {"content": "pong"}}],
              "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}


@pytest.fixture
def proxy():
    with HttpServer() as srv:
        yield srv


@pytest.fixture
def langfuse():
    with HttpServer() as srv:
        yield srv


def healthy_proxy(proxy, cost="0.000012"):
    proxy.respond("/v1/models", 200, MODELS)
    proxy.respond("/v1/chat/completions", 200, COMPLETION, headers={"x-litellm-response-cost": cost})


def generation(trace_id="x", **extra):
    obs = {"id": "obs-1", "traceId": trace_id, "type": "GENERATION", "providedModelName": "gpt-4o-mini",
           "usageDetails": {"input": 12, "output": 3, "total": 15}, "costDetails": {"total": 0.000021}}
    obs.update(extra)
    return obs


def check(proxy, langfuse, **args):
    args.setdefault("proxy_url", proxy if isinstance(proxy, str) else proxy.url)
    args.setdefault("langfuse_url", langfuse if isinstance(langfuse, str) else langfuse.url)
    args.setdefault("master_key", MASTER)
    args.setdefault("langfuse_public_key", PK)
    args.setdefault("langfuse_secret_key", SK)
    args.setdefault("interval", 0.2)
    args.setdefault("timeout", 5)
    return run_module("litellm_trace_check", args)


def assert_no_secret(result):
    text = json.dumps(result)
    assert MASTER not in text
    assert SK not in text


def test_v4_success_after_two_empty_polls(proxy, langfuse):
    healthy_proxy(proxy)
    langfuse.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"})
    langfuse.respond("/api/public/v2/observations", 200, {"data": [], "meta": {}})
    langfuse.respond("/api/public/v2/observations", 200, {"data": [], "meta": {}})
    langfuse.respond("/api/public/v2/observations", 200, {"data": [generation()], "meta": {}})

    rc, result = check(proxy, langfuse)

    assert rc == 0, result
    assert result["changed"] is False
    assert re.fullmatch(r"[0-9a-f]{32}", result["trace_id"])
    assert result["model"] == "mock-a"  # first listed model
    assert result["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert result["cost"] == pytest.approx(0.000021)  # Langfuse's cost wins over the header
    assert result["langfuse_api_version"] == "4"
    assert result["langfuse_version"] == "4.2.0"
    assert 0.2 <= result["seconds_until_visible"] < 5
    # The trace id travels in metadata.trace_id, and Langfuse is asked for exactly that trace.
    sent = proxy.requests_to("/v1/chat/completions")[0]
    assert sent.headers["authorization"] == f"Bearer {MASTER}"
    assert sent.json()["metadata"]["trace_id"] == result["trace_id"]
    polls = langfuse.requests_to("/api/public/v2/observations")
    assert len(polls) == 3
    assert polls[0].query["traceId"] == result["trace_id"]
    expected_auth = "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode()
    assert polls[0].headers["authorization"] == expected_auth
    assert_no_secret(result)


def test_v4_reports_who_and_where_the_generation_is_from(proxy, langfuse):
    healthy_proxy(proxy)
    langfuse.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"})
    tags = ["User-Agent: x", "box:Devbox-1", "owner:alice", "model_group:mock-a"]
    langfuse.respond("/api/public/v2/observations", 200, {"data": [generation(
        userId="alice", environment="devbox-1", tags=tags, sessionId=None)], "meta": {}})

    rc, result = check(proxy, langfuse)

    assert rc == 0, result
    assert (result["user_id"], result["environment"], result["tags"]) == ("alice", "devbox-1", tags)
    assert result["observation"]["userId"] == "alice"
    # tags are a trace_context field: without asking for it, v4 leaves them out.
    fields = langfuse.requests_to("/api/public/v2/observations")[0].query["fields"].split(",")
    assert {"basic", "trace_context"} <= set(fields)


def test_a_generation_without_attribution_reports_none(proxy, langfuse):
    healthy_proxy(proxy)
    langfuse.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"})
    langfuse.respond("/api/public/v2/observations", 200, {"data": [generation(tags="not-a-list")], "meta": {}})
    rc, result = check(proxy, langfuse)
    assert rc == 0, result
    assert (result["user_id"], result["environment"], result["tags"]) == (None, None, [])


class V3Langfuse:
    """Langfuse v3 stand-in: 404 for a trace until `polls_before_visible` polls, then the trace."""

    def __init__(self, polls_before_visible=2, observations=None):
        if observations is None:
            observations = [{"id": "s1", "type": "SPAN"},
                            {"id": "g1", "type": "GENERATION", "model": "gpt-4o-mini", "usageDetails": {"total": 15}}]
        self.polls = []
        self.health_calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/api/public/health":
                    outer.health_calls += 1
                    return self._send(200, {"status": "OK", "version": "3.225.0"})
                m = re.fullmatch(r"/api/public/traces/([0-9a-f]+)", self.path)
                if not m:
                    return self._send(404, {"message": "not found"})
                outer.polls.append((m.group(1), self.headers.get("Authorization")))
                if len(outer.polls) <= polls_before_visible:
                    return self._send(404, {"message": "Trace not found"})
                return self._send(200, {"id": m.group(1), "totalCost": 0.25, "observations": observations,
                                        "userId": "alice", "environment": "devbox-1", "tags": ["box:devbox-1"]})

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("api_version", ["auto", "3"])
def test_v3_trace_endpoint(proxy, api_version):
    healthy_proxy(proxy, cost="0.5")
    v3 = V3Langfuse()
    try:
        rc, result = check(proxy, v3.url, model="mock-b", langfuse_api_version=api_version)
    finally:
        v3.close()
    assert rc == 0, result
    assert result["langfuse_api_version"] == "3"
    assert [tid for tid, _ in v3.polls] == [result["trace_id"]] * 3
    assert v3.health_calls == (1 if api_version == "auto" else 0)
    assert result["observation"]["id"] == "g1"
    assert result["cost"] == pytest.approx(0.25)  # the trace's total cost when the generation has none
    # v3 keeps who and where on the trace.
    assert (result["user_id"], result["environment"], result["tags"]) == ("alice", "devbox-1", ["box:devbox-1"])
    assert proxy.requests_to("/v1/chat/completions")[0].json()["model"] == "mock-b"


# --- polls that find no generation are no success -------------------------------------------------
# Observations of a trace that are not its generation: the proxy's own spans, events, junk.
NOT_GENERATIONS = [{"id": "s1", "type": "SPAN", "name": "litellm-acompletion"}, {"id": "e1", "type": "EVENT"},
                   {"id": "n1"}, "GENERATION", None]


def assert_not_visible(result, polls):
    assert result["failure"] == "trace_not_visible"
    assert "observation" not in result and "seconds_until_visible" not in result and "cost" not in result
    assert "no generation yet" in result["last_error"]
    # It kept polling until the timeout, and says how often it asked.
    assert len(polls) >= 2
    assert f"within 1 s ({len(polls)} polls;" in result["msg"]


@pytest.mark.parametrize("body", [
    {"data": [], "meta": {}},
    {"data": None},
    {},
    {"data": [o for o in NOT_GENERATIONS if isinstance(o, dict)]},
    {"data": NOT_GENERATIONS},
], ids=["empty", "null", "no-data", "span-and-event", "junk"])
def test_v4_trace_without_generation_is_not_visible(proxy, langfuse, body):
    healthy_proxy(proxy)
    langfuse.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"})
    langfuse.respond("/api/public/v2/observations", 200, body)
    rc, result = check(proxy, langfuse, timeout=1)
    assert rc != 0, result
    assert_not_visible(result, langfuse.requests_to("/api/public/v2/observations"))


def test_v4_generation_is_found_among_spans_after_polls_of_spans_only(proxy, langfuse):
    healthy_proxy(proxy)
    langfuse.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"})
    spans = [o for o in NOT_GENERATIONS if isinstance(o, dict)]
    langfuse.respond("/api/public/v2/observations", 200, {"data": spans})
    langfuse.respond("/api/public/v2/observations", 200, {"data": spans + [generation(id="g7")] + spans})
    rc, result = check(proxy, langfuse)
    assert rc == 0, result
    assert len(langfuse.requests_to("/api/public/v2/observations")) == 2
    assert result["observation"]["id"] == "g7"
    assert result["observation"]["type"] == "GENERATION"


@pytest.mark.parametrize("observations", [[], [o for o in NOT_GENERATIONS if isinstance(o, dict)]],
                         ids=["no-observations", "spans-only"])
def test_v3_trace_without_generation_is_not_visible(proxy, observations):
    healthy_proxy(proxy)
    v3 = V3Langfuse(polls_before_visible=0, observations=observations)
    try:
        rc, result = check(proxy, v3.url, langfuse_api_version="3", timeout=1)
    finally:
        v3.close()
    assert rc != 0, result
    assert_not_visible(result, v3.polls)


def test_cost_falls_back_to_proxy_header(proxy, langfuse):
    healthy_proxy(proxy, cost="0.000777")
    langfuse.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"})
    langfuse.respond("/api/public/v2/observations", 200, {"data": [generation(costDetails={})]})
    rc, result = check(proxy, langfuse)
    assert rc == 0, result
    assert result["cost"] == pytest.approx(0.000777)


def test_proxy_unreachable(langfuse):
    rc, result = check(unused_url(), langfuse)
    assert rc != 0
    assert result["failure"] == "proxy_unreachable"
    assert "connection refused" in result["msg"]
    assert "docker logs litellm-haproxy" in result["hint"]
    assert_no_secret(result)


def test_proxy_rejects_key(proxy, langfuse):
    proxy.respond("/v1/models", 401, {"error": {"message": f"Authentication Error, invalid key {MASTER}"}})
    rc, result = check(proxy, langfuse)
    assert rc != 0
    assert result["failure"] == "proxy_key_rejected"
    assert "/etc/litellm/master_key" in result["hint"]
    assert "********" in result["msg"]
    assert_no_secret(result)


def test_proxy_without_database_rejects_other_keys_with_400(proxy, langfuse):
    # What LiteLLM 1.108.7 answers for a key that is not the master key when it has no database.
    proxy.respond("/v1/models", 400, {"error": {"message": "No connected db.", "type": "no_db_connection",
                                                "param": None, "code": "400"}})
    rc, result = check(proxy, langfuse)
    assert rc != 0
    assert result["failure"] == "proxy_key_rejected"
    assert "No connected db" in result["msg"]


def test_model_not_served(proxy, langfuse):
    proxy.respond("/v1/models", 200, MODELS)
    rc, result = check(proxy, langfuse, model="claude-opus")
    assert rc != 0
    assert result["failure"] == "model_not_served"
    assert "mock-a" in result["msg"]
    assert not proxy.requests_to("/v1/chat/completions")


def test_completion_failed_carries_provider_error(proxy, langfuse):
    proxy.respond("/v1/models", 200, MODELS)
    proxy.respond("/v1/chat/completions", 500,
                  {"error": {"message": "litellm.APIConnectionError: OpenAIException - Connection error."}})
    rc, result = check(proxy, langfuse)
    assert rc != 0
    assert result["failure"] == "completion_failed"
    assert "OpenAIException - Connection error" in result["msg"]
    assert result["completion_status"] == 500
    assert not langfuse.requests  # Langfuse is not polled after a failed completion


def test_langfuse_rejects_keys_fails_at_once(proxy, langfuse):
    healthy_proxy(proxy)
    langfuse.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"})
    langfuse.respond("/api/public/v2/observations", 401, {"message": "Invalid credentials"})
    rc, result = check(proxy, langfuse, timeout=30)
    assert rc != 0
    assert result["failure"] == "langfuse_keys_rejected"
    assert len(langfuse.requests_to("/api/public/v2/observations")) == 1
    assert "pk-lf-" in result["hint"]
    assert_no_secret(result)


def test_langfuse_down_is_a_visibility_failure_with_hint(proxy):
    healthy_proxy(proxy)
    rc, result = check(proxy, unused_url(), timeout=1)
    assert rc != 0
    assert result["failure"] == "trace_not_visible"
    assert "within 1 s" in result["msg"]
    assert "INSIDE" in result["hint"] and "localhost" in result["hint"]
    assert "connection refused" in result["last_error"]
    # The completion itself worked and its numbers are still reported.
    assert result["usage"]["total_tokens"] == 15


def test_bad_url_is_refused_without_requests(proxy, langfuse):
    rc, result = check("127.0.0.1:4000", langfuse)
    assert rc != 0
    assert result["failure"] == "bad_input"
    assert not langfuse.requests
