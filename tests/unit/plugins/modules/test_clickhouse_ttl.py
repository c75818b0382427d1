"""llmops.devbox.clickhouse_ttl: TTLs as ClickHouse prints them, the statements that reach them, and the module
end to end against a fake `docker` that plays ClickHouse's HTTP interface."""

from __future__ import annotations

import json
import stat
import sys

import pytest

from ansible_collections.llmops.devbox.plugins.modules import clickhouse_ttl
from ansible_collections.llmops.devbox.plugins.modules.clickhouse_ttl import current_ttl, normalise, plan
from ansible_collections.llmops.devbox.tests.unit.httpserver import run_module

QUERY_LOG = ("MergeTree PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, event_time) "
             "TTL event_date + toIntervalDay(30) SETTINGS index_granularity = 8192")
NO_TTL = ("MergeTree PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, event_time) "
          "SETTINGS index_granularity = 8192")


# --- normalise ---------------------------------------------------------------------------------


@pytest.mark.parametrize("expression,printed", [
    ("event_date + INTERVAL 30 DAY DELETE", "event_date + toIntervalDay(30)"),
    ("event_date + INTERVAL 30 DAY", "event_date + toIntervalDay(30)"),
    ("event_date + interval 30 day delete", "event_date + toIntervalDay(30)"),
    ("event_date + INTERVAL 30 DAYS", "event_date + toIntervalDay(30)"),
    ("event_time + INTERVAL 12 HOUR DELETE", "event_time + toIntervalHour(12)"),
    ("event_date + INTERVAL 3 MONTH", "event_date + toIntervalMonth(3)"),
    ("event_date + INTERVAL 1 WEEK", "event_date + toIntervalWeek(1)"),
    ("event_date + INTERVAL 1 YEAR", "event_date + toIntervalYear(1)"),
    ("event_time + INTERVAL 90 SECOND", "event_time + toIntervalSecond(90)"),
    ("event_time + INTERVAL 5 MINUTE", "event_time + toIntervalMinute(5)"),
    ("event_date + INTERVAL 2 QUARTER", "event_date + toIntervalQuarter(2)"),
    ("  event_date  +\tINTERVAL   30\n DAY   DELETE  ", "event_date + toIntervalDay(30)"),
    ("event_date + toIntervalDay(30)", "event_date + toIntervalDay(30)"),
    ("", ""),
    (None, ""),
])
def test_normalise(expression, printed):
    assert normalise(expression) == printed


def test_normalise_is_idempotent():
    once = normalise("event_date + INTERVAL 30 DAY DELETE")
    assert normalise(once) == once


# --- current_ttl -------------------------------------------------------------------------------


@pytest.mark.parametrize("engine_full,ttl", [
    (QUERY_LOG, "event_date + toIntervalDay(30)"),
    (NO_TTL, None),
    ("MergeTree ORDER BY event_time TTL event_time + toIntervalHour(12)", "event_time + toIntervalHour(12)"),
    ("MergeTree PARTITION BY event_date ORDER BY (event_date, event_time) TTL event_date + toIntervalDay(7) "
     "SETTINGS ttl_only_drop_parts = 1, index_granularity = 8192", "event_date + toIntervalDay(7)"),
    ("MergeTree ORDER BY id SETTINGS ttl_only_drop_parts = 1", None),
    ("", None),
    (None, None),
])
def test_current_ttl(engine_full, ttl):
    assert current_ttl(engine_full) == ttl


# --- plan --------------------------------------------------------------------------------------

TTL30 = {"system.query_log": "event_date + INTERVAL 30 DAY DELETE"}


def test_plan_alters_a_table_without_ttl():
    assert plan({"system.query_log": NO_TTL}, TTL30, [], {}) == \
        ["ALTER TABLE system.query_log MODIFY TTL event_date + INTERVAL 30 DAY DELETE"]


def test_plan_alters_a_different_ttl():
    tables = {"system.query_log": QUERY_LOG.replace("toIntervalDay(30)", "toIntervalDay(7)")}
    assert plan(tables, TTL30, [], {}) == \
        ["ALTER TABLE system.query_log MODIFY TTL event_date + INTERVAL 30 DAY DELETE"]


def test_plan_leaves_an_equal_ttl():
    assert plan({"system.query_log": QUERY_LOG}, TTL30, [], {}) == []
    assert plan({"system.query_log": QUERY_LOG}, {"system.query_log": "event_date + toIntervalDay(30)"}, [], {}) == []


def test_plan_removes_a_ttl_for_an_empty_expression():
    assert plan({"system.query_log": QUERY_LOG}, {"system.query_log": ""}, [], {}) == \
        ["ALTER TABLE system.query_log REMOVE TTL"]
    assert plan({"system.query_log": QUERY_LOG}, {"system.query_log": None}, [], {}) == \
        ["ALTER TABLE system.query_log REMOVE TTL"]


def test_plan_leaves_a_table_without_ttl_when_none_is_wanted():
    assert plan({"system.query_log": NO_TTL}, {"system.query_log": ""}, [], {}) == []


def test_plan_skips_missing_tables():
    assert plan({}, TTL30, ["system.trace_log"], {"system.trace_log": 5}) == []


def test_plan_truncates_only_empty_list_tables_with_rows():
    tables = {"system.trace_log": NO_TTL, "system.text_log": NO_TTL, "system.query_log": QUERY_LOG}
    counts = {"system.trace_log": 12, "system.text_log": 0, "system.query_log": 99}
    assert plan(tables, {}, ["system.trace_log", "system.text_log", "system.trace_log", "system.absent"], counts) == \
        ["TRUNCATE TABLE system.trace_log"]


def test_plan_orders_alters_by_table_then_truncates():
    tables = {"system.query_log": NO_TTL, "system.part_log": NO_TTL, "system.trace_log": NO_TTL,
              "system.asynchronous_metric_log": NO_TTL}
    ttl = {"system.query_log": "event_date + INTERVAL 30 DAY", "system.part_log": "event_date + INTERVAL 7 DAY"}
    assert plan(tables, ttl, ["system.trace_log", "system.asynchronous_metric_log"],
                {"system.trace_log": 1, "system.asynchronous_metric_log": 2}) == [
        "ALTER TABLE system.part_log MODIFY TTL event_date + INTERVAL 7 DAY",
        "ALTER TABLE system.query_log MODIFY TTL event_date + INTERVAL 30 DAY",
        "TRUNCATE TABLE system.asynchronous_metric_log",
        "TRUNCATE TABLE system.trace_log",
    ]


# --- main, with a fake docker --------------------------------------------------------------------

# Plays `docker compose ps --all --quiet clickhouse` and ClickHouse's HTTP interface inside `docker exec`;
# the tables live in state.json next to it, so an ALTER shows in the next read.
FAKE = r'''#!{python}
import json, os, re, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(here, "calls.log"), "a") as fh:
    fh.write(json.dumps(args) + "\n")
state_path = os.path.join(here, "state.json")
state = json.load(open(state_path))
if args[:1] == ["compose"] and args[3:] == ["ps", "--all", "--quiet", "clickhouse"]:
    print("id-clickhouse")
    sys.exit(0)
if args[:2] == ["exec", "-i"]:
    env = dict(a.split("=", 1) for a in args[3::2][:args.count("-e")])
    sql = env["LLMOPS_QUERY"]
    if state.get("down"):
        sys.stderr.write("Error response from daemon: container id-clickhouse is not running\n")
        sys.exit(1)
    m = re.match(r"SELECT name, engine_full FROM system.tables WHERE database = '(\w+)' AND name IN \((.*)\) "
                 r"FORMAT JSONEachRow$", sql)
    if m:
        wanted = re.findall(r"'(\w+)'", m.group(2))
        for name in wanted:
            full = m.group(1) + "." + name
            if full in state["tables"]:
                print(json.dumps({"name": name, "engine_full": state["tables"][full]}))
        sys.exit(0)
    m = re.match(r"SELECT count\(\) FROM (\S+)$", sql)
    if m:
        print(state["counts"].get(m.group(1), 0))
        sys.exit(0)
    m = re.match(r"ALTER TABLE (\S+) MODIFY TTL (.*)$", sql)
    if m:
        engine = re.sub(r" TTL .*?(?= SETTINGS |$)", "", state["tables"][m.group(1)])
        ttl = m.group(2)
        ttl = re.sub(r"\s+DELETE$", "", ttl)
        ttl = re.sub(r"INTERVAL (\d+) DAY", r"toIntervalDay(\1)", ttl)
        state["tables"][m.group(1)] = engine.replace(" SETTINGS ", " TTL " + ttl + " SETTINGS ")
    elif re.match(r"ALTER TABLE (\S+) REMOVE TTL$", sql):
        name = sql.split()[2]
        state["tables"][name] = re.sub(r" TTL .*?(?= SETTINGS |$)", "", state["tables"][name])
    elif sql.startswith("TRUNCATE TABLE "):
        state["counts"][sql.split()[2]] = 0
    else:
        sys.stderr.write("unexpected query " + sql)
        sys.exit(3)
    json.dump(state, open(state_path, "w"))
    sys.exit(0)
sys.stderr.write("fake docker: unexpected %r\n" % (args,))
sys.exit(2)
'''


@pytest.fixture
def docker(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker"
    script.write_text(FAKE.replace("{python}", sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")

    class Docker:
        def state(self, tables=None, counts=None, down=False):
            (bindir / "state.json").write_text(json.dumps({"tables": tables or {}, "counts": counts or {},
                                                           "down": down}))

        def read(self):
            return json.loads((bindir / "state.json").read_text())

        def calls(self):
            log = bindir / "calls.log"
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def queries(self):
            return [dict(zip(c[2::2], c[3::2]))["-e"].split("=", 1)[1] for c in self.calls() if c[0] == "exec"]

    return Docker()


ARGS = {"project_dir": "/opt/langfuse", "ttl": {"system.query_log": "event_date + INTERVAL 30 DAY DELETE"},
        "empty": ["system.trace_log", "system.text_log"]}


def test_main_alters_and_truncates_then_reports_the_new_ttls(docker):
    docker.state(tables={"system.query_log": NO_TTL, "system.trace_log": NO_TTL},
                 counts={"system.trace_log": 42})
    rc, result = run_module("clickhouse_ttl", ARGS)
    assert rc == 0, result
    assert result["changed"] is True
    assert result["statements"] == ["ALTER TABLE system.query_log MODIFY TTL event_date + INTERVAL 30 DAY DELETE",
                                    "TRUNCATE TABLE system.trace_log"]
    assert result["tables"] == {"system.query_log": "event_date + toIntervalDay(30)", "system.trace_log": None}
    assert docker.read()["counts"]["system.trace_log"] == 0
    queries = docker.queries()
    assert queries[0].startswith("SELECT name, engine_full FROM system.tables WHERE database = 'system' AND name IN "
                                 "('query_log', 'text_log', 'trace_log')")
    assert queries[1:4] == ["SELECT count() FROM system.trace_log", *result["statements"]]
    assert queries[4] == queries[0], "the tables are read again after the change"
    for call in docker.calls():
        if call[0] == "exec":
            assert call[:3] == ["exec", "-i", "-e"] and call[3].startswith("LLMOPS_QUERY=")
            assert call[4:7] == ["id-clickhouse", "sh", "-c"]
            assert "PASSWORD" not in " ".join(call[:6])


def test_main_a_rerun_changes_nothing(docker):
    docker.state(tables={"system.query_log": QUERY_LOG, "system.trace_log": NO_TTL}, counts={"system.trace_log": 0})
    rc, result = run_module("clickhouse_ttl", ARGS)
    assert rc == 0, result
    assert result["changed"] is False and result["statements"] == []
    assert result["tables"] == {"system.query_log": "event_date + toIntervalDay(30)", "system.trace_log": None}
    assert not any(q.startswith(("ALTER", "TRUNCATE")) for q in docker.queries())


def test_main_check_mode_reports_and_changes_nothing(docker):
    docker.state(tables={"system.query_log": NO_TTL, "system.trace_log": NO_TTL}, counts={"system.trace_log": 3})
    before = docker.read()
    rc, result = run_module("clickhouse_ttl", ARGS, check_mode=True)
    assert rc == 0, result
    assert result["changed"] is True
    assert result["statements"] == ["ALTER TABLE system.query_log MODIFY TTL event_date + INTERVAL 30 DAY DELETE",
                                    "TRUNCATE TABLE system.trace_log"]
    assert result["tables"] == {"system.query_log": None, "system.trace_log": None}
    assert docker.read() == before
    assert not any(q.startswith(("ALTER", "TRUNCATE")) for q in docker.queries())


def test_main_removes_a_ttl(docker):
    docker.state(tables={"system.query_log": QUERY_LOG})
    rc, result = run_module("clickhouse_ttl", {"project_dir": "/opt/langfuse", "ttl": {"system.query_log": ""}})
    assert rc == 0, result
    assert result["statements"] == ["ALTER TABLE system.query_log REMOVE TTL"]
    assert result["tables"] == {"system.query_log": None}


def test_main_leaves_missing_tables(docker):
    docker.state()
    rc, result = run_module("clickhouse_ttl", ARGS)
    assert rc == 0, result
    assert result == dict(result, changed=False, statements=[], tables={})
    assert not any(q.startswith("SELECT count()") for q in docker.queries())


@pytest.mark.parametrize("args,msg", [
    ({"ttl": {"query_log": "event_date + INTERVAL 1 DAY"}}, "Table names must be database.table"),
    ({"empty": ["system.trace_log; DROP TABLE x"]}, "Table names must be database.table"),
    ({"ttl": {"system.query_log": "event_date + INTERVAL 1 DAY; DROP TABLE x"}}, "without ';' or line breaks"),
    ({"ttl": {"system.query_log": "event_date + INTERVAL 1 DAY\nDELETE"}}, "without ';' or line breaks"),
])
def test_main_refuses_bad_arguments_before_docker(docker, args, msg):
    docker.state()
    rc, result = run_module("clickhouse_ttl", dict({"project_dir": "/opt/langfuse"}, **args))
    assert rc == 1 and result["failed"] is True
    assert msg in result["msg"]
    assert docker.calls() == []


def test_main_fails_with_a_hint_when_clickhouse_does_not_answer(docker):
    docker.state(down=True)
    rc, result = run_module("clickhouse_ttl", ARGS)
    assert rc == 1
    assert result["msg"].startswith("ClickHouse TTLs: reading table definitions failed (exit 1): Error response "
                                    "from daemon: container id-clickhouse is not running [query: SELECT name")
    assert result["msg"].endswith("Check that the clickhouse container of /opt/langfuse runs (docker compose ps).")


def test_read_tables_groups_by_database_with_quoted_names():
    seen = []

    class FakeStack:
        def clickhouse(self, sql, what=None):
            seen.append(sql)
            if "'system'" in sql:
                return json.dumps({"name": "query_log", "engine_full": QUERY_LOG}) + "\n\n"
            return json.dumps({"name": "traces", "engine_full": None}) + "\n"

    found = clickhouse_ttl.read_tables(FakeStack(), ["system.query_log", "default.traces", "system.trace_log"])
    assert found == {"system.query_log": QUERY_LOG, "default.traces": ""}
    assert seen == [
        "SELECT name, engine_full FROM system.tables WHERE database = 'default' AND name IN ('traces') "
        "FORMAT JSONEachRow",
        "SELECT name, engine_full FROM system.tables WHERE database = 'system' AND name IN ('query_log', 'trace_log') "
        "FORMAT JSONEachRow",
    ]
