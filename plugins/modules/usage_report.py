#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: usage_report
short_description: Write a fleet usage report (table, JSON, CSV and a chart page) from langfuse_usage results
version_added: 0.2.0
description:
  - Takes the results of M(llmops.devbox.langfuse_usage) from one or more Langfuse servers and writes, in O(dest),
    C(usage.json) (everything), C(usage.csv) (one line per Langfuse, owner, box and model) and C(usage.html),
    a page with two charts drawn by matplotlib - cost per day per model and cost per owner - and the table.
  - Returns the table as text lines for the play to print.
  - "Runs where the report is wanted, normally the controller (C(delegate_to: localhost)); needs matplotlib there."
author:
  - llmops.devbox developers (!UNKNOWN)
requirements:
  - matplotlib (on the host running the module)
options:
  reports:
    description:
      - One entry per Langfuse - C(langfuse) (its name, e.g. the inventory host) plus the C(rows), C(daily),
        C(totals) and C(window) that M(llmops.devbox.langfuse_usage) returned.
    type: list
    elements: dict
    required: true
  dest:
    description: Directory for the files (created, mode 0750). The files are written with mode 0640.
    type: path
    required: true
  title:
    description: Title of the page.
    type: str
    default: LLM usage
attributes:
  check_mode:
    support: full
    description: Reports whether the files would change, writes nothing.
  diff_mode:
    support: none
    description: No diff is shown.
seealso:
  - module: llmops.devbox.langfuse_usage
"""

EXAMPLES = r"""
- name: Write the report on the controller
  llmops.devbox.usage_report:
    reports: "{{ groups['langfuse'] | map('extract', hostvars, '_usage') | list }}"
    dest: ./usage-report
  delegate_to: localhost
  run_once: true
  register: __report

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ __report.table }}"
"""

RETURN = r"""
table:
  description: The report as aligned text lines, a totals line last.
  returned: success
  type: list
  elements: str
files:
  description: Paths of the JSON, CSV and HTML files.
  returned: success
  type: dict
  sample: {json: /srv/report/usage.json, csv: /srv/report/usage.csv, html: /srv/report/usage.html}
totals:
  description: Sums over every Langfuse (requests, input_tokens, output_tokens, cost, errors).
  returned: success
  type: dict
"""

# Ansible requires the documentation blocks before any import, hence the E402 waivers.
import csv  # noqa: E402
import html  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

try:
    import matplotlib

    matplotlib.use("Agg")  # no display: draw to files only
    # The same data gives the same file (no random element ids), so a rerun reports no change.
    matplotlib.rcParams["svg.hashsalt"] = "llmops.devbox"
    from matplotlib import pyplot

    HAS_MATPLOTLIB, MATPLOTLIB_ERROR = True, None
except ImportError:
    HAS_MATPLOTLIB, MATPLOTLIB_ERROR = False, traceback.format_exc()

COLUMNS = ("langfuse", "owner", "box", "model", "requests", "input_tokens", "output_tokens", "cost",
           "latency_p50_ms", "latency_p95_ms", "errors", "error_rate")
TOTAL_KEYS = ("requests", "input_tokens", "output_tokens", "cost", "errors")


def flat_rows(reports):
    """Every report row with the name of its Langfuse in front."""
    return [{"langfuse": str(report.get("langfuse", "")), **row}
            for report in reports for row in report.get("rows") or []]


def totals_of(rows):
    totals = {key: sum(row.get(key) or 0 for row in rows) for key in TOTAL_KEYS}
    totals["cost"] = round(totals["cost"], 10)
    return totals


def _cell(value, key):
    if value is None:
        return "-"
    if key == "cost":
        return f"{value:.6f}"
    if key == "error_rate":
        return f"{value * 100:.1f}%"
    if key.startswith("latency"):
        return f"{value:.0f}"
    return str(value)


def table(rows, totals):
    """Aligned text: owner, box, model, requests, tokens, cost, latency, errors (and Langfuse when several)."""
    several = len({row["langfuse"] for row in rows}) > 1
    keys = [k for k in COLUMNS if several or k != "langfuse"]
    heads = {"input_tokens": "in_tok", "output_tokens": "out_tok", "cost": "cost_usd", "latency_p50_ms": "p50_ms",
             "latency_p95_ms": "p95_ms", "error_rate": "err_rate"}
    lines = [[heads.get(k, k) for k in keys]]
    lines += [[_cell(row.get(k), k) for k in keys] for row in rows]
    total = ["TOTAL"] + [""] * (len(keys) - 1)
    for key in TOTAL_KEYS:
        total[keys.index(key)] = _cell(totals[key], key)
    lines.append(total)
    numeric = {"requests", "input_tokens", "output_tokens", "cost", "latency_p50_ms", "latency_p95_ms", "errors",
               "error_rate"}
    widths = [max(len(line[i]) for line in lines) for i in range(len(keys))]
    return ["  ".join(cell.rjust(widths[i]) if keys[i] in numeric else cell.ljust(widths[i])
                      for i, cell in enumerate(line)).rstrip() for line in lines]


def csv_text(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _svg(figure):
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    pyplot.close(figure)
    text = out.getvalue()
    return text[text.index("<svg"):]  # inline: drop the XML prolog and doctype


def cost_per_day_chart(reports):
    """Stacked bars: cost per day, one colour per model (summed over every Langfuse)."""
    cost = {}
    for report in reports:
        for entry in report.get("daily") or []:
            model = str(entry.get("model") or "(no model)")
            cost.setdefault(model, {})
            cost[model][entry["day"]] = cost[model].get(entry["day"], 0.0) + (entry.get("cost") or 0.0)
    days = sorted({day for per_day in cost.values() for day in per_day})
    figure, axes = pyplot.subplots(figsize=(9, 4))
    bottom = [0.0] * len(days)
    for model in sorted(cost):
        heights = [cost[model].get(day, 0.0) for day in days]
        axes.bar(days, heights, bottom=bottom, label=model)
        bottom = [b + h for b, h in zip(bottom, heights)]
    axes.set_title("Cost per day per model (USD)")
    axes.set_ylabel("USD")
    if cost:
        axes.legend(fontsize="small")
    else:
        axes.text(0.5, 0.5, "no generations in the window", ha="center", transform=axes.transAxes)
    return _svg(figure)


def cost_per_owner_chart(rows):
    """Horizontal bars: cost per owner, split by box."""
    cost = {}
    for row in rows:
        owner, box = str(row.get("owner") or "(no owner)"), str(row.get("box") or "(no box)")
        cost.setdefault(box, {})
        cost[box][owner] = cost[box].get(owner, 0.0) + (row.get("cost") or 0.0)
    owners = sorted({owner for per_owner in cost.values() for owner in per_owner})
    figure, axes = pyplot.subplots(figsize=(9, max(2.5, 0.6 * len(owners) + 1.5)))
    left = [0.0] * len(owners)
    for box in sorted(cost):
        widths = [cost[box].get(owner, 0.0) for owner in owners]
        axes.barh(owners, widths, left=left, label=f"box {box}")
        left = [a + b for a, b in zip(left, widths)]
    axes.set_title("Cost per owner (USD)")
    axes.set_xlabel("USD")
    if cost:
        axes.legend(fontsize="small")
    return _svg(figure)


def page(title, reports, rows, totals, lines):
    windows = sorted({f"{r.get('window', {}).get('from')} to {r.get('window', {}).get('to')}" for r in reports})
    sources = ", ".join(html.escape(str(r.get("langfuse", ""))) for r in reports)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Window: {html.escape('; '.join(windows))}. Langfuse: {sources}. "
        f"{totals['requests']} requests, {totals['cost']:.6f} USD, {totals['errors']} errors.</p>",
        '<section id="cost-per-day">', cost_per_day_chart(reports), "</section>",
        '<section id="cost-per-owner">', cost_per_owner_chart(rows), "</section>",
        "<h2>Per owner, box and model</h2>",
        f"<pre>{html.escape(chr(10).join(lines))}</pre>",
        "</body></html>",
        "",
    ])


def _write(module, path, text):
    """Write text atomically with mode 0640; True when the content changed."""
    data = text.encode("utf-8")
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    except FileNotFoundError:
        pass
    if module.check_mode:
        return True
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".usage-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            reports=dict(type="list", elements="dict", required=True),
            dest=dict(type="path", required=True),
            title=dict(type="str", default="LLM usage"),
        ),
        supports_check_mode=True,
    )
    if not HAS_MATPLOTLIB:
        module.fail_json(msg=missing_required_lib("matplotlib"), exception=MATPLOTLIB_ERROR)
    reports = module.params["reports"]
    dest = module.params["dest"]
    rows = flat_rows(reports)
    totals = totals_of(rows)
    lines = table(rows, totals)
    files = {kind: os.path.join(dest, f"usage.{kind}") for kind in ("json", "csv", "html")}
    changed = not os.path.isdir(dest)
    if changed and not module.check_mode:
        os.makedirs(dest, mode=0o750, exist_ok=True)
    contents = {
        "json": json.dumps({"reports": reports, "rows": rows, "totals": totals}, indent=2, sort_keys=True) + "\n",
        "csv": csv_text(rows),
        "html": page(module.params["title"], reports, rows, totals, lines),
    }
    for kind, text in contents.items():
        changed = _write(module, files[kind], text) or changed
    module.exit_json(changed=changed, table=lines, files=files, totals=totals)


if __name__ == "__main__":
    main()
