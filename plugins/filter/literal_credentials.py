# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
name: literal_credentials
short_description: Find credentials written as values in a LiteLLM model list
version_added: 0.1.0
description:
  - Looks through the C(litellm_params) of every entry of a LiteLLM C(model_list) for the parameters
    named in O(params) (C(api_key), C(aws_secret_access_key), ...) whose value is not a reference to
    the environment (C(os.environ/NAME)), i.e. a credential that would be written into the config file.
  - With O(skip_mock=true) an entry with C(litellm_params.mock_response) is skipped - it answers with
    that text and never calls a provider, so its key is never sent anywhere.
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  _input:
    description: The model list (a list of mappings with C(model_name) and C(litellm_params)).
    type: list
    elements: dict
    required: true
  params:
    description: Names of the credential parameters.
    type: list
    elements: str
    required: true
  skip_mock:
    description: Skip entries that answer with C(mock_response).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Refuse literal API keys
  ansible.builtin.assert:
    that: litellm_model_list | llmops.devbox.literal_credentials(['api_key'], skip_mock=true) | length == 0
"""

RETURN = r"""
_value:
  description: One entry per literal credential found, in list order.
  type: list
  elements: dict
  contains:
    model_name:
      description: The entry's C(model_name) (or C(#<index>) when it has none).
      type: str
    param:
      description: The parameter name, e.g. V(api_key).
      type: str
    value:
      description: The literal value (a secret - never show it).
      type: raw
"""

import re  # noqa: E402
from collections.abc import Mapping  # noqa: E402

_REFERENCE = re.compile(r"os\.environ/[A-Za-z_][A-Za-z0-9_]*\Z")


def literal_credentials(model_list, params, skip_mock=False):
    found = []
    if not isinstance(model_list, (list, tuple)):
        return found
    wanted = set(params or [])
    for index, entry in enumerate(model_list):
        if not isinstance(entry, Mapping):
            continue
        litellm_params = entry.get("litellm_params")
        if not isinstance(litellm_params, Mapping):
            continue
        if skip_mock and "mock_response" in litellm_params:
            continue
        name = entry.get("model_name")
        name = str(name) if name is not None else f"#{index}"
        for param in sorted(wanted & set(litellm_params), key=str):
            value = litellm_params[param]
            if value in (None, "") or (isinstance(value, str) and _REFERENCE.match(value)):
                continue
            found.append({"model_name": name, "param": param, "value": value})
    return found


class FilterModule:
    """LiteLLM model list checks."""

    def filters(self):
        return {"literal_credentials": literal_credentials}
