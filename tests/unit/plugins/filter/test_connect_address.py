"""llmops.devbox.connect_address: the one rule for where a service bound to an address is reached on the box."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.connect_address import FilterModule, connect_address
from ansible_collections.llmops.devbox.plugins.module_utils._address import is_wildcard


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        # Wildcards: the loopback of their own family.
        ("0.0.0.0", "127.0.0.1"),
        ("::", "::1"),
        ("[::]", "::1"),
        ("0:0:0:0:0:0:0:0", "::1"),
        ("::ffff:0.0.0.0", "127.0.0.1"),
        # Every interface of both families (Compose ports entry, ssh -L without an address).
        ("", "127.0.0.1"),
        ("*", "127.0.0.1"),
        (None, "127.0.0.1"),
        (" 0.0.0.0 ", "127.0.0.1"),
        # Anything else: itself.
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.2", "127.0.0.2"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("10.0.1.10", "10.0.1.10"),
        ("fd00::10", "fd00::10"),
        ("::ffff:10.0.1.10", "10.0.1.10"),
        ("langfuse.internal", "langfuse.internal"),
    ],
)
def test_connect_address(bind, expected):
    assert connect_address(bind) == expected


@pytest.mark.parametrize(
    ("bind", "expected"),
    [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("[::]", "[::1]"), ("::1", "[::1]"), ("[::1]", "[::1]"),
     ("fd00::10", "[fd00::10]"), ("10.0.1.10", "10.0.1.10"), ("", "127.0.0.1"), ("box.example", "box.example")],
)
def test_bracket_makes_a_url_host(bind, expected):
    assert connect_address(bind, bracket=True) == expected


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "[::]", "", "*", "::ffff:0.0.0.0"])
def test_every_wildcard_spelling_is_one(bind):
    assert is_wildcard(bind)


@pytest.mark.parametrize("bind", ["127.0.0.1", "::1", "10.0.1.10", "localhost"])
def test_other_addresses_are_not_wildcards(bind):
    assert not is_wildcard(bind)


def test_a_non_string_is_refused():
    with pytest.raises(AnsibleFilterError, match="expects an address as a string"):
        connect_address(3000)


def test_the_filter_is_registered():
    assert FilterModule().filters()["connect_address"] is connect_address
