"""llmops.devbox.mask_secrets: no secret the box holds survives in text shown to the user, in any of
the shapes log lines give it (as is, URL-encoded, JSON-escaped, env-file escaped)."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.mask_secrets import mask_secrets

MASTER = "sk-" + "1f" * 32
PGPASS = "p@ss/w:rd #1 Jöe's \"x\" $HOME"
URL = f"postgresql://litellm:{quote(PGPASS, safe='')}@litellm-postgres:5432/litellm"
AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("line", [
    f"LITELLM_MASTER_KEY={MASTER}",
    f"Authorization: Bearer {MASTER}",
    f"prisma: cannot connect to {URL}",
    f"password={quote(PGPASS, safe='')} (encoded)",
    f"password={quote(PGPASS)} (encoded, / kept)",
    f"form: pw={quote_plus(PGPASS)}",
    f"json: {json.dumps({'password': PGPASS})}",
    f"json ascii: {json.dumps({'password': PGPASS}, ensure_ascii=True)}",
    f"repr: {PGPASS!r}",
    f"env: {AWS}",
])
def test_every_shape_is_masked(line):
    out = mask_secrets(line, [MASTER, PGPASS, URL, AWS])
    assert "********" in out
    for secret in (MASTER, PGPASS, URL, AWS, quote(PGPASS, safe=""), quote(PGPASS), quote_plus(PGPASS),
                   json.dumps(PGPASS)[1:-1], "p@ss/w:rd"):
        assert secret not in out, out


def test_lists_mappings_and_nesting():
    lines = [f"a {MASTER} b", "nothing here", None]
    assert mask_secrets(lines, {"master_key": MASTER, "more": [[AWS], None]}) == ["a ******** b", "nothing here",
                                                                               None]


def test_overlapping_secrets_leave_no_part_visible():
    assert mask_secrets("xxABCDEFyy", ["ABCD", "CDEF"]) == "xx********yy"
    assert mask_secrets("xxABCDEFyy", ["CDEF", "ABCDEF"]) == "xx********yy"


def test_short_and_empty_secrets_are_left_alone():
    assert mask_secrets("True us-east-1 1", ["", "1", "True", None]) == "True us-east-1 1".replace("True", "********")
    assert mask_secrets("a 1 b", ["1"], min_length=1) == "a ******** b"
    assert mask_secrets("nothing", []) == "nothing"


def test_non_strings_and_custom_mask():
    assert mask_secrets("port 123456 open", [123456], mask="<hidden>") == "port <hidden> open"
    assert mask_secrets(42, ["4242"]) == "42"


def test_min_length_must_be_a_number():
    with pytest.raises(AnsibleFilterError):
        mask_secrets("x", ["y"], min_length="many")
