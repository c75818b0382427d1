"""The Langfuse double's start-up checks and its span -> observation mapping (no services needed)."""

import json

import pytest

GOOD = {
    "DATABASE_URL": "postgresql://postgres:pw@postgres:5432/postgres",
    "SALT": "salt",
    "ENCRYPTION_KEY": "ab" * 32,
    "NEXTAUTH_URL": "http://10.0.0.5:3000",
    "NEXTAUTH_SECRET": "secret",
    "CLICKHOUSE_URL": "http://clickhouse:8123",
    "CLICKHOUSE_MIGRATION_URL": "clickhouse://clickhouse:9000",
    "CLICKHOUSE_USER": "clickhouse",
    "CLICKHOUSE_PASSWORD": "pw",
    "CLICKHOUSE_CLUSTER_ENABLED": "false",
    "LANGFUSE_S3_EVENT_UPLOAD_BUCKET": "langfuse",
    "LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE": "true",
    "REDIS_HOST": "redis",
    "REDIS_AUTH": "pw",
    "LANGFUSE_INIT_ORG_ID": "org",
    "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": "pk-lf-1",
    "LANGFUSE_INIT_PROJECT_SECRET_KEY": "sk-lf-1",
}


def config(langfuse, env, part="web"):
    return langfuse.load_config(env, part, langfuse.load_contract(part))


def test_upstream_like_environment_is_accepted(langfuse):
    cfg = config(langfuse, GOOD)
    assert cfg["web"] is True and cfg["s3"]["force_path_style"] is True
    assert cfg["init"]["project_public_key"] == "pk-lf-1"


def test_worker_environment_has_no_web_part(langfuse):
    env = {k: v for k, v in GOOD.items() if not k.startswith("NEXTAUTH")}
    assert config(langfuse, env, "worker")["web"] is False


def test_unknown_part_is_refused(langfuse):
    with pytest.raises(langfuse.ConfigError, match="LANGFUSE_DOUBLE_PART"):
        langfuse.load_config(GOOD, "both", {})


@pytest.mark.parametrize(("change", "message"), [
    ({"NEXTAUTH_URL": "localhost:3000"}, "NEXTAUTH_URL must be a URL"),
    ({"ENCRYPTION_KEY": "0" * 63}, "ENCRYPTION_KEY must be 256 bits"),
    ({"CLICKHOUSE_CLUSTER_ENABLED": None}, "CLICKHOUSE_CLUSTER_ENABLED=false"),
    ({"LANGFUSE_S3_EVENT_UPLOAD_BUCKET": None}, "LANGFUSE_S3_EVENT_UPLOAD_BUCKET is required"),
    ({"SALT": ""}, "SALT is required"),
    ({"LANGFUSE_INIT_PROJECT_SECRET_KEY": "secret"}, "must start with sk-lf-"),
    ({"DATABASE_URL": "mysql://x"}, "postgresql:// URL"),
    ({"REDIS_PORT": "63 79"}, "REDIS_PORT must be a port number"),
])
def test_bad_settings_are_refused_with_the_variable_named(langfuse, change, message):
    env = dict(GOOD)
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    with pytest.raises(langfuse.ConfigError, match=message.replace("(", r"\(")):
        config(langfuse, env)


def test_secret_hash_depends_on_salt(langfuse):
    assert langfuse.hash_secret("sk-lf-1", "a") != langfuse.hash_secret("sk-lf-1", "b")


# One span as LiteLLM's `langfuse` callback exports it (attribute values are strings).
SPAN = {
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "span_id": "b7ad6b7169203331",
    "parent_span_id": None,
    "name": "litellm-acompletion",
    "start_ns": 1_700_000_000_000_000_000,
    "end_ns": 1_700_000_001_500_000_000,
    "status_code": 0,
    "status_message": "",
    "scope": "langfuse-sdk",
    "resource": {},
    "attributes": {
        "langfuse.observation.type": "generation",
        "langfuse.observation.level": "DEFAULT",
        "langfuse.observation.input": json.dumps({"messages": [{"role": "user", "content": "hi"}]}),
        "langfuse.observation.output": json.dumps({"role": "assistant", "content": "hello"}),
        "langfuse.observation.model.name": "claude-sonnet",
        "langfuse.observation.model.parameters": json.dumps({"max_tokens": 10}),
        "langfuse.observation.usage_details": json.dumps({"input": 10, "output": 20, "total": 30}),
        "langfuse.observation.cost_details": json.dumps({"total": 0.5}),
        "langfuse.observation.metadata.team": "a",
        "langfuse.trace.name": "chat",
        "langfuse.trace.tags": json.dumps(["t1"]),
        "user.id": "u1",
        "session.id": "s1",
    },
}


def test_litellm_generation_span_maps_to_observation(langfuse):
    obs = langfuse.span_to_observation(SPAN, "devbox", "now")
    assert obs["id"] == "b7ad6b7169203331" and obs["traceId"] == SPAN["trace_id"]
    assert (obs["type"], obs["level"], obs["projectId"]) == ("GENERATION", "DEFAULT", "devbox")
    assert obs["startTime"] == "2023-11-14T22:13:20.000Z" and obs["latency"] == 1.5
    assert obs["usageDetails"] == {"input": 10, "output": 20, "total": 30}
    assert obs["totalCost"] == 0.5 and obs["providedModelName"] == "claude-sonnet"
    assert obs["modelParameters"] == {"max_tokens": 10}
    assert (obs["userId"], obs["sessionId"], obs["traceName"], obs["tags"]) == ("u1", "s1", "chat", ["t1"])
    assert obs["metadata"] == {"team": "a"}


@pytest.mark.parametrize("attributes,resource,environment", [
    ({}, {}, "default"),
    ({}, {"langfuse.environment": "devbox-1"}, "devbox-1"),  # where the SDK and LiteLLM put it
    ({"langfuse.environment": "span-env"}, {"langfuse.environment": "devbox-1"}, "span-env"),
    ({"deployment.environment": "dep"}, {"langfuse.environment": "devbox-1"}, "devbox-1"),  # key order first
    ({}, {"deployment.environment.name": "dep-name", "deployment.environment": "dep"}, "dep-name"),
])
def test_environment_is_read_as_upstream_reads_it(langfuse, attributes, resource, environment):
    """contracts/langfuse-web.yml, facts.otel_attribution.environment."""
    span = {**SPAN, "attributes": {**SPAN["attributes"], **attributes}, "resource": resource}
    assert langfuse.span_to_observation(span, "devbox", "now")["environment"] == environment


def test_failed_span_becomes_error_observation(langfuse):
    span = dict(SPAN, status_code=2, status_message="upstream 500", attributes={})
    obs = langfuse.span_to_observation(span, "devbox", "now")
    assert (obs["type"], obs["level"], obs["statusMessage"]) == ("SPAN", "ERROR", "upstream 500")


def test_field_groups_and_io_always_as_strings(langfuse):
    obs = langfuse.span_to_observation(SPAN, "devbox", "now")
    core_only = langfuse.select_fields(obs, ["core"])
    assert set(core_only) == set(langfuse.FIELD_GROUPS["core"])
    io = langfuse.select_fields(obs, ["io"])
    assert isinstance(io["input"], str) and isinstance(io["output"], str)
    assert "usageDetails" in langfuse.select_fields(obs, ["usage"])
