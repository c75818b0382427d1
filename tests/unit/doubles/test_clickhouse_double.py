"""The ClickHouse double's SQL subset, as the Langfuse double and health checks use it, and what it
honours of config.d, system log tables and BACKUP / RESTORE (contract clickhouse: facts)."""

import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

PROGRAM = Path(__file__).resolve().parents[2] / "images" / "clickhouse-double" / "clickhouse_double.py"


@pytest.fixture
def store(clickhouse, tmp_path):
    st = clickhouse.Store(str(tmp_path))
    st.create_database("default", True)
    return st


def test_health_queries(clickhouse, store):
    assert clickhouse.execute(store, "SELECT 1", "", "default") == "1\n"
    assert clickhouse.execute(store, "SELECT version()", "", "default").startswith("25.12")


def test_insert_and_select_with_bound_parameters(clickhouse, store):
    run = clickhouse.execute
    run(store, "CREATE TABLE IF NOT EXISTS obs (p String, t String) ENGINE = MergeTree ORDER BY p", "", "default")
    run(store, "INSERT INTO obs FORMAT JSONEachRow", '{"p":"a","t":"1"}\n{"p":"a","t":"2"}\n{"p":"b","t":"1"}',
        "default")
    out = run(store, "SELECT * FROM obs WHERE p = {p:String} AND t = {t:String} FORMAT JSONEachRow", "",
              "default", {"p": "a", "t": "2"})
    assert out == '{"p": "a", "t": "2"}\n'
    assert run(store, "SELECT count() FROM default.obs WHERE p = 'a'", "", "default") == "2\n"
    # A quote in a bound value stays data, it does not end the string.
    assert run(store, "SELECT count() FROM obs WHERE p = {p:String}", "", "default", {"p": "a' OR 'x"}) == "0\n"


def test_table_survives_a_new_store_on_the_same_directory(clickhouse, store, tmp_path):
    clickhouse.execute(store, "CREATE TABLE t (x String) ENGINE = Memory", "", "default")
    clickhouse.execute(store, "INSERT INTO t FORMAT JSONEachRow", '{"x":"kept"}', "default")
    again = clickhouse.Store(str(tmp_path))
    assert clickhouse.execute(again, "SELECT * FROM t", "", "default") == "kept\n"


@pytest.mark.parametrize(("query", "code", "status"), [
    ("SELECT * FROM missing", 60, 404),
    ("SELECT * FROM nodb.t", 81, 404),
    ("CREATE TABLE x (a String) ENGINE = Memory; CREATE TABLE x (a String) ENGINE = Memory", 62, 400),
    ("SELECT a, b FROM t GROUP BY a", 62, 400),
    ("SELECT * FROM t WHERE p = {p:String}", 456, 400),
])
def test_errors_carry_clickhouse_codes(clickhouse, store, query, code, status):
    with pytest.raises(clickhouse.CHError) as err:
        clickhouse.execute(store, query, "", "default")
    assert (err.value.code, err.value.status) == (code, status)
    assert err.value.text().startswith(f"Code: {code}. DB::Exception:")


def test_create_existing_table_without_if_not_exists_fails(clickhouse, store):
    clickhouse.execute(store, "CREATE TABLE t (a String) ENGINE = Memory", "", "default")
    with pytest.raises(clickhouse.CHError) as err:
        clickhouse.execute(store, "CREATE TABLE t (a String) ENGINE = Memory", "", "default")
    assert err.value.name == "TABLE_ALREADY_EXISTS"


def test_where_accepts_in_lists(clickhouse, store):
    run = clickhouse.execute
    run(store, "CREATE TABLE t (p String) ENGINE = Memory", "", "default")
    run(store, "INSERT INTO t FORMAT JSONEachRow", '{"p":"a"}\n{"p":"b"}\n{"p":"c"}', "default")
    assert run(store, "SELECT count() FROM t WHERE p IN ('a', 'c')", "", "default") == "2\n"


# --- config.d ----------------------------------------------------------------------------------

def _config_d(tmp_path, **files):
    conf = tmp_path / "config.d"
    conf.mkdir(exist_ok=True)
    for name, text in files.items():
        (conf / f"{name}.xml").write_text(text)
    return str(conf)


LANGFUSE_LOGS = """<clickhouse>
  <backups><allowed_disk>backups</allowed_disk><allowed_path>/backups/</allowed_path></backups>
  <trace_log remove="1"/><text_log remove="1"/><opentelemetry_span_log remove="1"/>
  <asynchronous_metric_log remove="1"/><metric_log remove="1"/><latency_log remove="1"/>
  <query_log><ttl>event_date + INTERVAL 30 DAY DELETE</ttl></query_log>
  <part_log><ttl>event_date + INTERVAL 30 DAY DELETE</ttl></part_log>
</clickhouse>"""


def test_config_d_is_merged_in_name_order(clickhouse, tmp_path):
    conf = _config_d(tmp_path, **{"10-logs": LANGFUSE_LOGS, "20-later": """<yandex>
      <query_log><ttl>event_date + INTERVAL 2 WEEK</ttl></query_log>
      <error_log remove="remove"/><trace_log><partition_by/></trace_log>
    </yandex>"""})
    (tmp_path / "config.d" / "ignored.conf").write_text("not xml, not *.xml")
    cfg = clickhouse.load_config(conf)
    assert cfg.backup_paths == ["/backups/"]
    removed = {n for n, spec in cfg.logs.items() if spec.removed}
    # The later file wins for query_log's TTL; trace_log, once removed, comes back as a new section.
    assert removed == {"text_log", "opentelemetry_span_log", "asynchronous_metric_log", "metric_log",
                       "latency_log", "error_log"}
    assert cfg.logs["query_log"].ttl == "event_date + INTERVAL 2 WEEK"
    assert clickhouse.log_engine_full(cfg.logs["trace_log"]) == \
        "MergeTree ORDER BY (event_date, event_time) SETTINGS index_granularity = 8192"


def test_no_config_d_means_every_log_and_no_backups(clickhouse, tmp_path):
    cfg = clickhouse.load_config(str(tmp_path / "missing"))
    assert cfg.backup_paths == [] and not any(s.removed for s in cfg.logs.values())
    assert set(cfg.logs) == set(clickhouse.SYSTEM_LOGS)


@pytest.mark.parametrize(("text", "expected"), [
    ("<clickhouse><backups>", "Cannot load config file"),
    ("<config><backups/></config>", "it must be <clickhouse>"),
    # metric_log has no stock partition_by: the engine/ttl check speaks.
    ("<clickhouse><metric_log><engine>ENGINE = MergeTree ORDER BY event_time</engine>"
     "<ttl>event_date + INTERVAL 1 DAY</ttl></metric_log></clickhouse>", "'ttl' setting doesn't make sense"),
    # query_log inherits partition_by from the stock config.xml, so <engine> alone breaks it.
    ("<clickhouse><query_log><engine>ENGINE = MergeTree ORDER BY event_time</engine></query_log></clickhouse>",
     "'partition_by' setting doesn't make sense"),
])
def test_broken_config_d_is_refused(clickhouse, tmp_path, text, expected):
    conf = _config_d(tmp_path, broken=text)
    with pytest.raises(clickhouse.ConfigError, match=expected) as err:
        clickhouse.load_config(conf)
    if "make sense" in expected:
        assert "BAD_ARGUMENTS" in str(err.value) and str(err.value).startswith("Code: 36.")
    else:
        assert "broken.xml" in str(err.value)


def test_engine_override_that_replaces_the_stock_section_is_accepted(clickhouse, tmp_path):
    conf = _config_d(tmp_path, e='<clickhouse><query_log replace="1"><engine>ENGINE = MergeTree '
                                 "PARTITION BY event_date ORDER BY event_time TTL event_date + INTERVAL 3 DAY DELETE"
                                 "</engine></query_log></clickhouse>")
    spec = clickhouse.load_config(conf).logs["query_log"]
    assert clickhouse.log_engine_full(spec) == \
        "MergeTree PARTITION BY event_date ORDER BY event_time TTL event_date + toIntervalDay(3)"


@pytest.mark.parametrize(("ttl", "shown"), [
    ("event_date + INTERVAL 30 DAY DELETE", "event_date + toIntervalDay(30)"),
    ("event_date  +  INTERVAL 2 WEEK", "event_date + toIntervalWeek(2)"),
    ("event_time + INTERVAL 12 HOUR delete", "event_time + toIntervalHour(12)"),
    ("event_date + INTERVAL 1 MONTH", "event_date + toIntervalMonth(1)"),
])
def test_ttl_is_normalised_like_engine_full(clickhouse, ttl, shown):
    assert clickhouse.normalise_ttl(ttl) == shown


# --- system log tables -------------------------------------------------------------------------

def _server_store(clickhouse, tmp_path, conf):
    st = clickhouse.Store(str(tmp_path / "data"), clickhouse.load_config(conf))
    st.create_database("default", True)
    clickhouse.init_system_logs(st)
    return st


ENGINE_30 = ("MergeTree PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, event_time) "
             "TTL event_date + toIntervalDay(30) SETTINGS index_granularity = 8192")
ENGINE_NO_TTL = ("MergeTree PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, event_time) "
                 "SETTINGS index_granularity = 8192")


def test_system_logs_are_created_with_their_ttl(clickhouse, tmp_path):
    st = _server_store(clickhouse, tmp_path, _config_d(tmp_path, logs=LANGFUSE_LOGS))
    out = clickhouse.execute(st, "SELECT name, engine_full FROM system.tables WHERE database = 'system' "
                                 "FORMAT JSONEachRow", "", "default")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == ["error_log", "part_log", "processors_profile_log", "query_log"]
    assert {r["name"]: r["engine_full"] for r in rows}["query_log"] == ENGINE_30
    assert {r["name"]: r["engine_full"] for r in rows}["error_log"] == ENGINE_NO_TTL
    out = clickhouse.execute(st, "SELECT name, engine_full FROM system.tables WHERE database = 'system' "
                                 "AND name IN ('query_log', 'trace_log')", "", "default")
    assert out == f"query_log\t{ENGINE_30}\n"
    assert clickhouse.execute(st, "SELECT count() FROM system.query_log", "", "default") == "0\n"


def test_existing_log_keeps_its_engine_until_altered_and_removed_log_stays(clickhouse, tmp_path):
    _server_store(clickhouse, tmp_path, _config_d(tmp_path))  # first start: no TTL, trace_log kept
    st = _server_store(clickhouse, tmp_path, _config_d(tmp_path, logs=LANGFUSE_LOGS))
    engine = "SELECT engine_full FROM system.tables WHERE database = 'system' AND name = 'query_log'"
    assert clickhouse.execute(st, engine, "", "default") == ENGINE_NO_TTL + "\n"
    # A removed log's table stays, and is no longer written.
    assert "trace_log" in clickhouse.execute(st, "SHOW TABLES FROM system", "", "default").split()
    clickhouse.execute(st, "ALTER TABLE system.query_log MODIFY TTL event_date + INTERVAL 30 DAY DELETE",
                       "", "default")
    assert clickhouse.execute(st, engine, "", "default") == ENGINE_30 + "\n"
    clickhouse.execute(st, "ALTER TABLE system.query_log MODIFY TTL event_date + INTERVAL 7 DAY", "", "default")
    assert "TTL event_date + toIntervalDay(7) SETTINGS" in clickhouse.execute(st, engine, "", "default")
    clickhouse.execute(st, "ALTER TABLE system.query_log REMOVE TTL", "", "default")
    assert clickhouse.execute(st, engine, "", "default") == ENGINE_NO_TTL + "\n"
    with pytest.raises(clickhouse.CHError) as err:
        clickhouse.execute(st, "ALTER TABLE system.missing_log MODIFY TTL event_date + INTERVAL 7 DAY", "",
                           "default")
    assert (err.value.code, err.value.name) == (60, "UNKNOWN_TABLE")


def test_queries_are_logged_and_truncate_empties(clickhouse, tmp_path):
    st = _server_store(clickhouse, tmp_path, _config_d(tmp_path, logs=LANGFUSE_LOGS))
    for _ in range(3):
        clickhouse.record_query(st, "SELECT 1", failed=False)
    rows = st.select("system", "query_log", [])
    assert len(rows) == 3 and set(rows[0]) >= {"event_date", "event_time", "query"}
    clickhouse.execute(st, "TRUNCATE TABLE IF EXISTS system.query_log SETTINGS max_table_size_to_drop = 0",
                       "", "default")
    assert clickhouse.execute(st, "SELECT count() FROM system.query_log", "", "default") == "0\n"
    assert clickhouse.execute(st, "TRUNCATE TABLE IF EXISTS system.nothing", "", "default") == ""
    # trace_log is removed: nothing records into it even when its table exists from before.
    st.create_table("system", "trace_log", True)
    st.config.logs["query_log"].removed = True
    clickhouse.record_query(st, "SELECT 1", failed=False)
    assert st.select("system", "query_log", []) == []


def test_default_tables_show_in_system_tables(clickhouse, store):
    clickhouse.execute(store, "CREATE TABLE traces (id String) ENGINE = MergeTree ORDER BY id", "", "default")
    out = clickhouse.execute(store, "SELECT name, engine_full FROM system.tables WHERE database = 'default' "
                                    "FORMAT JSONEachRow", "", "default")
    assert json.loads(out) == {"name": "traces", "engine_full": clickhouse.DEFAULT_ENGINE_FULL}


# --- BACKUP / RESTORE --------------------------------------------------------------------------

@pytest.fixture
def backups(clickhouse, tmp_path):
    """A store whose config allows backups under tmp/backups, with langfuse.traces holding 2 rows."""
    cfg = clickhouse.ServerConfig(backup_paths=[str(tmp_path / "backups") + "/"])
    st = clickhouse.Store(str(tmp_path / "data"), cfg)
    st.create_database("default", True)
    for q, data in [("CREATE DATABASE langfuse", ""),
                    ("CREATE TABLE langfuse.traces (id String) ENGINE = MergeTree ORDER BY id", ""),
                    ("CREATE TABLE langfuse.scores (id String) ENGINE = MergeTree ORDER BY id", ""),
                    ("INSERT INTO langfuse.traces FORMAT JSONEachRow", '{"id":"a"}\n{"id":"b"}')]:
        clickhouse.execute(st, q, data, "default")
    return st


def _count(clickhouse, st):
    return int(clickhouse.execute(st, "SELECT count() FROM langfuse.traces", "", "default"))


@pytest.mark.parametrize("target", ["langfuse.zip", "daily/langfuse"])
def test_backup_restore_round_trip(clickhouse, backups, tmp_path, target):
    run = clickhouse.execute
    out = run(backups, f"BACKUP DATABASE langfuse TO File('{target}')", "", "default")
    backup_id, status = out.rstrip("\n").split("\t")
    assert status == "BACKUP_CREATED" and len(backup_id) == 36
    written = tmp_path / "backups" / target
    if target.endswith(".zip"):
        with zipfile.ZipFile(written) as zf:
            assert {"data/langfuse/traces.jsonl", "data/langfuse/scores.jsonl"} <= set(zf.namelist())
            meta = json.loads(zf.read(clickhouse.BACKUP_META))
        assert stat.S_IMODE(written.stat().st_mode) == 0o640
    else:
        meta = json.loads((written / clickhouse.BACKUP_META).read_text())
        assert stat.S_IMODE((written / "data/langfuse/traces.jsonl").stat().st_mode) == 0o640
    assert {t["name"] for t in meta["tables"]} == {"traces", "scores"}
    run(backups, "DROP DATABASE langfuse SYNC", "", "default")
    out = run(backups, f"RESTORE DATABASE langfuse FROM File('{written}') FORMAT JSONEachRow", "", "default")
    assert json.loads(out)["status"] == "RESTORED"
    assert _count(clickhouse, backups) == 2
    assert run(backups, "SHOW TABLES FROM langfuse", "", "default") == "scores\ntraces\n"


def test_restore_into_empty_tables_and_refusal_of_non_empty(clickhouse, backups):
    run = clickhouse.execute
    run(backups, "BACKUP DATABASE langfuse TO File('b.zip')", "", "default")
    with pytest.raises(clickhouse.CHError) as err:
        run(backups, "RESTORE DATABASE langfuse FROM File('b.zip')", "", "default")
    assert (err.value.code, err.value.name, err.value.status) == (608, "CANNOT_RESTORE_TABLE", 500)
    assert "Cannot restore the table langfuse.traces because it already contains some data" in str(err.value)
    assert _count(clickhouse, backups) == 2  # refused before anything was written
    run(backups, "TRUNCATE TABLE langfuse.traces", "", "default")
    run(backups, "RESTORE DATABASE langfuse FROM File('b.zip')", "", "default")
    assert _count(clickhouse, backups) == 2
    # allow_non_empty_tables appends: the data is mixed, as upstream warns.
    run(backups, "RESTORE DATABASE langfuse FROM File('b.zip') SETTINGS allow_non_empty_tables=true", "",
        "default")
    assert _count(clickhouse, backups) == 4


def test_backup_and_restore_of_one_table(clickhouse, backups):
    run = clickhouse.execute
    run(backups, "BACKUP TABLE langfuse.traces TO File('t.zip')", "", "default")
    run(backups, "DROP TABLE IF EXISTS langfuse.traces SYNC", "", "default")
    assert run(backups, "RESTORE TABLE langfuse.traces FROM File('t.zip')", "", "default").endswith("\tRESTORED\n")
    assert _count(clickhouse, backups) == 2


@pytest.mark.parametrize(("paths", "target", "code", "name"), [
    ([], "x.zip", 318, "INVALID_CONFIG_PARAMETER"),
    (["/srv/backups/"], "/tmp/x.zip", 36, "BAD_ARGUMENTS"),
    (["/srv/backups/"], "../x.zip", 36, "BAD_ARGUMENTS"),
])
def test_backup_path_errors(clickhouse, backups, paths, target, code, name):
    backups.config.backup_paths = paths
    with pytest.raises(clickhouse.CHError) as err:
        clickhouse.execute(backups, f"BACKUP DATABASE langfuse TO File('{target}')", "", "default")
    assert (err.value.code, err.value.name, err.value.status) == (code, name, 400)
    if code == 318:
        assert str(err.value) == ("The 'backups.allowed_path' configuration parameter is not set, cannot use "
                                  "'File' backup engine")
    else:
        assert "is not allowed for backups, see the 'backups.allowed_path' configuration parameter" in str(err.value)


def test_absolute_path_under_a_second_allowed_path_is_accepted(clickhouse, backups, tmp_path):
    backups.config.backup_paths = ["/srv/none/", str(tmp_path / "second")]
    clickhouse.execute(backups, f"BACKUP DATABASE langfuse TO File('{tmp_path}/second/x.zip')", "", "default")
    assert (tmp_path / "second" / "x.zip").is_file()


def test_existing_and_missing_backups(clickhouse, backups):
    run = clickhouse.execute
    run(backups, "BACKUP DATABASE langfuse TO File('once.zip')", "", "default")
    with pytest.raises(clickhouse.CHError) as err:
        run(backups, "BACKUP DATABASE langfuse TO File('once.zip')", "", "default")
    assert (err.value.code, err.value.name) == (598, "BACKUP_ALREADY_EXISTS")
    assert str(err.value) == "Backup File('once.zip') already exists"
    with pytest.raises(clickhouse.CHError) as err:
        run(backups, "RESTORE DATABASE langfuse FROM File('never.zip')", "", "default")
    assert (err.value.code, err.value.name) == (599, "BACKUP_NOT_FOUND")
    with pytest.raises(clickhouse.CHError) as err:
        run(backups, "BACKUP DATABASE langfuse TO Disk('backups', 'x.zip')", "", "default")
    assert err.value.name == "NOT_IMPLEMENTED"


# --- the server process ------------------------------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path, conf):
    env = {**os.environ, "CLICKHOUSE_DOUBLE_HTTP_PORT": str(_free_port()),
           "CLICKHOUSE_DOUBLE_TCP_PORT": str(_free_port()), "CLICKHOUSE_DOUBLE_DATA": str(tmp_path / "data"),
           "CLICKHOUSE_DOUBLE_LOGS": str(tmp_path / "logs"), "CLICKHOUSE_DOUBLE_CONFIG_D": conf}
    return subprocess.Popen([sys.executable, str(PROGRAM)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True), int(env["CLICKHOUSE_DOUBLE_HTTP_PORT"])


def test_server_exits_1_on_a_broken_config_file(tmp_path):
    proc, _ = _start(tmp_path, _config_d(tmp_path, **{"50-bad": "<clickhouse><query_log>"}))
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1 and "50-bad.xml" in out


def test_server_logs_queries_into_query_log(tmp_path):
    proc, port = _start(tmp_path, _config_d(tmp_path, logs=LANGFUSE_LOGS))
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "ping", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        for _ in range(2):
            urllib.request.urlopen(url + "?query=SELECT%201", timeout=5).close()
        with urllib.request.urlopen(url, data=b"SELECT count() FROM system.query_log", timeout=5) as resp:
            assert int(resp.read()) == 2
    finally:
        proc.kill()
        proc.communicate()
