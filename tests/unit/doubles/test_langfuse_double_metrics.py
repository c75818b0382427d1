"""The Langfuse double's GET /api/public/v2/metrics (contracts/langfuse-web.yml, facts.metrics):
the query engine is called directly with hand-made observation rows, shaped like those the worker
part stores (span_to_observation), so no services are needed."""

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

CONTRACT = yaml.safe_load((Path(__file__).resolve().parents[2] / "contracts" / "langfuse-web.yml").read_text())
FACT = CONTRACT["facts"]["metrics"]

FROM, TO = "2025-03-01T00:00:00Z", "2025-03-04T00:00:00Z"


def obs(start="2025-03-01T10:00:00.000Z", latency_ms=1000, **fields):
    """One observation row as the double's worker stores it (only what the metrics read)."""
    row = {
        "id": "o", "traceId": "t", "parentObservationId": "root", "type": "GENERATION",
        "name": "litellm-acompletion", "level": "DEFAULT", "environment": "devbox-1", "userId": "alice",
        "sessionId": None, "providedModelName": "claude-sonnet", "traceName": "chat", "startTime": start,
        "endTime": None, "usageDetails": {"input": 10, "output": 20, "total": 30}, "totalCost": 0.1,
    }
    if latency_ms is not None:
        end = datetime.strptime(start, "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(milliseconds=latency_ms)
        row["endTime"] = end.strftime("%Y-%m-%dT%H:%M:%S.") + f"{end.microsecond // 1000:03d}Z"
    row.update(fields)
    return row


def query(**fields):
    q = {"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
         "fromTimestamp": FROM, "toTimestamp": TO}
    q.update(fields)
    return json.dumps(q)


def run(langfuse, rows, raw):
    status, body = langfuse.run_metrics_query(rows, raw)
    assert status == 200, body
    return body["data"]


def metrics(*pairs):
    return [{"measure": m, "aggregation": a} for a, m in pairs]


# userId and sessionId are high-cardinality: grouping by them needs a top-N query.
TOP_N = {"config": {"row_limit": 100}, "orderBy": [{"field": "count_count", "direction": "desc"}]}


# --- grouping and measures ------------------------------------------------------------------

def test_usage_per_user_environment_and_model(langfuse):
    rows = [
        obs(latency_ms=1000, totalCost=0.1, usageDetails={"input": 10, "input_cached_tokens": 5, "output": 20,
                                                          "total": 35}),
        obs(latency_ms=2000, totalCost=0.2, usageDetails={"input": 1, "output": 2}),  # no "total" key: 0
        obs(latency_ms=4000, totalCost=None),                      # no cost: cost_details['total'] reads 0
        obs(latency_ms=500, userId=None, providedModelName="gpt-4o"),
        obs(latency_ms=700, userId="", providedModelName="gpt-4o", environment="devbox-2"),
    ]
    q = query(dimensions=[{"field": "userId"}, {"field": "environment"}, {"field": "providedModelName"}],
              metrics=metrics(("count", "count"), ("sum", "inputTokens"), ("sum", "outputTokens"),
                              ("sum", "totalTokens"), ("sum", "totalCost"), ("p50", "latency"), ("p95", "latency"),
                              ("avg", "latency"), ("min", "latency"), ("max", "totalCost")), **TOP_N)
    data = run(langfuse, rows, q)
    assert data[0] == {
        "userId": "alice", "environment": "devbox-1", "providedModelName": "claude-sonnet",
        "count_count": 3, "sum_inputTokens": 10 + 5 + 1 + 10, "sum_outputTokens": 42, "sum_totalTokens": 65,
        "sum_totalCost": 0.3,              # Decimal sum, not 0.30000000000000004
        "p50_latency": 2000,               # Float64 without a fraction is written as an integer
        "p95_latency": pytest.approx(3800),  # linear: 2000 + 0.9 * (4000 - 2000), in Float64
        "avg_latency": 2333.3333333333335, "min_latency": 1000, "max_totalCost": 0.2,
    }
    assert isinstance(data[0]["p50_latency"], int)
    # Empty and missing userId are both null; keys come in SELECT order.
    assert [(r["userId"], r["environment"], r["count_count"]) for r in data[1:]] == [
        (None, "devbox-1", 1), (None, "devbox-2", 1)]
    assert list(data[0]) == ["userId", "environment", "providedModelName", "count_count", "sum_inputTokens",
                             "sum_outputTokens", "sum_totalTokens", "sum_totalCost", "p50_latency", "p95_latency",
                             "avg_latency", "min_latency", "max_totalCost"]


def test_latency_without_an_end_time_is_null_and_not_counted(langfuse):
    rows = [obs(latency_ms=None), obs(latency_ms=None, userId="bob"), obs(latency_ms=300, userId="bob")]
    q = query(dimensions=[{"field": "userId"}],
              metrics=metrics(("count", "count"), ("count", "latency"), ("sum", "latency"), ("p99", "latency")),
              **TOP_N)
    assert run(langfuse, rows, q) == [
        {"userId": "bob", "count_count": 2, "count_latency": 1, "sum_latency": 300, "p99_latency": 300},
        {"userId": "alice", "count_count": 1, "count_latency": 0, "sum_latency": None, "p99_latency": None},
    ]


def test_percentiles_interpolate_linearly_like_clickhouse_quantile(langfuse):
    rows = [obs(latency_ms=ms) for ms in (100, 200, 300, 400, 1000)]
    q = query(metrics=metrics(*[(p, "latency") for p in ("p50", "p75", "p90", "p95", "p99")]))
    # level * (n - 1) between sorted neighbours: p90 -> index 3.6 -> 400 + 0.6 * 600
    # (ClickHouse computes left * (right_index - index) + right * (index - left_index) in Float64,
    # as the double does, so even the last digit agrees; approx keeps the test readable.)
    assert run(langfuse, rows, q) == [{"p50_latency": 300, "p75_latency": 400, "p90_latency": pytest.approx(760),
                                       "p95_latency": pytest.approx(880), "p99_latency": pytest.approx(976)}]


def test_trace_name_falls_back_to_the_root_observations_name(langfuse):
    rows = [obs(traceName=None, parentObservationId=None, name="root-span"),
            obs(traceName=None, parentObservationId="p", name="child"), obs(traceName="chat")]
    data = run(langfuse, rows, query(dimensions=[{"field": "traceName"}],
                                     orderBy=[{"field": "traceName", "direction": "asc"}]))
    assert data == [{"traceName": "chat", "count_count": 1}, {"traceName": "root-span", "count_count": 1},
                    {"traceName": None, "count_count": 1}]


def test_no_metrics_selects_a_count_column(langfuse):
    assert run(langfuse, [obs(), obs()], query(metrics=[])) == [{"count": 2}]


# --- window and filters ---------------------------------------------------------------------

def test_window_is_inclusive_at_both_ends_on_start_time(langfuse):
    rows = [obs(start=s, name=s) for s in ("2025-02-28T23:59:59.999Z", "2025-03-01T00:00:00.000Z",
                                           "2025-03-04T00:00:00.000Z", "2025-03-04T00:00:00.001Z")]
    data = run(langfuse, rows, query(dimensions=[{"field": "name"}]))
    assert sorted(r["name"] for r in data) == ["2025-03-01T00:00:00.000Z", "2025-03-04T00:00:00.000Z"]
    # Offsets and missing seconds are accepted as zod's iso datetime accepts them.
    shifted = query(dimensions=[{"field": "name"}], fromTimestamp="2025-03-01T01:00+01:00",
                    toTimestamp="2025-03-03T23:59:59.9999Z")
    assert [r["name"] for r in run(langfuse, rows, shifted)] == ["2025-03-01T00:00:00.000Z"]


@pytest.mark.parametrize(("flt", "users"), [
    ({"column": "userId", "operator": "any of", "value": ["alice", "bob"], "type": "stringOptions"}, ["alice", "bob"]),
    # "none of" never matches a row without a value (nullIf'd column, '' = null)
    ({"column": "userId", "operator": "none of", "value": ["alice"], "type": "stringOptions"}, ["bob", "carol"]),
    ({"column": "userId", "operator": "any of", "value": [""], "type": "stringOptions"}, [None]),
    ({"column": "userId", "operator": "=", "value": "", "type": "string"}, [None]),
    ({"column": "userId", "operator": "=", "value": "bob", "type": "string"}, ["bob"]),
    ({"column": "providedModelName", "operator": "any of", "value": ["gpt-4o"], "type": "stringOptions"}, ["bob"]),
    ({"column": "type", "operator": "any of", "value": ["GENERATION"], "type": "stringOptions"}, ["alice", "bob"]),
    ({"column": "environment", "operator": "none of", "value": ["devbox-1"], "type": "stringOptions"}, ["carol"]),
    # traceName is an expression that can be NULL: every comparison with NULL drops the row
    ({"column": "traceName", "operator": "none of", "value": ["chat"], "type": "stringOptions"}, []),
    # another *Name column upstream does not know falls back to "name"
    ({"column": "spanName", "operator": "=", "value": "tool-call", "type": "string"}, ["carol"]),
])
def test_filters(langfuse, flt, users):
    rows = [obs(userId="alice"), obs(userId="bob", providedModelName="gpt-4o"),
            obs(userId=None, type="SPAN", traceName=None, parentObservationId="p"),
            obs(userId="carol", type="TOOL", environment="devbox-2", name="tool-call")]
    q = query(dimensions=[{"field": "userId"}], filters=[flt], **TOP_N)
    assert sorted(run(langfuse, rows, q), key=lambda r: r["userId"] or "") == [
        {"userId": u, "count_count": 1} for u in sorted(users, key=lambda u: u or "")]


def test_error_count_by_level(langfuse):
    rows = [obs(level="ERROR"), obs(level="ERROR", userId="bob"), obs(level="DEFAULT"), obs(level="WARNING")]
    errors = {"column": "level", "operator": "=", "value": "ERROR", "type": "string"}
    assert run(langfuse, rows, query(filters=[errors])) == [{"count_count": 2}]
    by_level = run(langfuse, rows, query(dimensions=[{"field": "level"}]))
    assert by_level[0] == {"level": "ERROR", "count_count": 2}
    assert sorted(r["level"] for r in by_level[1:]) == ["DEFAULT", "WARNING"]


# --- time dimension -------------------------------------------------------------------------

def test_per_day_buckets_are_dates_and_gaps_are_filled(langfuse):
    rows = [obs(start="2025-03-01T23:59:59.000Z", latency_ms=100), obs(start="2025-03-03T00:00:00.000Z"),
            obs(start="2025-03-04T00:00:00.000Z", latency_ms=None)]  # exactly at toTimestamp: its own day
    q = query(timeDimension={"granularity": "day"}, fromTimestamp="2025-02-28T12:00:00Z",
              metrics=metrics(("count", "count"), ("sum", "totalCost"), ("p50", "latency"), ("sum", "inputTokens")))
    assert run(langfuse, rows, q) == [
        # WITH FILL FROM toDate(from) TO toDate(to) (exclusive): defaults, null where the SQL is Nullable
        {"time_dimension": "2025-02-28", "count_count": 0, "sum_totalCost": None, "p50_latency": None,
         "sum_inputTokens": 0},
        {"time_dimension": "2025-03-01", "count_count": 1, "sum_totalCost": 0.1, "p50_latency": 100,
         "sum_inputTokens": 10},
        {"time_dimension": "2025-03-02", "count_count": 0, "sum_totalCost": None, "p50_latency": None,
         "sum_inputTokens": 0},
        {"time_dimension": "2025-03-03", "count_count": 1, "sum_totalCost": 0.1, "p50_latency": 1000,
         "sum_inputTokens": 10},
        {"time_dimension": "2025-03-04", "count_count": 1, "sum_totalCost": 0.1, "p50_latency": None,
         "sum_inputTokens": 10},
    ]


def test_per_day_with_dimensions_and_an_explicit_order_has_no_fill(langfuse):
    rows = [obs(start="2025-03-01T10:00:00.000Z"), obs(start="2025-03-03T10:00:00.000Z", environment="devbox-2"),
            obs(start="2025-03-03T11:00:00.000Z")]
    q = query(timeDimension={"granularity": "day"}, dimensions=[{"field": "environment"}])
    filled = run(langfuse, rows, q)
    assert [(r["time_dimension"], r["environment"], r["count_count"]) for r in filled] == [
        ("2025-03-01", "devbox-1", 1), ("2025-03-02", None, 0), ("2025-03-03", "devbox-1", 1),
        ("2025-03-03", "devbox-2", 1)]
    ordered = run(langfuse, rows, query(timeDimension={"granularity": "day"}, dimensions=[{"field": "environment"}],
                                        orderBy=[{"field": "time_dimension", "direction": "desc"}]))
    assert [r["time_dimension"] for r in ordered] == ["2025-03-03", "2025-03-03", "2025-03-01"]


def test_per_hour_buckets_are_iso_datetimes(langfuse):
    rows = [obs(start="2025-03-01T10:59:59.999Z"), obs(start="2025-03-01T12:00:00.000Z")]
    q = query(timeDimension={"granularity": "hour"}, fromTimestamp="2025-03-01T10:30:00Z",
              toTimestamp="2025-03-01T12:30:00Z")
    assert run(langfuse, rows, q) == [{"time_dimension": "2025-03-01T10:00:00Z", "count_count": 1},
                                      {"time_dimension": "2025-03-01T11:00:00Z", "count_count": 0},
                                      {"time_dimension": "2025-03-01T12:00:00Z", "count_count": 1}]


# --- ordering and row limit -----------------------------------------------------------------

def test_default_order_is_the_first_metric_descending(langfuse):
    rows = [obs(name="a")] + [obs(name="b")] * 3 + [obs(name="c")] * 2
    data = run(langfuse, rows, query(dimensions=[{"field": "name"}]))
    assert [(r["name"], r["count_count"]) for r in data] == [("b", 3), ("c", 2), ("a", 1)]


def test_explicit_order_on_dimension_and_metric_with_nulls_last(langfuse):
    rows = [obs(name="a", latency_ms=None), obs(name="b", latency_ms=10), obs(name="c", latency_ms=30),
            obs(name="c", level="ERROR", latency_ms=30)]
    q = query(dimensions=[{"field": "name"}, {"field": "level"}], metrics=metrics(("max", "latency")))
    asc = run(langfuse, rows, json.dumps({**json.loads(q), "orderBy": [{"field": "max_latency", "direction": "asc"},
                                                                          {"field": "level", "direction": "desc"}]}))
    assert [(r["name"], r["level"]) for r in asc] == [("b", "DEFAULT"), ("c", "ERROR"), ("c", "DEFAULT"),
                                                      ("a", "DEFAULT")]
    desc = run(langfuse, rows, json.dumps({**json.loads(q), "orderBy": [{"field": "max_latency", "direction": "desc"},
                                                                           {"field": "level", "direction": "asc"}]}))
    assert [(r["name"], r["level"]) for r in desc] == [("c", "DEFAULT"), ("c", "ERROR"), ("b", "DEFAULT"),
                                                       ("a", "DEFAULT")]


def test_row_limit_defaults_to_100_and_applies_after_ordering(langfuse):
    assert FACT["value"]["v2_row_limit"]["default"] == langfuse.DEFAULT_ROW_LIMIT == 100
    rows = [obs(name=f"n{i:03d}") for i in range(150)] + [obs(name="n149")] * 2
    data = run(langfuse, rows, query(dimensions=[{"field": "name"}]))
    assert len(data) == 100 and data[0] == {"name": "n149", "count_count": 3}
    top = run(langfuse, rows, query(dimensions=[{"field": "name"}], config={"row_limit": 2},
                                    orderBy=[{"field": "name", "direction": "desc"}]))
    assert [r["name"] for r in top] == ["n149", "n148"]


# --- high cardinality and refusals ----------------------------------------------------------

TOP_USERS = {"dimensions": [{"field": "userId"}], "metrics": metrics(("sum", "totalCost")),
             "config": {"row_limit": 10}, "orderBy": [{"field": "sum_totalCost", "direction": "desc"}]}


def test_top_users_by_cost_are_allowed(langfuse):
    rows = [obs(userId="alice", totalCost=0.5), obs(userId="bob", totalCost=1.25), obs(userId="bob", totalCost=1)]
    assert run(langfuse, rows, query(**TOP_USERS)) == [{"userId": "bob", "sum_totalCost": 2.25},
                                                       {"userId": "alice", "sum_totalCost": 0.5}]


@pytest.mark.parametrize(("change", "message"), [
    ({"config": None}, "High cardinality dimension(s) 'userId' require both 'config.row_limit' and 'orderBy' "
                       "with direction 'desc' on a measure field."),
    ({"orderBy": [{"field": "sum_totalCost", "direction": "asc"}]}, "require both 'config.row_limit'"),
    ({"orderBy": [{"field": "userId", "direction": "desc"}]},
     "High cardinality dimension(s) 'userId' require 'orderBy' with direction 'desc' on a measure field. "
     "'userId' is not a measure in this query."),
    ({"timeDimension": {"granularity": "day"}},
     "High cardinality dimension(s) 'userId' cannot be used with timeDimension. Time series queries with high "
     "cardinality dimensions produce unbounded result sets."),
    ({"dimensions": [{"field": "sessionId"}, {"field": "userId"}], "config": {"bins": 5}},
     "High cardinality dimension(s) 'sessionId, userId' require both"),
])
def test_high_cardinality_dimensions_are_refused_as_upstream(langfuse, change, message):
    q = {**TOP_USERS, **change}
    q = {k: v for k, v in q.items() if v is not None}
    status, body = langfuse.run_metrics_query([obs()], query(**q))
    assert status == 400 and body["error"] == "InvalidRequestError"
    assert message in body["message"]


@pytest.mark.parametrize("change", [
    {"view": "scores-numeric"},
    {"metrics": metrics(("p50", "streamingLatency"))},
    {"metrics": metrics(("uniq", "count"))},
    {"metrics": metrics(("histogram", "latency"))},
    {"dimensions": [{"field": "version"}]},
    {"dimensions": [{"field": "tags"}]},
    {"filters": [{"column": "name", "operator": "contains", "value": "x", "type": "string"}]},
    {"filters": [{"column": "tags", "operator": "any of", "value": ["x"], "type": "arrayOptions"}]},
    {"filters": [{"column": "userId", "operator": "is null", "value": "", "type": "null"}]},
    {"filters": [{"column": "start_time", "operator": ">", "value": FROM, "type": "datetime"}]},
    {"timeDimension": {"granularity": "week"}},
    {"timeDimension": {"granularity": "auto"}},
])
def test_what_upstream_accepts_beyond_the_subset_is_a_400_naming_the_double(langfuse, change):
    status, body = langfuse.run_metrics_query([obs()], query(**change))
    assert status == 400 and "not implemented by the Langfuse double" in body["message"], body
    assert body["error"] == "NotImplementedByLangfuseDouble"


@pytest.mark.parametrize(("raw", "message"), [
    (None, "Invalid request data"),
    ("{not json", "Invalid JSON in query parameter"),
    (query(view="traces"), "Invalid request data"),
    (query(fromTimestamp=TO, toTimestamp=FROM), "Invalid request data"),
    (query(fromTimestamp="2025-03-01"), "Invalid request data"),
    (query(fromTimestamp="2025-03-01T00:00:00+0100"), "Invalid request data"),
    (query(config={"row_limit": 0}), "Invalid request data"),
    (query(config={"row_limit": 1001}), "Invalid request data"),
    (query(metrics=metrics(("median", "latency"))), "Invalid request data"),
    (query(filters=[{"column": "userId", "operator": "any of", "value": [], "type": "stringOptions"}]),
     "Invalid request data"),
    (query(dimensions=[{"field": "model"}]), "Invalid dimension model. Must be one of id,traceId,environment,"),
    (query(metrics=metrics(("sum", "cost"))), "Invalid metric cost. Must be one of count,traceId,"),
    (query(metrics=metrics(("sum", "traceId"))),
     'Aggregation "sum" is not valid for measure "traceId" (type: string). Valid aggregations: count, uniq'),
    (query(filters=[{"column": "tags", "operator": "=", "value": "x", "type": "string"}]),
     "Invalid filter for field 'tags': Filter type 'string' is not supported for dimension type 'string[]'. "
     "Expected 'arrayOptions'."),
    (query(filters=[{"column": "metadata", "operator": "=", "value": "x", "type": "string"}]),
     "Invalid filter for field 'metadata': Metadata filters require type 'stringObject'"),
    (query(filters=[{"column": "model", "operator": "=", "value": "x", "type": "string"}]),
     "Invalid filter column model. Must be one of id,"),
    (query(orderBy=[{"field": "sum_count", "direction": "desc"}]),
     "Invalid orderBy field: sum_count. Must be one of the dimension or metric fields."),
])
def test_invalid_queries_answer_400_as_upstream(langfuse, raw, message):
    status, body = langfuse.run_metrics_query([obs()], raw)
    assert status == 400 and body["message"].startswith(message), body
    if message == "Invalid request data":
        assert isinstance(body["error"], list) and all(i["path"][0] == "query" for i in body["error"])
    else:
        assert body["error"] == "InvalidRequestError"


def test_a_bad_view_is_reported_at_its_path(langfuse):
    _, body = langfuse.run_metrics_query([], query(view="traces"))
    assert body["error"][0]["path"] == ["query", "view"] and "observations" in body["error"][0]["message"]


# --- contract and route ---------------------------------------------------------------------

def test_the_subset_is_part_of_what_the_contract_lists(langfuse):
    value = FACT["value"]
    assert set(langfuse.METRICS_DIMENSIONS) <= set(value["v2_observations_dimensions"])
    assert set(langfuse.METRICS_MEASURES) <= set(value["v2_observations_measures"])
    assert set(langfuse.METRICS_AGGREGATIONS) <= set(value["aggregations"])
    assert list(langfuse.V2_OBS_DIMENSIONS) == value["v2_observations_dimensions"]
    assert list(langfuse.V2_OBS_MEASURES) == value["v2_observations_measures"]
    assert "not implemented by the Langfuse double" in FACT["double"]


class _Handler:
    """What App.metrics uses of the HTTP handler."""

    def __init__(self, path, authorised=True):
        self.path, self.authorised, self.sent = path, authorised, []

    def project_for_key(self):
        if not self.authorised:
            self.sent.append((401, {"message": "Invalid credentials", "error": "UnauthorizedError"}))
            return None
        return ("project-1", "Project", "org", "Org")

    def send(self, status, payload=None, *args, **kwargs):
        self.sent.append((status, payload))


class _ClickHouse:
    def __init__(self, rows):
        self.rows, self.queries = rows, []

    def clickhouse(self, sql, data=None, **params):
        self.queries.append(params)
        return "\n".join(json.dumps({"body": json.dumps(r)}) for r in self.rows) + "\n"


def test_route_reads_the_projects_observations_after_checking_the_query(langfuse):
    from urllib.parse import quote

    backends = _ClickHouse([obs(), obs(userId="bob")])
    app = langfuse.App({}, backends)
    h = _Handler("/api/public/v2/metrics?query=" + quote(query(dimensions=[{"field": "environment"}])))
    app.web(h, "GET", "/api/public/v2/metrics", {})
    assert h.sent == [(200, {"data": [{"environment": "devbox-1", "count_count": 2}]})]
    assert backends.queries == [{"project": "project-1"}]
    for path, message in (("/api/public/v2/metrics?query=", "Invalid JSON in query parameter"),
                          ("/api/public/v2/metrics", "Invalid request data")):
        h = _Handler(path)
        app.web(h, "GET", "/api/public/v2/metrics", {})
        assert h.sent[0][0] == 400 and h.sent[0][1]["message"] == message
    assert len(backends.queries) == 1  # invalid queries never reach ClickHouse
    h = _Handler("/api/public/v2/metrics?query=" + quote(query()), authorised=False)
    app.web(h, "GET", "/api/public/v2/metrics", {})
    assert [s for s, _ in h.sent] == [401]


# --- the queries llmops.devbox.langfuse_usage sends, as they are ----------------------------------

def test_the_usage_modules_queries_run_and_combine_into_the_report(langfuse):
    """Every query langfuse_usage builds is one the double (and so upstream's schema) accepts, and the
    report's totals are the sums of the single generations, errors included."""
    from ansible_collections.llmops.devbox.plugins.modules.langfuse_usage import combine, queries

    rows = [
        obs(userId="alice", environment="box-1", providedModelName="sonnet", totalCost=0.25, latency_ms=100),
        obs(userId="alice", environment="box-1", providedModelName="sonnet", totalCost=0.5, latency_ms=300,
            level="ERROR"),
        obs(userId="bob", environment="box-2", providedModelName="haiku", totalCost=0.125,
            start="2025-03-02T10:00:00.000Z"),
        obs(type="SPAN", totalCost=9.0),  # not a generation: left out
        obs(start="2025-03-05T10:00:00.000Z", totalCost=9.0),  # outside the window
    ]
    answers = []
    for q in queries(FROM, TO):
        status, body = langfuse.run_metrics_query(rows, json.dumps(q))
        assert status == 200, (q, body)
        answers.append(body["data"])
    report, daily, totals = combine(*answers)
    assert [(r["owner"], r["box"], r["model"], r["requests"], r["errors"]) for r in report] == [
        ("alice", "box-1", "sonnet", 2, 1), ("bob", "box-2", "haiku", 1, 0)]
    assert report[0]["cost"] == pytest.approx(0.75) and report[0]["error_rate"] == 0.5
    assert report[0]["latency_p50_ms"] == 200 and report[0]["input_tokens"] == 20
    assert totals["cost"] == pytest.approx(0.875) and totals["requests"] == 3
    assert [(d["day"], d["model"], d["cost"]) for d in daily] == [("2025-03-01", "sonnet", pytest.approx(0.75)),
                                                                  ("2025-03-02", "haiku", pytest.approx(0.125))]
