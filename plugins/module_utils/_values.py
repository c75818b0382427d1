# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Small value helpers shared by the operations filters (ops_diagnose, ops_status, ops_port_forward,
ops_redact): one definition of "a list", "as text" and Jinja's unique."""

from __future__ import annotations

from collections.abc import Sequence


def is_list(value):
    """A list or tuple, not a string."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def text(value):
    """The value as text; None is ''."""
    return "" if value is None else str(value)


def unique(items):
    """Like Jinja's unique: first occurrence kept, strings compared case-insensitively."""
    seen, out = set(), []
    for item in items:
        key = item.lower() if isinstance(item, str) else item
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
