# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Options of the modules that poll until something is ready
(argument spec and loop: module_utils/_poll.py, poll_args and poll)."""

from __future__ import annotations


class ModuleDocFragment:
    # Defaults differ by module: each module gives them (only) in its own options.
    DOCUMENTATION = r"""
options:
  timeout:
    description:
      - Seconds to keep polling before failing. V(0) polls exactly once.
    type: int
  interval:
    description:
      - Seconds to sleep between two polls.
    type: float
notes:
  - Each HTTP request of a poll may take at most the time left before O(timeout) (but at least one
    second), so the module does not run far past O(timeout).
"""
