"""roles/litellm/files/llmops_price_check.py: which models would be logged at $0.

The role runs it in the proxy image against LiteLLM's shipped cost map (molecule/litellm checks the
warning on a real box); here the cost map is a stand-in dictionary."""

from __future__ import annotations

import importlib.util
from pathlib import Path

FILE = Path(__file__).resolve().parents[4] / "roles" / "litellm" / "files" / "llmops_price_check.py"
spec = importlib.util.spec_from_file_location("llmops_price_check_under_test", FILE)
price_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(price_check)

COST_MAP = {"bedrock/us.anthropic.claude-sonnet-4-5": {"input_cost_per_token": 3.3e-6,
                                                       "output_cost_per_token": 1.65e-5},
            "openai/free-tier": {"input_cost_per_token": 0, "output_cost_per_token": 0}}


def lookup(model):
    if model not in COST_MAP:
        raise Exception(f"This model isn't mapped yet. model={model}")
    return COST_MAP[model]


def entry(name, model, **params):
    return {"model_name": name, "litellm_params": {"model": model, **params}}


def test_models_the_map_prices_pass():
    assert price_check.unpriced([entry("claude-sonnet", "bedrock/us.anthropic.claude-sonnet-4-5")], lookup) == []


def test_unknown_and_zero_priced_models_are_reported():
    models = [entry("profile", "bedrock/arn:aws:bedrock:us-east-1:1:application-inference-profile/x"),
              entry("free", "openai/free-tier"), entry("sonnet", "bedrock/us.anthropic.claude-sonnet-4-5")]
    assert price_check.unpriced(models, lookup) == [
        {"model_name": "profile", "model": "bedrock/arn:aws:bedrock:us-east-1:1:application-inference-profile/x"},
        {"model_name": "free", "model": "openai/free-tier"}]


def test_an_own_price_or_a_priced_base_model_counts():
    models = [entry("profile", "bedrock/arn:x", input_cost_per_token=3e-6),
              {**entry("azure", "azure/my-deployment"),
               "model_info": {"base_model": "bedrock/us.anthropic.claude-sonnet-4-5"}}]
    assert price_check.unpriced(models, lookup) == []


def test_a_zero_own_price_does_not_count():
    assert price_check.unpriced([entry("p", "bedrock/arn:x", input_cost_per_token=0)], lookup) == [
        {"model_name": "p", "model": "bedrock/arn:x"}]
