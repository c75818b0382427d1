"""plugins/module_utils/_http.py against a real local HTTP server."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.llmops.devbox.plugins.module_utils._http import (
    HttpError,
    HttpResponse,
    basic_auth_header,
    redact,
    request,
)
from ansible_collections.llmops.devbox.tests.unit.httpserver import HttpServer, unused_url


@pytest.fixture
def server(monkeypatch):
    # A proxy set in the environment must not swallow loopback traffic.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with HttpServer() as srv:
        yield srv


def test_get_json(server):
    server.respond("/x", 200, {"status": "OK"}, {"X-Thing": "1"})

    resp = request(server.url + "/x?a=b")

    assert isinstance(resp, HttpResponse)
    assert resp.status == 200
    assert resp.json() == {"status": "OK"}
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-thing"] == "1"
    assert server.requests[0].method == "GET"
    assert server.requests[0].query == {"a": "b"}


@pytest.mark.parametrize("status", [301, 401, 404, 409, 500, 503])
def test_every_status_is_returned_not_raised(server, status):
    server.respond("/x", status, "plain body", {"Location": "/elsewhere"} if status == 301 else None)

    resp = request(server.url + "/x", "POST", data="d")

    assert resp.status == status
    if status != 301:
        assert resp.text() == "plain body"


def test_malformed_json_raises_value_error_with_start_of_body(server):
    server.respond("/x", 200, "<html>" + "y" * 400)

    with pytest.raises(ValueError, match=r"is not JSON: '<html>y+'$") as info:
        request(server.url + "/x").json()
    assert "y" * 201 not in str(info.value)
    assert "(HTTP 200)" in str(info.value)


def test_json_body_basic_auth_and_extra_headers(server):
    server.respond("/k", 201, {"id": "1"})

    resp = request(server.url + "/k", "POST", json_body={"a": 1}, basic_auth=("pk-lf-x", "sk-lf-y"),
                   headers={"X-Extra": "yes"})

    assert resp.status == 201
    seen = server.requests[0]
    assert seen.method == "POST"
    assert seen.json() == {"a": 1}
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(b"pk-lf-x:sk-lf-y").decode()
    assert seen.headers["x-extra"] == "yes"


def test_bearer(server):
    server.respond("/k", 200, {})

    request(server.url + "/k", bearer="tok")

    assert server.requests[0].headers["authorization"] == "Bearer tok"


def test_json_body_and_data_together_is_a_programming_error(server):
    with pytest.raises(ValueError, match="json_body or data"):
        request(server.url + "/k", "POST", json_body={}, data=b"x")


def test_connection_refused_raises_http_error():
    url = unused_url() + "/api/public/health"

    with pytest.raises(HttpError) as info:
        request(url, timeout=2)

    assert str(info.value).startswith(f"GET {url} failed: connection refused")
    assert info.value.url == url


def test_timeout_raises_http_error(server):
    server.respond("/slow", 200, {}, delay=2)

    with pytest.raises(HttpError, match=r"^POST .*/slow failed: timed out$"):
        request(server.url + "/slow", "POST", json_body={}, timeout=0.5)


def test_bad_url_raises_http_error():
    with pytest.raises(HttpError, match="^GET 127.0.0.1:1/x failed: unknown url type"):
        request("127.0.0.1:1/x")


def test_basic_auth_header():
    assert basic_auth_header("user", "pa:ss") == "Basic dXNlcjpwYTpzcw=="


def test_redact_replaces_every_non_empty_secret_longest_first():
    text = "key sk-lf-abc and sk-lf-abcdef, again sk-lf-abc; empty stays"

    assert redact(text, ["sk-lf-abc", "sk-lf-abcdef", "", None]) == \
        "key ******** and ********, again ********; empty stays"
    assert redact(None, ["x"]) == ""
    assert redact("nothing", []) == "nothing"
