"""A real LiteLLM proxy (pinned, own venv) configured by the litellm role's templates, the Langfuse
stack of test images in Docker (web published on loopback; tests/integration/langfuse_stack.py), and
llmops.devbox.litellm_trace_check run through Ansible.

Models answer with `mock_response`, so no provider is ever called; the "broken" model points at a
closed loopback port. The first run builds .cache/litellm-venv (~1-2 min).
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
import urllib.parse
import urllib.request
import uuid

import pytest
from langfuse_stack import started_stack
from litellm_env import (
    ROLE,
    Proxy,
    ensure_litellm_venv,
    free_port,
    render_role,
    run_trace_check,
)

PK, SK = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
SECRETS = {"master_key": "sk-" + secrets.token_hex(32), "salt_key": "sk-" + secrets.token_hex(32),
           "postgres_password": secrets.token_hex(16)}
MASTER = SECRETS["master_key"]
CLOSED = f"http://127.0.0.1:{free_port()}"  # nothing listens here
# Whose box the proxy runs on; the box name is not a valid Langfuse environment name as it stands.
OWNER, BOX, BOX_ENVIRONMENT = "alice", "Devbox-1.example.com", "devbox-1-example-com"


def model_list():
    return [
        {"model_name": "mock-a",
         "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "fake", "mock_response": "pong"}},
        {"model_name": "broken",
         "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "fake", "api_base": CLOSED + "/v1"}},
    ]


def role_vars(langfuse_host):
    # What the role deploys on the local target: no database, offline cost map. The role's preflight
    # would refuse a loopback Langfuse host (inside a container); here the proxy runs on the host.
    return {"litellm_database_enabled": False, "litellm_local_model_cost_map": True,
            "litellm_model_list": model_list(), "litellm_fallbacks": [], "litellm_num_retries": 0,
            "litellm_request_timeout": 20, "litellm_langfuse_host": langfuse_host,
            "litellm_langfuse_public_key": PK, "litellm_langfuse_secret_key": SK,
            "litellm_box_owner": OWNER, "litellm_box_name": BOX}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("litellm-it")


@pytest.fixture(scope="module")
def litellm():
    return ensure_litellm_venv()


def start_proxy(litellm, workdir, name, langfuse_host):
    out = workdir / name
    out.mkdir()
    config, env = render_role(out, role_vars(langfuse_host), SECRETS)
    return Proxy(litellm, config, env, workdir, name).start()


@pytest.fixture(scope="module")
def double():
    """The Langfuse stack (web and worker doubles, real Postgres and Redis) with this test's keys."""
    yield from started_stack("pytest-litellm", PK, SK)


@pytest.fixture(scope="module")
def proxy(litellm, workdir, double):
    p = start_proxy(litellm, workdir, "with-langfuse", double.url)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def proxy_langfuse_down(litellm, workdir):
    p = start_proxy(litellm, workdir, "langfuse-down", CLOSED)
    yield p
    p.stop()


def check(workdir, proxy_url, langfuse_url, **args):
    args = {"proxy_url": proxy_url, "master_key": MASTER, "langfuse_url": langfuse_url,
            "langfuse_public_key": PK, "langfuse_secret_key": SK, "timeout": 30, **args}
    ok, result, raw = run_trace_check(workdir, **args)
    assert MASTER not in raw and SK not in raw, "a secret reached Ansible's output"
    return ok, result


def observations(double, trace_id=None, **where):
    query = urllib.parse.urlencode({**({"traceId": trace_id} if trace_id else {}),
                                    "fields": "core,basic,usage,trace_context", **where})
    req = urllib.request.Request(f"{double.url}/api/public/v2/observations?{query}")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["data"]


def completion(proxy, model="mock-a", key=MASTER):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    req = urllib.request.Request(f"{proxy.url}/v1/chat/completions", method="POST", data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    start = time.monotonic()
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read()), time.monotonic() - start


# --- the role's config, judged by LiteLLM itself (what the role's validate step runs) --------------

def test_role_config_validates_in_database_mode(litellm, workdir):
    """Database mode cannot start here (Prisma engines are not downloadable), but its config can be validated."""
    out = workdir / "db-mode"
    out.mkdir()
    config, env = render_role(out, {"litellm_langfuse_public_key": PK, "litellm_langfuse_secret_key": SK}, SECRETS)
    assert env["DATABASE_URL"].startswith("postgresql://litellm:")
    proc = subprocess.run([str(litellm), "--config", str(config), "--validate_config"], capture_output=True, text=True,
                          timeout=180, env={**env, "PATH": f"{litellm.parent}:/usr/bin:/bin", "HOME": str(out)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "config OK (2 models)" in proc.stdout


def test_invalid_config_is_refused_with_litellms_message(litellm, workdir):
    out = workdir / "invalid"
    out.mkdir()
    bad = {**role_vars(CLOSED), "litellm_litellm_settings_extra": {"callbacks": ["no_such_callback"]}}
    config, env = render_role(out, bad, SECRETS)
    proc = subprocess.run([str(litellm), "--config", str(config), "--validate_config"], capture_output=True, text=True,
                          timeout=180, env={**env, "PATH": f"{litellm.parent}:/usr/bin:/bin", "HOME": str(out)})
    assert proc.returncode == 1
    assert "config validation failed" in proc.stderr


def test_the_price_check_names_the_models_litellms_cost_map_cannot_price(litellm, workdir):
    """The role's $0 warning, with LiteLLM 1.108.7's shipped cost map (what the role runs in the image)."""
    out = workdir / "prices"
    out.mkdir()
    models = [
        {"model_name": "claude-sonnet",
         "litellm_params": {"model": "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"}},
        {"model_name": "profile", "litellm_params": {
            "model": "bedrock/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"}},
        {"model_name": "priced-profile", "litellm_params": {"model": "bedrock/arn:aws:bedrock:us-east-1:1:x"}},
        {"model_name": "demo",
         "litellm_params": {"model": "openai/demo-sonnet", "api_key": "x", "mock_response": "hi"}},
    ]
    prices = {"priced-profile": {"input_cost_per_token": 3e-6}}
    config, _ = render_role(out, {**role_vars(CLOSED), "litellm_model_list": models, "litellm_model_prices": prices},
                            SECRETS)
    proc = subprocess.run([str(litellm.parent / "python"), str(ROLE / "files" / "llmops_price_check.py"), str(config)],
                          capture_output=True, text=True, timeout=180,
                          env={"PATH": f"{litellm.parent}:/usr/bin:/bin", "HOME": str(out),
                               "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [m["model_name"] for m in json.loads(proc.stdout.splitlines()[-1])] == ["profile", "demo"]


# --- trace check: success and the failure paths ------------------------------------------------

def test_trace_visible_in_langfuse(workdir, proxy, double):
    ok, result = check(workdir, proxy.url, double.url, metadata={"trace_user_id": "it-user"})
    assert ok, result.get("msg")
    assert result["changed"] is False
    assert result["model"] == "mock-a"
    assert result["models"] == ["mock-a", "broken"]
    assert result["usage"]["total_tokens"] > 0
    assert result["cost"] and result["cost"] > 0
    assert result["langfuse_api_version"] == "4"
    assert 0 <= result["seconds_until_visible"] < 30
    # The generation Langfuse holds is the one the module sent, under the module's trace id.
    obs = [o for o in observations(double, result["trace_id"]) if o["type"] == "GENERATION"]
    assert len(obs) == 1
    assert obs[0]["traceId"] == result["trace_id"]


def test_failed_completion_is_traced_as_error(workdir, proxy, double):
    ok, result = check(workdir, proxy.url, double.url, model="broken")
    assert not ok
    assert result["failure"] == "completion_failed"
    assert "Connection error" in result["msg"] or "APIConnectionError" in result["msg"], result["msg"]
    # The failure callback sends the failed call to Langfuse too, as an ERROR observation.
    deadline = time.monotonic() + 30
    levels = []
    while time.monotonic() < deadline and "ERROR" not in levels:
        levels = [o.get("level") for o in observations(double, result["trace_id"])]
        time.sleep(0.5)
    assert "ERROR" in levels


def test_wrong_langfuse_keys(workdir, proxy, double):
    ok, result = check(workdir, proxy.url, double.url, langfuse_secret_key=f"sk-lf-{uuid.uuid4()}")
    assert not ok
    assert result["failure"] == "langfuse_keys_rejected"
    assert "pk-lf-" in result["hint"]


def test_completion_failed_closed_port_model(workdir, proxy_langfuse_down):
    ok, result = check(workdir, proxy_langfuse_down.url, CLOSED, model="broken")
    assert not ok
    assert result["failure"] == "completion_failed"
    assert result["completion_status"] >= 500
    assert "Connection error" in result["msg"] or "APIConnectionError" in result["msg"], result["msg"]


def test_wrong_master_key(workdir, proxy_langfuse_down):
    ok, result = check(workdir, proxy_langfuse_down.url, CLOSED, master_key="sk-" + secrets.token_hex(32))
    assert not ok
    assert result["failure"] == "proxy_key_rejected"
    assert "/etc/litellm/master_key" in result["hint"]


def test_proxy_unreachable(workdir):
    ok, result = check(workdir, CLOSED, CLOSED)
    assert not ok
    assert result["failure"] == "proxy_unreachable"
    assert "connection refused" in result["msg"]


def test_langfuse_down_completions_succeed_check_fails_with_hint(workdir, proxy_langfuse_down):
    status, body, seconds = completion(proxy_langfuse_down)
    assert status == 200 and body["choices"][0]["message"]["content"] == "pong"
    assert seconds < 5  # the export to Langfuse never blocks the client
    ok, result = check(workdir, proxy_langfuse_down.url, CLOSED, timeout=4)
    assert not ok
    assert result["failure"] == "trace_not_visible"
    assert result["usage"]["total_tokens"] > 0  # the completion itself went through
    assert "INSIDE" in result["hint"] and "localhost" in result["hint"]


# --- attribution: the proxy, not the client, says whose call it was -----------------------------

def generations(double, trace_id=None, want=1, timeout=30, **where):
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        found = [o for o in observations(double, trace_id, **where) if o["type"] == "GENERATION"]
        if len(found) >= want:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{want} generation(s) never became visible: {found}")


def openai_client(proxy):
    import openai  # the official SDK, as editors and scripts use it

    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=MASTER, max_retries=0)


def test_a_client_cannot_replace_the_box_owner_in_the_trace(proxy, double):
    trace_id = uuid.uuid4().hex
    reply = openai_client(proxy).chat.completions.create(
        model="mock-a", messages=[{"role": "user", "content": "hi"}], user="bob",
        extra_body={"metadata": {"trace_id": trace_id, "trace_user_id": "bob",
                                 "tags": ["owner:bob", "box:bobs-box", "feature-7"]}})
    assert reply.choices[0].message.content == "pong"
    [generation] = generations(double, trace_id)
    assert generation["userId"] == OWNER
    assert generation["environment"] == BOX_ENVIRONMENT
    tags = generation["tags"]
    assert {f"box:{BOX}", f"owner:{OWNER}", "model_group:mock-a", "feature-7"} <= set(tags), tags
    assert not {"owner:bob", "box:bobs-box"} & set(tags), tags
    assert generation["totalCost"] and generation["totalCost"] > 0


# Another environment, project or host per request: LiteLLM 1.108.7 refuses these itself unless an
# admin opts in (allow_client_side_credentials), which the role never sets; the callback drops them too.
@pytest.mark.parametrize("body", [{"langfuse_environment": "bobs-box"},
                                  {"metadata": {"langfuse_environment": "bobs-box"}},
                                  {"metadata": {"langfuse_public_key": "pk-lf-other", "langfuse_host": "http://x"}}])
def test_litellm_itself_refuses_langfuse_settings_in_the_request(proxy, body):
    import openai

    with pytest.raises(openai.AuthenticationError, match="is not allowed in request body"):
        openai_client(proxy).chat.completions.create(
            model="mock-a", messages=[{"role": "user", "content": "hi"}], extra_body=body)


def test_clines_task_is_a_session_of_one_trace_per_call(proxy, double):
    session = f"cline-{uuid.uuid4().hex.upper()[:26]}"  # Cline sends litellm_session_id: cline-<task ULID>
    client = openai_client(proxy)
    for _ in range(2):
        client.chat.completions.create(model="mock-a", messages=[{"role": "user", "content": "hi"}],
                                       extra_body={"litellm_session_id": session})
    found = generations(double, sessionId=session, want=2)
    assert len(found) == 2
    assert len({g["traceId"] for g in found}) == 2, "the calls of one task were piled into one trace"
    assert {g["userId"] for g in found} == {OWNER}


def test_a_failed_call_is_attributed_too(workdir, proxy, double):
    ok, result = check(workdir, proxy.url, double.url, model="broken")
    assert not ok and result["failure"] == "completion_failed"
    errors = [g for g in generations(double, result["trace_id"]) if g["level"] == "ERROR"] or [
        o for o in observations(double, result["trace_id"]) if o.get("level") == "ERROR"]
    assert errors and errors[0]["userId"] == OWNER and errors[0]["environment"] == BOX_ENVIRONMENT
