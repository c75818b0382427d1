# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
name: mask_secrets
short_description: Replace every known secret value in text before it is shown
version_added: 0.1.0
description:
  - Replaces each occurrence of every secret in O(_input) by O(mask), so log lines of a failed
    container can go into an error message.
  - Besides the value as it is, the forms it takes in URLs (percent-encoded, with C(+) for spaces),
    in JSON and Python strings (escaped) and in env files (escaped) are masked too. Occurrences
    that overlap (one secret inside or across another) become one mask, so no part is left visible.
  - Secrets shorter than O(min_length) characters and empty ones are not masked (they would turn
    ordinary words of a log line into masks); non-string secrets are masked as their string.
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  _input:
    description: Text, or a list of texts (each masked).
    type: raw
    required: true
  secrets:
    description:
      - Secret values. A mapping counts by its values, a list may nest lists and mappings;
        V(null) entries are ignored.
    type: raw
    required: true
  mask:
    description: What every occurrence is replaced by.
    type: str
    default: "********"
  min_length:
    description: Secrets shorter than this are left alone.
    type: int
    default: 4
seealso:
  - plugin: llmops.devbox.env_file_value
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Show the failed container's last log lines without any secret
  ansible.builtin.debug:
    msg: "{{ logs.stdout_lines | llmops.devbox.mask_secrets([master_key, db_url] + extra_env.values() | list) }}"
"""

RETURN = r"""
_value:
  description: O(_input) with every secret replaced; a list when O(_input) is a list.
  type: raw
"""

import json  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from urllib.parse import quote, quote_plus  # noqa: E402

from ansible.errors import AnsibleFilterError  # noqa: E402


def _flatten(secrets):
    if secrets is None:
        return
    if isinstance(secrets, Mapping):
        secrets = list(secrets.values())
    if isinstance(secrets, (list, tuple, set)):
        for item in secrets:
            yield from _flatten(item)
        return
    if isinstance(secrets, bytes):
        secrets = secrets.decode("utf-8", "replace")
    yield str(secrets)


def _forms(secret: str):
    """The shapes one secret value takes in log lines."""
    yield secret
    yield quote(secret, safe="")
    yield quote(secret)
    yield quote_plus(secret)
    yield json.dumps(secret)[1:-1]
    yield json.dumps(secret, ensure_ascii=False)[1:-1]
    yield repr(secret)[1:-1]
    yield secret.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")  # double-quoted env value
    yield secret.replace("'", "\\'")  # single-quoted env value, docker-style escaping


def mask_secrets(_input, secrets, mask="********", min_length=4):
    """Replace every occurrence of every secret (and its encoded forms) in text or a list of texts."""
    try:
        min_length = int(min_length)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"mask_secrets: min_length must be an integer ({exc})") from exc
    forms = sorted({form for secret in _flatten(secrets) if len(secret) >= min_length
                    for form in _forms(secret) if len(form) >= min_length}, key=lambda f: (-len(f), f))

    def one(text):
        if text is None:
            return text
        text = text if isinstance(text, str) else str(text)
        # Every occurrence of every form, overlapping ones too; each run of covered characters
        # becomes one mask, so two secrets that overlap leave no part of either visible.
        covered = [False] * len(text)
        for form in forms:
            start = text.find(form)
            while start != -1:
                covered[start:start + len(form)] = [True] * len(form)
                start = text.find(form, start + 1)
        if not any(covered):
            return text
        out, i = [], 0
        while i < len(text):
            if covered[i]:
                while i < len(text) and covered[i]:
                    i += 1
                out.append(mask)
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    if isinstance(_input, (list, tuple)):
        return [one(item) for item in _input]
    return one(_input)


class FilterModule:
    """Secret masking."""

    def filters(self):
        return {"mask_secrets": mask_secrets}
