"""llmops.devbox.env_file_value / to_env_file / env_file_problems / urlquote.

Every value an env file can carry must come back exactly when Compose reads the file (the port of
its reader in compose_dotenv.py, with a CLI environment in which $HOME, $X, ... are set, so an
unprotected reference would come back changed); what it cannot carry is refused naming the
variable, never showing the value.
"""

from __future__ import annotations

import random
import string
from urllib.parse import unquote, urlsplit

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.env_file import (
    env_file_problems,
    env_file_value,
    to_env_file,
    urlquote,
)
from ansible_collections.llmops.devbox.tests.unit.plugins.filter.compose_dotenv import parse

# The environment docker compose runs in: anything left to interpolation would be replaced.
CLI_ENV = {"HOME": "/root", "X": "from-the-cli", "y": "lower", "VAR": "v", "A": "a"}

HOSTILE = [
    "", "plain", "Joe's team", 'say "hi"', "$HOME", "${X}", "$$", "$$HOME", "\\$X", "a #x", " #x", "#x", "x #",
    "{{ 1 + 1 }}", "{{ y }}", "{% raw %}", "%41", "%%", "p@ss", "a:b", "a/b", "=", "a=b", "'", '"', "\\", "\\\\",
    "'\\'", "\\'", "\\\"", "ends with backslash\\", "\\n", "\\t", "\\0123", "\\$", "\\\\$HOME",
    "  leading and trailing  ", "\ttab\t", "Jöe's \"team\" $X #1 {{ y }}", "日本語 ✓ 🙂", "\u2028\u2029\x85\xa0",
    "\x1b[31mred\x1b[0m", "\x7f", "export FOO=bar", "KEY=VALUE", "`id`", "$(id)", "; rm -rf /", "a\\\"b'c$d#e",
    "${X:-default}", "${UNSET?boom}", "${", "$", "$1", "${1}", "'single'", '"double"', "'\"'\"'", "x\\",
]


def round_trip(value):
    return parse("K=" + env_file_value(value, "K") + "\n", CLI_ENV)["K"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_come_back_exactly(value):
    assert round_trip(value) == value


def test_random_printable_values_come_back_exactly():
    rng = random.Random(20260301)  # noqa: S311 - test data, reproducible
    alphabet = string.printable.replace("\n", "").replace("\r", "").replace("\x0b", "").replace("\x0c", "")
    alphabet += "äöüß€日本🙂\u2028\x85\xa0\\'\"$#{}%"
    for _ in range(3000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert round_trip(value) == value, repr(value)


@pytest.mark.parametrize("value,written", [
    ("plain-value_1.2/3:4@5,6+7=8%9~", "plain-value_1.2/3:4@5,6+7=8%9~"),
    ("", ""),
    ("Dev box", "'Dev box'"),
    ("$HOME #1", "'$HOME #1'"),
    ("Joe's team", '"Joe\'s team"'),
    ("a\\b", '"a\\\\b"'),
    ('q"$x', "'q\"$x'"),
    ("'$x\"\\", '"\'$$x\\"\\\\"'),
])
def test_three_forms(value, written):
    """Bare when nothing can touch it, single quotes when literal enough, else double quotes."""
    assert env_file_value(value) == written


def test_scalars_are_written_as_their_string():
    assert [env_file_value(v) for v in (True, False, 0, 6379, 1.5)] == ["True", "False", "0", "6379", "1.5"]


@pytest.mark.parametrize("value,words", [
    ("a\nb", "line break (LF)"),
    ("a\rb", "carriage return (CR)"),
    ("a\r\nb", "line break (LF) and a carriage return"),
    ("a\x00b", "NUL"),
    (None, "is null"),
    ({"a": 1}, "is a mapping"),
    (["a"], "is a list"),
])
def test_what_no_env_file_carries_is_refused_by_name(value, words):
    with pytest.raises(AnsibleFilterError) as err:
        env_file_value(value, "langfuse_init_org_name")
    msg = str(err.value)
    assert msg.startswith("langfuse_init_org_name ") and words in msg
    if isinstance(value, str):
        assert value not in msg and "a" + "b" not in msg


def test_to_env_file_sorts_like_dictsort_and_round_trips():
    env = {"b_lower": "2", "A": "Jöe's \"team\" $X #1 {{ y }}", "C": "", "REDIS_PORT": 6379}
    text = to_env_file(env, "web.env")
    assert [line.split("=", 1)[0] for line in text.split("\n")] == ["A", "b_lower", "C", "REDIS_PORT"]
    assert not text.endswith("\n")
    assert parse(text, CLI_ENV) == {k: str(v) for k, v in env.items()}


@pytest.mark.parametrize("key", ["BAD KEY", "1ABC", "A-B", "A.B", "", "ÄÖ", "A=B", "A\nB=1"])
def test_to_env_file_refuses_names_a_shell_cannot_read(key):
    with pytest.raises(AnsibleFilterError, match="not an environment variable name"):
        to_env_file({key: "x"}, "web.env")


def test_to_env_file_names_the_variable_and_file():
    with pytest.raises(AnsibleFilterError) as err:
        to_env_file({"SALT": "sec\nret"}, "langfuse-web.env")
    assert str(err.value).startswith("SALT in langfuse-web.env contains a line break") and "sec" not in str(err.value)


def test_to_env_file_needs_a_mapping():
    with pytest.raises(AnsibleFilterError, match="needs a mapping"):
        to_env_file(["A=1"], "x.env")


def test_problems_name_each_variable_without_values():
    secret = "s3cr3t-value\nwith-break"  # noqa: S105 - test value
    problems = env_file_problems({"langfuse_admin_name": "ok $HOME", "langfuse_secrets.salt": secret,
                                  "langfuse_init_org_name": "x\x00"})
    assert problems == [
        "langfuse_init_org_name contains a NUL character; an env file cannot carry it: remove it (for multi-line "
        "data such as a PEM key, give the service a file or a base64 value instead)",
        "langfuse_secrets.salt contains a line break (LF); an env file cannot carry it: remove it (for multi-line "
        "data such as a PEM key, give the service a file or a base64 value instead)",
    ]
    assert not any("s3cr3t" in p for p in problems)


def test_problems_with_prefix_and_names():
    problems = env_file_problems({"SMTP URL": "x", "OK": "y", "BAD": "a\nb", "LIST": [1]},
                                 prefix="langfuse_extra_env.", names=True)
    assert problems == [
        "langfuse_extra_env.BAD contains a line break (LF); an env file cannot carry it: remove it (for multi-line "
        "data such as a PEM key, give the service a file or a base64 value instead)",
        "langfuse_extra_env.LIST is a list: give a string (e.g. the list | join(','))",
        "langfuse_extra_env: 'SMTP URL' is not an environment variable name (letters, digits and _, "
        "not starting with a digit)",
    ]


def test_problems_of_nothing_and_of_a_non_mapping():
    assert env_file_problems({}) == [] and env_file_problems(None) == []
    assert env_file_problems("FOO=bar", prefix="litellm_extra_env.") == [
        "litellm_extra_env must be a mapping of variable names to values"]


@pytest.mark.parametrize("password", ["p@ss/w:rd#?&%41 Jöe's \"x\" $HOME {{ y }}", "plain", "", "%", "/", "@:"])
def test_urlquote_keeps_a_password_inside_the_userinfo(password):
    url = f"postgresql://postgres:{urlquote(password)}@postgres:5432/postgres"
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path) == ("postgres", 5432, "/postgres")
    assert unquote(parts.password) == password and parts.username == "postgres"
    assert set(urlquote(password)) <= set(string.ascii_letters + string.digits + "-._~%")


def test_urlquote_encodes_what_urlencode_keeps():
    assert urlquote("a/b c+d") == "a%2Fb%20c%2Bd"
    with pytest.raises(AnsibleFilterError):
        urlquote(None)
