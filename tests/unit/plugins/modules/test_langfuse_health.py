"""llmops.devbox.langfuse_health against a real local HTTP server, through the module's main()."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.devbox.tests.unit.httpserver import HttpServer, run_module, unused_url

HEALTH = "/api/public/health"
READY = "/api/public/ready"


@pytest.fixture
def server():
    with HttpServer() as srv:
        yield srv


def health(server, **args):
    args.setdefault("url", server.url if isinstance(server, HttpServer) else server)
    args.setdefault("interval", 0.2)
    args.setdefault("timeout", 10)
    return run_module("langfuse_health", args)


def test_slow_start_503_then_ok(server):
    for attempt in range(3):
        server.respond(HEALTH, 503, {"status": f"Database not available ({attempt})"})
    server.respond(HEALTH, 200, {"status": "OK", "version": "4.3.0"})
    server.respond(READY, 200, {"status": "OK"})

    rc, result = health(server)

    assert rc == 0, result
    assert result["changed"] is False
    assert result["version"] == "4.3.0"
    assert result["status"] == "OK"
    assert result["url"] == server.url
    assert result["attempts"] == 4
    assert 0.5 <= result["elapsed"] < 5
    assert len(server.requests_to(HEALTH)) == 4
    assert len(server.requests_to(READY)) == 1


def test_503_until_timeout_reports_last_answer(server):
    server.respond(HEALTH, 503, {"status": "Database not available", "detail": "x" * 900})
    server.respond(READY, 200, {"status": "OK"})

    rc, result = health(server, timeout=2, interval=0.5)

    assert rc == 1
    assert result["failed"] is True
    assert 2 <= result["elapsed"] < 5
    assert result["last_status"] == 503
    assert result["last_body"].startswith('{"status": "Database not available"')
    assert len(result["last_body"]) == 500
    assert result["last_error"] is None
    msg = result["msg"]
    assert f"Langfuse at {server.url} was not healthy and ready after" in msg
    assert "HTTP 503" in msg and "Database not available" in msg
    assert "docker compose ps" in msg and "docker logs langfuse-web" in msg
    assert "NEXTAUTH_URL" in msg and "DATABASE_URL" in msg
    assert "x" * 501 not in msg  # body cut at 500 characters
    assert 3 <= len(server.requests_to(HEALTH)) <= 7
    assert server.requests_to(READY) == []


def test_connection_refused():
    url = unused_url()

    rc, result = health(url, timeout=1, interval=0.3)

    assert rc == 1
    assert result["last_status"] is None
    assert "connection refused" in result["last_error"]
    assert f"{url}/api/public/health" in result["last_error"]
    assert "connection refused" in result["msg"]
    assert result["attempts"] >= 2


def test_malformed_json_is_not_healthy(server):
    server.respond(HEALTH, 200, "<html>Bad gateway</html>", {"Content-Type": "text/html"})
    server.respond(READY, 200, {"status": "OK"})

    rc, result = health(server, timeout=1)

    assert rc == 1
    assert "malformed JSON" in result["msg"]
    assert "<html>Bad gateway</html>" in result["msg"]
    assert result["last_status"] == 200


def test_malformed_json_then_healthy(server):
    server.respond(HEALTH, 200, "{not json")
    server.respond(HEALTH, 200, {"status": "OK", "version": "3.225.1"})
    server.respond(READY, 200, {"status": "OK"})

    rc, result = health(server)

    assert rc == 0, result
    assert result["version"] == "3.225.1"
    assert result["attempts"] == 2


def test_ready_500_keeps_waiting_and_fails(server):
    server.respond(HEALTH, 200, {"status": "OK", "version": "4.3.0"})
    server.respond(READY, 500, {"status": "Shutting down"})

    rc, result = health(server, timeout=1)

    assert rc == 1
    assert result["last_status"] == 500
    assert f"GET {server.url}/api/public/ready answered HTTP 500" in result["msg"]
    assert "Shutting down" in result["last_body"]


@pytest.mark.parametrize("check_database, expected", [(True, {"failIfDatabaseUnavailable": "true"}),
                                                      (False, {})])
def test_check_database_query_parameter(server, check_database, expected):
    server.respond(HEALTH, 200, {"status": "OK", "version": "4.3.0"})
    server.respond(READY, 200, {"status": "OK"})

    rc, result = health(server, check_database=check_database)

    assert rc == 0, result
    assert [r.query for r in server.requests_to(HEALTH)] == [expected]
    assert server.requests_to(READY)[0].query == {}


def test_check_mode_probes_and_reports_unchanged(server):
    server.respond(HEALTH, 200, {"status": "OK", "version": "4.3.0"})
    server.respond(READY, 200, {"status": "OK"})

    rc, result = run_module("langfuse_health", {"url": server.url + "/"}, check_mode=True)

    assert rc == 0, result
    assert result["changed"] is False
    assert result["url"] == server.url
    assert len(server.requests) == 2


def test_request_timeout_counts_as_not_ready(server):
    # The server answers after 3 s; each request gives up after 1 s.
    server.respond(HEALTH, 200, {"status": "OK"}, delay=3)

    rc, result = health(server, timeout=1, request_timeout=1)

    assert rc == 1
    assert "timed out" in result["last_error"]
    assert result["elapsed"] < 3
