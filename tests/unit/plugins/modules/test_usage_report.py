"""llmops.devbox.usage_report: the table, the CSV and the chart page it writes, and reruns that change nothing.

The page is opened in headless Chromium by `make usage-screenshot` (molecule/fleet runs it)."""

from __future__ import annotations

import csv
import json

from ansible_collections.llmops.devbox.plugins.modules.usage_report import table, totals_of
from ansible_collections.llmops.devbox.tests.unit.httpserver import run_module

ROWS = [
    {"owner": "alice", "box": "box-1", "model": "sonnet", "requests": 4, "input_tokens": 40, "output_tokens": 80,
     "cost": 0.0012, "latency_p50_ms": 50.0, "latency_p95_ms": 70.0, "errors": 0, "error_rate": 0.0},
    {"owner": "bob", "box": "box-2", "model": "haiku", "requests": 3, "input_tokens": 30, "output_tokens": 60,
     "cost": 0.0003, "latency_p50_ms": None, "latency_p95_ms": None, "errors": 1, "error_rate": 0.3333},
]
REPORT = {"langfuse": "central", "window": {"from": "2026-11-24T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
          "rows": ROWS, "totals": {}, "daily": [{"day": "2026-11-30", "model": "sonnet", "cost": 0.0012, "requests": 4},
                                                {"day": "2026-11-29", "model": "haiku", "cost": 0.0003, "requests": 3}]}


def test_the_table_has_a_header_one_line_per_row_and_totals():
    rows = [{"langfuse": "central", **row} for row in ROWS]
    lines = table(rows, totals_of(rows))
    assert lines[0].split() == ["owner", "box", "model", "requests", "in_tok", "out_tok", "cost_usd", "p50_ms",
                                "p95_ms", "errors", "err_rate"]
    assert lines[1].split() == ["alice", "box-1", "sonnet", "4", "40", "80", "0.001200", "50", "70", "0", "0.0%"]
    assert lines[2].split() == ["bob", "box-2", "haiku", "3", "30", "60", "0.000300", "-", "-", "1", "33.3%"]
    assert lines[3].split() == ["TOTAL", "7", "70", "140", "0.001500", "1"]
    several = [*rows, {**rows[0], "langfuse": "other"}]
    assert table(several, totals_of(several))[0].split()[0] == "langfuse"


def test_files_are_written_and_a_rerun_changes_nothing(tmp_path):
    dest = tmp_path / "report"
    rc, result = run_module("usage_report", {"reports": [REPORT], "dest": str(dest)})
    assert rc == 0, result
    assert result["changed"] is True
    assert result["totals"]["requests"] == 7 and abs(result["totals"]["cost"] - 0.0015) < 1e-12
    page = (dest / "usage.html").read_text()
    assert page.count("<svg") == 2, "two charts inline"
    assert "Cost per day per model" in page and "Cost per owner" in page
    with open(dest / "usage.csv", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert [(line["owner"], line["box"], line["model"], line["cost"]) for line in lines] == [
        ("alice", "box-1", "sonnet", "0.0012"), ("bob", "box-2", "haiku", "0.0003")]
    assert json.loads((dest / "usage.json").read_text())["totals"]["errors"] == 1
    assert oct((dest / "usage.csv").stat().st_mode & 0o777) == "0o640"

    rc, again = run_module("usage_report", {"reports": [REPORT], "dest": str(dest)})
    assert rc == 0 and again["changed"] is False, "the same data must give the same files"


def test_check_mode_writes_nothing(tmp_path):
    dest = tmp_path / "report"
    rc, result = run_module("usage_report", {"reports": [REPORT], "dest": str(dest)}, check_mode=True)
    assert rc == 0 and result["changed"] is True and not dest.exists()


def test_an_empty_window_still_gives_a_page(tmp_path):
    rc, result = run_module("usage_report", {"reports": [{**REPORT, "rows": [], "daily": []}], "dest": str(tmp_path)})
    assert rc == 0, result
    assert "no generations in the window" in (tmp_path / "usage.html").read_text()
    assert result["table"][-1].split() == ["TOTAL", "0", "0", "0", "0.000000", "0"]
