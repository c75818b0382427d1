# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Generate-once secret files, shared by the llmops.devbox modules (private: API may change).

- ``generate(spec)`` makes one random value (``alnum``, ``hex``, ``urlsafe`` or ``uuid4``, with an
  optional prefix) from the ``secrets`` module.
- ``read_private(path)`` reads a secret file without following a symlink.
- ``write_private(path, data)`` writes a file that is mode 0600 from its first byte: a temporary
  file in the same directory, opened with O_CREAT|O_EXCL and mode 0600 and fchmod-ed to 0600
  (whatever the umask), written, fsync-ed, then renamed over ``path``. Nobody else can read the
  content at any moment, and readers never see a half-written file.
- ``plan(...)`` decides, name by name, what a secret file should hold: stored values are kept,
  missing ones are generated (or taken from supplied), a supplied value that differs from a
  stored one is refused unless that name is to be rotated, and nothing a data store depends on
  is generated while that data exists. Messages name secrets, never their values.
"""

from __future__ import annotations

import errno
import os
import secrets
import string
import uuid

__all__ = [
    "GENERATOR_KINDS", "SecretFileError", "Plan", "normalize_generator", "generate",
    "read_private", "write_private", "plan",
]

_ALPHABETS = {
    "alnum": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "urlsafe": string.ascii_letters + string.digits + "-_",
}
GENERATOR_KINDS = tuple(sorted(_ALPHABETS)) + ("uuid4",)
DEFAULT_GENERATOR = {"kind": "alnum", "length": 32, "prefix": ""}
MIN_LENGTH = 16
MAX_LENGTH = 4096


class SecretFileError(Exception):
    """Something the caller must fix; the message names files and secrets, never a secret value."""


def normalize_generator(name, spec):
    """A complete generator spec for secret ``name`` ({kind, length, prefix}) or SecretFileError."""
    if spec is None:
        return dict(DEFAULT_GENERATOR)
    if not isinstance(spec, dict):
        raise SecretFileError(f"generators.{name} must be a dict such as {{kind: hex, length: 64}}")
    unknown = sorted(set(spec) - {"kind", "length", "prefix"})
    if unknown:
        raise SecretFileError(f"generators.{name} has unknown keys {', '.join(unknown)} "
                              f"(allowed: kind, length, prefix)")
    kind = spec.get("kind") or DEFAULT_GENERATOR["kind"]
    if kind not in GENERATOR_KINDS:
        raise SecretFileError(f"generators.{name}.kind must be one of {', '.join(GENERATOR_KINDS)}, not {kind!r}")
    length = spec.get("length")
    if length is None:
        length = DEFAULT_GENERATOR["length"]
    try:
        length = int(length)
    except (TypeError, ValueError):
        raise SecretFileError(f"generators.{name}.length must be a whole number") from None
    if kind != "uuid4" and not MIN_LENGTH <= length <= MAX_LENGTH:
        raise SecretFileError(f"generators.{name}.length must be between {MIN_LENGTH} and {MAX_LENGTH} "
                              f"(random characters, without the prefix)")
    prefix = spec.get("prefix") or ""
    if not isinstance(prefix, str) or any(c.isspace() or c in "'\"" for c in prefix):
        raise SecretFileError(f"generators.{name}.prefix must be a string without whitespace or quotes")
    return {"kind": kind, "length": length, "prefix": prefix}


def generate(spec):
    """A fresh random value for a normalized generator spec."""
    if spec["kind"] == "uuid4":
        body = str(uuid.uuid4())
    else:
        alphabet = _ALPHABETS[spec["kind"]]
        body = "".join(secrets.choice(alphabet) for dummy in range(spec["length"]))
    return spec["prefix"] + body


def read_private(path):
    """The bytes of ``path``, or None when it does not exist. Never follows a symlink: a secret file
    that is a link could make the caller read (and later hand out) some other file."""
    if os.path.islink(path):
        raise SecretFileError(f"{path} is a symbolic link; a secret file must be a regular file. "
                              f"Replace the link with the file itself.")
    if os.path.isdir(path):
        raise SecretFileError(f"{path} is a directory, not a secret file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise SecretFileError(f"{path} cannot be read ({exc.strerror or exc})") from None
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_private(path, data, uid=None, gid=None):
    """Replace ``path`` with ``data`` (bytes); the file is 0600 from its first byte.

    The temporary file is created next to ``path`` (same filesystem, so the rename is atomic) with
    O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, then fchmod-ed to 0600 so a umask cannot loosen (or
    tighten) it. ``uid``/``gid`` (when given) are set on it before the first byte is written.
    Raises OSError; the temporary file never outlives a failure.
    """
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class Plan:
    """What the file should hold after this run. ``values`` covers every name that has a value
    (in check mode, a value that would be generated is not made up and so not in ``values``)."""

    def __init__(self):
        self.values = {}      # name -> value the file holds afterwards (names asked for only)
        self.created = []     # names not stored before, added now (generated or supplied)
        self.generated = []   # names whose new value is generated (created or rotated)
        self.kept = []        # names whose stored value stays
        self.rotated = []     # names whose stored value is replaced
        self.previous = {}    # rotated name -> value it replaces

    @property
    def changes(self):
        return bool(self.created or self.rotated)


def _phrase(names):
    return ", ".join(names)


def plan(stored, names, generators=None, supplied=None, rotate=(), data_exists=False,
         path="the secret file", restore_hint="", rotate_hint="", make_values=True):
    """Decide what happens to each name; raise SecretFileError when the caller must decide.

    stored: dict of the file's current values (None when there is no file).
    generators: name -> normalized generator spec (names without one get DEFAULT_GENERATOR).
    supplied: name -> value given by the user (None/'' means "not given").
    rotate: names whose stored value may be replaced (by the supplied value, else a fresh one).
    data_exists: bool, or name -> bool: data (a database volume...) already depends on the secret,
        so it is never generated while missing (unless the name is in rotate).
    make_values: False in check mode: values that would be generated are not invented.
    """
    generators = generators or {}
    supplied = {k: v for k, v in (supplied or {}).items() if v not in (None, "")}
    rotate = set(rotate or ())
    result = Plan()
    blocked, conflicts = [], []

    def depends(name):
        if isinstance(data_exists, dict):
            return bool(data_exists.get(name, False))
        return bool(data_exists)

    def fresh(name):
        result.generated.append(name)
        if make_values:
            result.values[name] = generate(generators.get(name) or dict(DEFAULT_GENERATOR))

    for name in names:
        current = (stored or {}).get(name)
        given = supplied.get(name)
        if current not in (None, ""):
            if given is not None and given != current:
                if name in rotate:
                    result.rotated.append(name)
                    result.previous[name] = current
                    result.values[name] = given
                else:
                    conflicts.append(name)
            elif given is None and name in rotate:
                result.rotated.append(name)
                result.previous[name] = current
                fresh(name)
            else:
                result.kept.append(name)
                result.values[name] = current
        elif given is not None:
            result.created.append(name)
            result.values[name] = given
        elif depends(name) and name not in rotate:
            blocked.append(name)
        else:
            result.created.append(name)
            fresh(name)

    problems = []
    if blocked:
        where = (f"{path} does not exist" if stored is None
                 else f"{path} has no value for {_phrase(blocked)}")
        problems.append(
            f"{where}, but data already depends on {_phrase(blocked)}: it was set up with the value(s) that "
            f"were stored there. Nothing was written and nothing was generated, because a new value would "
            f"lock that data out (a database that refuses the new password, keys that no longer verify, "
            f"encrypted data that can no longer be read). Restore the stored values, or supply them. "
            + (restore_hint.strip() + " " if restore_hint and restore_hint.strip() else ""))
    if conflicts:
        problems.append(
            f"The value supplied for {_phrase(conflicts)} differs from the one stored in {path}; "
            f"the stored value was kept and nothing was written. Replacing a stored secret is a rotation: "
            f"whatever was set up with the old value (a database user's password, encrypted data, issued "
            f"keys, clients holding it) must change with it in the same run. To keep the stored value, "
            f"supply that one or leave it out; to replace it, ask for the rotation of "
            f"{_phrase(conflicts)} (rotate: [{_phrase(conflicts)}]). "
            + (rotate_hint.strip() + " " if rotate_hint and rotate_hint.strip() else ""))
    if problems:
        raise SecretFileError(" ".join(p.strip() for p in problems))
    return result
