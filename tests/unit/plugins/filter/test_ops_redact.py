"""llmops.devbox.ops_redact / ops_log_errors: no secret kept on a box and no token or password shape
survives in text that logs.yml and diagnose.yml show, with the patterns of playbooks/vars/ops.yml."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.ops_redact import ops_log_errors, ops_redact

ROOT = Path(__file__).resolve().parents[4]
OPS = yaml.safe_load((ROOT / "playbooks" / "vars" / "ops.yml").read_text())
PATTERNS = OPS["_ops_redact_patterns"]
ERROR_REGEX, BENIGN_REGEX = OPS["_ops_error_regex"], OPS["_ops_benign_regex"]

SALT = "Zq8sUu1jvN0Yk3mWc6bA2tRe"
ADMIN = "Pw5xQ9zT2kLm7Nb"
LF_SECRET = "sk-lf-99999999-8888-7777-6666-555555555555"  # noqa: S105 - made up, to be masked
LF_PUBLIC = "pk-lf-11111111-2222-3333-4444-555555555555"
MASTER = "sk-" + "ab12" * 16
AWS = "aws/Secret+Value0123456789"
SECRETS = [SALT, ADMIN, LF_SECRET, MASTER, AWS]


def redact(text, secrets=SECRETS):
    return ops_redact(text, secrets, PATTERNS)


@pytest.mark.parametrize("line, masked", [
    (f"worker: redis auth {SALT} rejected", "worker: redis auth ******** rejected"),
    (f"login admin / {ADMIN}", "login admin / ********"),
    (f"export with {LF_PUBLIC}:{LF_SECRET}", f"export with {LF_PUBLIC}:********"),
    (f"boto: using {AWS}", "boto: using ********"),
    (f"boto: using {quote(AWS, safe='')}", "boto: using ********"),
    (f"json: {json.dumps({'k': AWS})}", 'json: {"k": "********"}'),
    ("INFO GET /health/liveliness 200 OK", "INFO GET /health/liveliness 200 OK"),
])
def test_secret_values_are_masked_wherever_they_stand(line, masked):
    assert redact(line) == masked


@pytest.mark.parametrize("secret", [
    'pa$$ "w#rd\'s',           # quotes, $ and # as they are
    "a.b*c+d(e)[f]?",          # regular expression characters are not a pattern
    "\\1 and $1 and \\g<0>",   # nor are group references
    "line one\nline two",      # a line break inside the value
])
def test_secret_values_are_replaced_literally_whatever_they_hold(secret):
    text = f"before {secret} after\nnext line"
    assert redact(text, [secret]) == "before ******** after\nnext line"


def test_a_secret_with_a_line_break_is_masked_in_its_escaped_forms_too():
    secret = 'multi\nline "secret"'  # noqa: S105 - made up, to be masked
    text = f"repr {secret!r} json {json.dumps(secret)} raw {secret}"
    assert redact(text, [secret]) == "repr '********' json \"********\" raw ********"


def test_overlapping_secrets_leave_no_part_visible():
    assert redact("overlap abcdefgh12345 end", ["abcdefgh", "abcdefgh12345"]) == "overlap ******** end"
    assert redact("overlap abcdefgh12345 end", ["abcdefgh12345", "abcdefgh"]) == "overlap ******** end"


@pytest.mark.parametrize("line, masked", [
    # sk-... first, then the header pattern masks what is left of the token: two masks in a row.
    ("proxy: Authorization: Bearer sk-someone-elses-key-123456", "proxy: Authorization: Bearer ****************"),
    ('header {"authorization": "Basic dXNlcjpwYXNzd29yZA=="}', 'header {"authorization": "Basic ********"}'),
    ("basic abcdefghijklmnop and bearer short", "basic ******** and bearer short"),
    ("using sk-lf-abcdef-0123", "using sk-lf-********"),
    ("key sk-12345678 and sk-1234567", "key sk-******** and sk-1234567"),
    ("DATABASE_URL=postgresql://postgres:not-in-any-file-1@postgres:5432/postgres",
     "DATABASE_URL=postgresql://postgres:********@postgres:5432/postgres"),
    ("client said: api_key=abc123456", "client said: api_key=********"),
    ("password: 'hunter22', token=abc;def", "password: '********', token=********;def"),
    ("SALT_KEY = xyz&q", "SALT_KEY = ********&q"),
    ('{"secret": "s3cr3t", "Auth": 1}', '{"secret": "********", "Auth": ********'),
    ("no secret here: version=1.2.3", "no secret here: version=1.2.3"),
])
def test_token_and_password_shapes_are_masked_without_knowing_the_value(line, masked):
    assert redact(line, []) == masked


def test_lines_and_public_keys_stay_for_debugging():
    raw = "\n".join([f"a {ADMIN}", "", f"b {LF_PUBLIC}", "INFO ok", ""])
    out = redact(raw)
    assert out == f"a ********\n\nb {LF_PUBLIC}\nINFO ok\n"


def test_a_list_is_redacted_item_by_item_and_null_is_empty():
    assert redact([f"x {ADMIN}", None, 7]) == ["x ********", "", "7"]
    assert redact(None) == ""
    assert redact("") == ""


def test_empty_secrets_and_patterns_change_nothing():
    assert ops_redact(f"x {ADMIN} password=1", [], []) == f"x {ADMIN} password=1"
    assert ops_redact("x", None, None) == "x"


def test_short_values_and_mask_are_configurable():
    assert ops_redact("pin 1234 and 12", ["1234", "12"], [], mask="#") == "pin # and 12"
    assert ops_redact("pin 1234", ["1234"], [], min_length=5) == "pin 1234"


@pytest.mark.parametrize("secrets, patterns, message", [
    ("one", [], "secrets must be a list of secret values"),
    ([], "x", "patterns must be a list of"),
    ([], [["only-one"]], r"patterns\[0\] must be a \[regular expression, replacement\] pair"),
    ([], [["(", "x"]], r"patterns\[0\] is not a regular expression"),
    ([], [["a", r"\2"]], r"replacement '\\\\2' of 'a' is invalid"),
])
def test_wrong_shapes_are_refused(secrets, patterns, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ops_redact("a", secrets, patterns)


# --- ops_log_errors ------------------------------------------------------------------------------------------------


def result(item, stdout):
    return {"item": item, "stdout": stdout, "rc": 0, "changed": False}


def errors(results, **kw):
    return ops_log_errors(results, error_regex=ERROR_REGEX, benign_regex=BENIGN_REGEX, secrets=SECRETS,
                          patterns=PATTERNS, **kw)


def test_the_last_five_error_lines_of_each_container_redacted():
    worker = "\n".join(f"Error {i} password=p{i}" for i in range(9))
    assert errors([result("langfuse-langfuse-worker-1", worker)]) == {
        "langfuse-langfuse-worker-1": [f"Error {i} password=********" for i in range(4, 9)]}


def test_only_error_lines_that_are_not_benign():
    log = "\n".join([
        "INFO all fine", "0 errors found", "errors=0 in batch error", "no errors", "Traceback (most recent call last):",
        f"ERROR litellm: AuthenticationError: Bearer {MASTER}", "connection refused", "request timed out",
        "Timeout waiting", "403 Forbidden", "unauthorised"])
    assert errors([result("litellm-blue", log)], keep=10) == {"litellm-blue": [
        "Traceback (most recent call last):", "ERROR litellm: AuthenticationError: Bearer ********",
        "connection refused", "request timed out", "Timeout waiting", "403 Forbidden", "unauthorised"]}


def test_long_lines_are_cut_after_masking():
    exact = "ERROR " + "y" * 299           # 305 characters: within the leeway, kept
    long = "ERROR " + "x" * 300            # 306 characters: cut to 297 and '...'
    masked = f"ERROR {ADMIN} " + "z" * 300
    assert errors([result("c", "\n".join([exact, long, masked]))]) == {"c": [
        exact, "ERROR " + "x" * 291 + "...", ("ERROR ******** " + "z" * 300)[:297] + "..."]}


def test_containers_without_error_lines_or_output_are_left_out():
    results = [result("langfuse-langfuse-web-1", "all fine\nINFO ok"),
               {"item": "skipped-one", "skipped": True, "changed": False},
               {"item": "failed-one", "rc": 1, "stderr": "Error: No such container", "failed": False},
               result("empty", ""), result("none", None)]
    assert errors(results) == {}
    assert errors([]) == {}


def test_keep_and_width():
    log = "\n".join(f"error {i} " + "w" * 20 for i in range(3))
    assert errors([result("c", log)], keep=1, width=10) == {"c": ["error 2..."]}
    assert errors([result("c", log)], keep=0) == {}


@pytest.mark.parametrize("results, kw, message", [
    ({"results": []}, {}, "the input must be the results list of a looped task"),
    (["x"], {}, r"results\[0\] must be a mapping"),
    ([], {"error_regex": "("}, "error_regex and benign_regex must be regular expressions"),
    ([], {"keep": "all"}, "keep and width must be integers"),
    ([], {"secrets": "s"}, "secrets must be a list"),
])
def test_log_errors_refuse_wrong_shapes(results, kw, message):
    args = dict(error_regex=ERROR_REGEX, benign_regex=BENIGN_REGEX, secrets=SECRETS, patterns=PATTERNS)
    args.update(kw)
    with pytest.raises(AnsibleFilterError, match=message):
        ops_log_errors(results, **args)
