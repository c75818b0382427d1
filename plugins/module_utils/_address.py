# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Where something bound to a listen address is reached from the same box: the one rule.

Shared by the filter llmops.devbox.connect_address and the module llmops.devbox.box_probe
(its port checks), so that a role's URL and its port check never disagree.

The rule: a wildcard (any-address) bind is reached on the loopback address of its own family -
0.0.0.0 at 127.0.0.1, :: (also written [::]) at ::1; an empty address or * (every interface of
both families, as Docker and OpenSSH read it) at 127.0.0.1. Docker publishes a port bound to ::
on IPv6 only, so 127.0.0.1 would miss it, while ::1 always reaches it. Any other address is
reached at itself (brackets removed; host names are returned as given).
"""

from __future__ import annotations

import ipaddress

IPV4_LOOPBACK = "127.0.0.1"
IPV6_LOOPBACK = "::1"
# Spellings of "every interface of both families" (a Compose ports entry or ssh -L without an address).
ALL_INTERFACES = ("", "*")


def bare(value):
    """The address without surrounding white space and [ ] brackets (IPv6 in URLs)."""
    text = "" if value is None else str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1].strip()
    return text


def parse_ip(text):
    """ipaddress object for text (an IPv4-mapped IPv6 address as its IPv4 address), else None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def is_wildcard(value):
    """True for every spelling of an any-address bind: '', *, 0.0.0.0, ::, [::], ::ffff:0.0.0.0."""
    text = bare(value)
    if text in ALL_INTERFACES:
        return True
    address = parse_ip(text)
    return address is not None and address.is_unspecified


def connect_address(value, bracket=False):
    """The address to connect to on the box itself to reach a listener bound to value.

    bracket=True writes an IPv6 result as [addr], ready for a URL or host:port.
    """
    text = bare(value)
    if text in ALL_INTERFACES:
        result = IPV4_LOOPBACK
    else:
        address = parse_ip(text)
        if address is None:
            result = text  # a host name: reached under its own name
        elif address.is_unspecified:
            result = IPV4_LOOPBACK if address.version == 4 else IPV6_LOOPBACK
        elif address.version == 4 and text != str(address):
            result = str(address)  # ::ffff:10.0.0.1 is reached as 10.0.0.1
        else:
            result = text
    if bracket and ":" in result:
        return "[" + result + "]"
    return result
