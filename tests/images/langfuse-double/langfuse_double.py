"""Langfuse server TEST DOUBLE (web + worker) for offline tests of the llmops.devbox roles.

Not Langfuse. It honours the subset of Langfuse v4's interface the collection relies on, against
the real backing services of the compose stack:

* the environment variables of langfuse-web / langfuse-worker, validated at start the way the
  real server refuses bad ones (NEXTAUTH_URL must be a URL, ENCRYPTION_KEY 64 hex, ...);
* Postgres (DATABASE_URL) for organisations, projects, users and API keys, created by the
  LANGFUSE_INIT_* headless initialisation as an upsert that never updates;
* ClickHouse (CLICKHOUSE_URL, user, password) for observations; S3 (LANGFUSE_S3_EVENT_UPLOAD_*)
  for raw events; Redis (REDIS_*) as the queue between ingestion and the worker part;
* HTTP: /api/public/health, /api/public/ready, /api/public/projects,
  POST /api/public/otel/v1/traces (OTLP/HTTP protobuf or JSON, optionally gzip),
  GET /api/public/v2/observations, GET /api/public/v2/metrics (the observations view with the
  dimensions, measures, aggregations, filters and day/hour buckets in METRICS_*; any other query
  upstream accepts is a 400 saying it is not implemented by the double), the content API (LLM
  connections, prompts, datasets and dataset items: ContentApi), the v4 answers to legacy
  endpoints, a NextAuth-style credentials sign-in, and the worker's /api/health on port 3030.

Two images, one program: LANGFUSE_DOUBLE_PART (baked into each image) says which part it plays.
The web part serves the public API and puts ingested batches on the queue; only the worker part
consumes the queue and makes traces visible, as upstream. Each part reads its contract
(tests/contracts/langfuse-{web,worker}.yml, copied to LANGFUSE_DOUBLE_CONTRACT): the variables
it refuses to start without, and where it listens ($HOSTNAME:$PORT, HOSTNAME being the container id
unless the deployment overrides it, like upstream).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, unquote_to_bytes, urlencode, urlsplit

VERSION = os.environ.get("LANGFUSE_DOUBLE_VERSION", "4.0.0")
QUEUE = "otel-ingestion-queue"  # upstream's queue name (contract langfuse-web: otlp_traces)
OBSERVATION_TYPES = {"SPAN", "GENERATION", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER",
                     "EVALUATOR", "EMBEDDING", "GUARDRAIL"}
FIELD_GROUPS = {
    "core": ["id", "traceId", "startTime", "endTime", "projectId", "parentObservationId", "type"],
    "basic": ["name", "level", "statusMessage", "version", "environment", "bookmarked", "public",
              "userId", "sessionId"],
    "time": ["completionStartTime", "createdAt", "updatedAt"],
    "io": ["input", "output"],
    "metadata": ["metadata"],
    "model": ["providedModelName", "internalModelId", "modelParameters"],
    "usage": ["usageDetails", "costDetails", "totalCost"],
    "prompt": ["promptId", "promptName", "promptVersion"],
    "metrics": ["latency", "timeToFirstToken"],
    "trace_context": ["tags", "release", "traceName"],
}

log = logging.getLogger("langfuse-double")


class ConfigError(Exception):
    """A setting the real server would also refuse."""


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

def _truthy(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes")


PARTS = ("web", "worker")


def load_contract(part: str, path: str | None = None) -> dict:
    """The part's upstream contract: LANGFUSE_DOUBLE_CONTRACT in the image, the repo's file otherwise."""
    import yaml

    if not path:
        path = str(Path(__file__).resolve().parents[2] / "contracts" / f"langfuse-{part}.yml")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_config(env: dict[str, str], part: str, contract: dict) -> dict:
    """Validate the environment like the real server's start-up check; raise ConfigError."""
    if part not in PARTS:
        raise ConfigError(f"LANGFUSE_DOUBLE_PART must be one of {', '.join(PARTS)} (got {part!r})")
    errors = []

    def need(name: str) -> str:
        """A variable the double's own wiring needs (its absence is also checked below when the
        contract marks it required, which is what decides whether this part refuses to start)."""
        return env.get(name, "")

    # What upstream refuses to start without (its env schema, recorded in the contract).
    for name in (contract.get("env") or {}).get("required") or []:
        if not env.get(name):
            errors.append(f"{name} is required")
    cfg: dict = {"web": part == "web", "part": part}
    cfg["database_url"] = need("DATABASE_URL")
    if cfg["database_url"] and not re.match(r"^postgres(ql)?://", cfg["database_url"]):
        errors.append("DATABASE_URL must be a postgresql:// URL")
    cfg["salt"] = need("SALT")
    key = env.get("ENCRYPTION_KEY", "")
    if key and not re.fullmatch(r"[0-9a-fA-F]{64}", key):
        errors.append("ENCRYPTION_KEY must be 256 bits, 64 string characters in hex format "
                      "(generate via: openssl rand -hex 32)")
    if cfg["web"]:
        url = env.get("NEXTAUTH_URL", "")
        parts = urlsplit(url)
        if not url or parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append(f"NEXTAUTH_URL must be a URL (got {url!r})")
        cfg["nextauth_url"] = url.rstrip("/")
    cfg["clickhouse_url"] = need("CLICKHOUSE_URL")
    cfg["clickhouse_migration_url"] = need("CLICKHOUSE_MIGRATION_URL")
    cfg["clickhouse_user"] = need("CLICKHOUSE_USER")
    cfg["clickhouse_password"] = env.get("CLICKHOUSE_PASSWORD", "")
    cfg["clickhouse_db"] = env.get("CLICKHOUSE_DB", "default")
    if _truthy(env.get("CLICKHOUSE_CLUSTER_ENABLED"), True):
        errors.append("CLICKHOUSE_CLUSTER_ENABLED is true (the default): migrations need a "
                      "replicated cluster with ZooKeeper; set CLICKHOUSE_CLUSTER_ENABLED=false for "
                      "a single ClickHouse server")
    s3 = {}
    for item in ("BUCKET", "REGION", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "ENDPOINT",
                 "FORCE_PATH_STYLE", "PREFIX"):
        s3[item.lower()] = env.get(f"LANGFUSE_S3_EVENT_UPLOAD_{item}", "")
    if not s3["bucket"]:
        errors.append("LANGFUSE_S3_EVENT_UPLOAD_BUCKET is required (raw events are stored there)")
    s3["force_path_style"] = _truthy(s3["force_path_style"], False)
    cfg["s3"] = s3
    # Where the part listens: the variables and defaults its contract names.
    listen = contract.get("listen") or {}
    address, port = listen.get("address") or {}, listen.get("port") or {}
    port_env = port.get("env", "PORT")
    ports = {}
    for name, default in (("REDIS_PORT", 6379), (port_env, int(port.get("default", 3000)))):
        value = env.get(name) or str(default)
        if not value.isdigit():
            errors.append(f"{name} must be a port number (got {value!r})")
        ports[name] = int(value) if value.isdigit() else default
    cfg["host"] = env.get(address.get("env", "HOSTNAME")) or str(address.get("default", "0.0.0.0"))
    cfg["redis"] = {
        "url": env.get("REDIS_CONNECTION_STRING", ""),
        "host": env.get("REDIS_HOST", ""),
        "port": ports["REDIS_PORT"],
        "password": env.get("REDIS_AUTH") or None,
    }
    if not cfg["redis"]["url"] and not cfg["redis"]["host"]:
        errors.append("REDIS_HOST (or REDIS_CONNECTION_STRING) is required")
    cfg["init"] = {k[len("LANGFUSE_INIT_"):].lower(): v for k, v in env.items()
                   if k.startswith("LANGFUSE_INIT_") and v}
    pk, sk = cfg["init"].get("project_public_key", ""), cfg["init"].get("project_secret_key", "")
    if pk and not pk.startswith("pk-lf-"):
        errors.append("LANGFUSE_INIT_PROJECT_PUBLIC_KEY must start with pk-lf-")
    if sk and not sk.startswith("sk-lf-"):
        errors.append("LANGFUSE_INIT_PROJECT_SECRET_KEY must start with sk-lf-")
    cfg["signup_disabled"] = _truthy(env.get("AUTH_DISABLE_SIGNUP"), False)
    # LLM connection base URLs (contract langfuse-web: content_api.base_url_validation).
    cfg["llm_connection_whitelist"] = parse_whitelist(env)
    cfg["port"] = ports[port_env]
    if errors:
        raise ConfigError("; ".join(dict.fromkeys(errors)))
    return cfg


def hash_secret(secret: str, salt: str) -> str:
    """How the double stores secret keys and passwords: salted, so a changed SALT breaks them."""
    return hashlib.sha256((salt + secret).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# OTLP spans -> Langfuse observations
# --------------------------------------------------------------------------------------------

def _any_value(value) -> object:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def decode_otlp(body: bytes, content_type: str) -> list[dict]:
    """OTLP ExportTraceServiceRequest (protobuf or JSON) -> plain span dicts."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    if "json" in content_type:
        # OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64.
        data = json.loads(body or b"{}")
        for rs in data.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if span.get(key):
                            span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    else:
        request.ParseFromString(body)
    spans = []
    for rs in request.resource_spans:
        resource = {kv.key: _any_value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for span in ss.spans:
                spans.append({
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex() or None,
                    "name": span.name,
                    "start_ns": span.start_time_unix_nano,
                    "end_ns": span.end_time_unix_nano,
                    "attributes": {kv.key: _any_value(kv.value) for kv in span.attributes},
                    "status_code": span.status.code,
                    "status_message": span.status.message,
                    "scope": ss.scope.name,
                    "resource": resource,
                })
    return spans


def _iso(ns: int | None) -> str | None:
    if not ns:
        return None
    dt = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _json_or_raw(value):
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


# Upstream's OtelIngestionProcessor.extractEnvironment: for each key in this order, the span's
# attribute first, then the resource's (the Langfuse SDKs and LiteLLM put it on the resource).
ENVIRONMENT_KEYS = ("langfuse.environment", "deployment.environment.name", "deployment.environment")


def _environment(attrs: dict, resource: dict) -> str:
    for key in ENVIRONMENT_KEYS:
        for source in (attrs, resource):
            if source.get(key):
                return str(source[key])
    return "default"


def span_to_observation(span: dict, project_id: str, now: str) -> dict:
    """Map one span to the v2 observation shape (attribute names as Langfuse reads them)."""
    attrs = span["attributes"]

    def attr(*names):
        for name in names:
            if attrs.get(name) not in (None, ""):
                return attrs[name]
        return None

    obs_type = str(attr("langfuse.observation.type") or "span").upper()
    if obs_type not in OBSERVATION_TYPES:
        obs_type = "SPAN"
    level = str(attr("langfuse.observation.level") or "").upper()
    status_message = attr("langfuse.observation.status_message") or span["status_message"] or None
    if not level:
        level = "ERROR" if span["status_code"] == 2 else "DEFAULT"
    metadata = {}
    for key, value in attrs.items():
        for prefix in ("langfuse.observation.metadata.", "langfuse.trace.metadata."):
            if key.startswith(prefix):
                metadata[key[len(prefix):]] = _json_or_raw(value)
    usage = _json_or_raw(attr("langfuse.observation.usage_details")) or {}
    if not usage and attr("gen_ai.usage.input_tokens") is not None:
        usage = {"input": attr("gen_ai.usage.input_tokens"),
                 "output": attr("gen_ai.usage.output_tokens")}
    cost = _json_or_raw(attr("langfuse.observation.cost_details")) or {}
    tags = attr("langfuse.trace.tags")
    if isinstance(tags, str):
        tags = _json_or_raw(tags)
    start, end = span["start_ns"], span["end_ns"]
    completion_start = attr("langfuse.observation.completion_start_time")
    if isinstance(completion_start, str):
        completion_start = _json_or_raw(completion_start)
    return {
        "id": span["span_id"],
        "traceId": span["trace_id"],
        "projectId": project_id,
        "parentObservationId": span["parent_span_id"],
        "type": obs_type,
        "startTime": _iso(start),
        "endTime": _iso(end),
        "name": span["name"],
        "level": level,
        "statusMessage": status_message,
        "version": attr("langfuse.version"),
        "environment": _environment(attrs, span.get("resource") or {}),
        "bookmarked": False,
        "public": False,
        "userId": attr("user.id", "langfuse.user.id"),
        "sessionId": attr("session.id", "langfuse.session.id"),
        "completionStartTime": completion_start,
        "createdAt": now,
        "updatedAt": now,
        "input": attr("langfuse.observation.input", "gen_ai.prompt"),
        "output": attr("langfuse.observation.output", "gen_ai.completion"),
        "metadata": metadata,
        "providedModelName": attr("langfuse.observation.model.name", "gen_ai.request.model"),
        "internalModelId": None,
        "modelParameters": _json_or_raw(attr("langfuse.observation.model.parameters")) or {},
        "usageDetails": usage,
        "costDetails": cost,
        "totalCost": cost.get("total") if isinstance(cost, dict) else None,
        "promptId": None,
        "promptName": attr("langfuse.observation.prompt.name"),
        "promptVersion": attr("langfuse.observation.prompt.version"),
        "latency": round((end - start) / 1e9, 3) if start and end else None,
        "timeToFirstToken": None,
        "tags": tags or [],
        "release": attr("langfuse.release"),
        "traceName": attr("langfuse.trace.name"),
    }


def select_fields(observation: dict, fields: list[str]) -> dict:
    """The requested field groups (core always), input/output as raw strings like upstream."""
    out = {}
    for group in ["core"] + [g for g in fields if g != "core"]:
        for name in FIELD_GROUPS[group]:
            out[name] = observation.get(name)
    for name in ("input", "output"):
        if out.get(name) is not None and not isinstance(out[name], str):
            out[name] = json.dumps(out[name])
    return out


def _trace_hash(trace_id: str) -> str:
    """A stable stand-in for the trace-id hash in upstream's ordering."""
    return hashlib.sha256(str(trace_id).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# GET /api/public/v2/metrics: validation and query engine (pure functions; the route feeds them
# the project's observations, the unit tests feed them hand-made ones). Contract langfuse-web:
# facts.metrics says what upstream does; METRICS_* below is the subset the double computes.
# --------------------------------------------------------------------------------------------

NOT_IMPLEMENTED = "not implemented by the Langfuse double"

# Upstream's v2 "observations" view (dataModel.ts eventsObservationsView), in its declaration
# order, which upstream's error messages list. Dimension and measure -> type.
V2_OBS_DIMENSIONS = {
    "id": "string", "traceId": "string", "environment": "string", "parentObservationId": "string",
    "type": "string", "name": "string", "level": "string", "version": "string", "userId": "string",
    "sessionId": "string", "tags": "string[]", "release": "string", "traceName": "string",
    "traceRelease": "string", "traceVersion": "string", "providedModelName": "string",
    "promptName": "string", "promptVersion": "string", "startTimeMonth": "string",
    "toolNames": "arrayString", "calledToolNames": "arrayString", "costType": "string",
    "usageType": "string", "experimentName": "string", "experimentDatasetId": "string",
    "experimentId": "string",
}
V2_OBS_HIGH_CARDINALITY = {"id", "traceId", "parentObservationId", "userId", "sessionId",
                           "experimentName", "experimentDatasetId", "experimentId"}
V2_OBS_PAIR_EXPAND = ("costType", "usageType")  # map keys expanded into rows (ARRAY JOIN)
V2_OBS_MEASURES = {
    "count": "integer", "traceId": "string", "uniqueUserIds": "string", "uniqueSessionIds": "string",
    "latency": "integer", "streamingLatency": "integer", "inputTokens": "integer",
    "outputTokens": "integer", "totalTokens": "integer", "outputTokensPerSecond": "decimal",
    "tokensPerSecond": "decimal", "inputCost": "decimal", "outputCost": "decimal",
    "totalCost": "decimal", "timeToFirstToken": "integer", "countScores": "integer",
    "toolDefinitions": "integer", "toolCalls": "integer", "costByType": "decimal",
    "usageByType": "integer",
}
V2_OBS_REQUIRED_DIMENSION = {"costByType": "costType", "usageByType": "usageType"}
V2_VIEWS = ("observations", "scores-numeric", "scores-categorical", "scores-boolean")
AGGREGATIONS = ("sum", "avg", "count", "max", "min", "p50", "p75", "p90", "p95", "p99",
                "histogram", "uniq")
GRANULARITIES = ("auto", "minute", "hour", "day", "week", "month")  # the public API's six
FILTER_OPERATORS = {
    "datetime": (">", "<", ">=", "<="),
    "string": ("=", "contains", "does not contain", "starts with", "ends with"),
    "stringOptions": ("any of", "none of"),
    "categoryOptions": ("any of", "none of"),
    "arrayOptions": ("any of", "none of", "all of"),
    "number": ("=", ">", "<", ">=", "<="),
    "stringObject": ("=", "contains", "does not contain", "starts with", "ends with"),
    "numberObject": ("=", ">", "<", ">=", "<="),
    "booleanObject": ("=", "<>"),
    "boolean": ("=", "<>"),
    "null": ("is null", "is not null"),
    "positionInTrace": ("=",),
}
# What each filter type carries besides column/operator (interfaces/filters.ts singleFilter).
FILTER_FIELDS = {
    "datetime": {"value": "date"}, "string": {"value": "string"}, "number": {"value": "number"},
    "stringOptions": {"value": "nonempty strings"}, "arrayOptions": {"value": "strings"},
    "categoryOptions": {"key": "string", "value": "strings"},
    "stringObject": {"key": "string", "value": "string"},
    "numberObject": {"key": "string", "value": "number"},
    "booleanObject": {"key": "string", "value": "boolean"}, "boolean": {"value": "boolean"},
    "null": {"value": "empty"}, "positionInTrace": {"key": "position", "value": "optional number"},
}
PERCENTILES = {"p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
DEFAULT_ROW_LIMIT = 100  # applied after validation, so the high-cardinality rule sees it unset

# The subset the double computes; anything else upstream accepts is a 400 naming the double.
METRICS_DIMENSIONS = ("userId", "environment", "providedModelName", "level", "type", "name",
                      "traceName", "sessionId")
METRICS_MEASURES = ("count", "inputTokens", "outputTokens", "totalTokens", "totalCost", "latency")
METRICS_AGGREGATIONS = ("count", "sum", "avg", "min", "max", "p50", "p75", "p90", "p95", "p99")
METRICS_GRANULARITIES = ("hour", "day")
METRICS_FILTERS = {"string": ("=",), "stringOptions": ("any of", "none of")}
# Dimensions upstream declares as nullIf(column, ''): '' comes back as null, and their filters
# test the raw column with '' meaning "no value" (clickhouse-filter.ts emptyEqualsNull).
NULL_IF_EMPTY = ("userId", "sessionId", "environment", "providedModelName")
NULLABLE_MEASURES = ("latency", "totalCost")  # Nullable in SQL: null (not 0) when nothing to add

# zod's z.iso.datetime({offset: true}) (zod 4.3.6): seconds and fraction optional, Z or +hh:mm.
_ISO_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.(\d+))?)?"
    r"(?:Z|([+-])([01]\d|2[0-3]):([0-5]\d))$", re.ASCII)


def _js_ms(value) -> int | None:
    """Epoch milliseconds of an ISO datetime as JavaScript's Date reads it (fraction cut to ms)."""
    match = _ISO_DATETIME.match(value) if isinstance(value, str) else None
    if not match:
        return None
    y, mo, d, h, mi, s, frac, sign, oh, om = match.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=timezone.utc)
    except ValueError:  # 2025-02-30: zod's date pattern refuses it too
        return None
    ms = int(dt.timestamp()) * 1000 + int((frac or "0")[:3].ljust(3, "0"))
    if sign:
        ms -= (1 if sign == "+" else -1) * (int(oh) * 60 + int(om)) * 60_000
    return ms


_MISSING = object()  # a key the JSON does not have (zod: undefined)


def _js_type(value) -> str:
    if value is _MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "unknown")


def _is_int(value) -> bool:
    """A JSON number JavaScript calls an integer (5 and 5.0 alike)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or \
        (isinstance(value, float) and value.is_integer())


def _schema_issues(q) -> list[dict]:
    """Upstream's zod schema (GetMetricsV2Query -> MetricsQueryObjectV2) as zod-like issues: code
    and path as zod gives them, messages in zod's English wording but not guaranteed verbatim."""
    issues: list[dict] = []

    def issue(path, message, code="invalid_type"):
        issues.append({"code": code, "path": ["query", *path], "message": message})

    def expect(path, value, kind):
        if _js_type(value) == kind:
            return True
        issue(path, f"Invalid input: expected {kind}, received {_js_type(value)}")
        return False

    def one_of(path, value, options):
        if value not in options:
            issue(path, "Invalid option: expected one of " + "|".join(f'"{o}"' for o in options),
                  "invalid_value")

    if not isinstance(q, dict):
        issue([], f"Invalid input: expected object, received {_js_type(q)}")
        return issues
    one_of(["view"], q.get("view"), V2_VIEWS)
    for key, name in (("dimensions", "field"), ("metrics", "measure")):
        items = q.get(key, _MISSING)
        if (items is not _MISSING or key == "metrics") and expect([key], items, "array"):
            for i, item in enumerate(items):
                if expect([key, i], item, "object"):
                    expect([key, i, name], item.get(name, _MISSING), "string")
                    if key == "metrics":
                        one_of([key, i, "aggregation"], item.get("aggregation"), AGGREGATIONS)
    filters = q.get("filters", _MISSING)
    if filters is not _MISSING and expect(["filters"], filters, "array"):
        for i, f in enumerate(filters):
            if expect(["filters", i], f, "object"):
                _filter_issues(f, ["filters", i], issue, expect, one_of)
    td = q.get("timeDimension")
    if td is not None and expect(["timeDimension"], td, "object"):
        one_of(["timeDimension", "granularity"], td.get("granularity"), GRANULARITIES)
    for key in ("fromTimestamp", "toTimestamp"):
        if expect([key], q.get(key, _MISSING), "string") and _js_ms(q[key]) is None:
            issue([key], "Invalid ISO datetime", "invalid_format")
    order = q.get("orderBy")
    if order is not None and expect(["orderBy"], order, "array"):
        for i, item in enumerate(order):
            if expect(["orderBy", i], item, "object"):
                expect(["orderBy", i, "field"], item.get("field", _MISSING), "string")
                one_of(["orderBy", i, "direction"], item.get("direction"), ("asc", "desc"))
    config = q.get("config", _MISSING)
    if config is not _MISSING and expect(["config"], config, "object"):
        for name, low, high in (("bins", 1, 100), ("row_limit", 1, 1000)):
            value = config.get(name, _MISSING)
            if value is _MISSING or not expect(["config", name], value, "number"):
                continue
            if not _is_int(value):
                issue(["config", name], "Invalid input: expected int, received number")
            elif value < low:
                issue(["config", name], f"Too small: expected number to be >={low}", "too_small")
            elif value > high:
                issue(["config", name], f"Too big: expected number to be <={high}", "too_big")
    if not issues and _js_ms(q["fromTimestamp"]) >= _js_ms(q["toTimestamp"]):
        issue([], "fromTimestamp must be before toTimestamp", "custom")
    return issues


def _filter_issues(f: dict, path: list, issue, expect, one_of) -> None:
    """One singleFilter: a union discriminated by type (interfaces/filters.ts)."""
    ftype = f.get("type")
    if ftype not in FILTER_OPERATORS:
        issue([*path, "type"], "Invalid input", "invalid_union")
        return
    expect([*path, "column"], f.get("column", _MISSING), "string")
    one_of([*path, "operator"], f.get("operator"), FILTER_OPERATORS[ftype])
    for name, kind in FILTER_FIELDS[ftype].items():
        value, where = f.get(name, _MISSING), [*path, name]
        if kind in ("string", "number", "boolean"):
            expect(where, value, kind)
        elif kind == "date":  # z.coerce.date(): roughly, whatever new Date() is given
            if _js_type(value) not in ("string", "number"):
                issue(where, "Invalid input: expected date, received Date")
        elif kind.endswith("strings"):
            if expect(where, value, "array"):
                for j, v in enumerate(value):
                    expect([*where, j], v, "string")
                if kind.startswith("nonempty") and not value:
                    issue(where, "Invalid input", "custom")
        elif kind == "empty" and value != "":
            issue(where, 'Invalid input: expected ""', "invalid_value")
        elif kind == "position":
            one_of(where, value, ("root", "first", "last", "nthFromEnd", "nthFromStart"))
        elif kind == "optional number" and value is not _MISSING:
            expect(where, value, "number")
    if ftype == "arrayOptions" and f.get("operator") == "any of" and f.get("value") == []:
        issue(path, "Value array must not be empty unless operator is 'all of' or 'none of' "
                    "(which represent waiting for selection)", "custom")


def _high_cardinality_error(q: dict) -> str | None:
    """validateQuery.ts (v2): userId, sessionId, ids... as dimensions only for top-N queries."""
    hc = [d["field"] for d in q["dimensions"] if d["field"] in V2_OBS_HIGH_CARDINALITY]
    if not hc:
        return None
    names = ", ".join(hc)
    if q["timeDimension"]:
        return (f"High cardinality dimension(s) '{names}' cannot be used with timeDimension. Time "
                "series queries with high cardinality dimensions produce unbounded result sets.")
    has_limit = "row_limit" in (q.get("config") or {})
    desc = [o["field"] for o in q["orderBy"] or [] if o["direction"] == "desc"]
    if not has_limit or not desc:
        return (f"High cardinality dimension(s) '{names}' require both 'config.row_limit' and "
                "'orderBy' with direction 'desc' on a measure field.")
    measures = [m["measure"] for m in q["metrics"]]
    # Upstream matches a measure name as the whole field or its suffix, whatever the prefix.
    invalid = [f for f in desc if not any(f == m or f.endswith("_" + m) for m in measures)]
    if invalid:
        return (f"High cardinality dimension(s) '{names}' require 'orderBy' with direction 'desc' on "
                f"a measure field. '{', '.join(invalid)}' {'is' if len(invalid) == 1 else 'are'} not "
                "a measure in this query.")
    return None


def _filter_dimension(column: str) -> str | None:
    """queryBuilder resolveDimension: a dimension, or the "name" one for any other *Name column."""
    if column in V2_OBS_DIMENSIONS:
        return column
    return "name" if column.endswith("Name") else None


def _builder_error(q: dict) -> str | None:
    """The checks of upstream's QueryBuilder.build for the observations view, in its order."""
    dims = V2_OBS_DIMENSIONS
    for d in q["dimensions"]:
        if d["field"] not in dims:
            return f"Invalid dimension {d['field']}. Must be one of {','.join(dims)}"
    for m in q["metrics"]:
        if m["measure"] not in V2_OBS_MEASURES:
            return f"Invalid metric {m['measure']}. Must be one of {','.join(V2_OBS_MEASURES)}"
        kind = V2_OBS_MEASURES[m["measure"]]
        valid = AGGREGATIONS if kind in ("integer", "decimal", "number") else ("count", "uniq")
        if m["aggregation"] not in valid:
            return (f'Aggregation "{m["aggregation"]}" is not valid for measure "{m["measure"]}" '
                    f"(type: {kind}). Valid aggregations: {', '.join(valid)}")
    for f in q["filters"]:  # validateFilters: every filter, before any is mapped
        dim, column, ftype = _filter_dimension(f["column"]), f["column"], f["type"]
        if dim:
            allowed = ("string", "stringOptions") if dims[dim] == "string" else ("arrayOptions",)
            if ftype != "null" and ftype not in allowed:
                expected = " or ".join(f"'{t}'" for t in allowed)
                return (f"Invalid filter for field '{column}': Filter type '{ftype}' is not "
                        f"supported for dimension type '{dims[dim]}'. Expected {expected}.")
        elif column == "start_time" and ftype not in ("datetime", "null"):
            return (f"Invalid filter for field '{column}': Filter type '{ftype}' is not supported "
                    "for time dimension 'start_time'. Expected 'datetime'.")
        elif column == "metadata" and ftype != "stringObject":
            return ("Invalid filter for field 'metadata': Metadata filters require type "
                    f"'stringObject' with a 'key' property, not '{ftype}'. Example: {{\"column\": "
                    "\"metadata\", \"type\": \"stringObject\", \"key\": \"environment\", "
                    "\"operator\": \"=\", \"value\": \"production\"}")
    for f in q["filters"]:  # mapFilters
        if not _filter_dimension(f["column"]) and f["column"] not in ("start_time", "metadata"):
            return (f"Invalid filter column {f['column']}. Must be one of {','.join(dims)} or "
                    "start_time")
    pairs = [d["field"] for d in q["dimensions"] if d["field"] in V2_OBS_PAIR_EXPAND]
    for m in q["metrics"]:
        needed = V2_OBS_REQUIRED_DIMENSION.get(m["measure"])
        if needed and needed not in [d["field"] for d in q["dimensions"]] and needed not in pairs:
            pairs.append(needed)
    if len(pairs) > 1:
        return f"Only one pairExpand dimension is supported per query. Found: {', '.join(pairs)}"
    for item in q["orderBy"] or []:
        if item["field"] == "time_dimension" and q["timeDimension"]:
            continue
        if any(d["field"] == item["field"] for d in q["dimensions"]):
            continue
        match = re.match(r"^(sum|avg|count|max|min|p50|p75|p90|p95|p99|uniq)_(.+)$", item["field"])
        if match and any((m["aggregation"], m["measure"]) == match.groups() for m in q["metrics"]):
            continue
        return (f"Invalid orderBy field: {item['field']}. Must be one of the dimension or metric "
                "fields.")
    return None


def _unsupported(q: dict) -> str | None:
    """What upstream accepts but the double does not compute (a 400, never a wrong number)."""
    def refuse(what, value, supported):
        return (f"{what} {value!r} is {NOT_IMPLEMENTED} (it supports {', '.join(supported)}); use "
                "the real Langfuse for this query")

    if q["view"] != "observations":
        return refuse("view", q["view"], ("observations",))
    for d in q["dimensions"]:
        if d["field"] not in METRICS_DIMENSIONS:
            return refuse("dimension", d["field"], METRICS_DIMENSIONS)
    for m in q["metrics"]:
        if m["measure"] not in METRICS_MEASURES:
            return refuse("measure", m["measure"], METRICS_MEASURES)
        if m["aggregation"] not in METRICS_AGGREGATIONS:
            return refuse("aggregation", m["aggregation"], METRICS_AGGREGATIONS)
    for f in q["filters"]:
        if _filter_dimension(f["column"]) not in METRICS_DIMENSIONS:
            return refuse("filter column", f["column"], METRICS_DIMENSIONS)
        if f["operator"] not in METRICS_FILTERS.get(f["type"], ()):
            return refuse("filter", f"{f['type']} {f['operator']}",
                          [f"{t} {o}" for t, ops in METRICS_FILTERS.items() for o in ops])
    granularity = (q["timeDimension"] or {}).get("granularity")
    if granularity and granularity not in METRICS_GRANULARITIES:
        return refuse("timeDimension granularity", granularity, METRICS_GRANULARITIES)
    return None


def parse_metrics_query(raw) -> tuple[dict | None, dict | None]:
    """The `query` parameter (str; a list when repeated; None when absent) -> (query, None), or
    (None, 400 body) in the order upstream checks: JSON, zod schema, high cardinality (before the
    row_limit default), the query builder's checks, then the double's own limits."""
    if isinstance(raw, list):
        raw = raw[0] if len(raw) == 1 else raw
    if not isinstance(raw, str):
        got = "undefined" if raw is None else "array"
        return None, {"message": "Invalid request data", "error": [
            {"code": "invalid_type", "path": ["query"],
             "message": f"Invalid input: expected string, received {got}"}]}
    try:
        q = json.loads(raw)
    except ValueError:
        return None, {"message": "Invalid JSON in query parameter", "error": "InvalidRequestError"}
    issues = _schema_issues(q)
    if issues:
        return None, {"message": "Invalid request data", "error": issues}
    # zod's defaults; keys it does not know are dropped.
    q = {"view": q["view"], "dimensions": [{"field": d["field"]} for d in q.get("dimensions", [])],
         "metrics": [{"measure": m["measure"], "aggregation": m["aggregation"]} for m in q["metrics"]],
         "filters": q.get("filters", []), "timeDimension": q.get("timeDimension"),
         "fromTimestamp": q["fromTimestamp"], "toTimestamp": q["toTimestamp"],
         "orderBy": q.get("orderBy"), "config": q.get("config")}
    if q["view"] == "observations":
        error = _high_cardinality_error(q) or _builder_error(q)
        if error:
            return None, {"message": error, "error": "InvalidRequestError"}
    refused = _unsupported(q)
    if refused:
        return None, {"message": refused, "error": "NotImplementedByLangfuseDouble"}
    config = q["config"] or {}
    q["config"] = {**config, "row_limit": int(config.get("row_limit", DEFAULT_ROW_LIMIT))}
    return q, None


def _dimension_value(obs: dict, field: str):
    """The dimension as upstream's SQL gives it (null for nullIf'd empties)."""
    if field == "traceName":  # COALESCE(trace name, the root observation's own name)
        name = obs.get("traceName") or None
        if name is None and not obs.get("parentObservationId"):
            name = obs.get("name") or None
        return None if name is None else str(name)
    value = obs.get(field)
    value = "" if value is None else str(value)
    return (value or None) if field in NULL_IF_EMPTY else value


def _filter_matches(obs: dict, f: dict) -> bool:
    """One filter as clickhouse-filter.ts writes it for the events table."""
    dim = _filter_dimension(f["column"])
    if dim == "traceName":
        value = _dimension_value(obs, dim)
        if value is None:  # NULL = x, NULL IN (...), NULL NOT IN (...) are all NULL: row dropped
            return False
    else:  # a plain String column; for the nullIf'd ones '' stands for "no value"
        value = obs.get(dim)
        value = "" if value is None else str(value)
    if f["type"] == "string":
        return value == f["value"]
    if f["operator"] == "any of":
        return value in f["value"]
    if dim in NULL_IF_EMPTY and value == "":  # "none of" never matches an empty (null) value
        return False
    return value not in f["value"]


def _uint(value) -> int:
    try:
        return int(float(value)) if not isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return 0


def _measure_value(obs: dict, measure: str):
    """One row's value of a measure (eventsObservationsView SQL without its aggregation)."""
    if measure == "count":
        return 1
    usage = obs.get("usageDetails") if isinstance(obs.get("usageDetails"), dict) else {}
    if measure in ("inputTokens", "outputTokens"):
        # keys containing "input" / "output", case-insensitively (e.g. input_cached_tokens)
        needle = "input" if measure == "inputTokens" else "output"
        return sum(_uint(v) for k, v in usage.items() if needle in str(k).lower())
    if measure == "totalTokens":
        return _uint(usage.get("total"))  # usage_details['total']; a missing key reads 0
    if measure == "totalCost":  # cost_details['total'] as Decimal(18,12); a missing key reads 0
        try:
            return Decimal(str(obs.get("totalCost") or 0)).quantize(Decimal("1e-12"))
        except ArithmeticError:
            return Decimal(0)
    start, end = _js_ms(obs.get("startTime")), _js_ms(obs.get("endTime"))
    return None if start is None or end is None else end - start  # latency, whole milliseconds


def _aggregate(aggregation: str, values: list):
    """One aggregate as ClickHouse computes it; nulls are skipped (count counts the others)."""
    present = [v for v in values if v is not None]
    if aggregation == "count":
        return len(present)
    if not present:
        return None
    if aggregation == "sum":
        return sum(present)
    if aggregation == "avg":
        return float(sum(present)) / len(present)
    if aggregation in ("min", "max"):
        return min(present) if aggregation == "min" else max(present)
    # quantile(level): ClickHouse keeps up to 8192 values in a reservoir and interpolates linearly
    # at level * (n - 1) between sorted neighbours; up to 8192 values that is exact, as here.
    ordered = sorted(present)
    index = PERCENTILES[aggregation] * (len(ordered) - 1)
    left = int(index)
    if left + 1 == len(ordered):
        return float(ordered[left])
    return float(ordered[left]) * (left + 1 - index) + float(ordered[left + 1]) * (index - left)


def _json_number(value):
    """A number as ClickHouse's JSON writes it: Decimal and Float64 values without a fraction
    print as integers (812, not 812.0)."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _bucket(ms: int, granularity: str) -> str:
    """time_dimension: day is toDate() (a Date, "YYYY-MM-DD"); hour is toStartOfHour(), a DateTime,
    which date_time_output_format=iso writes as "YYYY-MM-DDThh:mm:ssZ". ClickHouse runs in UTC."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%d") if granularity == "day" else dt.strftime("%Y-%m-%dT%H:00:00Z")


def _fill_buckets(lo: int, hi: int, granularity: str) -> list[str]:
    """ORDER BY time_dimension WITH FILL FROM bucket(from) TO bucket(to) (exclusive): every bucket."""
    step = 86_400_000 if granularity == "day" else 3_600_000
    first, last = lo - lo % step, hi - hi % step
    return [_bucket(ms, granularity) for ms in range(first, last, step)]


def _sort_rows(rows: list[dict], order: list[tuple[str, str]]) -> list[dict]:
    """ORDER BY with ClickHouse's default NULLS LAST in both directions (stable passes)."""
    for field, direction in reversed(order):
        present = [r for r in rows if r.get(field) is not None]
        present.sort(key=lambda r: r[field], reverse=direction == "desc")
        rows = present + [r for r in rows if r.get(field) is None]
    return rows


def compute_metrics(observations: list[dict], q: dict) -> list[dict]:
    """The rows upstream's single-level query returns for a query parse_metrics_query accepted:
    WHERE start_time >= from AND start_time <= to AND filters, GROUP BY the dimensions (and
    time_dimension), ORDER BY, WITH FILL, LIMIT. Rows: dimensions, time_dimension, metrics."""
    lo, hi = _js_ms(q["fromTimestamp"]), _js_ms(q["toTimestamp"])
    dims = list(dict.fromkeys(d["field"] for d in q["dimensions"]))
    metrics = list(dict.fromkeys((m["aggregation"], m["measure"]) for m in q["metrics"]))
    granularity = (q["timeDimension"] or {}).get("granularity")
    groups: dict[tuple, list[dict]] = {}
    for obs in observations:
        start = _js_ms(obs.get("startTime"))
        if start is None or not lo <= start <= hi:
            continue
        if not all(_filter_matches(obs, f) for f in q["filters"]):
            continue
        key = tuple(_dimension_value(obs, d) for d in dims)
        if granularity:
            key += (_bucket(start, granularity),)
        groups.setdefault(key, []).append(obs)

    def row_for(key, members):
        row = dict(zip(dims, key))
        if granularity:
            row["time_dimension"] = key[-1]
        if not metrics:  # no metrics: upstream selects count(*) as count
            row["count"] = len(members or ())
        for aggregation, measure in metrics:
            if members is None:  # a WITH FILL row: every column at its type's default
                value = None if measure in NULLABLE_MEASURES and aggregation != "count" else 0
            else:
                value = _aggregate(aggregation, [_measure_value(o, measure) for o in members])
            row[f"{aggregation}_{measure}"] = _json_number(value)
        return row

    # Ties come back in an arbitrary order from ClickHouse; the double orders them by the group.
    tie_order = [(d, "asc") for d in dims] + ([("time_dimension", "asc")] if granularity else [])
    rows = _sort_rows([row_for(k, v) for k, v in groups.items()], tie_order)
    order = [(o["field"], o["direction"]) for o in q["orderBy"] or []]
    if granularity and not order:  # WITH FILL is added only to the default ordering
        seen = {r["time_dimension"] for r in rows}
        defaults = tuple(None if d in NULL_IF_EMPTY or d == "traceName" else "" for d in dims)
        for bucket in _fill_buckets(lo, hi, granularity):
            if bucket not in seen:
                rows.append(row_for(defaults + (bucket,), None))
    if not order:  # upstream's default: time, else the first metric descending, else a dimension
        if granularity:
            order = [("time_dimension", "asc")]
        elif metrics:
            order = [(f"{metrics[0][0]}_{metrics[0][1]}", "desc")]
        elif dims:
            order = [(dims[0], "asc")]
    return _sort_rows(rows, order)[:q["config"]["row_limit"]]


def run_metrics_query(observations: list[dict], raw) -> tuple[int, dict]:
    """The whole route without HTTP: (status, body) for a `query` parameter."""
    q, error = parse_metrics_query(raw)
    if error:
        return 400, error
    return 200, {"data": compute_metrics(observations, q)}


# --------------------------------------------------------------------------------------------
# Content API: LLM connections, prompts, datasets (contract langfuse-web: content_api)
# --------------------------------------------------------------------------------------------

LLM_ADAPTERS = ("anthropic", "openai", "azure", "bedrock", "google-vertex-ai", "google-ai-studio")
BEDROCK_DEFAULT_CREDENTIALS = "__BEDROCK_DEFAULT_CREDENTIALS__"
VERTEXAI_DEFAULT_CREDENTIALS = "__VERTEXAI_DEFAULT_CREDENTIALS__"
LATEST_LABEL, PRODUCTION_LABEL = "latest", "production"
PROMPT_LABEL = re.compile(r"[a-z0-9_\-.]+")
PLACEHOLDER_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
HTML_TAG = re.compile(r"<[^>]*>")
# Upstream's SSRF deny-list for LLM base URLs (contract: content_api.base_url_validation.ip_check).
BLOCKED_NETWORKS = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/29", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "::ffff:0:0/96", "fc00::/7", "fe80::/10", "ff00::/8", "100::/64",
    "64:ff9b::/96", "64:ff9b:1::/48", "::/96", "2001::/32", "2001:db8::/32", "2002::/16")]
BLOCKED_HOSTNAMES = ("localhost", "internal", "intranet", "metadata.google.internal",
                     "169.254.169.254", "fd00:ec2::254", "[fd00:ec2::254]", "host.docker.internal",
                     "gateway.docker.internal")
BLOCKED_HOST_SUFFIXES = ("localhost", "internal", "intranet")
WHITELIST_ENV = {"hosts": "LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST",
                 "ips": "LANGFUSE_LLM_CONNECTION_WHITELISTED_IPS",
                 "ip_ranges": "LANGFUSE_LLM_CONNECTION_WHITELISTED_IP_SEGMENTS"}


def parse_whitelist(env: dict[str, str]) -> dict[str, list[str]]:
    """Upstream's parsing: comma-separated, each entry lower-cased and trimmed; unset -> []."""
    return {key: [s.lower().strip() for s in env[name].split(",")] if env.get(name) else []
            for key, name in WHITELIST_ENV.items()}


class ApiError(Exception):
    """An answer other than success: (status, JSON body)."""

    def __init__(self, status: int, body: dict):
        super().__init__(body.get("message"))
        self.status, self.body = status, body


def _langfuse_error(status: int, kind: str, message: str) -> ApiError:
    return ApiError(status, {"message": message, "error": kind})


def _not_found(message: str) -> ApiError:
    return _langfuse_error(404, "LangfuseNotFoundError", message)


def _invalid(message: str) -> ApiError:
    return _langfuse_error(400, "InvalidRequestError", message)


def _zod(issues: list[dict]) -> ApiError:
    return ApiError(400, {"message": "Invalid request data", "error": issues})


def _issue(path: list, message: str, code: str = "custom") -> dict:
    return {"code": code, "path": path, "message": message}


def _now() -> str:
    dt = datetime.now(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _cuid() -> str:
    return "c" + uuid.uuid4().hex[:24]


def _is_json_value(value, root: bool = False) -> bool:
    """Upstream's jsonSchema (root: not null) / jsonSchemaNullable (nested)."""
    if value is None:
        return not root
    if isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(_is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(_is_json_value(v) for v in value.values())
    return False


def _string(body: dict, key: str, issues: list, *, required=False, nullable=False,
            min_len=0, max_len=None) -> None:
    """One string field as zod checks it (absent: .optional; None: .nullable)."""
    if key not in body:
        if required:
            issues.append(_issue([key], "Invalid input: expected string, received undefined",
                                 "invalid_type"))
        return
    value = body[key]
    if value is None:
        if not nullable:
            issues.append(_issue([key], "Invalid input: expected string, received null",
                                 "invalid_type"))
        return
    if not isinstance(value, str):
        issues.append(_issue([key], "Invalid input: expected string", "invalid_type"))
    elif len(value) < min_len:
        issues.append(_issue([key], f"Too small: expected string to have >={min_len} characters",
                             "too_small"))
    elif max_len is not None and len(value) > max_len:
        issues.append(_issue([key], f"Too big: expected string to have <={max_len} characters",
                             "too_big"))


def _folder_name_problems(name: str) -> list[str]:
    """Upstream's name rules for prompts and datasets (non-empty, no HTML, slash usage)."""
    problems = []
    if not name:
        problems.append("Text cannot be empty")
    if HTML_TAG.search(name):
        problems.append("Text cannot contain HTML tags")
    if name and name.startswith("/"):
        problems.append("Name cannot start with a slash")
    if "//" in name:
        problems.append("Name cannot contain consecutive slashes")
    if name and name.endswith("/"):
        problems.append("Name cannot end with a slash")
    if name and not name.strip():
        problems.append("Name cannot be empty")
    return problems


def display_secret_key(secret: str) -> str:
    if secret == BEDROCK_DEFAULT_CREDENTIALS:
        return "Default AWS credentials"
    if secret == VERTEXAI_DEFAULT_CREDENTIALS:
        return "Default GCP credentials (ADC)"
    return "..." + (secret[-6:-2] if secret.endswith('"}') else secret[-4:])


# -- base URLs ---------------------------------------------------------------------------------

def _whatwg_ipv4(host: str) -> str | None:
    """The WHATWG URL parser's IPv4 reading of a host whose last label is a number (decimal,
    0x hex or 0-prefixed octal): dotted form, or ValueError when such a host is no address."""
    labels = host.split(".")
    if labels and labels[-1] == "" and len(labels) > 1:
        labels = labels[:-1]

    def number(label: str) -> int | None:
        if re.fullmatch(r"0[xX][0-9a-fA-F]*", label):
            return int(label[2:] or "0", 16)
        if re.fullmatch(r"0[0-7]+", label):
            return int(label, 8)
        if re.fullmatch(r"[0-9]+", label):
            return int(label)
        return None

    if not labels or number(labels[-1]) is None:
        return None
    parts = [number(label) for label in labels]
    if len(parts) > 4 or any(p is None for p in parts):
        raise ValueError("invalid IPv4 host")
    if any(p > 255 for p in parts[:-1]) or parts[-1] >= 256 ** (5 - len(parts)):
        raise ValueError("invalid IPv4 host")
    value = parts[-1]
    for i, p in enumerate(parts[:-1]):
        value += p * 256 ** (3 - i)
    return str(ipaddress.IPv4Address(value))


def parse_url(text: str) -> dict | None:
    """A small stand-in for `new URL(text)`: scheme, credentials and hostname as the WHATWG
    parser gives them (lower-cased, IPv4 dotted, IPv6 in brackets); None when it would throw."""
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port  # noqa: F841 - raises on a bad port, like the URL parser
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme in ("http", "https", "ws", "wss", "ftp"):
        if not host:
            return None
        if "[" in parts.netloc:  # an IPv6 literal, shown in brackets
            try:
                host = "[" + ipaddress.IPv6Address(host).compressed + "]"
            except ValueError:
                return None
        else:
            if re.search(r"[\x00-\x20#%/:<>?@\[\\\]^|]", host):
                return None
            try:
                host = _whatwg_ipv4(host) or host
            except ValueError:
                return None
    return {"scheme": scheme, "username": parts.username or "", "password": parts.password or "",
            "hostname": host}


def _normalise_ip(text: str) -> str:
    return text.lower().strip().removeprefix("[").removesuffix("]")


def is_ip_blocked(ip: str, whitelisted_ips: list[str], whitelisted_ranges: list[str]) -> bool:
    try:
        cleaned = _normalise_ip(ip)
        if cleaned in whitelisted_ips:
            return False
        addr = ipaddress.ip_address(cleaned.split("%", 1)[0])
        for cidr in whitelisted_ranges:
            network = ipaddress.ip_network(cidr, strict=False)
            if network.version == addr.version and addr in network:
                return False
        return any(n.version == addr.version and addr in n for n in BLOCKED_NETWORKS)
    except ValueError:
        return True  # upstream blocks what it cannot parse


def is_hostname_blocked(host: str) -> bool:
    return host in BLOCKED_HOSTNAMES or any(host.endswith("." + s) for s in BLOCKED_HOST_SUFFIXES)


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(_normalise_ip(host))
        return True
    except ValueError:
        return False


def resolve_host(host: str) -> list[str]:
    """Every address the system resolver gives (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})


def validate_base_url(text: str, whitelist: dict, resolver=resolve_host) -> str | None:
    """Upstream's LLM base URL check: None when accepted, else the reason it gives."""
    text = text.strip()
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        return "Invalid URL encoding"
    try:
        unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return "Invalid URL encoding"
    url = parse_url(text)
    if url is None:
        return "Invalid URL syntax"
    if url["username"] or url["password"]:
        return "URL credentials are not allowed. Use authentication headers instead."
    if url["scheme"] not in ("http", "https"):
        return "Only HTTP and HTTPS protocols are allowed"
    host = url["hostname"]
    if host in whitelist.get("hosts", []):
        return None
    if is_hostname_blocked(host):
        return "Blocked hostname detected"
    ips, ranges = whitelist.get("ips", []), whitelist.get("ip_ranges", [])
    if _is_ip_address(host):
        return "Blocked IP address detected" if is_ip_blocked(host, ips, ranges) else None
    addresses = resolver(host)
    if not addresses:
        return f"DNS lookup failed for {host}"
    if any(is_ip_blocked(a, ips, ranges) for a in addresses):
        return "Blocked IP address detected"
    return None


# -- storage -----------------------------------------------------------------------------------

class MemoryContentStore:
    """Documents by (kind, project, key), in a dict (unit tests)."""

    def __init__(self):
        self.docs: dict[tuple[str, str, str], dict] = {}

    def get(self, kind: str, project: str, key: str) -> dict | None:
        doc = self.docs.get((kind, project, key))
        return json.loads(json.dumps(doc)) if doc is not None else None

    def all(self, kind: str, project: str) -> list[dict]:
        return [json.loads(json.dumps(d)) for (k, p, _), d in self.docs.items()
                if k == kind and p == project]

    def put(self, kind: str, project: str, key: str, doc: dict) -> None:
        self.docs[(kind, project, key)] = json.loads(json.dumps(doc))

    def delete(self, kind: str, project: str, key: str) -> None:
        self.docs.pop((kind, project, key), None)


class PgContentStore:
    """The same documents in Postgres (table content_docs of SCHEMA), one JSON document a row."""

    def __init__(self, sql):
        self.sql = sql

    @staticmethod
    def _doc(value):
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    def get(self, kind: str, project: str, key: str) -> dict | None:
        rows = self.sql("SELECT doc FROM content_docs WHERE kind = %s AND project_id = %s "
                        "AND key = %s", (kind, project, key))
        return self._doc(rows[0][0]) if rows else None

    def all(self, kind: str, project: str) -> list[dict]:
        rows = self.sql("SELECT doc FROM content_docs WHERE kind = %s AND project_id = %s",
                        (kind, project))
        return [self._doc(r[0]) for r in rows]

    def put(self, kind: str, project: str, key: str, doc: dict) -> None:
        self.sql("INSERT INTO content_docs (kind, project_id, key, doc) VALUES (%s, %s, %s, %s) "
                 "ON CONFLICT (kind, project_id, key) DO UPDATE SET doc = excluded.doc",
                 (kind, project, key, json.dumps(doc)))

    def delete(self, kind: str, project: str, key: str) -> None:
        self.sql("DELETE FROM content_docs WHERE kind = %s AND project_id = %s AND key = %s",
                 (kind, project, key))


def _page(query: dict, issues: list, *, default_limit: int, page_min: int) -> tuple[int, int]:
    """page and limit as upstream's coerced numbers; an empty value counts as unset."""
    values = {}
    for name, default, lo, hi in (("page", 1, page_min, None), ("limit", default_limit, 1, 100)):
        raw = query.get(name, "")
        if raw == "":
            values[name] = default
            continue
        try:
            number = float(raw.strip()) if raw.strip() else 0.0
            if math.isnan(number) or math.isinf(number):
                raise ValueError(raw)
        except ValueError:
            issues.append(_issue([name], "Invalid input: expected number, received NaN",
                                 "invalid_type"))
            continue
        if name == "limit" and not number.is_integer():
            issues.append(_issue([name], "Invalid input: expected int, received number",
                                 "invalid_type"))
        elif number < lo or (hi is not None and number > hi):
            issues.append(_issue([name], f"Number must be between {lo} and {hi or 'infinity'}",
                                 "too_small" if number < lo else "too_big"))
        values[name] = int(number) if number.is_integer() else number
    return values.get("page", 1), values.get("limit", default_limit)


def _paginate(rows: list, page, limit: int) -> tuple[list, dict]:
    start = int((page - 1) * limit)
    data = rows[start:start + limit] if start >= 0 else []
    total = len(rows)
    return data, {"page": page, "limit": limit, "totalItems": total,
                  "totalPages": -(-total // limit)}


_ITEM_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _item_clean(value):
    if isinstance(value, str):
        return _ITEM_CONTROL_CHARS.sub("", value)
    if isinstance(value, list):
        return [_item_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _item_clean(v) for k, v in value.items()}
    return value


def _item_json(value):
    """A dataset item field as upstream stores it: a string that is JSON becomes that JSON, control
    characters (but tab, LF, CR) are dropped (contract: content_api.dataset_items.values)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    return _item_clean(value)


class ContentApi:
    """The content routes of the public API, over a store (MemoryContentStore / PgContentStore).

    `call` takes the authenticated project and answers (status, body); routing, methods and the
    order of checks follow the contract (langfuse-web: content_api)."""

    ROUTES = [
        (re.compile(r"/api/public/llm-connections"), {"GET": "list_llm", "PUT": "put_llm"}),
        (re.compile(r"/api/public/llm-connections/(?P<id>[^/]+)"), {"DELETE": "delete_llm"}),
        (re.compile(r"/api/public/v2/prompts"), {"GET": "list_prompts", "POST": "create_prompt"}),
        (re.compile(r"/api/public/v2/prompts/(?P<name>[^/]+)"),
         {"GET": "get_prompt", "DELETE": None}),
        (re.compile(r"/api/public/v2/prompts/(?P<name>[^/]+)/versions/(?P<version>[^/]+)"),
         {"PATCH": "patch_prompt"}),
        (re.compile(r"/api/public/v2/datasets"), {"GET": "list_datasets", "POST": "upsert_dataset"}),
        (re.compile(r"/api/public/v2/datasets/(?P<name>[^/]+)"), {"GET": "get_dataset"}),
        (re.compile(r"/api/public/dataset-items"), {"GET": "list_items", "POST": "upsert_item"}),
        (re.compile(r"/api/public/dataset-items/(?P<id>[^/]+)"),
         {"GET": "get_item", "DELETE": None}),
    ]

    def __init__(self, store, whitelist: dict | None = None, resolver=resolve_host):
        self.store = store
        self.whitelist = whitelist or {"hosts": [], "ips": [], "ip_ranges": []}
        self.resolver = resolver
        self._lock = threading.Lock()
        self._last_seq = 0

    # -- dispatch ------------------------------------------------------------------------------
    def match(self, method: str, path: str):
        """None: not a content route; (None, None): the route lacks the method (405);
        (handler name or None when the double leaves it out, params) otherwise."""
        for pattern, methods in self.ROUTES:
            m = pattern.fullmatch(path)
            if m:
                if method not in methods:
                    return None, None
                return methods[method] or "", {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def call(self, method: str, path: str, query: dict, body: bytes, project: str):
        found = self.match(method, path)
        if found is None:
            return 404, {"message": "Not found", "error": "NotFoundError"}
        name, params = found
        if name is None:
            return 405, {"message": "Method not allowed", "error": "MethodNotAllowedError"}
        if name == "":
            return 501, {"message": f"{method} {path} is not implemented by the Langfuse test "
                                   "double", "error": "NotImplementedByLangfuseDouble"}
        payload = None
        if method in ("POST", "PUT", "PATCH"):
            try:
                payload = json.loads(body or b"null")
            except ValueError:
                return 400, {"message": "Invalid JSON", "error": "InvalidRequestError"}
        try:
            with self._lock:
                return getattr(self, name)(project, params, query, payload)
        except ApiError as exc:
            return exc.status, exc.body

    def _seq(self) -> int:
        self._last_seq = max(time.time_ns(), self._last_seq + 1)
        return self._last_seq

    # -- LLM connections -----------------------------------------------------------------------
    def list_llm(self, project, _params, query, _body):
        issues = []
        unknown = sorted(set(query) - {"page", "limit"})
        if unknown:
            issues.append({"code": "unrecognized_keys", "keys": unknown, "path": [],
                           "message": "Unrecognized key(s) in object"})
        page, limit = _page(query, issues, default_limit=50, page_min=0)
        if issues:
            raise _zod(issues)
        if page < 1:
            return 500, {"message": "Internal Server Error", "error": "An unknown error occurred"}
        rows = sorted(self.store.all("llm_connection", project), key=lambda d: d["_seq"],
                      reverse=True)
        data, meta = _paginate([self._llm_out(d) for d in rows], page, limit)
        return 200, {"data": data, "meta": meta}

    @staticmethod
    def _llm_out(doc: dict) -> dict:
        """Exactly the fields upstream selects: never the secret or the header values."""
        order = ["id", "provider", "adapter", "displaySecretKey", "baseURL", "customModels",
                 "withDefaultModels", "extraHeaderKeys", "config", "createdAt", "updatedAt"]
        return {k: doc[k] for k in order}

    @staticmethod
    def _llm_body_issues(body) -> list[dict]:
        if not isinstance(body, dict):
            return [_issue([], "Invalid input: expected object", "invalid_type")]
        issues = []
        _string(body, "provider", issues, required=True, min_len=1)
        if body.get("adapter") not in LLM_ADAPTERS:
            issues.append(_issue(["adapter"], "Invalid option: expected one of "
                                 + "|".join(f'"{a}"' for a in LLM_ADAPTERS), "invalid_value"))
        _string(body, "secretKey", issues, required=True, min_len=1)
        if body.get("baseURL") is not None:
            base = body["baseURL"]
            if not isinstance(base, str) or parse_url(base.strip()) is None:
                issues.append(_issue(["baseURL"], "Invalid URL", "invalid_format"))
        if "customModels" in body:
            models = body["customModels"]
            if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
                issues.append(_issue(["customModels"], "expected a list of non-empty strings"))
        if "withDefaultModels" in body and not isinstance(body["withDefaultModels"], bool):
            issues.append(_issue(["withDefaultModels"], "Invalid input: expected boolean",
                                 "invalid_type"))
        if "extraHeaders" in body:
            headers = body["extraHeaders"]
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                issues.append(_issue(["extraHeaders"], "expected a map of strings"))
        if "config" in body:
            config = body["config"]
            if not isinstance(config, dict) or not all(isinstance(v, (str, bool))
                                                       for v in config.values()):
                issues.append(_issue(["config"], "expected a map of strings or booleans"))
        if issues:
            return issues
        # Adapter-specific rules (they run once the base schema has passed).
        adapter, config, secret = body["adapter"], body.get("config"), body["secretKey"]
        if adapter == "bedrock":
            if config is None:
                return [_issue(["config"], "Config is required for Bedrock adapter. "
                                           "Expected: { region: string }")]
            if not isinstance(config.get("region"), str):
                issues.append(_issue(["config"], "Invalid Bedrock config: region must be a "
                                                 "string. Expected: { region: string }"))
            if secret != BEDROCK_DEFAULT_CREDENTIALS:
                try:
                    cred = json.loads(secret)
                except ValueError:
                    cred = None
                ok = isinstance(cred, dict) and (
                    (set(cred) == {"accessKeyId", "secretAccessKey"}
                     and all(isinstance(v, str) and v for v in cred.values()))
                    or (set(cred) == {"apiKey"} and isinstance(cred["apiKey"], str)
                        and cred["apiKey"]))
                if not ok:
                    issues.append(_issue(["secretKey"], "Invalid Bedrock credentials. Expected a "
                                         "JSON object with either {accessKeyId, secretAccessKey} "
                                         "or {apiKey}."))
        elif adapter == "openai":
            if config is not None and (set(config) - {"useResponsesApi"} or not isinstance(
                    config.get("useResponsesApi", False), bool)):
                issues.append(_issue(["config"], "Invalid OpenAI config. "
                                                 "Expected: { useResponsesApi: boolean }"))
        elif adapter == "google-vertex-ai":
            if config is not None and (set(config) - {"location"} or not isinstance(
                    config.get("location", ""), str)):
                issues.append(_issue(["config"], "Invalid VertexAI config. "
                                                 "Expected: { location: string }"))
        elif config:
            issues.append(_issue(["config"], f"Config is not supported for {adapter} adapter. "
                                             "Remove the config field."))
        return issues

    def put_llm(self, project, _params, _query, body):
        issues = self._llm_body_issues(body)
        if issues:
            raise _zod(issues)
        provider = body["provider"]
        base = body["baseURL"].strip() if isinstance(body.get("baseURL"), str) else None
        existing = self.store.get("llm_connection", project, provider)
        if base and base != (existing or {}).get("baseURL"):
            reason = validate_base_url(base, self.whitelist, self.resolver)
            if reason:
                raise _invalid(f"Invalid baseURL: {reason}")
        secret = body["secretKey"]
        if secret == BEDROCK_DEFAULT_CREDENTIALS and body["adapter"] != "bedrock":
            raise _invalid("Default AWS credentials are only allowed for Bedrock in self-hosted "
                           "deployments.")
        now = _now()
        doc = existing or {"id": _cuid(), "provider": provider, "createdAt": now,
                           "_seq": self._seq(), "config": None}
        headers = body.get("extraHeaders")
        doc.update({
            "adapter": body["adapter"],
            "displaySecretKey": display_secret_key(secret),
            "baseURL": base or None,
            "customModels": body.get("customModels") or [],
            "withDefaultModels": body.get("withDefaultModels", True),
            "extraHeaderKeys": list(headers) if headers else [],
            "updatedAt": now,
            # Never the secret itself: only its digest (and the headers' digest), as a record.
            "_secretKeySha256": hashlib.sha256(secret.encode()).hexdigest(),
            "_extraHeadersSha256": hashlib.sha256(json.dumps(headers, sort_keys=True).encode())
            .hexdigest() if headers else None,
        })
        if "config" in body:
            doc["config"] = body["config"]
        self.store.put("llm_connection", project, provider, doc)
        return (200 if existing else 201), self._llm_out(doc)

    def delete_llm(self, project, params, _query, _body):
        for doc in self.store.all("llm_connection", project):
            if doc["id"] == params["id"]:
                self.store.delete("llm_connection", project, doc["provider"])
                return 200, {"message": "LLM connection successfully deleted"}
        raise _not_found("LLM connection not found")

    # -- prompts -------------------------------------------------------------------------------
    def _versions(self, project: str, name: str) -> list[dict]:
        return sorted((d for d in self.store.all("prompt", project) if d["name"] == name),
                      key=lambda d: d["version"])

    def _save_prompt(self, project: str, doc: dict) -> None:
        self.store.put("prompt", project, f"{doc['name']}\n{doc['version']}", doc)

    @staticmethod
    def _prompt_out(doc: dict) -> dict:
        order = ["id", "createdAt", "updatedAt", "projectId", "createdBy", "prompt", "name",
                 "version", "type", "isActive", "config", "tags", "labels", "commitMessage"]
        return {k: doc.get(k) for k in order}

    @staticmethod
    def _prompt_body(body) -> tuple[dict | None, list[dict]]:
        """CreatePromptSchema: a text prompt or a chat prompt; the cleaned body or issues."""
        if not isinstance(body, dict):
            return None, [_issue([], "Invalid input: expected object", "invalid_type")]
        common: list[dict] = []
        name = body.get("name")
        if not isinstance(name, str):
            common.append(_issue(["name"], "Invalid input: expected string", "invalid_type"))
        else:
            problems = _folder_name_problems(name)
            if "|" in name:
                problems.append("Prompt name cannot contain '|' character")
            if not problems and name.strip() == "new":
                problems.append("Prompt name cannot be 'new'")
            common += [_issue(["name"], p) for p in problems]
        labels = body.get("labels", [])
        if not isinstance(labels, list):
            common.append(_issue(["labels"], "Invalid input: expected array", "invalid_type"))
        else:
            for i, label in enumerate(labels):
                if not (isinstance(label, str) and 1 <= len(label) <= 36
                        and PROMPT_LABEL.fullmatch(label)):
                    common.append(_issue(["labels", i], "Label must be lowercase alphanumeric "
                                         "with optional underscores, hyphens, or periods"))
        if "config" in body and not _is_json_value(body["config"]):
            common.append(_issue(["config"], "Invalid input", "invalid_union"))
        tags = body.get("tags")
        if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            common.append(_issue(["tags"], "Invalid input: expected array of strings"))
        _string(body, "commitMessage", common, nullable=True, max_len=500)

        kind = body.get("type", "text")
        text_issues, chat_issues = [], []
        if kind != "text":
            text_issues.append(_issue(["type"], 'Invalid input: expected "text"', "invalid_value"))
        if not isinstance(body.get("prompt"), str):
            text_issues.append(_issue(["prompt"], "Invalid input: expected string", "invalid_type"))
        messages = []
        if kind != "chat":
            chat_issues.append(_issue(["type"], 'Invalid input: expected "chat"', "invalid_value"))
        if not isinstance(body.get("prompt"), list):
            chat_issues.append(_issue(["prompt"], "Invalid input: expected array", "invalid_type"))
        else:
            for i, msg in enumerate(body["prompt"]):
                if isinstance(msg, dict) and isinstance(msg.get("role"), str) \
                        and isinstance(msg.get("content"), str):
                    messages.append({"role": msg["role"], "content": msg["content"]})
                elif isinstance(msg, dict) and msg.get("type") == "placeholder" \
                        and isinstance(msg.get("name"), str) \
                        and PLACEHOLDER_NAME.fullmatch(msg["name"]):
                    messages.append({"type": "placeholder", "name": msg["name"]})
                else:
                    chat_issues.append(_issue(["prompt", i], "Invalid input", "invalid_union"))
        if text_issues and chat_issues:
            return None, [{"code": "invalid_union", "path": [], "message": "Invalid input",
                           "errors": [common + text_issues, common + chat_issues]}]
        if common:
            return None, common
        config = body.get("config")
        return {"name": name.strip(), "type": "text" if not text_issues else "chat",
                "prompt": body["prompt"] if not text_issues else messages,
                "labels": labels, "config": {} if config is None else config,
                "tags": tags, "commitMessage": body.get("commitMessage")}, []

    def create_prompt(self, project, _params, _query, body):
        data, issues = self._prompt_body(body)
        if issues:
            raise _zod(issues)
        versions = self._versions(project, data["name"])
        latest = versions[-1] if versions else None
        if latest and latest["type"] != data["type"]:
            raise _invalid("Previous versions have different prompt type. Create a new prompt "
                           "with a different name.")
        labels = list(dict.fromkeys(data["labels"] + [LATEST_LABEL]))
        tags = list(dict.fromkeys(data["tags"] if data["tags"] is not None
                                  else (latest or {}).get("tags", [])))
        now = _now()
        for old in versions:  # a label lives on one version; tags are the prompt's
            changed = False
            if any(label in old["labels"] for label in labels):
                old["labels"] = [label for label in old["labels"] if label not in labels]
                changed = True
            if data["tags"] is not None and old["tags"] != tags:
                old["tags"] = tags
                changed = True
            if changed:
                old["updatedAt"] = now
                self._save_prompt(project, old)
        doc = {"id": str(uuid.uuid4()), "createdAt": now, "updatedAt": now, "projectId": project,
               "createdBy": "API", "prompt": data["prompt"], "name": data["name"],
               "version": latest["version"] + 1 if latest else 1, "type": data["type"],
               "isActive": None, "config": data["config"], "tags": tags, "labels": labels,
               "commitMessage": data["commitMessage"]}
        self._save_prompt(project, doc)
        return 201, self._prompt_out(doc)

    def list_prompts(self, project, _params, query, _body):
        issues = []
        page, limit = _page(query, issues, default_limit=10, page_min=1)
        version = query.get("version")
        if version is not None and not re.fullmatch(r"\s*-?\d+\s*", version):
            issues.append(_issue(["version"], "Invalid input: expected int", "invalid_type"))
        if issues:
            raise _zod(issues)
        rows = self.store.all("prompt", project)
        if query.get("name"):
            rows = [r for r in rows if r["name"] == query["name"]]
        if version:
            rows = [r for r in rows if r["version"] == int(version)]
        if query.get("label"):
            rows = [r for r in rows if query["label"] in r["labels"]]
        if query.get("tag"):
            rows = [r for r in rows if query["tag"] in r["tags"]]
        by_name: dict[str, list[dict]] = {}
        for row in rows:
            by_name.setdefault(row["name"], []).append(row)
        meta_rows = []
        for name in sorted(by_name):
            versions = sorted(by_name[name], key=lambda r: r["version"])
            meta_rows.append({
                "name": name, "tags": versions[-1]["tags"],
                "lastUpdatedAt": max(r["updatedAt"] for r in versions),
                "versions": [r["version"] for r in versions],
                "labels": sorted({label for r in versions for label in r["labels"]}),
                "type": versions[-1]["type"], "lastConfig": versions[-1]["config"]})
        data, meta = _paginate(meta_rows, page, limit)
        return 200, {"data": data, "meta": meta, "pagination": dict(meta)}

    def get_prompt(self, project, params, query, _body):
        name, label, raw_version = params["name"], query.get("label"), query.get("version")
        if raw_version is not None and not re.fullmatch(r"\s*-?\d+\s*", raw_version):
            raise _zod([_issue(["version"], "Invalid input: expected int", "invalid_type")])
        if query.get("resolve") not in (None, "true", "false"):
            raise _zod([_issue(["resolve"], 'Invalid option: expected one of "true"|"false"',
                               "invalid_value")])
        version = int(raw_version) if raw_version is not None else None
        if version and label:
            raise _invalid("Cannot specify both version and label")
        versions = self._versions(project, name)
        if version:
            found = [v for v in versions if v["version"] == version]
        else:
            found = [v for v in versions if (label or PRODUCTION_LABEL) in v["labels"]]
        if not found:
            message = f"Prompt not found: '{name}'"
            message += f" with version {version}" if version else \
                f" with label '{label or PRODUCTION_LABEL}'"
            raise _not_found(message)
        doc = self._prompt_out(found[0])
        doc["resolutionGraph"] = None  # the double does not resolve prompt dependency tags
        doc["isActive"] = PRODUCTION_LABEL in doc["labels"]
        return 200, doc

    def patch_prompt(self, project, params, _query, body):
        labels = body.get("newLabels") if isinstance(body, dict) else None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise _zod([_issue(["newLabels"], "Invalid input: expected array of strings",
                               "invalid_type")])
        if LATEST_LABEL in labels:
            raise _zod([_issue(["newLabels"], "Label 'latest' is always assigned to the latest "
                                              "prompt version")])
        name, raw = params["name"], params["version"]
        versions = self._versions(project, name)
        target = next((v for v in versions if re.fullmatch(r"\d+", raw)
                       and v["version"] == int(raw)), None)
        if target is None:
            raise _not_found(f"Prompt '{name}' version {raw} not found in project")
        now = _now()
        for other in versions:
            if other is not target and any(label in other["labels"] for label in labels):
                other["labels"] = [x for x in other["labels"] if x not in labels]
                other["updatedAt"] = now
                self._save_prompt(project, other)
        target["labels"] = list(dict.fromkeys(labels + target["labels"]))
        target["updatedAt"] = now
        self._save_prompt(project, target)
        return 200, self._prompt_out(target)

    # -- datasets ------------------------------------------------------------------------------
    @staticmethod
    def _dataset_out(doc: dict) -> dict:
        order = ["id", "projectId", "name", "description", "metadata", "inputSchema",
                 "expectedOutputSchema", "createdAt", "updatedAt"]
        return {k: doc.get(k) for k in order}

    def upsert_dataset(self, project, _params, _query, body):
        if not isinstance(body, dict):
            raise _zod([_issue([], "Invalid input: expected object", "invalid_type")])
        issues = []
        _string(body, "name", issues, required=True)
        _string(body, "description", issues, nullable=True)
        if body.get("metadata") is not None and not _is_json_value(body["metadata"], root=True):
            issues.append(_issue(["metadata"], "Invalid input", "invalid_union"))
        for key in ("inputSchema", "expectedOutputSchema"):
            if body.get(key) is not None and not isinstance(body[key], dict):
                issues.append(_issue([key], "Must be a valid JSON Schema"))
        if issues:
            raise _zod(issues)
        problems = _folder_name_problems(body["name"])
        if problems:
            raise _invalid("Dataset name not valid. " + json.dumps(
                [{"code": "custom", "path": [], "message": p} for p in problems]))
        existing = self.store.get("dataset", project, body["name"])
        now = _now()
        doc = existing or {"id": _cuid(), "projectId": project, "name": body["name"],
                           "description": None, "metadata": None, "inputSchema": None,
                           "expectedOutputSchema": None, "createdAt": now, "_seq": self._seq()}
        for key in ("description", "metadata"):
            if body.get(key) is not None:
                doc[key] = body[key]
        for key in ("inputSchema", "expectedOutputSchema"):
            if key in body:
                doc[key] = body[key]
        doc["updatedAt"] = now
        self.store.put("dataset", project, body["name"], doc)
        return 200, self._dataset_out(doc)

    def get_dataset(self, project, params, _query, _body):
        doc = self.store.get("dataset", project, params["name"])
        if doc is None:
            raise _not_found("Dataset not found")
        return 200, self._dataset_out(doc)

    def list_datasets(self, project, _params, query, _body):
        issues = []
        page, limit = _page(query, issues, default_limit=50, page_min=1)
        if issues:
            raise _zod(issues)
        rows = sorted(self.store.all("dataset", project), key=lambda d: (-d["_seq"], d["id"]))
        data, meta = _paginate([self._dataset_out(d) for d in rows], page, limit)
        return 200, {"data": data, "meta": meta}

    # -- dataset items -------------------------------------------------------------------------
    def _item_out(self, project: str, doc: dict) -> dict:
        datasets = {d["id"]: d["name"] for d in self.store.all("dataset", project)}
        order = ["id", "datasetId", "status", "input", "expectedOutput", "metadata",
                 "sourceTraceId", "sourceObservationId", "createdAt", "updatedAt"]
        out = {k: doc.get(k) for k in order}
        out["status"] = out["status"] or "ACTIVE"
        out["datasetName"] = datasets.get(doc["datasetId"])
        out["mediaReferences"] = []
        return out

    def upsert_item(self, project, _params, _query, body):
        if not isinstance(body, dict):
            raise _zod([_issue([], "Invalid input: expected object", "invalid_type")])
        issues = []
        _string(body, "datasetName", issues, required=True)
        _string(body, "id", issues, nullable=True, min_len=1, max_len=255)
        _string(body, "sourceTraceId", issues, nullable=True)
        _string(body, "sourceObservationId", issues, nullable=True)
        if body.get("status") is not None and body["status"] not in ("ACTIVE", "ARCHIVED"):
            issues.append(_issue(["status"], 'Invalid option: expected one of "ACTIVE"|"ARCHIVED"',
                                 "invalid_value"))
        if issues:
            raise _zod(issues)
        dataset = self.store.get("dataset", project, body["datasetName"])
        if dataset is None:
            raise _not_found(f"Dataset {body['datasetName']} not found for project {project}")
        item_id = body.get("id") or str(uuid.uuid4())
        existing = self.store.get("dataset_item", project, item_id) if body.get("id") else None
        if existing and existing["datasetId"] != dataset["id"]:
            raise _langfuse_error(409, "LangfuseConflictError", (
                f"Dataset item id {item_id} already exists in another dataset (id "
                f"{existing['datasetId']}) in this project; item ids are unique per project "
                f"across datasets. Use a different id or target dataset {existing['datasetId']}."))
        now = _now()
        doc = existing or {"id": item_id, "datasetId": dataset["id"], "status": "ACTIVE",
                           "input": None, "expectedOutput": None, "metadata": None,
                           "sourceTraceId": None, "sourceObservationId": None,
                           "createdAt": now, "_seq": self._seq()}
        for key in ("input", "expectedOutput", "metadata"):
            if body.get(key) == "":  # normalised to an explicit null: clears the field
                doc[key] = None
            elif body.get(key) is not None:  # absent or null keeps what is stored
                doc[key] = _item_json(body[key])
        for key in ("sourceTraceId", "sourceObservationId", "status"):
            if body.get(key) is not None:
                doc[key] = body[key]
        doc["updatedAt"] = now
        self.store.put("dataset_item", project, item_id, doc)
        return 200, self._item_out(project, doc)

    def get_item(self, project, params, _query, _body):
        doc = self.store.get("dataset_item", project, params["id"])
        if doc is None:
            raise _not_found("Dataset item not found")
        return 200, self._item_out(project, doc)

    def list_items(self, project, _params, query, _body):
        issues = []
        page, limit = _page(query, issues, default_limit=50, page_min=1)
        if query.get("version") and not query.get("datasetName"):
            issues.append(_issue(["datasetName"], "datasetName is required when version "
                                                  "parameter is provided"))
        if issues:
            raise _zod(issues)
        rows = self.store.all("dataset_item", project)
        if query.get("datasetName"):
            dataset = self.store.get("dataset", project, query["datasetName"])
            if dataset is None:
                raise _not_found("Dataset not found")
            rows = [r for r in rows if r["datasetId"] == dataset["id"]]
        for key in ("sourceTraceId", "sourceObservationId"):
            if query.get(key):
                rows = [r for r in rows if r.get(key) == query[key]]
        rows = [r for r in rows if (r.get("status") or "ACTIVE") == "ACTIVE"]
        rows.sort(key=lambda r: r["id"])
        rows.sort(key=lambda r: r["_seq"], reverse=True)
        data, meta = _paginate([self._item_out(project, r) for r in rows], page, limit)
        return 200, {"data": data, "meta": meta}


# --------------------------------------------------------------------------------------------
# Backing services
# --------------------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS organizations (id text PRIMARY KEY, name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS projects (id text PRIMARY KEY, org_id text NOT NULL
  REFERENCES organizations(id), name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS api_keys (id text PRIMARY KEY, public_key text UNIQUE NOT NULL,
  hashed_secret_key text NOT NULL, display_secret_key text NOT NULL, note text,
  project_id text NOT NULL REFERENCES projects(id), created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS users (id text PRIMARY KEY, email text UNIQUE NOT NULL, name text,
  password text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS organization_memberships (org_id text NOT NULL
  REFERENCES organizations(id), user_id text NOT NULL REFERENCES users(id), role text NOT NULL,
  PRIMARY KEY (org_id, user_id));
CREATE TABLE IF NOT EXISTS content_docs (kind text NOT NULL, project_id text NOT NULL,
  key text NOT NULL, doc jsonb NOT NULL, PRIMARY KEY (kind, project_id, key));
"""


class Backends:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self._pg_lock = threading.Lock()
        self._pg = None
        self._s3 = None

    # -- Postgres ------------------------------------------------------------------------------
    def pg(self):
        import psycopg2

        if self._pg is None or self._pg.closed:
            self._pg = psycopg2.connect(self.cfg["database_url"], connect_timeout=5)
            self._pg.autocommit = True
        return self._pg

    def sql(self, query: str, args: tuple = ()) -> list[tuple]:
        import psycopg2

        with self._pg_lock:
            for attempt in (1, 2):
                try:
                    with self.pg().cursor() as cur:
                        cur.execute(query, args)
                        return cur.fetchall() if cur.description else []
                except psycopg2.OperationalError:
                    self._pg = None
                    if attempt == 2:
                        raise
        return []

    # -- ClickHouse ----------------------------------------------------------------------------
    def clickhouse(self, query: str, data: bytes | None = None, **params: str) -> str:
        """One statement over ClickHouse's HTTP interface; values travel as {name:String}."""
        import urllib.error
        import urllib.request

        args = {"query": query, "database": self.cfg["clickhouse_db"]}
        args.update({f"param_{k}": v for k, v in params.items()})
        url = self.cfg["clickhouse_url"].rstrip("/") + "/?" + urlencode(args)
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        req.add_header("X-ClickHouse-User", self.cfg["clickhouse_user"])
        req.add_header("X-ClickHouse-Key", self.cfg["clickhouse_password"])
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"ClickHouse at {self.cfg['clickhouse_url']} answered "
                               f"{exc.code}: {exc.read().decode(errors='replace').strip()}") from None

    # -- S3 ------------------------------------------------------------------------------------
    def s3(self):
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            s3 = self.cfg["s3"]
            self._s3 = boto3.client(
                "s3", endpoint_url=s3["endpoint"] or None, region_name=s3["region"] or "us-east-1",
                aws_access_key_id=s3["access_key_id"] or None,
                aws_secret_access_key=s3["secret_access_key"] or None,
                config=Config(s3={"addressing_style": "path" if s3["force_path_style"] else "auto"},
                              retries={"max_attempts": 2}, connect_timeout=5, read_timeout=10))
        return self._s3

    # -- Redis ---------------------------------------------------------------------------------
    def redis(self):
        import redis

        r = self.cfg["redis"]
        if r["url"]:
            return redis.Redis.from_url(r["url"], socket_timeout=10, socket_connect_timeout=5)
        return redis.Redis(host=r["host"], port=r["port"], password=r["password"],
                           socket_timeout=10, socket_connect_timeout=5)

    # -- start-up checks and "migrations" ------------------------------------------------------
    def check_all(self, deadline: float) -> None:
        """Reach every backing service, retrying connection errors until the deadline."""
        import redis

        steps = [("Postgres (DATABASE_URL)", self._check_pg),
                 ("ClickHouse (CLICKHOUSE_*)", self._check_clickhouse),
                 ("Redis (REDIS_*)", lambda: self.redis().ping()),
                 ("S3 event bucket (LANGFUSE_S3_EVENT_UPLOAD_*)", self._check_s3)]
        for what, step in steps:
            while True:
                try:
                    step()
                    log.info("%s: OK", what)
                    break
                except redis.AuthenticationError as exc:
                    raise ConfigError(f"{what}: the password was refused ({exc})") from None
                except redis.ResponseError as exc:
                    raise ConfigError(f"{what}: {exc}") from None
                except ConfigError:
                    raise
                except Exception as exc:  # noqa: BLE001 - retried, then reported as is
                    if _is_auth_error(exc) or time.monotonic() > deadline:
                        raise ConfigError(f"{what}: {exc}") from None
                    log.warning("%s not reachable yet: %s", what, exc)
                    time.sleep(2)

    def _check_pg(self):
        self.sql("SELECT pg_advisory_lock(4242)")
        try:
            self.sql(SCHEMA)
        finally:
            self.sql("SELECT pg_advisory_unlock(4242)")

    def _check_clickhouse(self):
        # Only the web part runs migrations over the native port (contract langfuse-web: env).
        if self.cfg["clickhouse_migration_url"]:
            mig = urlsplit(self.cfg["clickhouse_migration_url"])
            if mig.scheme not in ("clickhouse", "tcp") or not mig.hostname:
                raise ConfigError("CLICKHOUSE_MIGRATION_URL must look like clickhouse://HOST:9000")
            with socket.create_connection((mig.hostname, mig.port or 9000), timeout=5):
                pass
        # Upstream's v4 worker writes events_full (contract langfuse-worker); one row per observation.
        self.clickhouse("CREATE TABLE IF NOT EXISTS events_full (project_id String, "
                        "trace_id String, id String, start_time String, body String) "
                        "ENGINE = MergeTree ORDER BY (project_id, trace_id, id)")

    def _check_s3(self):
        from botocore.exceptions import ClientError

        bucket = self.cfg["s3"]["bucket"]
        try:
            self.s3().head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"):
                raise ConfigError(f"S3 refused the credentials for bucket {bucket!r} at "
                                  f"{self.cfg['s3']['endpoint']} ({code})") from None
            if code in ("404", "NoSuchBucket"):
                raise ConfigError(f"bucket {bucket!r} does not exist at "
                                  f"{self.cfg['s3']['endpoint']}") from None
            raise

    def headless_init(self) -> None:
        """LANGFUSE_INIT_*: create what is missing, never update what exists (like upstream)."""
        init, salt = self.cfg["init"], self.cfg["salt"]
        org_id = init.get("org_id")
        if not org_id:
            return
        self.sql("INSERT INTO organizations (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (org_id, init.get("org_name") or "Provisioned Org"))
        project_id = init.get("project_id")
        if project_id:
            self.sql("INSERT INTO projects (id, org_id, name) VALUES (%s, %s, %s) "
                     "ON CONFLICT DO NOTHING",
                     (project_id, org_id, init.get("project_name") or "Provisioned Project"))
            pk, sk = init.get("project_public_key"), init.get("project_secret_key")
            if pk and sk:
                self.sql("INSERT INTO api_keys (id, public_key, hashed_secret_key, "
                         "display_secret_key, note, project_id) VALUES (%s, %s, %s, %s, %s, %s) "
                         "ON CONFLICT (public_key) DO NOTHING",
                         (str(uuid.uuid4()), pk, hash_secret(sk, salt), sk[:6] + "..." + sk[-4:],
                          "Provisioned API Key", project_id))
        email, password = init.get("user_email"), init.get("user_password")
        if email and password:
            email = email.lower()
            self.sql("INSERT INTO users (id, email, name, password) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT (email) DO NOTHING",
                     (str(uuid.uuid4()), email, init.get("user_name") or email,
                      hash_secret(password, salt)))
            self.sql("INSERT INTO organization_memberships (org_id, user_id, role) "
                     "SELECT %s, id, 'OWNER' FROM users WHERE email = %s ON CONFLICT DO NOTHING",
                     (org_id, email))
        log.info("headless initialisation applied (existing records left unchanged)")


def _is_auth_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("password authentication failed", "authentication failed",
                                   "516", "invalidaccesskeyid", "signaturedoesnotmatch",
                                   "does not exist"))


# --------------------------------------------------------------------------------------------
# Worker part: queue consumer
# --------------------------------------------------------------------------------------------

def process_job(backends: Backends, job: dict) -> int:
    """One ingestion job: read the decoded batch from S3, write observations to ClickHouse."""
    body = backends.s3().get_object(Bucket=job["bucket"], Key=job["key"])["Body"].read()
    spans = json.loads(body)
    now = _iso(time.time_ns())
    rows = []
    for span in spans:
        obs = span_to_observation(span, job["project_id"], now)
        rows.append(json.dumps({"project_id": job["project_id"], "trace_id": obs["traceId"],
                                "id": obs["id"], "start_time": obs["startTime"] or "",
                                "body": json.dumps(obs)}))
    if rows:
        backends.clickhouse("INSERT INTO events_full FORMAT JSONEachRow",
                            ("\n".join(rows) + "\n").encode())
    return len(rows)


def consume_forever(backends: Backends, stop: threading.Event, attempts: int = 5) -> None:
    client = None
    while not stop.is_set():
        job = None
        try:
            client = client or backends.redis()
            item = client.brpop([QUEUE], timeout=1)
            if not item:
                continue
            job = json.loads(item[1])
            count = process_job(backends, job)
            log.info("worker: stored %d observation(s) of project %s", count, job["project_id"])
        except Exception as exc:  # noqa: BLE001 - keep consuming, like a queue worker
            log.error("worker: ingestion job failed: %s", exc)
            # Put it back (e.g. ClickHouse restarting) unless it keeps failing.
            if job is not None and job.get("attempt", 1) < attempts:
                job["attempt"] = job.get("attempt", 1) + 1
                try:
                    client.lpush(QUEUE, json.dumps(job))
                except Exception:  # noqa: BLE001 - Redis itself is gone: the job is lost
                    log.error("worker: could not requeue the job; its events stay in S3 only")
            else:
                client = None
            stop.wait(2)


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    server_version = "langfuse-double"
    protocol_version = "HTTP/1.1"
    app: "App"

    def log_message(self, fmt, *args):  # quiet access log: path and status only
        log.debug("%s %s", self.address_string(), fmt % args)

    # -- helpers -------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            data = gzip.decompress(data)
        return data

    def send(self, status: int, payload=None, content_type="application/json", headers=None):
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload).encode()
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = payload or b""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def error(self, status: int, message: str, kind: str = "Error"):
        self.send(status, {"message": message, "error": kind})

    def project_for_key(self):
        """HTTP Basic public_key:secret_key -> (project_id, project_name, org_id, org_name)."""
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            self.error(401, "Unauthorized: no Basic auth header (public_key:secret_key)",
                       "UnauthorizedError")
            return None
        try:
            pk, sk = base64.b64decode(header[6:]).decode().split(":", 1)
        except ValueError:
            self.error(401, "Unauthorized: malformed Basic auth header", "UnauthorizedError")
            return None
        row = self.app.api_key(pk)
        if not row or not hmac.compare_digest(row[0], hash_secret(sk, self.app.cfg["salt"])):
            self.error(401, "Invalid credentials. Confirm that you've configured the correct host.",
                       "UnauthorizedError")
            return None
        return row[1:]

    # -- routing -------------------------------------------------------------------------------
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def do_PATCH(self):
        self._route("PATCH")

    def do_DELETE(self):
        self._route("DELETE")

    def _route(self, method: str):
        parts = urlsplit(self.path)
        path, query = parts.path.rstrip("/") or "/", parse_qs(parts.query)
        try:
            if self.server.part == "worker":
                return self.app.worker(self, method, path)
            return self.app.web(self, method, path, query)
        except Exception as exc:  # noqa: BLE001 - answer 500 like the real server, log cause
            log.exception("%s %s failed", method, path)
            return self.error(500, f"Internal Server Error: {exc}", "InternalServerError")


class App:
    def __init__(self, cfg: dict, backends: Backends, content: ContentApi | None = None,
                 keys: dict[str, tuple] | None = None):
        self.cfg = cfg
        self.backends = backends
        self.shutting_down = False
        self.sessions: dict[str, str] = {}
        self.csrf: set[str] = set()
        self._content = content
        # public key -> (hashed secret, project id, project name, org id, org name); None: Postgres
        self.keys = keys

    @property
    def content(self) -> ContentApi:
        """The content routes, stored in Postgres unless another store was given."""
        if self._content is None:
            self._content = ContentApi(PgContentStore(self.backends.sql),
                                       self.cfg.get("llm_connection_whitelist"))
        return self._content

    def api_key(self, public_key: str) -> tuple | None:
        if self.keys is not None:
            return self.keys.get(public_key)
        rows = self.backends.sql(
            "SELECT k.hashed_secret_key, p.id, p.name, o.id, o.name FROM api_keys k "
            "JOIN projects p ON p.id = k.project_id JOIN organizations o ON o.id = p.org_id "
            "WHERE k.public_key = %s", (public_key,))
        return rows[0] if rows else None

    def content_route(self, h: Handler, method: str, path: str, query: dict):
        """LLM connections, prompts, datasets (contract langfuse-web: content_api): the method
        is checked first (405), then the key (401), then the request."""
        name, _ = self.content.match(method, path)
        if name is None:
            return h.error(405, "Method not allowed", "MethodNotAllowedError")
        project = h.project_for_key()
        if not project:
            return None
        body = h._body() if method in ("POST", "PUT", "PATCH") else b""
        status, payload = self.content.call(method, path, {k: v[0] for k, v in query.items()},
                                            body, project[0])
        return h.send(status, payload)

    def worker(self, h: Handler, method: str, path: str):
        """The worker's own routes: health checks Postgres and Redis, ready also the shutdown."""
        if method == "GET" and path in ("/api/health", "/api/ready"):
            if path == "/api/ready" and self.shutting_down:
                return h.send(500, {"status": "error"})
            try:
                self.backends.sql("SELECT 1")
                self.backends.redis().ping()
            except Exception:  # noqa: BLE001 - any failure of a dependency is "error"
                return h.send(500, {"status": "error"})
            return h.send(200, {"status": "ok"})
        return h.error(404, "Not found", "NotFoundError")

    def web(self, h: Handler, method: str, path: str, query: dict):
        if path == "/api/public/health":
            if query.get("failIfDatabaseUnavailable", [""])[0] == "true":
                try:
                    self.backends.sql("SELECT 1")
                except Exception:  # noqa: BLE001
                    return h.send(503, {"status": "Database not available", "version": VERSION})
            return h.send(200, {"status": "OK", "version": VERSION})
        if path == "/api/public/ready":
            if self.shutting_down:
                return h.send(500, {"status": "Container is shutting down", "version": VERSION})
            return h.send(200, {"status": "OK", "version": VERSION})
        if path == "/api/public/otel/v1/traces" and method == "POST":
            return self.otel(h)
        if path == "/api/public/projects" and method == "GET":
            project = h.project_for_key()
            if project:
                pid, pname, oid, oname = project
                h.send(200, {"data": [{"id": pid, "name": pname, "metadata": {},
                                       "organization": {"id": oid, "name": oname}}]})
            return None
        if path == "/api/public/v2/observations" and method == "GET":
            return self.observations(h, query)
        if path == "/api/public/v2/metrics" and method == "GET":
            return self.metrics(h)
        if path == "/api/public/ingestion" and method == "POST":
            return self.legacy_ingestion(h)
        if path.startswith("/api/public/traces") or path.startswith("/api/public/observations"):
            # v4 (events_only write mode) no longer serves the v1 trace/observation reads.
            return h.error(404, "This endpoint is not available in the v4 write mode; use "
                                "/api/public/v2/observations", "NotFoundError")
        if self.content.match(method, path) is not None:
            return self.content_route(h, method, path, query)
        if path.startswith("/api/auth/"):
            return self.auth(h, method, path)
        if path == "/" and method == "GET":
            target = self.cfg["nextauth_url"] + "/auth/sign-in"
            return h.send(307, "", "text/plain", {"Location": target})
        if path in ("/auth/sign-in", "/auth/sign-up") and method == "GET":
            if path == "/auth/sign-up" and self.cfg["signup_disabled"]:
                return h.send(307, "", "text/plain",
                              {"Location": self.cfg["nextauth_url"] + "/auth/sign-in"})
            return h.send(200, "<!doctype html><title>Langfuse (test double)</title>"
                               "<h1>Langfuse test double</h1><p>Not the real Langfuse UI.</p>",
                          "text/html; charset=utf-8")
        return h.error(404, "Not found", "NotFoundError")

    # -- ingestion -----------------------------------------------------------------------------
    def otel(self, h: Handler):
        project = h.project_for_key()
        if not project:
            return None
        content_type = (h.headers.get("Content-Type") or "").lower()
        if "application/x-protobuf" not in content_type and "application/json" not in content_type:
            return h.send(400, {"error": "Invalid content type"})
        try:
            spans = decode_otlp(h._body(), content_type)
        except Exception as exc:  # noqa: BLE001 - a client error, as upstream answers
            return h.send(400, {"error": f"Invalid OTLP request: {exc}"})
        # Like upstream: the decoded batch goes to S3 as JSON and a job to the queue; only the
        # worker writes to ClickHouse, so nothing is visible while it is down.
        s3 = self.cfg["s3"]
        key = f"{s3['prefix']}otel/{project[0]}/{datetime.now(timezone.utc):%Y/%m/%d/%H/%M}/" \
              f"{uuid.uuid4()}.json"
        self.backends.s3().put_object(Bucket=s3["bucket"], Key=key, Body=json.dumps(spans).encode(),
                                      ContentType="application/json")
        job = {"project_id": project[0], "bucket": s3["bucket"], "key": key}
        self.backends.redis().lpush(QUEUE, json.dumps(job))
        log.info("web: accepted %d span(s) for project %s", len(spans), project[0])
        if "json" in content_type:
            return h.send(200, {})
        return h.send(200, b"", "application/x-protobuf")

    def legacy_ingestion(self, h: Handler):
        if not h.project_for_key():
            return None
        try:
            batch = json.loads(h._body() or b"{}").get("batch", [])
        except ValueError:
            return h.error(400, "Invalid JSON body", "InvalidRequestError")
        errors = [{"id": e.get("id"), "status": 400,
                   "message": f"Event type {e.get('type')} is not accepted by the v4 write mode; "
                              "send traces over OTLP (/api/public/otel/v1/traces)"}
                  for e in batch if e.get("type") not in ("score-create", "sdk-log")]
        successes = [{"id": e.get("id"), "status": 201}
                     for e in batch if e.get("type") in ("score-create", "sdk-log")]
        return h.send(207, {"successes": successes, "errors": errors})

    def observation_rows(self, project_id: str, trace_id: str = "") -> list[dict]:
        """The project's observations as the worker stored them (events_full, a JSON body a row)."""
        if trace_id:
            raw = self.backends.clickhouse(
                "SELECT * FROM events_full WHERE project_id = {project:String} "
                "AND trace_id = {trace:String} FORMAT JSONEachRow",
                project=project_id, trace=trace_id)
        else:
            raw = self.backends.clickhouse(
                "SELECT * FROM events_full WHERE project_id = {project:String} "
                "FORMAT JSONEachRow", project=project_id)
        return [json.loads(json.loads(line)["body"]) for line in raw.splitlines() if line.strip()]

    def metrics(self, h: Handler):
        """GET /api/public/v2/metrics as the contract (langfuse-web: metrics) says, for the subset
        in METRICS_*; the query is checked before ClickHouse is read, as upstream does."""
        project = h.project_for_key()
        if not project:
            return None
        # Read again keeping blanks: upstream answers "Invalid JSON" for an empty ?query=.
        raw = parse_qs(urlsplit(h.path).query, keep_blank_values=True).get("query")
        q, error = parse_metrics_query(raw)
        if error:
            return h.send(400, error)
        return h.send(200, {"data": compute_metrics(self.observation_rows(project[0]), q)})

    def observations(self, h: Handler, query: dict):
        """GET /api/public/v2/observations as the contract (langfuse-web: observations_v2) says."""
        project = h.project_for_key()
        if not project:
            return None
        invalid = {"message": "Invalid request data", "error": []}
        fields = ["core", "basic"]
        if query.get("fields"):
            # Unknown group names are dropped, as upstream's comma-separated enum parsing does.
            fields = [f.strip() for f in query["fields"][0].split(",") if f.strip() in FIELD_GROUPS]
        if query.get("parseIoAsJson", ["false"])[0] != "false":
            invalid["error"].append({"path": ["parseIoAsJson"], "message": "only false is accepted"})
        raw_limit = query.get("limit", ["50"])[0] or "50"
        if not raw_limit.isdigit() or not 0 <= int(raw_limit) <= 1000:
            invalid["error"].append({"path": ["limit"], "message": "an integer from 0 to 1000"})
        if invalid["error"]:
            return h.send(400, invalid)
        limit = int(raw_limit)
        after = None
        if query.get("cursor", [""])[0]:
            try:
                c = json.loads(base64.b64decode(query["cursor"][0], validate=True))
                after = (c["lastStartTimeTo"], _trace_hash(c["lastTraceId"]), c["lastId"])
            except (ValueError, KeyError, TypeError):
                return h.send(400, {"message": "Invalid cursor format", "error": "InvalidRequestError"})
        rows = self.observation_rows(project[0], query.get("traceId", [""])[0])
        for name in ("name", "userId", "sessionId", "type", "level", "parentObservationId",
                     "environment", "version"):
            wanted = query.get(name, [""])[0]
            if wanted:
                rows = [r for r in rows if str(r.get(name)) == wanted]

        # Upstream's order: start time, then a hash of the trace id, then the id, all descending.
        def order(r):
            return (r.get("startTime") or "", _trace_hash(r["traceId"]), r["id"])

        rows.sort(key=order, reverse=True)
        if after is not None:
            rows = [r for r in rows if order(r) < after]
        page = rows[:limit]
        meta = {}
        if len(rows) > limit and page:
            last = page[-1]
            meta["cursor"] = base64.b64encode(json.dumps(
                {"lastStartTimeTo": last.get("startTime"), "lastTraceId": last["traceId"],
                 "lastId": last["id"]}).encode()).decode()
        return h.send(200, {"data": [select_fields(r, fields) for r in page], "meta": meta})

    # -- NextAuth-style credentials sign-in ----------------------------------------------------
    def auth(self, h: Handler, method: str, path: str):
        if path == "/api/auth/csrf" and method == "GET":
            token = secrets.token_hex(32)
            self.csrf.add(token)
            return h.send(200, {"csrfToken": token})
        if path == "/api/auth/session" and method == "GET":
            cookie = h.headers.get("Cookie") or ""
            match = re.search(r"next-auth\.session-token=([0-9a-f]+)", cookie)
            email = self.sessions.get(match.group(1)) if match else None
            return h.send(200, {"user": {"email": email}} if email else {})
        if path == "/api/auth/callback/credentials" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(h._body().decode()).items()}
            if form.get("csrfToken") not in self.csrf:
                return h.send(302, "", "text/plain",
                              {"Location": self.cfg["nextauth_url"] + "/api/auth/signin?csrf=true"})
            rows = self.backends.sql("SELECT password FROM users WHERE email = %s",
                                     ((form.get("email") or "").lower(),))
            ok = bool(rows and rows[0][0] and hmac.compare_digest(
                rows[0][0], hash_secret(form.get("password") or "", self.cfg["salt"])))
            if not ok:
                url = self.cfg["nextauth_url"] + "/auth/sign-in?error=CredentialsSignin"
                return h.send(401 if form.get("json") == "true" else 302,
                              {"url": url} if form.get("json") == "true" else "",
                              headers={"Location": url})
            token = secrets.token_hex(32)
            self.sessions[token] = form["email"].lower()
            cookie = f"next-auth.session-token={token}; Path=/; HttpOnly; SameSite=Lax"
            url = self.cfg["nextauth_url"] + "/"
            if form.get("json") == "true":
                return h.send(200, {"url": url}, headers={"Set-Cookie": cookie})
            return h.send(302, "", "text/plain", {"Location": url, "Set-Cookie": cookie})
        return h.error(404, "Not found", "NotFoundError")


def listen_address(host: str) -> str:
    """Resolve the listen host like Node's server.listen(port, host): a name (Docker's container
    id in $HOSTNAME) binds to the address it resolves to, not to every interface."""
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    return infos[0][4][0]


def _serve(part: str, host: str, port: int, app: App) -> ThreadingHTTPServer:
    handler = type(f"{part.title()}Handler", (Handler,), {"app": app})
    address = listen_address(host)
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    server.part = part
    threading.Thread(target=server.serve_forever, name=part, daemon=True).start()
    log.info("%s part listening on %s:%d (HOSTNAME %s)", part, address, port, host)
    return server


def main() -> int:
    logging.basicConfig(level=os.environ.get("LANGFUSE_LOG_LEVEL", "info").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    log.info("Langfuse TEST DOUBLE %s (not the real Langfuse server)", VERSION)
    part = os.environ.get("LANGFUSE_DOUBLE_PART", "")
    try:
        contract = load_contract(part, os.environ.get("LANGFUSE_DOUBLE_CONTRACT")) if part in PARTS else {}
        cfg = load_config(dict(os.environ), part, contract)
        backends = Backends(cfg)
        backends.check_all(time.monotonic() + float(os.environ.get("LANGFUSE_DOUBLE_WAIT", "60")))
        if cfg["web"]:
            backends.headless_init()
    except ConfigError as exc:
        log.error("refusing to start: %s", exc)
        return 1
    stop = threading.Event()
    app = App(cfg, backends)
    if part == "worker":
        # Only the worker turns queued batches into visible traces: with it down, traces wait.
        threading.Thread(target=consume_forever, args=(backends, stop), daemon=True).start()
    servers = [_serve(part, cfg["host"], cfg["port"], app)]
    import signal

    def shutdown(signum, _frame):
        log.info("signal %d: shutting down", signum)
        app.shutting_down = True
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    while not stop.wait(1):
        pass
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
