"""llmops.devbox.box_environment, attribution_problems, model_price_problems, with_model_prices."""

from __future__ import annotations

import re

import pytest

from ansible_collections.llmops.devbox.plugins.filter.usage_attribution import (
    attribution_problems,
    box_environment,
    model_price_problems,
    with_model_prices,
)

# Langfuse's (and LiteLLM 1.108.7's) rule for an environment name.
LANGFUSE_ENVIRONMENT = re.compile(r"^(?!langfuse)[a-z0-9-_]+$")


@pytest.mark.parametrize("name,environment", [
    ("devbox-1", "devbox-1"),
    ("Dev_Box.1.example.com", "dev_box-1-example-com"),
    ("  alice's box #2 ", "alice-s-box-2"),
    ("langfuse-central", "box-langfuse-central"),
    ("LANGFUSE", "box-langfuse"),
    ("x" * 60, "x" * 40),
    ("a" * 39 + ".b", "a" * 39),  # no trailing dash after the cut
    ("...", ""),
    ("", ""),
    (None, ""),
])
def test_box_environment(name, environment):
    assert box_environment(name) == environment
    if environment:
        assert LANGFUSE_ENVIRONMENT.match(environment) and len(environment) <= 40


@pytest.mark.parametrize("owner,box", [("alice", "devbox-1"), ("alice@example.com", "box.example.com"),
                                       ("O'Brien $HOME {{ x }}", "b#1")])
def test_usual_and_odd_but_printable_names_pass(owner, box):
    assert attribution_problems(owner, box) == []


@pytest.mark.parametrize("owner,box,needle", [
    ("", "devbox-1", "litellm_box_owner (devbox_owner) is empty"),
    ("alice", "  ", "litellm_box_name (devbox_name) is empty"),
    (None, "devbox-1", "litellm_box_owner (devbox_owner) is empty"),
    ("alice\nmallory", "devbox-1", "control character"),
    ("alice", "box\t1", "control character"),
    (" alice", "devbox-1", "white space"),
    ("a" * 201, "devbox-1", "longer than 200"),
    ("alice", "...", "no letter or digit"),
])
def test_bad_names_are_refused_with_the_variable_to_change(owner, box, needle):
    problems = attribution_problems(owner, box)
    assert any(needle in problem for problem in problems), problems


MODELS = [{"model_name": "claude-x", "litellm_params": {"model": "bedrock/arn:aws:bedrock:profile/x"}},
          {"model_name": "claude-sonnet", "litellm_params": {"model": "bedrock/us.anthropic.claude-sonnet-4-5"}}]


def test_prices_are_written_into_the_named_models_params_only():
    priced = with_model_prices(MODELS, {"claude-x": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.5e-5}})
    assert priced[0]["litellm_params"] == {"model": "bedrock/arn:aws:bedrock:profile/x",
                                           "input_cost_per_token": 3e-6, "output_cost_per_token": 1.5e-5}
    assert priced[1] == MODELS[1]
    assert "input_cost_per_token" not in MODELS[0]["litellm_params"], "the input list was changed"
    assert with_model_prices(MODELS, {}) == MODELS


def test_good_prices_pass():
    prices = {"claude-x": {"input_cost_per_token": 0, "output_cost_per_token": 1.5e-5}}
    assert model_price_problems(prices, MODELS) == []


@pytest.mark.parametrize("prices,needle", [
    ({"claude-y": {"input_cost_per_token": 1e-6}}, "'claude-y', which is no model_name"),
    ({"claude-x": {"input_cost_per_million": 3}}, "use input_cost_per_token or output_cost_per_token"),
    ({"claude-x": {"input_cost_per_token": -1e-6}}, "must be a number >= 0"),
    ({"claude-x": {"input_cost_per_token": "3e-6"}}, "must be a number >= 0"),
    ({"claude-x": {"input_cost_per_token": True}}, "must be a number >= 0"),
    ({"claude-x": {"input_cost_per_token": float("nan")}}, "must be a number >= 0"),
    ({"claude-x": {}}, "must map input_cost_per_token"),
    ({"claude-x": 3e-6}, "must map input_cost_per_token"),
    (["claude-x"], "must be a mapping"),
])
def test_bad_prices_are_refused(prices, needle):
    problems = model_price_problems(prices, MODELS)
    assert any(needle in problem for problem in problems), problems


def _slurp(path, text):
    import base64

    return {"item": {"path": path}, "source": path, "content": base64.b64encode(text.encode()).decode()}


def test_master_key_holders_are_the_users_whose_cline_key_is_the_master_key():
    import hashlib

    from ansible_collections.llmops.devbox.plugins.filter.usage_attribution import master_key_holders

    master = "sk-master"
    sha = hashlib.sha256(master.encode()).hexdigest()
    slurped = [_slurp("/var/lib/llmops-devbox/code_server/admin.cline-key.sha256", sha + "\n"),
               _slurp("/var/lib/llmops-devbox/code_server/alice.cline-key.sha256",
                      hashlib.sha256(b"sk-virtual").hexdigest()),
               {"item": {"path": "/x/bob.cline-key.sha256"}, "failed": True, "msg": "unreadable"},
               _slurp("/x/notes.txt", sha)]
    assert master_key_holders(slurped, master + "\n") == ["admin"]
    assert master_key_holders(slurped, "") == []
    assert master_key_holders([], master) == []
