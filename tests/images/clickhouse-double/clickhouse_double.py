"""ClickHouse server TEST DOUBLE for offline tests of the llmops.devbox roles.

Not ClickHouse. It honours what the Langfuse compose stack touches: the HTTP interface on 8123
(/ping, queries with user/password from CLICKHOUSE_USER / CLICKHOUSE_PASSWORD, errors in
ClickHouse's "Code: N. DB::Exception" form), a listener on the native port 9000 (connect only),
data under /var/lib/clickhouse and a log under /var/log/clickhouse-server, both writable by uid
101. SQL is a tiny subset: SELECT 1, SELECT version(), CREATE DATABASE/TABLE, DROP TABLE/DATABASE,
TRUNCATE, EXISTS TABLE, SHOW TABLES [FROM db], INSERT ... FORMAT JSONEachRow,
SELECT */count() FROM t [WHERE col = 'v' | col IN (...) AND ...] [LIMIT n] [FORMAT ...],
SELECT name, engine_full FROM system.tables, ALTER TABLE t MODIFY TTL | REMOVE TTL, and
BACKUP / RESTORE to and from File(...) (a directory, or a .zip archive).

Server config: every *.xml in /etc/clickhouse-server/config.d/ is read at start, in name order
and merged like ClickHouse merges config files (same-named elements merge, `remove` drops one,
`replace` swaps it). A broken file stops the server at start, as it stops ClickHouse. Of the
result the double uses backups.allowed_path and the system log sections (query_log, trace_log,
...): a log not removed gets its table in the `system` database at start, with the engine_full
ClickHouse shows (TTL normalised to toIntervalDay(n) etc.); an existing table keeps its
engine_full across restarts, like ClickHouse, which applies <ttl> only when it creates the table.
"""

from __future__ import annotations

import base64
import glob
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
import zipfile
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VERSION = os.environ.get("CLICKHOUSE_DOUBLE_VERSION", "25.12.1.1")
DATA = os.environ.get("CLICKHOUSE_DOUBLE_DATA", "/var/lib/clickhouse")
LOG_DIR = os.environ.get("CLICKHOUSE_DOUBLE_LOGS", "/var/log/clickhouse-server")
CONFIG_D = os.environ.get("CLICKHOUSE_DOUBLE_CONFIG_D", "/etc/clickhouse-server/config.d")
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

    def line(self) -> str:
        """The form the server log shows."""
        return f"Code: {self.code}. DB::Exception: {self}. ({self.name})"


def syntax_error(query: str) -> CHError:
    return CHError(62, "SYNTAX_ERROR", f"Syntax error: the ClickHouse test double does not "
                                       f"understand {query[:120]!r}", 400)


# --- server config (config.d) -----------------------------------------------------------------

SYSTEM_LOGS = ("query_log", "part_log", "trace_log", "text_log", "metric_log",
               "asynchronous_metric_log", "opentelemetry_span_log", "latency_log", "error_log",
               "processors_profile_log")
# The stock config.xml already gives these a <partition_by>, so an <engine> added to one of them
# in config.d conflicts with it (contract clickhouse: facts.system_log_ttl).
STOCK_PARTITION_BY = ("query_log", "trace_log", "part_log")
DEFAULT_ENGINE_FULL = "MergeTree ORDER BY tuple() SETTINGS index_granularity = 8192"
ENGINE_WITH_PARTITION_BY = ("If 'engine' is specified for system table, PARTITION BY parameters "
                            "should be specified directly inside 'engine' and 'partition_by' "
                            "setting doesn't make sense")
ENGINE_WITH_TTL = ("If 'engine' is specified for system table, TTL parameters should be "
                   "specified directly inside 'engine' and 'ttl' setting doesn't make sense")


class ConfigError(Exception):
    """A config.d problem that stops the server at start."""


class LogSpec:
    """One system log section after the merge."""

    def __init__(self, removed: bool = False, ttl: str | None = None,
                 partition_by: str | None = None, engine: str | None = None):
        self.removed, self.ttl, self.partition_by, self.engine = removed, ttl, partition_by, engine


class ServerConfig:
    """What the double uses of the merged config (plain class: the unit tests load this file
    without registering it as a module, which dataclasses need)."""

    def __init__(self, backup_paths: list[str] | None = None,
                 logs: dict[str, LogSpec] | None = None):
        self.backup_paths = backup_paths or []
        self.logs = {n: LogSpec() for n in SYSTEM_LOGS} if logs is None else logs


def _stock_config() -> ET.Element:
    """What the double assumes of the image's config.xml: every known log, three partitioned."""
    root = ET.Element("clickhouse")
    for name in SYSTEM_LOGS:
        log_el = ET.SubElement(root, name)
        if name in STOCK_PARTITION_BY:
            ET.SubElement(log_el, "partition_by").text = "toYYYYMM(event_date)"
    return root


def _merge(base: ET.Element, other: ET.Element) -> None:
    """ClickHouse's merge of a config.d file: a child merges into the first not yet merged
    same-named child; `remove` drops it, `replace` swaps it; anything else is appended."""
    used: set[int] = set()
    for child in other:
        if not isinstance(child.tag, str):  # comments, processing instructions
            continue
        match = next((c for c in base if c.tag == child.tag and id(c) not in used), None)
        if "remove" in child.attrib:
            if match is not None:
                base.remove(match)
            continue
        if match is None or "replace" in child.attrib:
            copy = ET.fromstring(ET.tostring(child))  # noqa: S314 - our own serialisation
            copy.attrib.pop("replace", None)
            if match is not None:
                base[list(base).index(match)] = copy
            else:
                base.append(copy)
            used.add(id(copy))
            continue
        used.add(id(match))
        if (child.text or "").strip() or len(child) == 0:
            match.text = child.text
        match.attrib.update(child.attrib)
        _merge(match, child)


def load_config(config_dir: str | None) -> ServerConfig:
    """Read config_dir/*.xml in name order; ConfigError names what would stop ClickHouse."""
    root = _stock_config()
    paths = sorted(glob.glob(os.path.join(config_dir, "*.xml"))) if config_dir else []
    for path in paths:
        try:
            # Config files are the deployment's own; expat refuses entity expansion bombs.
            doc = ET.parse(path).getroot()  # noqa: S314
        except (ET.ParseError, OSError) as exc:
            raise ConfigError(f"Cannot load config file {path}: {exc}") from None
        # ClickHouse still accepts the old root name <yandex>.
        if doc.tag not in ("clickhouse", "yandex"):
            raise ConfigError(f"Root element of config file {path} is <{doc.tag}>, it must be "
                              "<clickhouse>")
        _merge(root, doc)
    config = ServerConfig(logs={})
    config.backup_paths = [e.text.strip() for e in root.findall("backups/allowed_path")
                           if e.text and e.text.strip()]
    for name in SYSTEM_LOGS:
        el = root.find(name)
        if el is None:
            config.logs[name] = LogSpec(removed=True)
            continue

        def text(tag: str, el=el) -> str | None:
            found = el.find(tag)
            return None if found is None else " ".join((found.text or "").split())
        spec = LogSpec(ttl=text("ttl") or None, partition_by=text("partition_by"),
                       engine=text("engine") or None)
        # Same order of checks as ClickHouse's getEngineDefinitionFromConfig.
        if el.find("engine") is not None and el.find("partition_by") is not None:
            raise ConfigError(CHError(36, "BAD_ARGUMENTS", ENGINE_WITH_PARTITION_BY, 400).line()
                              + f" [<{name}>]")
        if el.find("engine") is not None and el.find("ttl") is not None:
            raise ConfigError(CHError(36, "BAD_ARGUMENTS", ENGINE_WITH_TTL, 400).line()
                              + f" [<{name}>]")
        config.logs[name] = spec
    return config


INTERVAL = re.compile(r"(?i)INTERVAL\s+(\d+)\s+(SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|QUARTER|YEAR)S?\b")


def normalise_ttl(expr: str) -> str:
    """A TTL as system.tables.engine_full shows it: INTERVAL 30 DAY -> toIntervalDay(30), the
    default DELETE action left out."""
    out = INTERVAL.sub(lambda m: f"toInterval{m.group(2).capitalize()}({m.group(1)})",
                       " ".join(expr.split()))
    return re.sub(r"(?i)\s+DELETE\b", "", out)


def with_ttl(engine_full: str, ttl: str) -> str:
    """engine_full with its TTL clause set (placed before SETTINGS, where ClickHouse shows it)."""
    head, sep, settings = engine_full.partition(" SETTINGS ")
    head = re.sub(r" TTL .*$", "", head)
    return f"{head} TTL {normalise_ttl(ttl)}{sep}{settings}"


def log_engine_full(spec: LogSpec) -> str:
    if spec.engine:
        return normalise_ttl(re.sub(r"(?i)^\s*ENGINE\s*=\s*", "", spec.engine))
    parts = ["MergeTree"]
    partition_by = "toYYYYMM(event_date)" if spec.partition_by is None else spec.partition_by
    if partition_by:
        parts.append(f"PARTITION BY {partition_by}")
    parts.append("ORDER BY (event_date, event_time)")
    if spec.ttl:
        parts.append(f"TTL {normalise_ttl(spec.ttl)}")
    parts.append("SETTINGS index_granularity = 8192")
    return " ".join(parts)


class Store:
    """Tables as JSON-lines files: DATA/data/<database>/<table>.jsonl, and next to a table whose
    engine_full is not the default a <table>.meta.json sidecar holding it."""

    def __init__(self, root: str, config: ServerConfig | None = None):
        self.base = root
        self.root = os.path.join(root, "data")
        self.config = config or ServerConfig()
        self.lock = threading.Lock()

    def _db(self, db: str) -> str:
        return os.path.join(self.root, db)

    def _table(self, db: str, table: str) -> str:
        return os.path.join(self.root, db, table + ".jsonl")

    def _meta(self, db: str, table: str) -> str:
        return os.path.join(self.root, db, table + ".meta.json")

    def create_database(self, db: str, if_not_exists: bool) -> None:
        if os.path.isdir(self._db(db)) and not if_not_exists:
            raise CHError(82, "DATABASE_ALREADY_EXISTS", f"Database {db} already exists", 500)
        os.makedirs(self._db(db), exist_ok=True)

    def drop_database(self, db: str, if_exists: bool) -> None:
        if not os.path.isdir(self._db(db)):
            if if_exists:
                return
            self.need_db(db)
        shutil.rmtree(self._db(db))

    def databases(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        return sorted(d for d in os.listdir(self.root) if os.path.isdir(self._db(d)))

    def need_db(self, db: str) -> None:
        if not os.path.isdir(self._db(db)):
            raise CHError(81, "UNKNOWN_DATABASE", f"Database {db} does not exist", 404)

    def need_table(self, db: str, table: str) -> str:
        self.need_db(db)
        path = self._table(db, table)
        if not os.path.exists(path):
            raise CHError(60, "UNKNOWN_TABLE", f"Table {db}.{table} does not exist", 404)
        return path

    def exists(self, db: str, table: str) -> bool:
        return os.path.exists(self._table(db, table))

    def create_table(self, db: str, table: str, if_not_exists: bool,
                     engine_full: str | None = None) -> None:
        self.need_db(db)
        path = self._table(db, table)
        if os.path.exists(path):
            if if_not_exists:
                return
            raise CHError(57, "TABLE_ALREADY_EXISTS", f"Table {db}.{table} already exists", 500)
        open(path, "a").close()
        if engine_full and engine_full != DEFAULT_ENGINE_FULL:
            self.set_engine_full(db, table, engine_full)

    def drop_table(self, db: str, table: str, if_exists: bool) -> None:
        path = self._table(db, table)
        if not os.path.exists(path):
            if if_exists:
                return
            self.need_table(db, table)
        os.remove(path)
        if os.path.exists(self._meta(db, table)):
            os.remove(self._meta(db, table))

    def truncate(self, db: str, table: str) -> None:
        path = self.need_table(db, table)
        with self.lock:
            open(path, "w").close()

    def engine_full(self, db: str, table: str) -> str:
        try:
            with open(self._meta(db, table), encoding="utf-8") as fh:
                return json.load(fh)["engine_full"]
        except (OSError, ValueError, KeyError):
            return DEFAULT_ENGINE_FULL

    def set_engine_full(self, db: str, table: str, engine_full: str) -> None:
        with open(self._meta(db, table), "w", encoding="utf-8") as fh:
            json.dump({"engine_full": engine_full}, fh)

    def tables(self, db: str) -> list[str]:
        self.need_db(db)
        return sorted(f[:-6] for f in os.listdir(self._db(db)) if f.endswith(".jsonl"))

    def insert(self, db: str, table: str, rows: list[dict]) -> None:
        path = self.need_table(db, table)
        with self.lock, open(path, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")

    def raw(self, db: str, table: str) -> str:
        path = self.need_table(db, table)
        with self.lock, open(path, encoding="utf-8") as fh:
            return fh.read()

    def select(self, db: str, table: str, where: list[tuple[str, tuple[str, ...]]]) -> list[dict]:
        rows = [json.loads(line) for line in self.raw(db, table).splitlines() if line.strip()]
        return [r for r in rows if all(str(r.get(col)) in vals for col, vals in where)]


def init_system_logs(store: Store) -> None:
    """At start: create the table of every system log not removed, once. An existing table keeps
    its engine_full, as ClickHouse applies a changed <ttl> only to a table it creates."""
    store.create_database("system", True)
    for name, spec in store.config.logs.items():
        if spec.removed:
            continue
        if not store.exists("system", name):
            store.create_table("system", name, True)
        if not os.path.exists(store._meta("system", name)):
            store.set_engine_full("system", name, log_engine_full(spec))


def record_query(store: Store, query: str, failed: bool) -> None:
    """One system.query_log row per query, so a TTL or TRUNCATE has something to bound."""
    spec = store.config.logs.get("query_log")
    if spec is None or spec.removed or not store.exists("system", "query_log"):
        return
    now = datetime.now(timezone.utc)
    row = {"type": "ExceptionWhileProcessing" if failed else "QueryFinish",
           "event_date": now.strftime("%Y-%m-%d"), "event_time": now.strftime("%Y-%m-%d %H:%M:%S"),
           "query": query}
    try:
        store.insert("system", "query_log", [row])
    except (CHError, OSError) as exc:
        log.debug("query_log not written: %s", exc)


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


STRING = r"'((?:[^'\\]|\\.)*)'"


def parse_where(text: str | None) -> list[tuple[str, tuple[str, ...]]]:
    """`col = 'v'` and `col IN ('a', 'b')` joined by AND, as (column, accepted values)."""
    if not text:
        return []
    conds = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.I):
        m = re.fullmatch(rf"{NAME}\s*=\s*{STRING}", part.strip())
        if m:
            conds.append((m.group(1), (_unquote(m.group(2)),)))
            continue
        m = re.fullmatch(rf"{NAME}\s+IN\s*\(\s*({STRING}(?:\s*,\s*{STRING})*)\s*\)", part.strip(),
                         flags=re.I)
        if not m:
            raise syntax_error(text)
        conds.append((m.group(1), tuple(_unquote(v) for v in re.findall(STRING, m.group(2)))))
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


# --- BACKUP / RESTORE (File engine) ----------------------------------------------------------

BACKUP_META = ".backup.json"


def parse_settings(text: str | None) -> dict[str, str]:
    settings = {}
    for item in re.split(r"\s*,\s*", (text or "").strip()):
        if item:
            key, _, value = item.partition("=")
            settings[key.strip().lower()] = value.strip().strip("'").lower()
    return settings


def _true(value: str | None) -> bool:
    return value in ("1", "true")


def backup_path(cfg: ServerConfig, data_dir: str, path: str) -> str:
    """Where File(path) points, checked against backups.allowed_path as ClickHouse checks it: a
    relative path lies under the first allowed path, any path must lie under one of them."""
    if not path:
        raise CHError(36, "BAD_ARGUMENTS", "Path to backup must not be empty", 400)
    if not cfg.backup_paths:
        raise CHError(318, "INVALID_CONFIG_PARAMETER", "The 'backups.allowed_path' configuration "
                      "parameter is not set, cannot use 'File' backup engine", 400)
    allowed = [os.path.normpath(os.path.join(data_dir, a)) for a in cfg.backup_paths]
    full = os.path.normpath(os.path.join(allowed[0], path))
    if not any(full == a or full.startswith(a.rstrip("/") + "/") for a in allowed):
        raise CHError(36, "BAD_ARGUMENTS", f"Path '{full}' is not allowed for backups, see the "
                      "'backups.allowed_path' configuration parameter", 400)
    return full


def write_backup(store: Store, dest: str, name: str, databases: list[str],
                 tables: list[tuple[str, str]]) -> str:
    """Write the tables' rows and a metadata file to a directory, or a zip when dest ends in .zip.
    Files are 0640 and directories 0750: whoever shares the server's group can read them."""
    # Like ClickHouse: a directory backup exists once its metadata file does.
    if os.path.exists(dest if dest.endswith(".zip") else os.path.join(dest, BACKUP_META)):
        raise CHError(598, "BACKUP_ALREADY_EXISTS", f"Backup {name} already exists", 500)
    backup_id = str(uuid.uuid4())
    meta = {"uuid": backup_id, "created": datetime.now(timezone.utc).isoformat(),
            "databases": databases, "tables": [
        {"database": db, "name": t, "engine_full": store.engine_full(db, t)} for db, t in tables]}
    files = {BACKUP_META: json.dumps(meta, indent=1)}
    files.update({f"data/{db}/{t}.jsonl": store.raw(db, t) for db, t in tables})
    os.makedirs(os.path.dirname(dest), mode=0o750, exist_ok=True)
    if dest.endswith(".zip"):
        tmp = f"{dest}.{backup_id}.tmp"
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for arcname, text in files.items():
                zf.writestr(arcname, text)
        os.chmod(tmp, 0o640)
        os.replace(tmp, dest)
        return backup_id
    for rel, text in files.items():
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), mode=0o750, exist_ok=True)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(target, 0o640)
    for dirpath, _dirs, _files in os.walk(dest):
        os.chmod(dirpath, 0o750)  # noqa: S103 - the group reads backups (see above)
    return backup_id


def read_backup(src: str, name: str) -> tuple[dict, dict[str, str]]:
    """(metadata, {"data/<db>/<table>.jsonl": rows}) of a backup written by write_backup."""
    try:
        if zipfile.is_zipfile(src):
            with zipfile.ZipFile(src) as zf:
                files = {n: zf.read(n).decode("utf-8") for n in zf.namelist()}
        elif os.path.isfile(os.path.join(src, BACKUP_META)):
            files = {}
            for dirpath, _dirs, names in os.walk(src):
                for n in names:
                    full = os.path.join(dirpath, n)
                    with open(full, encoding="utf-8") as fh:
                        files[os.path.relpath(full, src).replace(os.sep, "/")] = fh.read()
        else:
            files = {}
        meta = json.loads(files.pop(BACKUP_META))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        raise CHError(599, "BACKUP_NOT_FOUND", f"Backup {name} not found", 500) from None
    return meta, files


def restore(store: Store, src: str, name: str, db: str, table: str | None,
            settings: dict[str, str]) -> str:
    meta, files = read_backup(src, name)
    entries = [e for e in meta["tables"] if e["database"] == db
               and (table is None or e["name"] == table)]
    if db not in meta.get("databases", []) or (table and not entries):
        what = f"Table {db}.{table}" if table else f"Database {db}"
        raise CHError(60 if table else 81, "UNKNOWN_TABLE" if table else "UNKNOWN_DATABASE",
                      f"{what} was not found in backup {name}", 404)
    structure_only = _true(settings.get("structure_only"))
    # Checked for every table before any is written, so a refused restore changes nothing.
    if not structure_only and not _true(settings.get("allow_non_empty_tables")):
        for e in entries:
            if store.exists(db, e["name"]) and store.raw(db, e["name"]).strip():
                raise CHError(608, "CANNOT_RESTORE_TABLE", f"Cannot restore the table {db}.{e['name']} "
                              "because it already contains some data. You can set structure_only=true "
                              "or allow_non_empty_tables=true to overcome that in the way you want", 500)
    store.create_database(db, True)
    for e in entries:
        store.create_table(db, e["name"], True, e.get("engine_full"))
        if not structure_only:
            store.insert(db, e["name"], parse_rows(files.get(f"data/{db}/{e['name']}.jsonl", "")))
    return str(uuid.uuid4())


def backup_statement(store: Store, cfg: ServerConfig, q: str, db: str) -> tuple[str, str] | None:
    """BACKUP/RESTORE DATABASE db | TABLE [db.]t TO/FROM File('path') [SETTINGS ...]:
    (operation id, status) or None when q is neither."""
    m = re.fullmatch(r"(?is)(BACKUP|RESTORE)\s+(DATABASE|TABLE)\s+" + TABLE +
                     r"\s+(TO|FROM)\s+(\w+)\s*\(([^()]*)\)(?:\s+SETTINGS\s+(.+))?", q)
    if not m:
        return None
    op, kind, first, second, direction, engine, args, settings = m.groups()
    args = re.findall(STRING, args)
    if (op.upper() == "BACKUP") != (direction.upper() == "TO"):
        raise syntax_error(q)
    if kind.upper() == "DATABASE":
        if first:
            raise syntax_error(q)
        database, table = second, None
    else:
        database, table = first or db, second
    name = f"{engine}({', '.join(repr(a) for a in args)})"
    if engine != "File":
        raise CHError(48, "NOT_IMPLEMENTED", "The ClickHouse test double supports only the File "
                      f"backup engine, not {engine}", 501)
    if len(args) != 1:
        raise syntax_error(q)
    target = backup_path(cfg, store.base, _unquote(args[0]))
    if op.upper() == "BACKUP":
        if table:
            store.need_table(database, table)
            tables = [(database, table)]
        else:
            tables = [(database, t) for t in store.tables(database)]
        return write_backup(store, target, name, [database], tables), "BACKUP_CREATED"
    return restore(store, target, name, database, table, parse_settings(settings)), "RESTORED"


def system_tables(store: Store, columns: list[str], where: list) -> list[dict]:
    known = ("database", "name", "engine", "engine_full")
    for col in columns + [c for c, _ in where]:
        if col not in known:
            raise CHError(47, "UNKNOWN_IDENTIFIER", f"Missing columns: '{col}' (the double's "
                          f"system.tables has {', '.join(known)})", 400)
    rows = []
    for database in store.databases():
        for name in store.tables(database):
            full = store.engine_full(database, name)
            row = {"database": database, "name": name, "engine": full.split(" ")[0],
                   "engine_full": full}
            if all(row[c] in vals for c, vals in where):
                rows.append({c: row[c] for c in columns})
    return rows


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "JSONEachRow":
        return "".join(json.dumps(r) + "\n" for r in rows)
    return "".join("\t".join(str(v) for v in r.values()) + "\n" for r in rows)


def execute(store: Store, query: str, data: str, db: str, params: dict | None = None,
            config: ServerConfig | None = None) -> str:
    """Run one statement of the supported subset and return the response body. `config`
    defaults to the store's (config.d as read at start)."""
    cfg = config or store.config
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
    m = re.fullmatch(r"(?is)DROP\s+TABLE\s+(IF\s+EXISTS\s+)?" + TABLE + r"(?:\s+SYNC)?", q)
    if m:
        store.drop_table(m.group(2) or db, m.group(3), bool(m.group(1)))
        return ""
    m = re.fullmatch(r"(?is)DROP\s+DATABASE\s+(IF\s+EXISTS\s+)?" + NAME + r"(?:\s+SYNC)?", q)
    if m:
        store.drop_database(m.group(2), bool(m.group(1)))
        return ""
    m = re.fullmatch(r"(?is)TRUNCATE\s+(?:TABLE\s+)?(IF\s+EXISTS\s+)?" + TABLE +
                     r"(?:\s+SETTINGS\s+.+)?", q)
    if m:
        if m.group(1) and not store.exists(m.group(2) or db, m.group(3)):
            return ""
        store.truncate(m.group(2) or db, m.group(3))
        return ""
    m = re.fullmatch(r"(?is)ALTER\s+TABLE\s+" + TABLE + r"\s+MODIFY\s+TTL\s+(.+?)"
                     r"(?:\s+SETTINGS\s+[^']+)?", q)
    if m:
        database, table = m.group(1) or db, m.group(2)
        store.need_table(database, table)
        store.set_engine_full(database, table, with_ttl(store.engine_full(database, table),
                                                        m.group(3)))
        return ""
    m = re.fullmatch(r"(?is)ALTER\s+TABLE\s+" + TABLE + r"\s+REMOVE\s+TTL(?:\s+SETTINGS\s+.+)?", q)
    if m:
        database, table = m.group(1) or db, m.group(2)
        store.need_table(database, table)
        head, sep, settings = store.engine_full(database, table).partition(" SETTINGS ")
        store.set_engine_full(database, table, re.sub(r" TTL .*$", "", head) + sep + settings)
        return ""
    m = re.fullmatch(r"(?is)EXISTS\s+(?:TABLE\s+)?" + TABLE, q)
    if m:
        name = m.group(2)
        return "1\n" if name in store.tables(m.group(1) or db) else "0\n"
    m = re.fullmatch(r"(?is)SHOW\s+TABLES(?:\s+(?:FROM|IN)\s+" + NAME + ")?", q)
    if m:
        return "".join(t + "\n" for t in store.tables(m.group(1) or db))
    m = re.fullmatch(r"(?is)SELECT\s+(.+?)\s+FROM\s+system\.tables(?:\s+WHERE\s+(.+?))?"
                     r"(?:\s+ORDER\s+BY\s+(?:database\s*,\s*)?name(?:\s+ASC)?)?", q)
    if m:
        columns = [c.strip().strip("`") for c in m.group(1).split(",")]
        return render(system_tables(store, columns, parse_where(m.group(2))), fmt)
    if re.fullmatch(r"(?i)SYSTEM\s+FLUSH\s+LOGS", q):
        return ""  # rows are written at once; nothing is buffered
    done = backup_statement(store, cfg, q, db)
    if done:
        backup_id, status = done
        return json.dumps({"id": backup_id, "status": status}) + "\n" if fmt == "JSONEachRow" \
            else f"{backup_id}\t{status}\n"
    m = re.fullmatch(r"(?is)SELECT\s+(\*|count\(\))\s+FROM\s+" + TABLE +
                     r"(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?", q)
    if m:
        rows = store.select(m.group(2) or db, m.group(3), parse_where(m.group(4)))
        if m.group(5):
            rows = rows[: int(m.group(5))]
        if m.group(1) != "*":
            return json.dumps({"count()": len(rows)}) + "\n" if fmt == "JSONEachRow" \
                else f"{len(rows)}\n"
        return render(rows, fmt)
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
            record_query(self.store, query, failed=True)
            return self.reply(err.status, err.text(),
                              {"X-ClickHouse-Exception-Code": str(err.code)})
        record_query(self.store, query, failed=False)
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
    config_d = CONFIG_D
    try:
        # Like the real server: a config.d file it cannot use stops it at start.
        config = load_config(config_d)
    except ConfigError as exc:
        log.error("%s", exc)
        return 1
    log.info("config.d %s: backups.allowed_path %s; system logs %s", config_d,
             config.backup_paths or "not set",
             ", ".join(n for n, spec in config.logs.items() if not spec.removed) or "none")
    store = Store(DATA, config)
    database = os.environ.get("CLICKHOUSE_DB") or "default"
    try:
        # Like the real server: an unwritable data directory stops it at start.
        store.create_database("default", True)
        store.create_database(database, True)
        init_system_logs(store)
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
