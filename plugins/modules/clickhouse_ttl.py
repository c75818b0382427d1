#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: clickhouse_ttl
short_description: Keep TTLs on ClickHouse tables of the Langfuse stack, and empty disabled system logs
version_added: 0.9.0
description:
  - Sets (C(ALTER TABLE ... MODIFY TTL)) or removes (C(REMOVE TTL)) the TTL of tables in the clickhouse
    container of the Langfuse Compose project, only where the table's current TTL
    (C(system.tables.engine_full)) differs, so a rerun changes nothing.
  - This is how an existing install gets bounded. ClickHouse applies the C(<ttl>) of a system log from
    its config only when it creates that table (Langfuse's self-hosting docs, scaling, ClickHouse system
    log tables), so tables created before the role's C(config.d) file keep growing until altered.
  - O(empty) lists system log tables the config now disables (C(remove="1")); ClickHouse stops writing
    them but keeps what they hold; the ones with rows are truncated, as upstream's docs advise.
  - Tables that do not exist are left alone (a log ClickHouse has not written yet gets its TTL from the
    config when created).
  - The statements run over ClickHouse's HTTP interface inside the container, as the user and password
    of its environment; no secret passes through this module.
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_stack
options:
  ttl:
    description:
      - Table (C(database.table)) to TTL expression, as in C(ALTER TABLE ... MODIFY TTL <expression>), for
        example V(event_date + INTERVAL 30 DAY DELETE). An empty expression removes the table's TTL.
    type: dict
    default: {}
  empty:
    description: System log tables (C(system.<name>)) to truncate when they hold rows.
    type: list
    elements: str
    default: []
notes:
  - Check mode reports what would change.
"""

EXAMPLES = r"""
- name: Bound ClickHouse's query log on an existing install
  llmops.devbox.clickhouse_ttl:
    project_dir: /opt/langfuse
    ttl:
      system.query_log: event_date + INTERVAL 30 DAY DELETE
    empty: [system.trace_log, system.text_log]
"""

RETURN = r"""
statements:
  description: The statements run (or, in check mode, that would run).
  returned: always
  type: list
  elements: str
tables:
  description: Each table's TTL clause as ClickHouse reports it after the run (C(null) when it has none).
  returned: success
  type: dict
"""

import json  # noqa: E402
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._stack import PROJECT_DIR_ARG, Stack, StackError, sql_string  # noqa: E402

_TABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$")
_UNITS = {"SECOND": "Second", "MINUTE": "Minute", "HOUR": "Hour", "DAY": "Day", "WEEK": "Week",
          "MONTH": "Month", "QUARTER": "Quarter", "YEAR": "Year"}


def normalise(expression):
    """A TTL expression as ClickHouse prints it in engine_full: INTERVAL n DAY -> toIntervalDay(n), the
    default action DELETE left out, spaces collapsed."""
    text = re.sub(r"\s*([+\-*/])\s*", r" \1 ", str(expression or ""))
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"(?i)\s+DELETE$", "", text)
    return re.sub(r"(?i)INTERVAL\s+(\d+)\s+(" + "|".join(_UNITS) + r")S?\b",
                  lambda m: f"toInterval{_UNITS[m.group(2).upper()]}({m.group(1)})", text)


def current_ttl(engine_full):
    """The TTL clause of an engine_full string, or None."""
    m = re.search(r"\bTTL (.*?)(?: SETTINGS |$)", engine_full or "")
    return m.group(1).strip() if m else None


def plan(tables, ttl, empty, counts):
    """Statements that bring `tables` ({db.table: engine_full}) to `ttl`, and empty the `empty` logs
    that have rows (`counts`: {db.table: rows})."""
    out = []
    for name, expression in sorted(ttl.items()):
        if name not in tables:
            continue
        have, want = current_ttl(tables[name]), normalise(expression) or None
        if want and (have is None or normalise(have) != want):
            out.append(f"ALTER TABLE {name} MODIFY TTL {expression}")
        elif not want and have is not None:
            out.append(f"ALTER TABLE {name} REMOVE TTL")
    for name in sorted(set(empty)):
        if name in tables and counts.get(name, 0) > 0:
            out.append(f"TRUNCATE TABLE {name}")
    return out


def read_tables(stack, names):
    by_db = {}
    for name in names:
        db, table = _TABLE.match(name).groups()
        by_db.setdefault(db, []).append(table)
    found = {}
    for db, tables in sorted(by_db.items()):
        # Names are checked against _TABLE and quoted as literals.
        names = ", ".join(sql_string(t) for t in sorted(tables))
        out = stack.clickhouse(f"SELECT name, engine_full FROM system.tables WHERE database = {sql_string(db)} "  # noqa: S608
                               f"AND name IN ({names}) FORMAT JSONEachRow", "reading table definitions")
        for line in out.splitlines():
            if line.strip():
                row = json.loads(line)
                found[f"{db}.{row['name']}"] = row.get("engine_full") or ""
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=PROJECT_DIR_ARG,
            ttl=dict(type="dict", default={}),
            empty=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    names = list(p["ttl"]) + list(p["empty"])
    bad = [n for n in names if not _TABLE.match(str(n))]
    if bad:
        module.fail_json(msg=f"Table names must be database.table (letters, digits, _): {', '.join(map(str, bad))}")
    bad = [n for n, e in p["ttl"].items() if ";" in str(e or "") or "\n" in str(e or "")]
    if bad:
        module.fail_json(msg=f"A TTL expression must be one expression without ';' or line breaks: {', '.join(bad)}")
    stack = Stack(p["project_dir"])
    try:
        tables = read_tables(stack, names)
        counts = {}
        for name in p["empty"]:
            if name in tables:
                rows = stack.clickhouse(f"SELECT count() FROM {name}", f"counting {name}")  # noqa: S608
                counts[name] = int((rows or "0").split()[0])
        statements = plan(tables, p["ttl"], p["empty"], counts)
        if statements and not module.check_mode:
            for sql in statements:
                stack.clickhouse(sql, sql)
            tables = read_tables(stack, names)
    except StackError as exc:
        module.fail_json(msg=f"ClickHouse TTLs: {exc}. Check that the clickhouse container of "
                             f"{p['project_dir']} runs (docker compose ps).")
    module.exit_json(changed=bool(statements), statements=statements,
                     tables={n: current_ttl(e) for n, e in sorted(tables.items())})


if __name__ == "__main__":
    main()
