# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
name: connect_address
short_description: The address that reaches, on the box itself, a service bound to a listen address
version_added: 0.2.0
description:
  - The one rule for turning a bind address (a role's C(*_bind_address)) into the address that tasks, health checks,
    URLs and SSH port forwards on the same box connect to.
  - A wildcard bind is reached on the loopback address of its own family. V(0.0.0.0) gives V(127.0.0.1);
    V(::) (also written V([::]) or V(::ffff:0.0.0.0)) gives V(::1), because Docker publishes a port bound to V(::)
    on IPv6 only, so V(127.0.0.1) would miss it while V(::1) always reaches it.
  - An empty address or V(*) (every interface of both families, as Docker and OpenSSH read it) gives V(127.0.0.1).
  - Any other address gives itself, without brackets (an IPv4-mapped IPv6 address gives its IPv4 address); a host
    name is returned as given.
  - The module M(llmops.devbox.box_probe) checks ports with the same rule (shared code in module_utils).
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  _input:
    description: The bind address, e.g. V(127.0.0.1), V(0.0.0.0), V(::), V([::1]), V(10.0.1.10).
    type: str
    required: true
  bracket:
    description: Write an IPv6 result in brackets (V([::1])), as a URL or a C(host:port) needs it.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Where tasks on this box reach langfuse-web
  ansible.builtin.set_fact:
    local_url: "http://{{ langfuse_bind_address | llmops.devbox.connect_address(bracket=true) }}:{{ langfuse_port }}"

# 0.0.0.0 -> 127.0.0.1, :: -> ::1 ([::1] with bracket=true), '' -> 127.0.0.1, 10.0.1.10 -> 10.0.1.10
"""

RETURN = r"""
_value:
  description: The address to connect to, in brackets when O(bracket=true) and it is an IPv6 address.
  type: str
"""

from ansible.errors import AnsibleFilterError  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._address import (  # noqa: E402
    connect_address as _connect_address,
)


def connect_address(value, bracket=False):
    """127.0.0.1 for 0.0.0.0, '' and *; ::1 for ::; otherwise the address itself."""
    if value is not None and not isinstance(value, str):
        raise AnsibleFilterError(f"connect_address expects an address as a string, got {type(value).__name__}")
    return _connect_address(value, bracket=bool(bracket))


class FilterModule:
    """Bind address -> address to connect to on the same box."""

    def filters(self):
        return {"connect_address": connect_address}
