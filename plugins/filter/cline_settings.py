# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
name: cline_settings
short_description: Merge the LiteLLM preset into one of Cline's settings files
version_added: 0.1.0
description:
  - Returns the document role C(code_server) writes to one of Cline's JSON settings files, given
    what the file holds now (O(_input)) and the file's preset (O(spec)).
  - The LiteLLM preset (C(soft) and C(force) keys) is applied when the file has no LiteLLM entry
    yet (the key path C(marker) is missing) or when O(overwrite) is set; C(soft) keys fill only
    gaps unless overwriting. A C(preset) of V(false) turns both off.
  - The API key follows a rotation. When the key at C(key_path) is the one this role handed to
    Cline last time (its SHA-256 is O(handed_sha256)) and differs from O(key), the new key
    replaces it, and nothing else changes. A key the user put there themselves is kept unless
    O(overwrite) is set.
  - C(enforce) keys (the operator's telemetry choice) are set whatever the file holds.
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  _input:
    description: The file's current document (a mapping; V({}) when the file does not exist).
    type: dict
    required: true
  spec:
    description:
      - The file's preset, with keys C(marker) (key path whose presence means "LiteLLM is set
        up"), C(soft), C(force), C(enforce), C(preset) and C(key_path) (key path of the API key,
        optional).
    type: dict
    required: true
  overwrite:
    description: Apply the preset even when the file already has a LiteLLM entry.
    type: bool
    default: false
  key:
    description: The API key Cline should hold now.
    type: str
    default: ""
  handed_sha256:
    description: SHA-256 (hex) of the key this role wrote into the file last time; empty when unknown.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Merge the preset into providers.json
  ansible.builtin.set_fact:
    doc: "{{ current | llmops.devbox.cline_settings(spec, overwrite=false, key=key, handed_sha256=sha) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The document to write (equal to O(_input) when nothing needs to change).
  type: dict
"""

import copy  # noqa: E402
import hashlib  # noqa: E402
from collections.abc import Mapping  # noqa: E402

from ansible.errors import AnsibleFilterError  # noqa: E402

_MISSING = object()


def _get(doc, path):
    for part in path:
        if not isinstance(doc, Mapping) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


def _merge(base, extra):
    """Recursive dict merge: values of extra win, nested mappings are merged."""
    out = dict(base)
    for name, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(name), Mapping):
            out[name] = _merge(out[name], value)
        else:
            out[name] = copy.deepcopy(value)
    return out


def _nested(path, value):
    doc = value
    for part in reversed(path):
        doc = {part: doc}
    return doc


def cline_settings(current, spec, overwrite=False, key="", handed_sha256=""):
    if not isinstance(current, Mapping):
        raise AnsibleFilterError("cline_settings: the settings file does not hold a JSON object")
    if not isinstance(spec, Mapping) or "marker" not in spec:
        raise AnsibleFilterError("cline_settings: spec needs at least a marker key path")
    doc = dict(current)
    present = _get(doc, spec["marker"]) is not _MISSING
    if spec.get("preset", True) and (not present or overwrite):
        soft = dict(spec.get("soft") or {})
        if not overwrite:
            soft = {k: v for k, v in soft.items() if k not in doc}
        doc = _merge(_merge(doc, soft), spec.get("force") or {})
    elif spec.get("preset", True) and spec.get("key_path") and key and handed_sha256:
        held = _get(doc, spec["key_path"])
        if isinstance(held, str) and held != key and \
                hashlib.sha256(held.encode("utf-8")).hexdigest() == handed_sha256.strip().lower():
            doc = _merge(doc, _nested(spec["key_path"], key))
    return _merge(doc, spec.get("enforce") or {})


class FilterModule:
    def filters(self):
        return {"cline_settings": cline_settings}
