"""llmops.devbox.langfuse_llm_connection against the Langfuse test double's content API on a real
local server (tests/unit/langfuse_content_server.py): upstream's validation, upsert and answers."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request

import pytest

from ansible_collections.llmops.devbox.tests.unit.httpserver import HttpServer, run_module, unused_url
from ansible_collections.llmops.devbox.tests.unit.langfuse_content_server import ContentServer

KEY = "sk-" + "ab" * 32
ROTATED = "sk-" + "cd" * 31 + "ab"  # a new key that ends like the old one
BASE = "http://litellm-haproxy:4001/v1"
PATH = "/api/public/llm-connections"


@pytest.fixture
def server():
    with ContentServer(whitelisted_hosts=["litellm-haproxy"]) as srv:
        yield srv


def args(srv, **extra):
    out = {"url": srv.url, "public_key": srv.public_key, "secret_key": srv.secret_key, "base_url": BASE,
           "api_key": KEY, "custom_models": ["claude-sonnet", "claude-haiku"]}
    out.update(extra)
    return out


def listed(srv):
    req = urllib.request.Request(srv.url + PATH, headers={
        "Authorization": "Basic " + base64.b64encode(f"{srv.public_key}:{srv.secret_key}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - local test server
        return json.loads(resp.read())["data"]


def writes(srv):
    return [r for r in srv.requests if r[0] != "GET"]


def test_creates_the_connection_with_the_key_langfuse_then_shows_only_the_end_of(server):
    rc, res = run_module("langfuse_llm_connection", args(server))
    assert rc == 0 and res["changed"] and res["created"], res
    [conn] = listed(server)
    assert (conn["provider"], conn["adapter"], conn["baseURL"]) == ("litellm", "openai", BASE)
    assert conn["customModels"] == ["claude-sonnet", "claude-haiku"]
    assert conn["withDefaultModels"] is False
    assert conn["displaySecretKey"] == "..." + KEY[-4:]
    assert res["id"] == conn["id"]
    assert KEY not in json.dumps(res)


def test_a_rerun_sends_nothing(server):
    run_module("langfuse_llm_connection", args(server))
    before = len(writes(server))
    rc, res = run_module("langfuse_llm_connection", args(server))
    assert rc == 0 and not res["changed"] and res["updated_fields"] == [], res
    assert len(writes(server)) == before


def test_changed_models_are_sent_again(server):
    run_module("langfuse_llm_connection", args(server))
    rc, res = run_module("langfuse_llm_connection", args(server, custom_models=["claude-haiku"]))
    assert rc == 0 and res["changed"] and not res["created"]
    assert res["updated_fields"] == ["customModels"]
    assert listed(server)[0]["customModels"] == ["claude-haiku"]


def test_a_rotated_key_with_the_same_ending_is_sent_thanks_to_the_state_file(server, tmp_path):
    state = tmp_path / "llm-connection.sha256"
    run_module("langfuse_llm_connection", args(server, state_file=str(state)))
    assert state.read_text().strip() == hashlib.sha256(KEY.encode()).hexdigest()
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    before = len(writes(server))
    rc, res = run_module("langfuse_llm_connection", args(server, api_key=ROTATED, state_file=str(state)))
    assert rc == 0 and res["changed"] and res["updated_fields"] == ["secretKey"], res
    assert len(writes(server)) == before + 1
    assert state.read_text().strip() == hashlib.sha256(ROTATED.encode()).hexdigest()
    rc, res = run_module("langfuse_llm_connection", args(server, api_key=ROTATED, state_file=str(state)))
    assert not res["changed"]


def test_the_key_is_read_from_a_file_on_the_box(server, tmp_path):
    key_file = tmp_path / "connection_key"
    key_file.write_text(KEY)
    extra = args(server, api_key_file=str(key_file))
    del extra["api_key"]
    rc, res = run_module("langfuse_llm_connection", extra)
    assert rc == 0 and res["created"]
    assert listed(server)[0]["displaySecretKey"] == "..." + KEY[-4:]


def test_a_missing_key_file_says_where_the_key_comes_from(server, tmp_path):
    extra = args(server, api_key_file=str(tmp_path / "nope"))
    del extra["api_key"]
    rc, res = run_module("langfuse_llm_connection", extra)
    assert rc == 1 and "litellm_langfuse_connection_enabled" in res["msg"]
    assert writes(server) == []


def test_check_mode_sends_nothing_and_diff_shows_no_key(server):
    rc, res = run_module("langfuse_llm_connection", args(server), check_mode=True, diff=True)
    assert rc == 0 and res["changed"] and res["created"]
    assert writes(server) == [] and listed(server) == []
    assert BASE in res["diff"]["after"] and KEY not in json.dumps(res)


def test_a_host_langfuse_does_not_allow_is_refused_with_langfuses_reason():
    with ContentServer(whitelisted_hosts=[]) as srv:
        rc, res = run_module("langfuse_llm_connection", args(srv, base_url="http://localhost:4001/v1"))
    assert rc == 1
    assert "HTTP 400" in res["msg"] and "Invalid baseURL" in res["msg"], res["msg"]
    assert KEY not in json.dumps(res)


def test_wrong_project_keys_are_named_without_printing_them(server):
    rc, res = run_module("langfuse_llm_connection", args(server, secret_key="sk-lf-wrong-secret"))  # noqa: S106
    assert rc == 1 and "HTTP 401" in res["msg"] and "wrong public/secret key" in res["msg"]
    assert "sk-lf-wrong-secret" not in json.dumps(res) and KEY not in json.dumps(res)


def test_langfuse_down_is_said_plainly():
    rc, res = run_module("langfuse_llm_connection", {
        "url": unused_url(), "public_key": "pk-lf-x", "secret_key": "sk-lf-x", "base_url": BASE, "api_key": KEY})
    assert rc == 1 and "Is Langfuse up" in res["msg"]


def test_a_server_error_is_reported_with_its_message():
    with HttpServer() as srv:
        srv.respond(PATH, 500, {"message": "database exploded", "error": "InternalServerError"})
        rc, res = run_module("langfuse_llm_connection", {
            "url": srv.url, "public_key": "pk-lf-x", "secret_key": "sk-lf-x", "base_url": BASE, "api_key": KEY})
    assert rc == 1 and "HTTP 500" in res["msg"] and "database exploded" in res["msg"]


def test_other_connections_are_left_alone(server):
    run_module("langfuse_llm_connection", args(server, provider="team-gateway"))
    run_module("langfuse_llm_connection", args(server))
    assert sorted(c["provider"] for c in listed(server)) == ["litellm", "team-gateway"]
