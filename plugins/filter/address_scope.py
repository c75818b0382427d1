# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
name: address_scope
short_description: Say whether a listen address is loopback, the any-address, another address or none
version_added: 0.1.0
description:
  - Classifies the host address a port is published on, as Docker reads it in a Compose C(ports) entry.
  - V(loopback) for 127.0.0.0/8 and V(::1) (also written V([::1]) or as an IPv4-mapped IPv6 address);
    V(any) for V(0.0.0.0) and V(::) (every interface); V(remote) for any other IP address;
    V(invalid) for anything that is not an IP address (host names included - Docker needs an address).
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  _input:
    description: The address, e.g. V(127.0.0.1), V(10.0.1.10), V(::1).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse a public bind without the opt-in
  ansible.builtin.assert:
    that: (langfuse_bind_address | llmops.devbox.address_scope) == 'loopback' or langfuse_allow_remote_bind
"""

RETURN = r"""
_value:
  description: One of V(loopback), V(any), V(remote), V(invalid).
  type: str
"""

import ipaddress  # noqa: E402


def address_scope(value):
    """loopback | any | remote | invalid."""
    if not isinstance(value, str):
        return "invalid"
    text = value.strip()
    if text != value or not text:
        return "invalid"
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return "invalid"
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if getattr(address, "scope_id", None):
        return "remote"
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "any"
    return "remote"


class FilterModule:
    """Listen address classification."""

    def filters(self):
        return {"address_scope": address_scope}
