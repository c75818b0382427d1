# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
name: box_environment
short_description: Turn a box name into a Langfuse tracing environment name
version_added: 0.2.0
description:
  - Langfuse accepts an environment name only when it matches C(^(?!langfuse)[a-z0-9-_]+$) (LiteLLM
    1.108.7 checks the same pattern and sends traces to the default environment otherwise).
  - Lowercases the name, replaces each run of other characters with C(-), trims C(-) at both ends,
    prefixes C(box-) when the result starts with C(langfuse) and cuts it to 40 characters.
  - The exact box name still reaches Langfuse as the tag C(box:<name>).
  - This file also provides C(attribution_problems), C(model_price_problems), C(with_model_prices) and
    C(master_key_holders) (users whose Cline key is the proxy's master key, from slurped
    C(<user>.cline-key.sha256) files).
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  _input:
    description: The box name, e.g. V(devbox-1.example.com).
    type: str
    required: true
"""

EXAMPLES = r"""
# 'Dev_Box.1.example.com' -> 'dev_box-1-example-com'
environment: "{{ litellm_box_name | llmops.devbox.box_environment }}"
"""

RETURN = r"""
_value:
  description: The environment name (empty when nothing usable is left).
  type: str
"""

import base64  # noqa: E402
import hashlib  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from collections.abc import Mapping  # noqa: E402

ENVIRONMENT_LIMIT = 40
# Longest owner or box name accepted (they become a user id and tags in every trace).
NAME_LIMIT = 200
# Per-model price keys LiteLLM reads from litellm_params (custom pricing), USD.
PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token")

_OTHER = re.compile(r"[^a-z0-9_-]+")


def box_environment(name):
    """The Langfuse environment name for a box name ('' when none can be made)."""
    if not isinstance(name, str):
        return ""
    text = _OTHER.sub("-", name.strip().lower()).strip("-")
    if text.startswith("langfuse"):
        text = "box-" + text
    return text[:ENVIRONMENT_LIMIT].rstrip("-")


def attribution_problems(owner, box):
    """What is wrong with the owner and box name a proxy stamps on every trace (one line each)."""
    problems = []
    for label, value in (("litellm_box_owner (devbox_owner)", owner), ("litellm_box_name (devbox_name)", box)):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{label} is empty: every trace would be anonymous; set it in the inventory")
            continue
        if value != value.strip():
            problems.append(f"{label} starts or ends with white space")
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            problems.append(f"{label} contains a control character (newline, tab, ...)")
        if len(value) > NAME_LIMIT:
            problems.append(f"{label} is longer than {NAME_LIMIT} characters")
    if isinstance(box, str) and box.strip() and not box_environment(box):
        problems.append("litellm_box_name (devbox_name) has no letter or digit to make a Langfuse environment name")
    return problems


def _price_ok(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def model_price_problems(prices, model_list):
    """What is wrong with litellm_model_prices: unknown model names, unknown keys, bad numbers."""
    if not isinstance(prices, Mapping):
        return ["litellm_model_prices must be a mapping of model_name to {input_cost_per_token, output_cost_per_token}"]
    names = {entry.get("model_name") for entry in model_list or [] if isinstance(entry, Mapping)}
    problems = []
    for name, price in prices.items():
        if name not in names:
            problems.append(f"litellm_model_prices names {name!r}, which is no model_name in litellm_model_list")
        if not isinstance(price, Mapping) or not price:
            problems.append(f"litellm_model_prices[{name!r}] must map {' and/or '.join(PRICE_KEYS)} to a number")
            continue
        for key, value in price.items():
            if key not in PRICE_KEYS:
                problems.append(f"litellm_model_prices[{name!r}] has {key!r}; "
                                f"use {' or '.join(PRICE_KEYS)} (USD per token)")
            elif not _price_ok(value):
                problems.append(f"litellm_model_prices[{name!r}].{key} must be a number >= 0 (USD per token), "
                                f"not {value!r}")
    return problems


def with_model_prices(model_list, prices):
    """The model list with each litellm_model_prices entry written into its litellm_params."""
    if not isinstance(prices, Mapping) or not prices:
        return model_list
    result = []
    for entry in model_list or []:
        price = prices.get(entry.get("model_name")) if isinstance(entry, Mapping) else None
        if isinstance(price, Mapping):
            entry = dict(entry)
            entry["litellm_params"] = {**(entry.get("litellm_params") or {}), **dict(price)}
        result.append(entry)
    return result


# Where role code_server records the SHA-256 of the key it handed to Cline: <user>.cline-key.sha256.
CLINE_KEY_SUFFIX = ".cline-key.sha256"


def master_key_holders(slurped, master_key):
    """Users whose Cline key is the proxy's master key.

    slurped: the results of ansible.builtin.slurp over the <user>.cline-key.sha256 files (a loop's
    `results`); master_key: the master key file's text. Unreadable files and an empty key give no user.
    """
    key = (master_key or "").strip()
    if not key:
        return []
    wanted = hashlib.sha256(key.encode("utf-8")).hexdigest()
    users = []
    for result in slurped or []:
        if not isinstance(result, Mapping) or not result.get("content"):
            continue
        try:
            recorded = base64.b64decode(result["content"]).decode("utf-8").strip()
        except (ValueError, UnicodeDecodeError):
            continue
        name = os.path.basename(str(result.get("source") or (result.get("item") or {}).get("path") or ""))
        if recorded == wanted and name.endswith(CLINE_KEY_SUFFIX):
            users.append(name[: -len(CLINE_KEY_SUFFIX)])
    return sorted(users)


class FilterModule:
    """Usage attribution and pricing for the LiteLLM proxy."""

    def filters(self):
        return {
            "box_environment": box_environment,
            "attribution_problems": attribution_problems,
            "model_price_problems": model_price_problems,
            "with_model_prices": with_model_prices,
            "master_key_holders": master_key_holders,
        }
