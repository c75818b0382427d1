"""llmops.devbox.code_server_install: the install method, download and checksum role code_server uses on a box,
or a message naming the OS and what to set."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.devbox.plugins.filter.code_server_install import (
    FilterModule,
    asset_name,
    code_server_install,
    has_default,
)

RELEASES = "https://github.com/coder/code-server/releases/download"
SHA256 = {"amd64": "a" * 64, "arm64": "b" * 64}
SHA512 = {"amd64": "c" * 128, "arm64": "d" * 128}
PINNED = {"4.100.3": {arch: {"sha256": SHA256[arch], "sha512": SHA512[arch]} for arch in ("amd64", "arm64")}}
USER_SUM = "sha256:" + "e" * 64


def facts(distribution, version, family, arch="x86_64", major=None):
    return {"distribution": distribution, "distribution_version": version,
            "distribution_major_version": major or version.split(".")[0], "os_family": family,
            "architecture": arch}


DEBIAN12 = facts("Debian", "12.11", "Debian")
DEBIAN13 = facts("Debian", "13.1", "Debian")
UBUNTU2204 = facts("Ubuntu", "22.04", "Debian")
UBUNTU2404 = facts("Ubuntu", "24.04", "Debian")
AL2023 = facts("Amazon", "2023", "RedHat")
ROCKY9 = facts("Rocky", "9.6", "RedHat")
FEDORA42 = facts("Fedora", "42", "RedHat")


def plan(box, method="auto", version="4.100.3", urls=None, checksums=None):
    return code_server_install(box, method=method, version=version, pinned=PINNED, urls=urls, checksums=checksums)


@pytest.mark.parametrize("box", [DEBIAN12, DEBIAN13, UBUNTU2204, UBUNTU2404, AL2023, ROCKY9, FEDORA42],
                         ids=lambda b: f"{b['distribution']}-{b['distribution_version']}")
@pytest.mark.parametrize("machine,arch", [("x86_64", "amd64"), ("aarch64", "arm64")])
def test_auto_takes_the_pinned_standalone_release(box, machine, arch):
    got = plan({**box, "architecture": machine})
    assert got["error"] == ""
    assert got["method"] == "standalone"
    assert got["arch"] == arch
    assert got["asset"] == f"code-server-4.100.3-linux-{arch}.tar.gz"
    assert got["url"] == f"{RELEASES}/v4.100.3/code-server-4.100.3-linux-{arch}.tar.gz"
    assert got["checksum"] == f"sha256:{SHA256[arch]}"
    assert got["cross_check"] == SHA512[arch]


@pytest.mark.parametrize("box,named", [
    (facts("Amazon", "2", "RedHat"), "Amazon 2 (x86_64)"),
    (facts("Ubuntu", "20.04", "Debian"), "Ubuntu 20.04 (x86_64)"),
    (facts("Ubuntu", "23.10", "Debian"), "Ubuntu 23.10 (x86_64)"),
    (facts("Debian", "11.11", "Debian"), "Debian 11.11 (x86_64)"),
    (facts("CentOS", "7.9", "RedHat"), "CentOS 7.9 (x86_64)"),
    (facts("SLES", "15.6", "Suse"), "SLES 15.6 (x86_64)"),
    (facts("Debian", "n/a", "Debian", major="n/a"), "Debian n/a (x86_64)"),
])
def test_auto_without_a_default_names_the_os_and_what_to_set(box, named):
    got = plan(box)
    assert got["method"] == "" and got["url"] == "" and got["checksum"] == ""
    assert got["error"].startswith("[code_server_install_method] auto has no default for " + named)
    assert "code_server_install_method: standalone" in got["error"]
    assert "glibc 2.28" in got["error"]


@pytest.mark.parametrize("machine", ["armv7l", "ppc64le", "s390x"])
def test_auto_without_an_upstream_asset_for_the_architecture(machine):
    got = plan({**DEBIAN13, "architecture": machine})
    assert got["error"].startswith(f"[code_server_install_method] auto has no default for Debian 13.1 ({machine})")
    assert "x86_64 and aarch64" in got["error"]
    assert "code_server_install_method: local" in got["error"]


def test_standalone_on_another_linux_when_asked():
    got = plan(facts("openSUSE Leap", "15.6", "Suse", arch="aarch64"), method="standalone")
    assert got["error"] == ""
    assert got["url"] == f"{RELEASES}/v4.100.3/code-server-4.100.3-linux-arm64.tar.gz"
    assert got["checksum"] == f"sha256:{SHA256['arm64']}"


def test_a_version_without_pinned_checksums_needs_one():
    got = plan(DEBIAN13, version="4.101.0")
    assert got["method"] == ""
    assert got["error"].startswith("[code_server_standalone_checksum] the standalone method needs the checksum of "
                                   "code-server-4.101.0-linux-amd64.tar.gz")
    assert "for code-server 4.100.3 only" in got["error"]
    assert "code_server_version: 4.100.3" in got["error"]


def test_a_version_with_the_users_checksum():
    got = plan(AL2023, version="4.101.0", checksums={"standalone": USER_SUM})
    assert got["error"] == ""
    assert got["url"] == f"{RELEASES}/v4.101.0/code-server-4.101.0-linux-amd64.tar.gz"
    assert got["checksum"] == USER_SUM
    assert got["cross_check"] == ""


def test_the_users_checksum_wins_over_the_pinned_one():
    got = plan(DEBIAN13, checksums={"standalone": USER_SUM})
    assert got["checksum"] == USER_SUM and got["cross_check"] == ""


def test_a_mirror_of_the_same_file_keeps_the_pinned_checksum():
    url = "https://mirror.example/code-server/code-server-4.100.3-linux-amd64.tar.gz"
    got = plan(DEBIAN13, urls={"standalone": url})
    assert got["url"] == url
    assert got["asset"] == "code-server-4.100.3-linux-amd64.tar.gz"
    assert got["checksum"] == f"sha256:{SHA256['amd64']}"


def test_another_file_needs_its_own_checksum():
    got = plan(DEBIAN13, urls={"standalone": "https://mirror.example/cs.tar.gz?token=x"})
    assert got["error"].startswith("[code_server_standalone_checksum] the standalone method needs the checksum of "
                                   "cs.tar.gz")
    got = plan(DEBIAN13, urls={"standalone": "https://mirror.example/cs.tar.gz?token=x"},
               checksums={"standalone": USER_SUM})
    assert got["asset"] == "cs.tar.gz" and got["checksum"] == USER_SUM


@pytest.mark.parametrize("url", ["https://mirror.example/", "mirror.example/cs.tar.gz"])
def test_a_url_must_end_in_a_file_name(url):
    assert plan(DEBIAN13, urls={"standalone": url})["error"].startswith("[code_server_standalone_url] must be a URL")


@pytest.mark.parametrize("box", [DEBIAN12, UBUNTU2404])
@pytest.mark.parametrize("machine,arch", [("x86_64", "amd64"), ("aarch64", "arm64")])
def test_deb_is_upstreams_deb_with_the_users_checksum(box, machine, arch):
    got = plan({**box, "architecture": machine}, method="deb", checksums={"deb": USER_SUM})
    assert got["error"] == ""
    assert (got["method"], got["asset"]) == ("deb", f"code-server_4.100.3_{arch}.deb")
    assert got["url"] == f"{RELEASES}/v4.100.3/code-server_4.100.3_{arch}.deb"
    assert got["checksum"] == USER_SUM and got["cross_check"] == ""


@pytest.mark.parametrize("machine,arch", [("x86_64", "amd64"), ("aarch64", "arm64")])
def test_rpm_is_upstreams_rpm_named_with_amd64_or_arm64(machine, arch):
    got = plan({**AL2023, "architecture": machine}, method="rpm", checksums={"rpm": USER_SUM})
    assert got["error"] == ""
    assert got["url"] == f"{RELEASES}/v4.100.3/code-server-4.100.3-{arch}.rpm"
    assert got["checksum"] == USER_SUM


@pytest.mark.parametrize("method", ["deb", "rpm"])
def test_packages_need_the_users_checksum(method):
    box = DEBIAN13 if method == "deb" else AL2023
    got = plan(box, method=method)
    assert got["error"].startswith(f"[code_server_{method}_checksum] the {method} method needs the checksum of")
    assert "pins" not in got["error"]


@pytest.mark.parametrize("checksum", ["abc", "sha256:xyz", "md5:" + "a" * 32, "sha256:" + "a" * 63])
def test_a_checksum_in_another_form_is_refused(checksum):
    got = plan(DEBIAN13, method="deb", checksums={"deb": checksum})
    assert got["error"].startswith("[code_server_deb_checksum] must be 'sha256:<64 hex>' or 'sha512:<128 hex>'")


@pytest.mark.parametrize("method,box,tool,instead", [
    ("deb", AL2023, "apt", "auto"),
    ("local", AL2023, "apt", "auto"),
    ("npm", AL2023, "apt and Debian's Node.js", "auto"),
    ("npm", facts("SLES", "15.6", "Suse"), "apt and Debian's Node.js", "standalone"),
    ("rpm", UBUNTU2204, "dnf", "auto"),
])
def test_a_method_the_os_cannot_run(method, box, tool, instead):
    got = plan(box, method=method, checksums={method: USER_SUM})
    assert got["method"] == ""
    assert got["error"].startswith(f"[code_server_install_method] {method} needs {tool}, which {got['os']}")
    assert f"Set code_server_install_method: {instead}" in got["error"]


@pytest.mark.parametrize("method", ["npm", "local"])
def test_npm_and_local_download_nothing(method):
    got = plan(UBUNTU2404, method=method)
    assert got == {"method": method, "os": "Ubuntu 24.04 (x86_64)", "arch": "amd64", "asset": "", "url": "",
                   "checksum": "", "cross_check": "", "error": ""}


def test_an_unknown_method():
    assert plan(DEBIAN13, method="snap")["error"].startswith("[code_server_install_method] must be one of auto,")


@pytest.mark.parametrize("box", [{}, {"architecture": "x86_64"}, None])
def test_missing_facts_are_named(box):
    assert "OS facts (distribution, architecture) are missing" in plan(box)["error"]


def test_a_version_that_is_not_pinned_to_a_release():
    assert plan(DEBIAN13, version="latest")["error"].startswith("[code_server_version] must be a pinned release")


def test_helpers():
    assert asset_name("deb", "1.2.3", "arm64") == "code-server_1.2.3_arm64.deb"
    assert asset_name("rpm", "1.2.3", "amd64") == "code-server-1.2.3-amd64.rpm"
    assert asset_name("standalone", "1.2.3", "amd64") == "code-server-1.2.3-linux-amd64.tar.gz"
    assert has_default(facts("OracleLinux", "8.10", "RedHat")) and not has_default(facts("RedHat", "7.9", "RedHat"))
    assert FilterModule().filters() == {"code_server_install": code_server_install}
