"""llmops.devbox.address_scope: what a published port's host address exposes."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.devbox.plugins.filter.address_scope import address_scope


@pytest.mark.parametrize("value,scope", [
    ("127.0.0.1", "loopback"), ("127.1.2.3", "loopback"), ("::1", "loopback"), ("[::1]", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("0.0.0.0", "any"), ("::", "any"), ("[::]", "any"),
    ("10.0.1.10", "remote"), ("203.0.113.10", "remote"), ("fe80::1", "remote"), ("fe80::1%eth0", "remote"),
    ("::ffff:10.0.0.1", "remote"),
    ("localhost", "invalid"), ("", "invalid"), (" 127.0.0.1", "invalid"), ("127.0.0.1\n", "invalid"),
    ("127.0.0.1:3000", "invalid"), (None, "invalid"), (3000, "invalid"),
])
def test_scopes(value, scope):
    assert address_scope(value) == scope
