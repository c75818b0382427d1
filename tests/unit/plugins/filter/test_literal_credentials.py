"""llmops.devbox.literal_credentials: secrets written into a LiteLLM model list."""

from __future__ import annotations

from ansible_collections.llmops.devbox.plugins.filter.literal_credentials import literal_credentials

PARAMS = ["api_key", "aws_secret_access_key"]


def test_literals_are_found_references_are_not():
    models = [
        {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-real"}},
        {"model_name": "ok", "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/OPENAI_API_KEY"}},
        {"model_name": "bedrock", "litellm_params": {"model": "bedrock/x", "aws_secret_access_key": "abc",
                                                     "aws_region_name": "us-east-1"}},
        {"litellm_params": {"model": "m", "api_key": "os.environ/bad name"}},
        {"model_name": "empty", "litellm_params": {"model": "m", "api_key": ""}},
        {"model_name": "no-params"},
        "not a mapping",
    ]
    assert literal_credentials(models, PARAMS) == [
        {"model_name": "gpt", "param": "api_key", "value": "sk-real"},
        {"model_name": "bedrock", "param": "aws_secret_access_key", "value": "abc"},
        {"model_name": "#3", "param": "api_key", "value": "os.environ/bad name"},
    ]


def test_mock_models_can_be_skipped():
    models = [{"model_name": "mock", "litellm_params": {"model": "m", "api_key": "not-used", "mock_response": "hi"}}]
    assert literal_credentials(models, PARAMS, skip_mock=True) == []
    assert literal_credentials(models, PARAMS) == [{"model_name": "mock", "param": "api_key", "value": "not-used"}]


def test_nothing_to_look_at():
    assert literal_credentials(None, PARAMS) == [] and literal_credentials([], PARAMS) == []
