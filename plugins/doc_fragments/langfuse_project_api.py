# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""The project key pair of the modules that call Langfuse's public API with it
(argument spec: module_utils/_langfuse_api.py, project_api_args and PROJECT_API_ARGS).

Use it together with llmops.devbox.langfuse_url (url) and llmops.devbox.http_client (validate_certs,
request_timeout). Of request_timeout it only adds the alias timeout, the name these modules gave
that option before it was shared."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
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
  request_timeout:
    aliases: [timeout]
"""
