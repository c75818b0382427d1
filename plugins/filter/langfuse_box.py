# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""The one rule for "which Langfuse does this box report to".

A box in [langfuse] reports to its own Langfuse (all-in-one, or the central box that is also a dev
box); any other box reports to the first host of [langfuse] (fleet). No [langfuse] host: ''.
playbooks/litellm.yml (what the proxy is configured with) and the operations playbooks (what
diagnose and verify expect) both ask this filter, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError


def langfuse_box(host, groups):
    """Inventory name of the Langfuse box that host reports to ('' when the inventory has none)."""
    if not isinstance(host, str) or not host:
        raise AnsibleFilterError("langfuse_box: the input must be an inventory host name")
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError("langfuse_box: pass the magic variable groups, e.g. inventory_hostname | "
                                 "llmops.devbox.langfuse_box(groups)")
    langfuse = groups.get("langfuse") or []
    if isinstance(langfuse, (str, bytes)) or not isinstance(langfuse, Sequence):
        raise AnsibleFilterError("langfuse_box: groups['langfuse'] must be a list of host names")
    if host in langfuse:
        return host
    return langfuse[0] if langfuse else ""


class FilterModule:
    def filters(self):
        return {"langfuse_box": langfuse_box}
