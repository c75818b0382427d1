"""Docker Compose v2's env-file reader, ported line by line to Python for the tests.

A port of compose-go's dotenv parser (dotenv/parser.go, dotenv/godotenv.go expandVariables) and of
its variable substitution (template/template.go), as in compose-go v2.4.8 - what Debian 13's
docker-compose 2.26.1 is built with (its Static-Built-Using field); v2.0.2, which upstream's
docker compose 2.26.1 uses, reads env files the same way. Go walks strings by byte where this walks
them by character: the two only compare against ASCII characters, so they agree on UTF-8 text.

`parse(text, lookup)` returns what Compose hands to the container: `lookup` stands for the
environment `docker compose` runs in (Compose interpolates unquoted and double-quoted values with
it), so a value the roles failed to protect comes back changed. test_compose_dotenv.py checks this
port against compose-go's own test cases; tests/integration/test_env_files_compose.py checks the
roles' files against the real docker compose.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Dict, Optional, Tuple

Lookup = Callable[[str], Tuple[str, bool]]

# unicode.IsSpace: Latin-1 white space plus the Unicode White_Space property.
_GO_SPACE = set("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {chr(c) for c in range(0x2000, 0x200B)}
# parser.go isSpace: white space that is not a line break.
_DOTENV_SPACE = set("\t\v\f\r \x85\xa0")
_EXPORT = re.compile(r"export[\t\n\f\r ]+")
_ESCAPE = re.compile(r'\\(?:[abcfnrtv$"\\]|0[0-9]{0,3})')
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\", '"': '"'}
# template.DefaultPattern: $$ | $name | ${braced} | ${ (invalid).
_PATTERN = re.compile(
    r"\$(?i:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|\{(?:(?P<braced>[_a-z][_a-z0-9]*(?::?[-+?](.*))?)\}|(?P<invalid>)))"
)


class DotenvError(ValueError):
    """What compose-go reports as an error (the file is refused)."""


def _go_is_space(char: str) -> bool:
    return char in _GO_SPACE


def _trim_left(text: str, pred) -> str:
    i = 0
    while i < len(text) and pred(text[i]):
        i += 1
    return text[i:]


def _trim_right(text: str, pred) -> str:
    i = len(text)
    while i > 0 and pred(text[i - 1]):
        i -= 1
    return text[:i]


# --- template.Substitute ---------------------------------------------------------------------

def _partition(text: str, sep: str) -> Tuple[str, str]:
    if sep in text:
        head, _, tail = text.partition(sep)
        return head, tail
    return text, ""


def _with_default_when_absence(substitution, mapping, empty_or_unset):
    sep = ":-" if empty_or_unset else "-"
    if sep not in substitution:
        return "", False
    name, default = _partition(substitution, sep)
    default = substitute(default, mapping)
    value, ok = mapping(name)
    if not ok or (empty_or_unset and value == ""):
        return default, True
    return value, True


def _with_default_when_presence(substitution, mapping, not_empty):
    sep = ":+" if not_empty else "+"
    if sep not in substitution:
        return "", False
    name, default = _partition(substitution, sep)
    default = substitute(default, mapping)
    value, ok = mapping(name)
    if ok and (not not_empty or value != ""):
        return default, True
    return value, True


def _with_required(substitution, mapping, sep, valid):
    if sep not in substitution:
        return "", False
    name, message = _partition(substitution, sep)
    message = substitute(message, mapping)
    value, ok = mapping(name)
    if not ok or not valid(value):
        raise DotenvError(f"required variable {name} is missing a value: {message}")
    return value, True


_SUBSTITUTIONS = [
    (":?", lambda s, m: _with_required(s, m, ":?", lambda v: v != "")),
    ("?", lambda s, m: _with_required(s, m, "?", lambda v: True)),
    (":-", lambda s, m: _with_default_when_absence(s, m, True)),
    ("-", lambda s, m: _with_default_when_absence(s, m, False)),
    (":+", lambda s, m: _with_default_when_presence(s, m, True)),
    ("+", lambda s, m: _with_default_when_presence(s, m, False)),
]


def _substitution_for(template: str):
    """getSubstitutionFunctionForTemplate: the separator found first in the text."""
    found = [(template.index(sep), order, func) for order, (sep, func) in enumerate(_SUBSTITUTIONS) if sep in template]
    return min(found)[2] if found else (lambda s, m: ("", False))


def _first_brace_closing_index(text: str) -> int:
    depth, i = 0, 0
    while i < len(text):
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        if text[i] == "{":
            depth += 1
            i += 1
        i += 1
    return -1


def _replacement(substring: str, mapping) -> str:
    subs_func = _substitution_for(substring)
    closing = _first_brace_closing_index(substring)
    rest = ""
    if closing > -1:
        rest = substring[closing + 1:]
        substring = substring[:closing + 1]
    match = _PATTERN.search(substring)
    groups = match.groupdict() if match else {}
    if groups.get("escaped"):
        return groups["escaped"]
    substitution, braced = groups.get("named") or "", False
    if not substitution:
        substitution, braced = groups.get("braced") or "", True
    if not substitution:
        raise DotenvError(f"Invalid template: {substring!r}")
    if braced:
        value, applied = subs_func(substitution, mapping)
        if applied:
            return value + substitute(rest, mapping)
    value, _ = mapping(substitution)
    return value


def substitute(template: str, mapping) -> str:
    return _PATTERN.sub(lambda m: _replacement(m.group(0), mapping), template)


# --- dotenv parser ---------------------------------------------------------------------------

def _expand_escapes(text: str) -> str:
    def one(match):
        seq = match.group(0)
        if seq == "\\$":
            return "$$"
        if seq.startswith("\\0"):
            digits = seq[2:]
            # strconv.UnquoteChar on "\" + digits: exactly three octal digits, at most 0o377.
            if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) <= 0o377:
                return chr(int(digits, 8))
            return seq
        return _SIMPLE_ESCAPES[seq[1]]

    return _ESCAPE.sub(one, text)


class _Parser:
    def __init__(self):
        self.line = 1

    def statement_start(self, src: str) -> str:
        while True:
            pos = -1
            for i, char in enumerate(src):
                if char == "\n":
                    self.line += 1
                if not _go_is_space(char):
                    pos = i
                    break
            if pos == -1:
                return ""
            src = src[pos:]
            if src[0] != "#":
                return src
            pos = src.find("\n")
            if pos == -1:
                return ""
            src = src[pos:]

    def locate_key_name(self, src: str):
        if _EXPORT.match(src):
            src = _trim_left(src[len("export"):], lambda c: c in _DOTENV_SPACE)
        key, offset, inherited = "", 0, False
        for i, char in enumerate(src):
            if char in _DOTENV_SPACE:
                continue
            if char in "=:\n":
                key, offset, inherited = src[:i], i + 1, char == "\n"
                break
            if char in "_.-[]":
                continue
            category = unicodedata.category(char)
            if category.startswith("L") or category.startswith("N"):
                continue
            first_line = src.split("\n")[0]
            raise DotenvError(f"line {self.line}: unexpected character {char!r} in variable name {first_line!r}")
        if src == "":
            raise DotenvError("zero length string")
        if inherited and " " not in key:
            self.line += 1
        key = _trim_right(key, _go_is_space)
        return key, _trim_left(src[offset:], lambda c: c in _DOTENV_SPACE), inherited

    def extract_var_value(self, src: str, env: Dict[str, str], mapping):
        quote = src[0] if src and src[0] in "'\"" else None
        if quote is None:
            value, _, rest = src.partition("\n")
            self.line += 1
            value = value.split(" #", 1)[0]
            value = _trim_right(value, _go_is_space)
            return substitute(value, mapping), rest
        escaped, chars = False, []
        for i in range(1, len(src)):
            char = src[i]
            if char == "\n":
                self.line += 1
            if char != quote:
                if not escaped and char == "\\":
                    escaped = True
                    continue
                if escaped:
                    escaped = False
                    chars.append("\\")
                chars.append(char)
                continue
            if escaped:
                escaped = False
                chars.append(char)
                continue
            value = "".join(chars)
            if quote == '"':
                value = substitute(_expand_escapes(value), mapping)
            return value, src[i + 1:]
        end = src.find("\n")
        raise DotenvError(f"line {self.line}: unterminated quoted value {src[:end if end != -1 else len(src)]}")


def parse(text: str, lookup: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The variables Compose reads from an env file, interpolated with `lookup` (the CLI's environment)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    outer = dict(lookup or {})
    env: Dict[str, str] = {}

    def mapping(name: str) -> Tuple[str, bool]:
        if name in outer:
            return outer[name], True
        if name in env:
            return env[name], True
        return "", False

    parser, cutset = _Parser(), text
    while True:
        cutset = parser.statement_start(cutset)
        if cutset == "":
            return env
        key, left, inherited = parser.locate_key_name(cutset)
        if " " in key:
            raise DotenvError(f"line {parser.line}: key cannot contain a space")
        if inherited:
            if key in outer:
                env[key] = outer[key]
            cutset = left
            continue
        value, cutset = parser.extract_var_value(left, env, mapping)
        env[key] = value
