# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Options of the HTTP client every module that calls a web API uses
(argument spec: module_utils/_http.py, http_args)."""

from __future__ import annotations


class ModuleDocFragment:
    # A module with another default for request_timeout gives it (only) in its own options.
    DOCUMENTATION = r"""
options:
  validate_certs:
    description:
      - Verify the TLS certificate of every C(https://) URL the module calls.
    type: bool
    default: true
  request_timeout:
    description:
      - Seconds one HTTP request may take.
    type: float
    default: 10
"""
