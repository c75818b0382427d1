# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Options of the modules that call Langfuse's public API with a project key pair
(argument spec: module_utils/_langfuse_api.py, PROJECT_API_ARGS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the Langfuse web server as seen from the host running the module,
        for example V(http://127.0.0.1:3000).
    type: str
    required: true
  public_key:
    description:
      - Public key (C(pk-lf-...)) of an API key of the Langfuse project the module works in.
    type: str
    required: true
  secret_key:
    description:
      - Secret key (C(sk-lf-...)) of that API key. Never printed.
    type: str
    required: true
  validate_certs:
    description: Verify the TLS certificate of O(url).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: float
    default: 10
"""
