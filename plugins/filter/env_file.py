# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Env files that Docker Compose v2 reads literally, and URL-encoded credentials.

Compose v2 reads env_file entries with compose-go's dotenv parser (Debian 13's docker-compose 2.26.1
is built with compose-go 2.4.8; the rules below hold for every compose-go v2 release):

* unquoted ``KEY=value``: ends at the line break, `` #`` starts a comment, surrounding white space is
  trimmed, and ``$NAME`` / ``${NAME}`` are interpolated;
* single-quoted ``KEY='value'``: literal, except that ``\\'`` stands for ``'`` (so a backslash right
  before a quote, or at the end, cannot be written);
* double-quoted ``KEY="value"``: ``\\\\``, ``\\"``, ``\\n``, ... are escapes, then ``$NAME`` is
  interpolated and ``$$`` stands for ``$``.

So a value is written bare when it only holds characters none of those rules touch, single-quoted
when it holds no ``'`` and no backslash, and double-quoted otherwise, with ``\\`` -> ``\\\\``,
``"`` -> ``\\"`` and ``$`` -> ``$$``. Every value round-trips exactly, except line breaks (LF, CR)
and NUL: NUL can never be in an environment, and a line break would be a second line to every
other reader of these files (``docker run --env-file``, people, grep). Those are refused, naming
the variable, never showing the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from ansible.errors import AnsibleFilterError

# Characters no Compose rule touches in an unquoted value (and that no other reader quotes).
_BARE = re.compile(r"[A-Za-z0-9_./:@,+=%~-]*\Z")
# What the roles accept as an environment variable name (what a shell can read).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CANNOT_CARRY = {
    "\n": "a line break (LF)",
    "\r": "a carriage return (CR)",
    "\x00": "a NUL character",
}
_FIX = ("an env file cannot carry it: remove it (for multi-line data such as a PEM key, give the "
        "service a file or a base64 value instead)")


def _scalar_problem(value) -> str:
    """Why value cannot be written to an env file ('' when it can). Never includes the value."""
    if value is None:
        return "is null: give a string (quote an empty one: '')"
    if isinstance(value, Mapping):
        return "is a mapping: give a string (e.g. the mapping | to_json)"
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return "is a list: give a string (e.g. the list | join(','))"
    if isinstance(value, bytes):
        return "is bytes: give a string"
    text = str(value)
    found = [what for char, what in _CANNOT_CARRY.items() if char in text]
    if found:
        return "contains " + " and ".join(found) + "; " + _FIX
    return ""


def env_file_value(value, name="value"):
    """The value as Compose must read it: bare, 'single-quoted' or "double-quoted"."""
    problem = _scalar_problem(value)
    if problem:
        raise AnsibleFilterError(f"{name} {problem}")
    text = str(value)
    if _BARE.match(text):
        return text
    if "'" not in text and "\\" not in text:
        return "'" + text + "'"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$") + '"'


def to_env_file(mapping, name="env file"):
    """KEY=value lines for a whole mapping, sorted by name (case-insensitively, like dictsort)."""
    if not isinstance(mapping, Mapping):
        raise AnsibleFilterError(f"{name}: to_env_file needs a mapping of variable names to values")
    lines = []
    for key in sorted(mapping, key=lambda k: (str(k).lower(), str(k))):
        if not isinstance(key, str) or not _NAME.match(key):
            raise AnsibleFilterError(
                f"{name}: {key!r} is not an environment variable name (letters, digits and _, "
                "not starting with a digit)")
        lines.append(f"{key}={env_file_value(mapping[key], f'{key} in {name}')}")
    return "\n".join(lines)


def env_file_problems(mapping, prefix="", names=False):
    """Messages for the values (and, with names=True, the keys) that cannot go into an env file.

    The keys of mapping are what the messages call each value (a role variable, or prefix + key),
    so preflight checks can name the variable to fix. Values are never included.
    """
    if mapping is None:
        return []
    if not isinstance(mapping, Mapping):
        what = prefix.rstrip(".") or "value"
        return [f"{what} must be a mapping of variable names to values"]
    problems = []
    for key in sorted(mapping, key=str):
        label = f"{prefix}{key}"
        if names and (not isinstance(key, str) or not _NAME.match(key)):
            problems.append(f"{prefix.rstrip('.') or 'name'}: {key!r} is not an environment variable name "
                            "(letters, digits and _, not starting with a digit)")
            continue
        problem = _scalar_problem(mapping[key])
        if problem:
            problems.append(f"{label} {problem}")
    return problems


def urlquote(value):
    """Percent-encode everything but A-Z a-z 0-9 - . _ ~ (RFC 3986 unreserved), UTF-8 first.

    For the user, password, host or path segment of a URL such as DATABASE_URL. ansible's
    urlencode filter keeps '/' (and Jinja's keeps more), which would end the authority part.
    """
    if value is None:
        raise AnsibleFilterError("urlquote: got null, expected a string")
    return quote(str(value), safe="")


class FilterModule:
    """Env-file and URL filters."""

    def filters(self):
        return {
            "env_file_value": env_file_value,
            "to_env_file": to_env_file,
            "env_file_problems": env_file_problems,
            "urlquote": urlquote,
        }
