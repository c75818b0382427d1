# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""The option url of the modules that talk to a Langfuse web server
(argument spec: module_utils/_langfuse_api.py, url_args and project_api_args)."""

from __future__ import annotations


class ModuleDocFragment:
    # A module where url is optional overrides required (and adds its default) in its own options.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the Langfuse web server as seen from the host running the module,
        for example V(http://127.0.0.1:3000). No trailing C(/api/...) path.
    type: str
    required: true
"""
