# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Redaction of text that leaves a box in the operations playbooks (logs.yml, diagnose.yml).

``ops_redact`` masks every secret value read from the box (as P(llmops.devbox.mask_secrets#filter)
does: also URL-encoded, JSON-escaped and env-file escaped forms, overlapping values as one mask), then
applies the token/password patterns of playbooks/vars/ops.yml (``_ops_redact_patterns``) in order.
``ops_log_errors`` picks the last error lines of each container's log and redacts them.

Documentation: ops_redact.yml and ops_log_errors.yml next to this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.mask_secrets import mask_secrets
from ansible_collections.llmops.devbox.plugins.module_utils._values import is_list as _is_list

MASK = "********"
# Jinja's truncate filter lets a text run this many characters over its length before cutting it.
_LEEWAY = 5


def _compile(patterns, who):
    if patterns is None:
        return []
    if not _is_list(patterns):
        raise AnsibleFilterError(f"{who}: patterns must be a list of [regular expression, replacement] pairs, "
                                 f"got {type(patterns).__name__}")
    compiled = []
    for index, pair in enumerate(patterns):
        if not _is_list(pair) or len(pair) != 2 or not all(isinstance(part, str) for part in pair):
            raise AnsibleFilterError(f"{who}: patterns[{index}] must be a [regular expression, replacement] pair "
                                     "of strings")
        try:
            compiled.append((re.compile(pair[0]), pair[1]))
        except re.error as exc:
            raise AnsibleFilterError(f"{who}: patterns[{index}] is not a regular expression ({exc})") from exc
    return compiled


def _redact_one(text, secrets, compiled, mask, min_length, who="ops_redact"):
    text = "" if text is None else text if isinstance(text, str) else str(text)
    text = mask_secrets(text, secrets, mask=mask, min_length=min_length)
    for regex, replacement in compiled:
        try:
            text = regex.sub(replacement, text)
        except (re.error, IndexError) as exc:
            raise AnsibleFilterError(
                f"{who}: replacement {replacement!r} of {regex.pattern!r} is invalid ({exc})") from exc
    return text


def _secrets(secrets, who):
    if secrets is not None and not _is_list(secrets) and not isinstance(secrets, Mapping):
        raise AnsibleFilterError(f"{who}: secrets must be a list of secret values, got {type(secrets).__name__}")
    return secrets or []


def ops_redact(text, secrets, patterns, mask=MASK, min_length=4):
    """Text (or each text of a list) with every secret value and every token/password pattern masked."""
    secrets = _secrets(secrets, "ops_redact")
    compiled = _compile(patterns, "ops_redact")
    if _is_list(text):
        return [_redact_one(item, secrets, compiled, mask, min_length) for item in text]
    return _redact_one(text, secrets, compiled, mask, min_length)


def _truncate(text, width):
    if len(text) <= width + _LEEWAY:
        return text
    return text[:max(width - 3, 0)] + "..."


def ops_log_errors(results, error_regex, benign_regex, secrets, patterns, keep=5, width=300, mask=MASK):
    """{container: [its last error lines, redacted]} from the looped results of docker logs."""
    who = "ops_log_errors"
    if not _is_list(results):
        raise AnsibleFilterError(f"{who}: the input must be the results list of a looped task, "
                                 f"got {type(results).__name__}")
    try:
        errors, benign = re.compile(error_regex), re.compile(benign_regex)
    except (re.error, TypeError) as exc:
        raise AnsibleFilterError(f"{who}: error_regex and benign_regex must be regular expressions ({exc})") from exc
    secrets = _secrets(secrets, who)
    compiled = _compile(patterns, who)
    try:
        keep, width = int(keep), int(width)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"{who}: keep and width must be integers ({exc})") from exc
    out = {}
    for index, result in enumerate(results):
        if not isinstance(result, Mapping):
            raise AnsibleFilterError(f"{who}: results[{index}] must be a mapping (one loop result), "
                                     f"got {type(result).__name__}")
        if "stdout" not in result:
            continue
        lines = [line for line in str(result["stdout"] or "").splitlines()
                 if errors.search(line) and not benign.search(line)]
        masked = [_truncate(_redact_one(line, secrets, compiled, mask, 4, who), width)
                  for line in (lines[-keep:] if keep > 0 else [])]
        if masked:
            out[result.get("item")] = masked
    return out


class FilterModule:
    """Redaction."""

    def filters(self):
        return {
            "ops_redact": ops_redact,
            "ops_log_errors": ops_log_errors,
        }
