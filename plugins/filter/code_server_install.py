# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""How role code_server installs code-server on a box: the method, the upstream download and its checksum.

From the box's OS facts, the method asked for (``auto`` picks one from the OS) and the version. ``auto``
takes upstream's standalone release (the ``.tar.gz`` that carries its own Node.js) on the systems the role
has a default for, with the checksum the role pins for that version and architecture; ``standalone``,
``deb`` and ``rpm`` take the upstream asset of that kind; ``npm`` and ``local`` need no download. Anything
that cannot work on the box comes back as ``error``: a message naming the OS and what to set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

RELEASES = "https://github.com/coder/code-server/releases/download"
METHODS = ("auto", "standalone", "deb", "rpm", "local", "npm")
# Upstream names its Linux assets (tarball, .deb and .rpm alike) with these architecture names.
ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}
# Systems auto installs the standalone release on (glibc >= 2.28, upstream's requirement for it), by
# ansible_facts.distribution: the distribution_major_version values, the distribution_version values, or
# the lowest distribution_major_version.
DEFAULT_MAJORS = {"Debian": {"12", "13"}, "Amazon": {"2023"}}
DEFAULT_VERSIONS = {"Ubuntu": {"22.04", "24.04"}}
DEFAULT_FROM_MAJOR = {"RedHat": 8, "CentOS": 8, "Rocky": 8, "AlmaLinux": 8, "OracleLinux": 8, "Fedora": 29}
DEFAULTS_TEXT = ("Debian 12/13, Ubuntu 22.04/24.04, Amazon Linux 2023 and RHEL, CentOS Stream, Rocky, AlmaLinux "
                 "or Oracle Linux 8+ and Fedora")
# Methods that use a package manager, and the OS family (ansible_facts.os_family) that has it.
FAMILY = {"deb": ("Debian", "apt"), "local": ("Debian", "apt"), "npm": ("Debian", "apt and Debian's Node.js"),
          "rpm": ("RedHat", "dnf")}
_CHECKSUM = re.compile(r"(sha256:[0-9a-fA-F]{64}|sha512:[0-9a-fA-F]{128})\Z")
_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\Z")


def asset_name(kind: str, version: str, arch: str) -> str:
    """File name of upstream's release asset of that kind (standalone, deb, rpm)."""
    if kind == "deb":
        return f"code-server_{version}_{arch}.deb"
    if kind == "rpm":
        return f"code-server-{version}-{arch}.rpm"
    return f"code-server-{version}-linux-{arch}.tar.gz"


def _os_name(facts: Mapping) -> str:
    name = facts.get("distribution") or "an unknown OS"
    version = facts.get("distribution_version") or facts.get("distribution_major_version") or ""
    return f"{name} {version}".strip() + f" ({facts.get('architecture') or 'unknown architecture'})"


def has_default(facts: Mapping) -> bool:
    """Whether auto has a method for this OS (the architecture is checked apart)."""
    name = facts.get("distribution")
    major = str(facts.get("distribution_major_version") or "")
    if name in DEFAULT_MAJORS:
        return major in DEFAULT_MAJORS[name]
    if name in DEFAULT_VERSIONS:
        return str(facts.get("distribution_version") or "") in DEFAULT_VERSIONS[name]
    if name in DEFAULT_FROM_MAJOR:
        return major.isdigit() and int(major) >= DEFAULT_FROM_MAJOR[name]
    return False


def _result(method="", arch="", asset="", url="", checksum="", cross_check="", error="", os=""):
    return {"method": method, "os": os, "arch": arch, "asset": asset, "url": url, "checksum": checksum,
            "cross_check": cross_check, "error": error}


def code_server_install(facts, method="auto", version="", pinned=None, urls=None, checksums=None):
    """The install plan for a box: {method, os, arch, asset, url, checksum, cross_check, error}.

    facts: the box's ansible_facts (distribution, distribution_version, distribution_major_version,
    os_family, architecture). pinned: version -> upstream arch -> {sha256, sha512} of the standalone
    release. urls / checksums: the user's code_server_<kind>_url / _checksum by kind (empty: upstream's
    asset, the pinned checksum).
    """
    facts = facts if isinstance(facts, Mapping) else {}
    pinned = pinned if isinstance(pinned, Mapping) else {}
    urls = urls if isinstance(urls, Mapping) else {}
    checksums = checksums if isinstance(checksums, Mapping) else {}
    version = str(version or "")
    os_name = _os_name(facts)

    def fail(message):
        return _result(error=message, os=os_name)

    if method not in METHODS:
        return fail(f"[code_server_install_method] must be one of {', '.join(METHODS)} (got '{method}').")
    if not facts.get("distribution") or not facts.get("architecture"):
        return fail("the box's OS facts (distribution, architecture) are missing: gather facts "
                    "(gather_facts: true, or ansible.builtin.setup) before the role runs.")
    arch = ARCHES.get(facts.get("architecture"), "")

    if method == "auto":
        if not has_default(facts):
            return fail(
                f"[code_server_install_method] auto has no default for {os_name}: it installs upstream's "
                f"standalone release on {DEFAULTS_TEXT}. On another Linux with glibc 2.28 or newer set "
                "code_server_install_method: standalone; or deb / rpm with code_server_deb_checksum / "
                "code_server_rpm_checksum, or local with code_server_deb_src (a .deb on the controller).")
        if not arch:
            return fail(
                f"[code_server_install_method] auto has no default for {os_name}: upstream publishes the "
                "releases the role knows for x86_64 and aarch64 only. Set code_server_install_method: local with "
                "code_server_deb_src (a .deb built for this architecture), or standalone / deb / rpm with "
                "code_server_<method>_url and code_server_<method>_checksum.")
        method = "standalone"

    if method in FAMILY:
        family, tool = FAMILY[method]
        if facts.get("os_family") != family:
            better = "auto" if has_default(facts) else "standalone"
            return fail(
                f"[code_server_install_method] {method} needs {tool}, which {os_name} (OS family "
                f"{facts.get('os_family') or 'unknown'}) does not have. Set code_server_install_method: {better}"
                + (" (upstream's standalone release)." if better == "auto" else
                   " (upstream's standalone release, for a Linux with glibc 2.28 or newer)."))
    if method in ("npm", "local"):
        return _result(method=method, arch=arch, os=os_name)

    url = str(urls.get(method) or "")
    checksum = str(checksums.get(method) or "")
    if not _VERSION.match(version):
        return fail(f"[code_server_version] must be a pinned release X.Y.Z (got '{version}').")
    if not url and not arch:
        return fail(
            f"[code_server_{method}_url] upstream publishes {method} releases the role knows for x86_64 and "
            f"aarch64 only, not for {os_name}: set code_server_{method}_url and code_server_{method}_checksum, "
            "or code_server_install_method: local with code_server_deb_src.")
    asset = asset_name(method, version, arch)
    if url:
        asset = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
        if not asset or "://" not in url:
            return fail(f"[code_server_{method}_url] must be a URL ending in the file name (got '{url}').")
    else:
        url = f"{RELEASES}/v{version}/{asset}"

    # The pinned checksum also vouches for a mirror's copy of the same asset (same file name).
    cross_check = ""
    sums = (pinned.get(version) or {}).get(arch) or {}
    if method == "standalone" and not checksum and sums.get("sha256") and asset == asset_name(method, version, arch):
        checksum = f"sha256:{sums['sha256']}"
        cross_check = str(sums.get("sha512") or "")
    if not checksum:
        known = ", ".join(sorted(pinned, key=str)) or "none"
        pins = method == "standalone" and known != "none"
        return fail(
            f"[code_server_{method}_checksum] the {method} method needs the checksum of {asset} as 'sha256:<hex>'"
            + (f" (the role pins those of upstream's standalone release for code-server {known} only)" if pins else "")
            + f". Set code_server_{method}_checksum" + (f", or code_server_version: {known}." if pins else "."))
    if not _CHECKSUM.match(checksum):
        return fail(f"[code_server_{method}_checksum] must be 'sha256:<64 hex>' or 'sha512:<128 hex>' "
                    f"(got '{checksum}').")
    return _result(method=method, arch=arch, asset=asset, url=url, checksum=checksum, cross_check=cross_check,
                   os=os_name)


class FilterModule:
    """code-server install filters."""

    def filters(self):
        return {"code_server_install": code_server_install}
