"""The shared argument specs (module_utils) match what the doc fragments say about them."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.llmops.devbox.plugins.doc_fragments import (
    http_client,
    langfuse_project_api,
    langfuse_url,
    poll,
)
from ansible_collections.llmops.devbox.plugins.module_utils._http import http_args
from ansible_collections.llmops.devbox.plugins.module_utils._langfuse_api import (
    PROJECT_API_ARGS,
    project_api_args,
    url_args,
)
from ansible_collections.llmops.devbox.plugins.module_utils._poll import poll_args


def documented(fragment):
    return yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]


@pytest.mark.parametrize("fragment, spec", [
    (http_client, http_args()),
    (langfuse_url, url_args()),
    (poll, poll_args(timeout=60, interval=1)),
])
def test_each_fragment_documents_its_spec(fragment, spec):
    docs = documented(fragment)
    assert set(docs) == set(spec)
    for name, option in spec.items():
        assert docs[name]["type"] == option["type"], name
        assert docs[name].get("default") in (None, option.get("default")), name
        assert bool(docs[name].get("required")) == bool(option.get("required")), name


def test_project_api_args_are_url_keys_and_http_options_with_the_old_timeout_alias():
    spec = project_api_args()
    assert set(spec) == {"url", "public_key", "secret_key", "validate_certs", "request_timeout"}
    assert spec["url"] == {"type": "str", "required": True}
    assert spec["secret_key"]["no_log"] is True
    assert spec["request_timeout"] == {"type": "float", "default": 10, "aliases": ["timeout"]}
    assert documented(langfuse_project_api)["request_timeout"] == {"aliases": ["timeout"]}
    assert PROJECT_API_ARGS == spec


def test_module_defaults_replace_the_shared_ones():
    spec = project_api_args(url_default="http://127.0.0.1:3000", request_timeout=60)
    assert spec["url"] == {"type": "str", "default": "http://127.0.0.1:3000"}
    assert spec["request_timeout"]["default"] == 60
    assert url_args(required=False) == {"url": {"type": "str", "required": False}}
    assert http_args(request_timeout=120)["request_timeout"] == {"type": "float", "default": 120}
    # Every call makes a new spec: one module's changes never leak into another's.
    assert http_args() is not http_args() and http_args()["request_timeout"]["default"] == 10
