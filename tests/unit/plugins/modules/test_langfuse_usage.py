"""llmops.devbox.langfuse_usage: the metrics queries it sends and the report rows it makes of the answers.

The same module against the Langfuse double's metrics API runs in molecule/fleet (usage report)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from ansible_collections.llmops.devbox.plugins.modules.langfuse_usage import (
    UsageError,
    combine,
    queries,
    window,
)
from ansible_collections.llmops.devbox.tests.unit.httpserver import HttpServer, run_module, unused_url

PK, SK = "pk-lf-unit", "sk-lf-unit-secret"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def test_the_default_window_is_the_last_seven_days():
    assert window(None, None, 7, now=NOW) == ("2026-11-24T12:00:00Z", "2026-12-01T12:00:00Z")
    assert window("2026-11-01T00:00:00+01:00", "2026-11-02T00:00:00Z", 7) == ("2026-10-31T23:00:00Z",
                                                                               "2026-11-02T00:00:00Z")


@pytest.mark.parametrize("start,end,days,needle", [
    ("yesterday", None, 7, "not an ISO 8601 time"),
    ("2026-11-01T00:00:00", None, 7, "has no time zone"),
    ("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z", 7, "the window is empty"),
    (None, None, 0, "days must be 1 or more"),
])
def test_bad_windows_are_refused(start, end, days, needle):
    with pytest.raises(UsageError, match=needle):
        window(start, end, days, now=NOW)


def test_queries_follow_langfuses_rules_for_user_id():
    usage, errors, daily = queries("2026-11-24T12:00:00Z", "2026-12-01T12:00:00Z")
    for query in (usage, errors):
        assert [d["field"] for d in query["dimensions"]] == ["userId", "environment", "providedModelName"]
        # userId is high-cardinality: no time dimension, an explicit row limit, a descending metric order.
        assert "timeDimension" not in query and query["config"]["row_limit"] == 1000
        assert query["orderBy"][0]["direction"] == "desc"
        assert query["orderBy"][0]["field"] in {f"{m['aggregation']}_{m['measure']}" for m in query["metrics"]}
        generations = {"column": "type", "operator": "any of", "value": ["GENERATION"], "type": "stringOptions"}
        assert generations in query["filters"]
    assert {"column": "level", "operator": "=", "value": "ERROR", "type": "string"} in errors["filters"]
    assert daily["timeDimension"] == {"granularity": "day"}
    assert [d["field"] for d in daily["dimensions"]] == ["providedModelName"]


USAGE = [
    {"userId": "bob", "environment": "box-2", "providedModelName": "haiku", "count_count": "3",
     "sum_inputTokens": "30", "sum_outputTokens": "60", "sum_totalCost": 0.0003, "p50_latency": 40,
     "p95_latency": 90.5},
    {"userId": "alice", "environment": "box-1", "providedModelName": "sonnet", "count_count": 4,
     "sum_inputTokens": 40, "sum_outputTokens": 80, "sum_totalCost": 0.0012, "p50_latency": 50, "p95_latency": 70},
]
ERRORS = [{"userId": "bob", "environment": "box-2", "providedModelName": "haiku", "count_count": 1}]
DAILY = [{"time_dimension": "2026-11-28", "providedModelName": None, "sum_totalCost": None, "count_count": 0},
         {"time_dimension": "2026-11-30", "providedModelName": "sonnet", "sum_totalCost": 0.0012, "count_count": 4},
         {"time_dimension": "2026-11-29", "providedModelName": "haiku", "sum_totalCost": 0.0003, "count_count": 3}]


def test_answers_become_rows_most_expensive_first_with_errors_and_totals():
    rows, daily, totals = combine(USAGE, ERRORS, DAILY)
    assert [(r["owner"], r["box"], r["model"]) for r in rows] == [("alice", "box-1", "sonnet"),
                                                                  ("bob", "box-2", "haiku")]
    assert rows[1] == {"owner": "bob", "box": "box-2", "model": "haiku", "requests": 3, "input_tokens": 30,
                       "output_tokens": 60, "cost": 0.0003, "latency_p50_ms": 40.0, "latency_p95_ms": 90.5,
                       "errors": 1, "error_rate": 0.3333}
    assert rows[0]["errors"] == 0 and rows[0]["error_rate"] == 0.0
    assert [d["day"] for d in daily] == ["2026-11-29", "2026-11-30"]
    assert totals == {"requests": 7, "input_tokens": 70, "output_tokens": 140, "errors": 1,
                      "cost": pytest.approx(0.0015)}


def langfuse_v4(srv, usage=USAGE, errors=ERRORS, daily=DAILY):
    srv.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"})
    for body in (usage, errors, daily):
        srv.respond("/api/public/v2/metrics", 200, {"data": body})


def test_the_module_asks_v4s_metrics_api_three_times_and_reports():
    with HttpServer() as srv:
        langfuse_v4(srv)
        rc, result = run_module("langfuse_usage", {"url": srv.url, "public_key": PK, "secret_key": SK,
                                                   "from_timestamp": "2026-11-24T00:00:00Z",
                                                   "to_timestamp": "2026-12-01T00:00:00Z"})
        sent = [json.loads(r.query["query"]) for r in srv.requests_to("/api/public/v2/metrics")]
    assert rc == 0, result
    assert result["changed"] is False and result["langfuse_api_version"] == "4"
    assert result["window"] == {"from": "2026-11-24T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    assert len(result["rows"]) == 2 and result["totals"]["requests"] == 7 and result["truncated"] is False
    assert [q["fromTimestamp"] for q in sent] == ["2026-11-24T00:00:00Z"] * 3
    assert SK not in json.dumps(result)


def test_v3_is_asked_at_the_v1_route():
    with HttpServer() as srv:
        srv.respond("/api/public/health", 200, {"status": "OK", "version": "3.120.0"})
        for body in (USAGE, ERRORS, DAILY):
            srv.respond("/api/public/metrics", 200, {"data": body})
        rc, result = run_module("langfuse_usage", {"url": srv.url, "public_key": PK, "secret_key": SK})
    assert rc == 0, result
    assert result["langfuse_api_version"] == "3" and len(result["rows"]) == 2


@pytest.mark.parametrize("status,body,needle", [
    (401, {"message": "Invalid credentials"}, "rejected the API keys"),
    (404, {"message": "Not found"}, "LANGFUSE_MIGRATION_V4_ALLOW_PREVIEW_OPT_IN"),
    (400, {"message": "Invalid query", "error": "x"}, "answered HTTP 400"),
    (200, {"rows": []}, "answered no data list"),
])
def test_failures_say_what_to_check(status, body, needle):
    with HttpServer() as srv:
        srv.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"})
        srv.respond("/api/public/v2/metrics", status, body)
        rc, result = run_module("langfuse_usage", {"url": srv.url, "public_key": PK, "secret_key": SK})
    assert rc == 1 and needle in result["msg"], result
    assert SK not in json.dumps(result)


def test_an_unreachable_langfuse_is_named():
    url = unused_url()
    rc, result = run_module("langfuse_usage", {"url": url, "public_key": PK, "secret_key": SK, "api_version": "4"})
    assert rc == 1 and f"Langfuse at {url} did not answer" in result["msg"]


def test_a_full_answer_is_flagged_as_truncated():
    many = [dict(USAGE[0], userId=f"u{i}") for i in range(1000)]
    with HttpServer() as srv:
        langfuse_v4(srv, usage=many)
        rc, result = run_module("langfuse_usage", {"url": srv.url, "public_key": PK, "secret_key": SK})
    assert rc == 0 and result["truncated"] is True


@pytest.mark.parametrize("option", ["request_timeout", "timeout"])
def test_a_slow_langfuse_times_out_by_request_timeout_or_its_old_name_timeout(option):
    with HttpServer() as srv:
        srv.respond("/api/public/health", 200, {"status": "OK", "version": "4.2.0"}, delay=3)
        rc, result = run_module("langfuse_usage", {"url": srv.url, "public_key": PK, "secret_key": SK, option: 1})
    assert rc == 1 and "timed out" in result["msg"], result
    assert not result.get("warnings"), result
