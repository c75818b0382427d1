"""The ClickHouse double's SQL subset, as the Langfuse double and health checks use it."""

import pytest


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
