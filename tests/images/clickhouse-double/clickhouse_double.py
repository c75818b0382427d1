"""ClickHouse server TEST DOUBLE for offline tests of the llmops.devbox roles.

Not ClickHouse. It honours what the Langfuse compose stack touches: the HTTP interface on 8123
(/ping, queries with user/password from CLICKHOUSE_USER / CLICKHOUSE_PASSWORD, errors in
ClickHouse's "Code: N. DB::Exception" form), a listener on the native port 9000 (connect only),
data under /var/lib/clickhouse and a log under /var/log/clickhouse-server, both writable by uid
101. SQL is a tiny subset: SELECT 1, SELECT version(), CREATE DATABASE/TABLE, DROP TABLE,
EXISTS TABLE, SHOW TABLES, INSERT ... FORMAT JSONEachRow and
SELECT */count() FROM t [WHERE col = 'v' AND ...] [LIMIT n] [FORMAT JSONEachRow|TabSeparated].
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VERSION = os.environ.get("CLICKHOUSE_DOUBLE_VERSION", "25.12.1.1")
DATA = os.environ.get("CLICKHOUSE_DOUBLE_DATA", "/var/lib/clickhouse")
LOG_DIR = os.environ.get("CLICKHOUSE_DOUBLE_LOGS", "/var/log/clickhouse-server")
NAME = r"`?([A-Za-z_][A-Za-z0-9_]*)`?"
TABLE = rf"(?:{NAME}\.)?{NAME}"

log = logging.getLogger("clickhouse-double")


class CHError(Exception):
    """A ClickHouse exception: code, name and the HTTP status ClickHouse maps it to."""

    def __init__(self, code: int, name: str, message: str, status: int):
        super().__init__(message)
        self.code, self.name, self.status = code, name, status

    def text(self) -> str:
        return f"Code: {self.code}. DB::Exception: {self} ({self.name}) (version {VERSION})\n"


def syntax_error(query: str) -> CHError:
    return CHError(62, "SYNTAX_ERROR", f"Syntax error: the ClickHouse test double does not "
                                       f"understand {query[:120]!r}", 400)


class Store:
    """Tables as JSON-lines files: DATA/data/<database>/<table>.jsonl."""

    def __init__(self, root: str):
        self.root = os.path.join(root, "data")
        self.lock = threading.Lock()

    def _db(self, db: str) -> str:
        return os.path.join(self.root, db)

    def _table(self, db: str, table: str) -> str:
        return os.path.join(self.root, db, table + ".jsonl")

    def create_database(self, db: str, if_not_exists: bool) -> None:
        if os.path.isdir(self._db(db)) and not if_not_exists:
            raise CHError(82, "DATABASE_ALREADY_EXISTS", f"Database {db} already exists", 500)
        os.makedirs(self._db(db), exist_ok=True)

    def need_db(self, db: str) -> None:
        if not os.path.isdir(self._db(db)):
            raise CHError(81, "UNKNOWN_DATABASE", f"Database {db} does not exist", 404)

    def need_table(self, db: str, table: str) -> str:
        self.need_db(db)
        path = self._table(db, table)
        if not os.path.exists(path):
            raise CHError(60, "UNKNOWN_TABLE", f"Table {db}.{table} does not exist", 404)
        return path

    def create_table(self, db: str, table: str, if_not_exists: bool) -> None:
        self.need_db(db)
        path = self._table(db, table)
        if os.path.exists(path):
            if if_not_exists:
                return
            raise CHError(57, "TABLE_ALREADY_EXISTS", f"Table {db}.{table} already exists", 500)
        open(path, "a").close()

    def drop_table(self, db: str, table: str, if_exists: bool) -> None:
        path = self._table(db, table)
        if not os.path.exists(path):
            if if_exists:
                return
            self.need_table(db, table)
        os.remove(path)

    def tables(self, db: str) -> list[str]:
        self.need_db(db)
        return sorted(f[:-6] for f in os.listdir(self._db(db)) if f.endswith(".jsonl"))

    def insert(self, db: str, table: str, rows: list[dict]) -> None:
        path = self.need_table(db, table)
        with self.lock, open(path, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")

    def select(self, db: str, table: str, where: list[tuple[str, str]]) -> list[dict]:
        path = self.need_table(db, table)
        with self.lock, open(path, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        return [r for r in rows if all(str(r.get(col)) == val for col, val in where)]


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_where(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return []
    conds = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.I):
        m = re.fullmatch(rf"{NAME}\s*=\s*'((?:[^'\\]|\\.)*)'", part.strip())
        if not m:
            raise syntax_error(text)
        conds.append((m.group(1), _unquote(m.group(2))))
    return conds


def parse_rows(data: str) -> list[dict]:
    rows = []
    for line in data.splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise CHError(117, "INCORRECT_DATA", f"Cannot parse JSON row {line[:80]!r}",
                              400) from None
    return rows


def bind(query: str, params: dict[str, str]) -> str:
    """Substitute {name:Type} placeholders with quoted values of the param_<name> arguments."""
    def value(m: re.Match) -> str:
        if m.group(1) not in params:
            raise CHError(456, "UNKNOWN_QUERY_PARAMETER",
                          f"Substitution `{m.group(1)}` is not set", 400)
        return "'" + params[m.group(1)].replace("\\", "\\\\").replace("'", "\\'") + "'"
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*):[^}]+\}", value, query)


def execute(store: Store, query: str, data: str, db: str, params: dict | None = None) -> str:
    """Run one statement of the supported subset and return the response body."""
    q = bind(query, params or {}).strip().rstrip(";").strip()
    if ";" in re.sub(r"'(?:[^'\\]|\\.)*'", "", q.split("FORMAT JSONEachRow")[0]):
        raise CHError(62, "SYNTAX_ERROR", "Multi-statements are not allowed", 400)
    m = re.match(r"(?is)^INSERT\s+INTO\s+" + TABLE + r"(?:\s*\([^)]*\))?\s+FORMAT\s+JSONEachRow"
                 r"\s*(.*)$", q)
    if m:
        store.insert(m.group(1) or db, m.group(2), parse_rows((m.group(3) or "") + "\n" + data))
        return ""
    fmt = "TabSeparated"
    m = re.match(r"(?is)^(.*?)\s+FORMAT\s+(\w+)$", q)
    if m:
        q, fmt = m.group(1).strip(), m.group(2)
    if fmt not in ("TabSeparated", "TSV", "JSONEachRow"):
        raise CHError(73, "UNKNOWN_FORMAT", f"Unknown format {fmt} (the double knows "
                                            "JSONEachRow and TabSeparated)", 400)
    if re.fullmatch(r"(?i)SELECT\s+1", q):
        return '{"1":1}\n' if fmt == "JSONEachRow" else "1\n"
    if re.fullmatch(r"(?i)SELECT\s+version\(\)", q):
        return json.dumps({"version()": VERSION}) + "\n" if fmt == "JSONEachRow" else VERSION + "\n"
    m = re.fullmatch(r"(?is)CREATE\s+DATABASE\s+(IF\s+NOT\s+EXISTS\s+)?" + NAME + r".*", q)
    if m:
        store.create_database(m.group(2), bool(m.group(1)))
        return ""
    m = re.fullmatch(r"(?is)CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?" + TABLE + r"\b.*", q)
    if m:
        store.create_table(m.group(2) or db, m.group(3), bool(m.group(1)))
        return ""
    m = re.fullmatch(r"(?is)DROP\s+TABLE\s+(IF\s+EXISTS\s+)?" + TABLE, q)
    if m:
        store.drop_table(m.group(2) or db, m.group(3), bool(m.group(1)))
        return ""
    m = re.fullmatch(r"(?is)EXISTS\s+(?:TABLE\s+)?" + TABLE, q)
    if m:
        name = m.group(2)
        return "1\n" if name in store.tables(m.group(1) or db) else "0\n"
    if re.fullmatch(r"(?i)SHOW\s+TABLES", q):
        return "".join(t + "\n" for t in store.tables(db))
    m = re.fullmatch(r"(?is)SELECT\s+(\*|count\(\))\s+FROM\s+" + TABLE +
                     r"(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?", q)
    if m:
        rows = store.select(m.group(2) or db, m.group(3), parse_where(m.group(4)))
        if m.group(5):
            rows = rows[: int(m.group(5))]
        if m.group(1) != "*":
            return json.dumps({"count()": len(rows)}) + "\n" if fmt == "JSONEachRow" \
                else f"{len(rows)}\n"
        if fmt == "JSONEachRow":
            return "".join(json.dumps(r) + "\n" for r in rows)
        return "".join("\t".join(str(v) for v in r.values()) + "\n" for r in rows)
    raise syntax_error(q)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: Store
    user: str
    password: str
    database: str

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.address_string(), fmt % args)

    def reply(self, status: int, body: str, headers: dict | None = None):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.handle_query(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.handle_query(self.rfile.read(length) if length else b"")

    def credentials(self, params: dict) -> tuple[str, str]:
        user = self.headers.get("X-ClickHouse-User") or params.get("user", [""])[0]
        key = self.headers.get("X-ClickHouse-Key") or params.get("password", [""])[0]
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
        return user or "default", key

    def handle_query(self, body: bytes):
        parts = urlsplit(self.path)
        params = parse_qs(parts.query, keep_blank_values=True)
        if parts.path in ("/ping", "/") and "query" not in params and not body:
            return self.reply(200, "Ok.\n")
        if parts.path not in ("/", ""):
            return self.reply(404, "There is no handle " + parts.path + "\n")
        user, key = self.credentials(params)
        if user != self.user or key != self.password:
            err = CHError(516, "AUTHENTICATION_FAILED", f"{user}: Authentication failed: password "
                                                        "is incorrect, or there is no user with "
                                                        "such name", 403)
            log.warning("authentication failed for user %s", user)
            return self.reply(err.status, err.text(), {"X-ClickHouse-Exception-Code": "516"})
        db = self.headers.get("X-ClickHouse-Database") or params.get("database", [""])[0] \
            or self.database
        text = body.decode("utf-8", errors="replace")
        if "query" in params:
            query, data = params["query"][0], text
        else:
            query, _, data = text.partition("\n") if re.match(r"(?is)^\s*INSERT", text) \
                else (text, "", "")
        try:
            values = {k[6:]: v[0] for k, v in params.items() if k.startswith("param_")}
            out = execute(self.store, query, data, db, values)
        except CHError as err:
            log.warning("query failed: %s", err)
            return self.reply(err.status, err.text(),
                              {"X-ClickHouse-Exception-Code": str(err.code)})
        return self.reply(200, out, {"X-ClickHouse-Format": "TabSeparated"})


def native_port(port: int) -> None:
    """Accept connections on the native protocol port; nothing is spoken there."""
    srv = socket.create_server(("0.0.0.0", port), reuse_port=False)
    while True:
        conn, _ = srv.accept()
        conn.close()


def main() -> int:
    handlers = [logging.StreamHandler(sys.stdout)]
    try:
        os.makedirs(LOG_DIR, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(LOG_DIR, "clickhouse-server.log")))
    except OSError as exc:
        print(f"Cannot open log file in {LOG_DIR}: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("ClickHouse TEST DOUBLE %s (not the real ClickHouse server)", VERSION)
    store = Store(DATA)
    database = os.environ.get("CLICKHOUSE_DB") or "default"
    try:
        # Like the real server: an unwritable data directory stops it at start.
        store.create_database("default", True)
        store.create_database(database, True)
        probe = os.path.join(DATA, ".writable")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as exc:
        log.error("Cannot write to %s (uid %d): %s", DATA, os.getuid(), exc)
        return 1
    attrs = {"store": store, "user": os.environ.get("CLICKHOUSE_USER") or "default",
             "password": os.environ.get("CLICKHOUSE_PASSWORD", ""), "database": database}
    threading.Thread(target=native_port, args=(int(os.environ.get("CLICKHOUSE_DOUBLE_TCP_PORT",
                                                                  "9000")),),
                     daemon=True).start()
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("CLICKHOUSE_DOUBLE_HTTP_PORT",
                                                                 "8123"))),
                                 type("H", (Handler,), attrs))
    server.daemon_threads = True
    # PID 1 in the container: exit on `docker stop` instead of waiting for SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("listening: HTTP 8123, native 9000; user %s, database %s", attrs["user"], database)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
