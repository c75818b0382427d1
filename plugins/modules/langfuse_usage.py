#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: langfuse_usage
short_description: Read LLM usage per owner, box and model from a Langfuse metrics API
version_added: 0.2.0
description:
  - Asks one Langfuse, through its public metrics API, for the generations of a time window grouped by
    user id (the box owner), environment (the box) and model, and returns per group the requests,
    input and output tokens, cost in USD, latency p50/p95 in milliseconds and errors.
  - Langfuse v4 is asked at C(GET /api/public/v2/metrics) (view C(observations), the v4 events table);
    Langfuse v3 at C(GET /api/public/metrics) (v1). The version comes from C(/api/public/health) unless
    O(api_version) says it.
  - Three queries are sent - usage per owner, box and model; the same groups restricted to
    level C(ERROR); cost per day and model - each limited to 1000 rows (C(truncated) says when a limit was hit).
  - The owner, box and model group are what the litellm role's proxy stamps on every trace
    (user id, tracing environment); traces from other clients appear under their own values, or null.
  - Only reads; never reports a change.
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_url
  - llmops.devbox.langfuse_project_api
  - llmops.devbox.http_client
options:
  url:
    required: false
    default: http://127.0.0.1:3000
  request_timeout:
    default: 60
  from_timestamp:
    description:
      - Start of the window, ISO 8601 with a time zone (V(2026-11-24T00:00:00Z)).
      - Default O(days) before O(to_timestamp).
    type: str
  to_timestamp:
    description: End of the window, ISO 8601 with a time zone. Default now.
    type: str
  days:
    description: Length of the window in days when O(from_timestamp) is not given.
    type: int
    default: 7
  api_version:
    description: Langfuse API generation; V(auto) reads it from the health endpoint.
    type: str
    choices: [auto, "3", "4"]
    default: auto
attributes:
  check_mode:
    support: full
    description: Only reads, so it runs in check mode too.
  diff_mode:
    support: none
    description: Nothing is changed.
notes:
  - On Langfuse v4 the v2 metrics API needs C(LANGFUSE_MIGRATION_V4_ALLOW_PREVIEW_OPT_IN=true) (the default);
    when it answers 404 the message says so.
seealso:
  - module: llmops.devbox.litellm_trace_check
"""

EXAMPLES = r"""
- name: Usage of the last 7 days, read on the Langfuse box
  llmops.devbox.langfuse_usage:
    url: http://127.0.0.1:3000
    public_key: "{{ langfuse_public_key }}"
    secret_key: "{{ langfuse_secret_key }}"
  register: __usage

- name: One month
  llmops.devbox.langfuse_usage:
    public_key: "{{ langfuse_public_key }}"
    secret_key: "{{ langfuse_secret_key }}"
    from_timestamp: "2026-11-01T00:00:00Z"
    to_timestamp: "2026-12-01T00:00:00Z"
"""

RETURN = r"""
rows:
  description: One entry per owner, box and model, most expensive first.
  returned: success
  type: list
  elements: dict
  sample:
    - {owner: alice, box: devbox-1, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", requests: 12,
       input_tokens: 3400, output_tokens: 900, cost: 0.0123, latency_p50_ms: 812, latency_p95_ms: 2310.5,
       errors: 1, error_rate: 0.0833}
daily:
  description: Cost per day (V(YYYY-MM-DD)) and model.
  returned: success
  type: list
  elements: dict
  sample: [{day: "2026-11-30", model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", cost: 0.0123, requests: 12}]
totals:
  description: Sums over RV(rows) (requests, input_tokens, output_tokens, cost, errors).
  returned: success
  type: dict
  sample: {requests: 12, input_tokens: 3400, output_tokens: 900, cost: 0.0123, errors: 1}
window:
  description: The window asked for.
  returned: always
  type: dict
  sample: {from: "2026-11-23T10:00:00Z", to: "2026-11-30T10:00:00Z"}
truncated:
  description: True when a query returned its row limit (1000), so some groups may be missing.
  returned: success
  type: bool
langfuse_api_version:
  description: V(3) or V(4).
  returned: success
  type: str
"""

# Ansible requires the documentation blocks before any import, hence the E402 waivers.
import json  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._http import (  # noqa: E402
    HttpError,
    redact,
    request,
)
from ansible_collections.llmops.devbox.plugins.module_utils._langfuse_api import project_api_args  # noqa: E402

DEFAULT_URL = "http://127.0.0.1:3000"
ROW_LIMIT = 1000
GROUPS = ("userId", "environment", "providedModelName")
GENERATIONS = {"column": "type", "operator": "any of", "value": ["GENERATION"], "type": "stringOptions"}
ERRORS = {"column": "level", "operator": "=", "value": "ERROR", "type": "string"}
USAGE_METRICS = (("count", "count"), ("inputTokens", "sum"), ("outputTokens", "sum"), ("totalCost", "sum"),
                 ("latency", "p50"), ("latency", "p95"))


class UsageError(Exception):
    """A failure with the message the user sees."""


def _iso(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text, name):
    """An aware datetime from ISO 8601 text (Z or an offset required)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise UsageError(f"{name} {text!r} is not an ISO 8601 time such as 2026-11-24T00:00:00Z") from None
    if moment.tzinfo is None:
        raise UsageError(f"{name} {text!r} has no time zone; add Z (UTC) or an offset like +01:00")
    return moment


def window(from_text, to_text, days, now=None):
    """(from, to) as ISO UTC strings; from defaults to `days` before to, to defaults to now."""
    end = parse_time(to_text, "to_timestamp") if to_text else (now or datetime.now(timezone.utc))
    if from_text:
        start = parse_time(from_text, "from_timestamp")
    else:
        if days is None or days < 1:
            raise UsageError(f"days must be 1 or more, not {days}")
        start = end - timedelta(days=days)
    if start >= end:
        raise UsageError(f"the window is empty: from {_iso(start)} is not before to {_iso(end)}")
    return _iso(start), _iso(end)


def queries(start, end):
    """The three metrics queries: usage per group, errors per group, cost per day and model."""
    base = {"view": "observations", "fromTimestamp": start, "toTimestamp": end, "config": {"row_limit": ROW_LIMIT}}
    dims = [{"field": field} for field in GROUPS]
    # userId is a high-cardinality dimension: Langfuse needs a row limit and a descending order on a metric.
    usage = {**base, "dimensions": dims, "filters": [GENERATIONS],
             "metrics": [{"measure": m, "aggregation": a} for m, a in USAGE_METRICS],
             "orderBy": [{"field": "sum_totalCost", "direction": "desc"}]}
    errors = {**base, "dimensions": dims, "filters": [GENERATIONS, ERRORS],
              "metrics": [{"measure": "count", "aggregation": "count"}],
              "orderBy": [{"field": "count_count", "direction": "desc"}]}
    daily = {**base, "dimensions": [{"field": "providedModelName"}], "filters": [GENERATIONS],
             "timeDimension": {"granularity": "day"},
             "metrics": [{"measure": "totalCost", "aggregation": "sum"}, {"measure": "count", "aggregation": "count"}]}
    return usage, errors, daily


def _number(value, kind=float):
    """JSON numbers, or the quoted integers older ClickHouse versions return; None stays None."""
    if value is None or value == "":
        return None
    try:
        return kind(value) if kind is float else int(float(value))
    except (TypeError, ValueError):
        return None


def _key(row):
    return tuple(row.get(field) for field in GROUPS)


def combine(usage_rows, error_rows, daily_rows):
    """Report rows, daily rows and totals from the three answers."""
    errors = {_key(r): _number(r.get("count_count"), int) or 0 for r in error_rows}
    rows = []
    for r in usage_rows:
        requests = _number(r.get("count_count"), int) or 0
        failed = errors.get(_key(r), 0)
        rows.append({
            "owner": r.get("userId"), "box": r.get("environment"), "model": r.get("providedModelName"),
            "requests": requests,
            "input_tokens": _number(r.get("sum_inputTokens"), int) or 0,
            "output_tokens": _number(r.get("sum_outputTokens"), int) or 0,
            "cost": _number(r.get("sum_totalCost")) or 0.0,
            "latency_p50_ms": _number(r.get("p50_latency")),
            "latency_p95_ms": _number(r.get("p95_latency")),
            "errors": failed,
            "error_rate": round(failed / requests, 4) if requests else 0.0,
        })
    rows.sort(key=lambda row: (-row["cost"], str(row["owner"]), str(row["box"]), str(row["model"])))
    # Days without generations come back as filled rows (count 0, no model): not part of the report.
    daily = [{"day": str(r.get("time_dimension"))[:10], "model": r.get("providedModelName"),
              "cost": _number(r.get("sum_totalCost")) or 0.0, "requests": _number(r.get("count_count"), int) or 0}
             for r in daily_rows if _number(r.get("count_count"), int)]
    daily.sort(key=lambda d: (d["day"], str(d["model"])))
    totals = {key: sum(row[key] for row in rows) for key in ("requests", "input_tokens", "output_tokens", "errors")}
    totals["cost"] = sum(row["cost"] for row in rows)
    return rows, daily, totals


class Usage:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.url = self.p["url"].rstrip("/")
        self.secrets = [self.p["secret_key"]]

    def _get(self, path):
        try:
            resp = request(self.url + path, basic_auth=(self.p["public_key"], self.p["secret_key"]),
                           timeout=self.p["request_timeout"], validate_certs=self.p["validate_certs"])
        except HttpError as exc:
            raise UsageError(f"Langfuse at {self.url} did not answer ({exc}); check the URL and that Langfuse runs "
                             "(playbooks/status.yml)") from None
        return resp

    def api(self):
        if self.p["api_version"] != "auto":
            return self.p["api_version"]
        resp = self._get("/api/public/health")
        if resp.status != 200:
            raise UsageError(f"GET {self.url}/api/public/health answered HTTP {resp.status}; is Langfuse healthy?")
        try:
            version = str(resp.json().get("version") or "")
        except ValueError:
            version = ""
        return "3" if version.startswith("3.") else "4"

    def run_query(self, route, query):
        resp = self._get(f"{route}?{urlencode({'query': json.dumps(query, separators=(',', ':'))})}")
        body = redact(resp.text()[:500], self.secrets)
        if resp.status in (401, 403):
            raise UsageError(f"Langfuse at {self.url} rejected the API keys (HTTP {resp.status}); use the project's "
                             "pk-lf-/sk-lf- pair (/etc/langfuse/api-key.json on the Langfuse box)")
        if resp.status == 404:
            raise UsageError(f"GET {route} answered 404 at {self.url}: the metrics API is not enabled. On Langfuse v4 "
                             "it needs LANGFUSE_MIGRATION_V4_ALLOW_PREVIEW_OPT_IN=true (the default); v3 serves "
                             f"/api/public/metrics (set api_version). Answer: {body}")
        if resp.status != 200:
            raise UsageError(f"GET {route} answered HTTP {resp.status} at {self.url}: {body}")
        try:
            data = resp.json().get("data")
        except (ValueError, AttributeError):
            data = None
        if not isinstance(data, list):
            raise UsageError(f"GET {route} at {self.url} answered no data list: {body}")
        return [row for row in data if isinstance(row, dict)]

    def run(self, start, end):
        api = self.api()
        route = "/api/public/v2/metrics" if api == "4" else "/api/public/metrics"
        answers = [self.run_query(route, query) for query in queries(start, end)]
        rows, daily, totals = combine(*answers)
        return dict(rows=rows, daily=daily, totals=totals, langfuse_api_version=api,
                    truncated=any(len(answer) >= ROW_LIMIT for answer in answers))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **project_api_args(url_default=DEFAULT_URL, request_timeout=60),
            from_timestamp=dict(type="str"),
            to_timestamp=dict(type="str"),
            days=dict(type="int", default=7),
            api_version=dict(type="str", default="auto", choices=["auto", "3", "4"]),
        ),
        supports_check_mode=True,
    )
    result = dict(changed=False)
    try:
        start, end = window(module.params["from_timestamp"], module.params["to_timestamp"], module.params["days"])
        result["window"] = {"from": start, "to": end}
        result.update(Usage(module).run(start, end))
    except UsageError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
