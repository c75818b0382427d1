# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""The option project_dir of the modules that act inside the langfuse role's Compose project
(argument spec: module_utils/_stack.py, PROJECT_DIR_ARG)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  project_dir:
    description: The Langfuse Compose project folder (C(langfuse_project_dir)).
    type: path
    required: true
"""
