# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Image references the roles accept: an exact tag, optionally pinned to a digest.

Accepted: ``[registry[:port]/]path:tag`` and ``[registry[:port]/]path:tag@sha256:<64 hex>``.
Refused: no tag (also a digest alone: the tag says which release it is), the moving tag
``latest`` (in any case), a digest that is not sha256 with 64 hex digits, and anything that is not
an image reference (white space, quotes, ``$``...), which could not go into a Compose file as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[^@]*))?\Z"
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
# x.y.z release numbers inside a tag (main-v1.82.7-stable -> 1.82.7), not parts of longer numbers.
_VERSION = re.compile(r"(?<![0-9.])v?([0-9]+\.[0-9]+\.[0-9]+)(?![0-9])")


def image_pin_problem(ref) -> str:
    """Why ref is not an acceptable image reference ('' when it is)."""
    if not isinstance(ref, str) or not ref:
        return "is empty or not a string"
    match = _REFERENCE.match(ref)
    if not match:
        return "is not an image reference (lower-case name, ':' and the tag; no spaces or quotes)"
    tag, digest = match.group("tag"), match.group("digest")
    if digest is not None and not _DIGEST.match(digest):
        return "has a digest that is not sha256:<64 lower-case hex>"
    if tag is None:
        return "has no tag" + (" (a digest alone does not say which release it is)" if digest else "")
    if tag.lower() == "latest":
        return "uses the moving tag 'latest'"
    return ""


def image_pin_problems(mapping):
    """Messages naming each variable of mapping (variable name -> image) whose image is not pinned."""
    if not isinstance(mapping, Mapping):
        return ["image_pin_problems needs a mapping of variable names to images"]
    problems = []
    for name in sorted(mapping, key=str):
        ref = mapping[name]
        problem = image_pin_problem(ref)
        if problem:
            shown = ref if isinstance(ref, str) and len(ref) <= 200 else "(not shown)"
            problems.append(f"{name} ({shown!r}) {problem}")
    return problems


def image_versions(ref):
    """The x.y.z release numbers in the tag of ref (empty when it has none, or no tag)."""
    if not isinstance(ref, str):
        return []
    match = _REFERENCE.match(ref)
    tag = match.group("tag") if match else None
    return [] if not tag else _VERSION.findall(tag)


class FilterModule:
    """Image reference filters."""

    def filters(self):
        return {
            "image_pin_problems": image_pin_problems,
            "image_versions": image_versions,
        }
