"""roles/litellm/files/llmops_attribution.py: what a client sends cannot change whose trace it is.

The proxy-level proof, with a real LiteLLM and the Langfuse double, is
tests/integration/test_litellm_attribution.py; this checks the rewrite rule by rule."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

FILE = Path(__file__).resolve().parents[4] / "roles" / "litellm" / "files" / "llmops_attribution.py"


@pytest.fixture()
def hook(monkeypatch):
    monkeypatch.setenv("LLMOPS_BOX_OWNER", "alice")
    monkeypatch.setenv("LLMOPS_BOX_NAME", "devbox-1")
    spec = importlib.util.spec_from_file_location("llmops_attribution_under_test", FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rewrite(hook, data):
    return asyncio.run(hook.attribution.async_pre_call_hook(None, None, data, "completion"))


def test_a_bare_request_gets_owner_box_and_model_group(hook):
    data = rewrite(hook, {"model": "claude-sonnet", "messages": []})
    assert data["metadata"]["trace_user_id"] == "alice"
    assert data["metadata"]["tags"] == ["box:devbox-1", "owner:alice", "model_group:claude-sonnet"]
    assert "session_id" not in data["metadata"] and "trace_id" not in data["metadata"]


def test_a_client_cannot_pose_as_another_engineer_or_box(hook):
    data = rewrite(hook, {
        "model": "claude-sonnet", "user": "bob",
        "langfuse_public_key": "pk-lf-other", "langfuse_host": "http://evil", "langfuse_environment": "bobs-box",
        "metadata": {"trace_user_id": "bob", "existing_trace_id": "t-of-bob", "update_trace_keys": ["user_id"],
                     "tags": ["owner:bob", "box:bobs-box", "model_group:x", "feature-7"],
                     "langfuse_environment": "bobs-box", "langfuse_secret_key": "sk-lf-other"},
    })
    metadata = data["metadata"]
    assert metadata["trace_user_id"] == "alice"
    assert metadata["tags"] == ["feature-7", "box:devbox-1", "owner:alice", "model_group:claude-sonnet"]
    for key in ("existing_trace_id", "update_trace_keys", "langfuse_environment", "langfuse_secret_key"):
        assert key not in metadata
    for key in ("langfuse_public_key", "langfuse_host", "langfuse_environment"):
        assert key not in data


def test_litellm_metadata_routes_are_rewritten_too(hook):
    data = rewrite(hook, {"model": "m", "litellm_metadata": {"trace_user_id": "bob"}})
    assert data["litellm_metadata"]["trace_user_id"] == "alice"
    assert "metadata" not in data


def test_clines_task_becomes_the_session_and_each_call_its_own_trace(hook):
    first = rewrite(hook, {"model": "m", "litellm_session_id": "cline-01JTASK"})
    second = rewrite(hook, {"model": "m", "litellm_session_id": "cline-01JTASK"})
    assert first["metadata"]["session_id"] == second["metadata"]["session_id"] == "cline-01JTASK"
    assert first["metadata"]["trace_id"] != second["metadata"]["trace_id"]
    assert len(first["metadata"]["trace_id"]) == 32


def test_a_clients_own_trace_id_and_session_are_kept(hook):
    data = rewrite(hook, {"model": "m", "litellm_session_id": "cline-1",
                          "metadata": {"trace_id": "verify-123", "session_id": "s-1", "tags": "not-a-list"}})
    assert data["metadata"]["trace_id"] == "verify-123"
    assert data["metadata"]["session_id"] == "s-1"
    assert data["metadata"]["tags"] == ["box:devbox-1", "owner:alice", "model_group:m"]


def test_a_proxy_without_owner_or_box_refuses_to_start(hook, monkeypatch):
    monkeypatch.delenv("LLMOPS_BOX_OWNER")
    with pytest.raises(RuntimeError, match="LLMOPS_BOX_OWNER and LLMOPS_BOX_NAME must be set"):
        hook.Attribution()
