"""Render tests of the docker role for the OS/source combinations no local target can run.

One ansible-playbook run works out the role's plan (roles/docker/tasks/plan.yml, the part of the
preflight that only reads facts and variables) for made-up hosts (Debian 12/13, Ubuntu 22.04/24.04,
Amazon Linux 2023, x86_64/aarch64, each source) and renders the Docker CE apt source with Ansible's
own templating. The expected URLs, paths and package names are written out here on purpose, so a
typo in the role's vars fails a test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
ROLE = ROOT / "roles" / "docker"
GIB = 1024**3

DOCKER_CE_DEBIAN = "https://download.docker.com/linux/debian"
DOCKER_CE_UBUNTU = "https://download.docker.com/linux/ubuntu"
KEYRING = "/etc/apt/keyrings/docker.asc"
SOURCES_FILE = "/etc/apt/sources.list.d/docker.sources"
COMPOSE_RELEASES = "https://github.com/docker/compose/releases/download"
COMPOSE_DEST = "/usr/local/lib/docker/cli-plugins/docker-compose"
DOCKER_CE_PACKAGES = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"]


def facts(distribution, major, release, family, arch="x86_64"):
    return {
        "distribution": distribution,
        "distribution_major_version": major,
        "distribution_version": major,
        "distribution_release": release,
        "os_family": family,
        "architecture": arch,
    }


def measured(path, mount, free_gib):
    """A disk entry as llmops.devbox.box_probe returns it (the nearest parent mount is its business)."""
    return {"path": path, "exists": True, "measured": path, "mount": mount, "fstype": "ext4",
            "free_bytes": int(free_gib * GIB), "size_bytes": 500 * GIB, "error": ""}


# What the preflight's probe reports unless a case says otherwise: 100 GiB free for /var/lib/docker.
PROBE = {"changed": False, "disk": [measured("/var/lib/docker", "/", 100)],
         "apt_lists": {"path": "/var/lib/apt/lists", "present": True, "count": 4, "newest_age": 60, "error": ""}}


DEBIAN12 = facts("Debian", "12", "bookworm", "Debian")
DEBIAN13 = facts("Debian", "13", "trixie", "Debian")
UBUNTU22 = facts("Ubuntu", "22", "jammy", "Debian")
UBUNTU24 = facts("Ubuntu", "24", "noble", "Debian")
AL2023 = facts("Amazon", "2023", "NA", "RedHat")

# host name -> (facts, role variables)
CASES = {
    "debian12_auto": (DEBIAN12, {}),
    "debian12_distribution": (DEBIAN12, {"docker_install_source": "distribution"}),
    "debian13_auto": (DEBIAN13, {}),
    "debian13_pinned": (DEBIAN13, {"docker_version": "26.1.5"}),
    "debian13_docker_ce_arm": (
        facts("Debian", "13", "trixie", "Debian", arch="aarch64"),
        {"docker_install_source": "docker-ce"},
    ),
    "ubuntu22_auto": (UBUNTU22, {}),
    "ubuntu22_distribution": (UBUNTU22, {"docker_install_source": "distribution"}),
    "ubuntu24_auto_pinned": (UBUNTU24, {"docker_version": "28.5.2", "docker_compose_plugin_version": "2.40.3"}),
    "ubuntu24_distribution": (UBUNTU24, {"docker_install_source": "distribution"}),
    "al2023_auto": (AL2023, {}),
    "al2023_arm_pinned": (facts("Amazon", "2023", "NA", "RedHat", arch="aarch64"), {"docker_version": "25.0.8"}),
    "al2023_docker_ce": (AL2023, {"docker_install_source": "docker-ce"}),
    "al2023_unknown_compose": (AL2023, {"docker_compose_binary_version": "2.99.0"}),
    "bad_source": (DEBIAN13, {"docker_install_source": "snap"}),
    "centos9": (facts("CentOS", "9", "NA", "RedHat"), {}),
    "debian13_ppc": (facts("Debian", "13", "trixie", "Debian", arch="ppc64le"), {}),
    "small_docker_volume": (DEBIAN13, {"fake_probe": {"disk": [measured("/var/lib/docker", "/var/lib/docker", 5)]}}),
    "small_parent_mount": (
        DEBIAN13,
        {"docker_min_free_disk_gib": 2, "fake_probe": {"disk": [measured("/var/lib/docker", "/var/lib", 1)]}},
    ),
    "lower_limit": (
        DEBIAN13,
        {"docker_min_free_disk_gib": 10, "fake_probe": {"disk": [measured("/var/lib/docker", "/", 12)]}},
    ),
    "data_root_elsewhere": (
        DEBIAN13,
        {
            "docker_daemon_config_overrides": {"data-root": "/data/docker", "log-opts": {"max-size": "50m"}},
            # Measured for both: the plan must read the entry of data-root.
            "fake_probe": {"disk": [measured("/var/lib/docker", "/", 100), measured("/data/docker", "/data", 3)]},
        },
    ),
    "disk_not_measured": (
        DEBIAN13,
        {"fake_probe": {"disk": [{**measured("/var/lib/docker", "", 0), "free_bytes": None, "size_bytes": None,
                                  "error": "statvfs(/var/lib) failed: Permission denied"}]}},
    ),
    "no_probe": (DEBIAN13, {"fake_probe": {}}),
    "no_apt_lists": (
        UBUNTU24,
        {"fake_probe": {**PROBE, "apt_lists": {"path": "/var/lib/apt/lists", "present": False, "count": 0,
                                               "newest_age": None, "error": ""}}},
    ),
    "disk_full": (DEBIAN13, {"fake_probe": {"disk": [measured("/var/lib/docker", "/", 0)]}}),
    "daemon_overrides": (
        DEBIAN13,
        {
            "docker_min_free_disk_gib": 0,
            "docker_daemon_config_overrides": {"data-root": "/data/docker", "log-opts": {"max-size": "50m"}},
        },
    ),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docker_plan")
    out = tmp / "out"
    out.mkdir()
    hosts = {}
    for name, (host_facts, role_vars) in CASES.items():
        hosts[name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "fake_facts": host_facts,
            "fake_probe": PROBE,
            **role_vars,
        }
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_LIBRARY=str(HERE / "library"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
        ANSIBLE_FORKS="10",
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            str(HERE / "plan_playbook.yml"),
            "-e",
            json.dumps({"out_dir": str(out), "sources_template": str(ROLE / "templates" / "docker.sources.j2")}),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(found) == set(CASES), f"ansible-playbook did not report every host:\n{proc.stdout}\n{proc.stderr}"
    return found


def plan(results, host):
    result = results[host]
    assert "failed" not in result, f"{host}: the role refused: {result.get('failed')}"
    return result["plan"]


def failure(results, host):
    result = results[host]
    assert "failed" in result, f"{host}: the role accepted a setting it must refuse: {result.get('plan')}"
    return " ".join(result["failed"].split())


def deb822(text):
    fields = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


# --- which source and which install steps -------------------------------------------------


@pytest.mark.parametrize(
    ("host", "source", "install_tasks"),
    [
        ("debian12_auto", "docker-ce", ["install-apt-docker-ce.yml"]),
        ("debian13_auto", "distribution", ["install-apt-distribution.yml"]),
        ("debian13_docker_ce_arm", "docker-ce", ["install-apt-docker-ce.yml"]),
        ("ubuntu22_auto", "docker-ce", ["install-apt-docker-ce.yml"]),
        ("ubuntu22_distribution", "distribution", ["install-apt-distribution.yml"]),
        ("ubuntu24_auto_pinned", "docker-ce", ["install-apt-docker-ce.yml"]),
        ("ubuntu24_distribution", "distribution", ["install-apt-distribution.yml"]),
        ("al2023_auto", "distribution", ["install-dnf-distribution.yml", "install-compose-binary.yml"]),
        ("al2023_arm_pinned", "distribution", ["install-dnf-distribution.yml", "install-compose-binary.yml"]),
    ],
)
def test_source_and_install_steps(results, host, source, install_tasks):
    p = plan(results, host)
    assert p["source"] == source
    assert p["install_tasks"] == install_tasks
    for name in install_tasks:
        assert (ROLE / "tasks" / name).is_file(), f"{host} would include tasks/{name}, which does not exist"


def test_every_plan_key_the_install_steps_read_exists(results):
    """A task file reading _docker_plan.<key>.<sub> that the plan lacks would fail at run time."""
    for host, result in results.items():
        if "plan" not in result:
            continue
        p = result["plan"]
        for name in p["install_tasks"] + ["configure.yml", "verify.yml", "install.yml"]:
            text = (ROLE / "tasks" / name).read_text()
            for ref in re.findall(r"_docker_plan((?:\.\w+)+)", text):
                node = p
                for key in ref.strip(".").split("."):
                    assert isinstance(node, dict) and key in node, f"{host}: tasks/{name} reads _docker_plan{ref}"
                    node = node[key]
    text = (ROLE / "templates" / "docker.sources.j2").read_text()
    for ref in re.findall(r"_docker_plan((?:\.\w+)+)", text):
        node = plan(results, "debian12_auto")
        for key in ref.strip(".").split("."):
            assert key in node, f"templates/docker.sources.j2 reads _docker_plan{ref}"
            node = node[key]


# --- Docker CE (apt) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "uri", "suite", "arch"),
    [
        ("debian12_auto", DOCKER_CE_DEBIAN, "bookworm", "amd64"),
        ("debian13_docker_ce_arm", DOCKER_CE_DEBIAN, "trixie", "arm64"),
        ("ubuntu22_auto", DOCKER_CE_UBUNTU, "jammy", "amd64"),
        ("ubuntu24_auto_pinned", DOCKER_CE_UBUNTU, "noble", "amd64"),
    ],
)
def test_docker_ce_apt_source_is_signed_by_dockers_key(results, host, uri, suite, arch):
    p = plan(results, host)
    repo = p["apt_repository"]
    assert repo["key_url"] == uri + "/gpg"
    assert repo["signed_by"] == KEYRING
    assert repo["file"] == SOURCES_FILE
    rendered = results[host]["sources"]
    assert rendered.startswith("#"), "the apt source must start with the ansible_managed comment"
    assert deb822(rendered) == {
        "Types": "deb",
        "URIs": uri,
        "Suites": suite,
        "Components": "stable",
        "Architectures": arch,
        "Signed-By": KEYRING,
    }
    assert p["compose_binary"] == {}


def test_docker_ce_packages_and_their_clashes(results):
    p = plan(results, "debian12_auto")
    assert p["packages"] == DOCKER_CE_PACKAGES
    # dpkg refuses to overwrite files of these; they must go before docker-ce comes.
    assert {"docker.io", "containerd", "runc", "docker-compose"} <= set(p["conflicting_packages"])
    assert not set(p["conflicting_packages"]) & set(DOCKER_CE_PACKAGES)
    assert "docker-compose-v2" in plan(results, "ubuntu22_auto")["conflicting_packages"]


def test_docker_ce_versions_are_pinned_with_the_epoch(results):
    assert plan(results, "ubuntu24_auto_pinned")["packages"] == [
        "docker-ce=5:28.5.2-*",
        "docker-ce-cli=5:28.5.2-*",
        "containerd.io",
        "docker-buildx-plugin",
        "docker-compose-plugin=2.40.3-*",
    ]


# --- distribution packages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "packages"),
    [
        ("debian13_auto", ["docker.io", "docker-cli", "docker-compose", "docker-buildx"]),
        ("debian13_pinned", ["docker.io=26.1.5*", "docker-cli=26.1.5*", "docker-compose", "docker-buildx"]),
        # On Ubuntu, docker-compose is Compose v1; the v2 plugin is docker-compose-v2.
        ("ubuntu22_distribution", ["docker.io", "docker-compose-v2", "docker-buildx"]),
        ("ubuntu24_distribution", ["docker.io", "docker-compose-v2", "docker-buildx"]),
        ("al2023_auto", ["docker"]),
        ("al2023_arm_pinned", ["docker-25.0.8*"]),
    ],
)
def test_distribution_packages(results, host, packages):
    p = plan(results, host)
    assert p["packages"] == packages
    assert p["apt_repository"] == {}
    assert results[host]["sources"] == ""


def test_distribution_source_clears_docker_ce_packages_on_apt(results):
    conflicts = set(plan(results, "debian13_auto")["conflicting_packages"])
    assert set(DOCKER_CE_PACKAGES) <= conflicts
    assert not conflicts & {"docker.io", "docker-cli", "docker-compose", "docker-buildx"}
    assert plan(results, "al2023_auto")["conflicting_packages"] == []


def test_debian12_distribution_is_refused_with_what_to_set(results):
    msg = failure(results, "debian12_distribution")
    assert "Compose v1" in msg
    assert "docker_install_source to docker-ce" in msg


# --- Amazon Linux 2023: Compose plugin binary ---------------------------------------------


@pytest.mark.parametrize(("host", "arch"), [("al2023_auto", "x86_64"), ("al2023_arm_pinned", "aarch64")])
def test_al2023_compose_binary_is_pinned_and_checksummed(results, host, arch):
    binary = plan(results, host)["compose_binary"]
    assert binary["version"] == "2.36.2"
    assert binary["url"] == f"{COMPOSE_RELEASES}/v2.36.2/docker-compose-linux-{arch}"
    assert binary["dest"] == COMPOSE_DEST
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", binary["checksum"])


def test_compose_checksums_differ_per_architecture(results):
    assert (
        plan(results, "al2023_auto")["compose_binary"]["checksum"]
        != plan(results, "al2023_arm_pinned")["compose_binary"]["checksum"]
    )


def test_al2023_refuses_docker_ce(results):
    msg = failure(results, "al2023_docker_ce")
    assert "no docker-ce repository for Amazon Linux 2023" in msg
    assert "docker_install_source to distribution" in msg


def test_compose_version_without_checksum_is_refused(results):
    msg = failure(results, "al2023_unknown_compose")
    assert "docker_compose_binary_checksums['2.99.0']['x86_64']" in msg


# --- platform and input checks ------------------------------------------------------------


def test_unknown_source_is_refused(results):
    assert "use auto, docker-ce or distribution" in failure(results, "bad_source")


def test_unsupported_os_is_refused(results):
    msg = failure(results, "centos9")
    assert "CentOS" in msg and "not supported" in msg and "Debian 12/13" in msg


def test_unsupported_architecture_is_refused(results):
    msg = failure(results, "debian13_ppc")
    assert "ppc64le" in msg and "x86_64 or aarch64" in msg


# --- free disk ----------------------------------------------------------------------------


def test_free_disk_is_checked_on_the_filesystem_of_var_lib_docker(results):
    msg = failure(results, "small_docker_volume")
    assert "Only 5.0 GiB free on /var/lib/docker" in msg
    assert "docker_min_free_disk_gib=20" in msg


def test_free_disk_names_the_mount_the_probe_found(results):
    # The probe measures the nearest parent mount (tests/unit/plugins/modules/test_box_probe.py).
    msg = failure(results, "small_parent_mount")
    assert "Only 1.0 GiB free on /var/lib," in msg
    assert "docker_min_free_disk_gib=2 GiB" in msg


def test_free_disk_limit_is_configurable(results):
    assert plan(results, "lower_limit")["source"] == "distribution"


def test_free_disk_follows_data_root(results):
    msg = failure(results, "data_root_elsewhere")
    assert "Only 3.0 GiB free on /data" in msg and "/data/docker" in msg


def test_a_full_disk_is_reported_as_full(results):
    assert "Only 0.0 GiB free on /," in failure(results, "disk_full")


@pytest.mark.parametrize(("host", "why"), [("disk_not_measured", "statvfs(/var/lib) failed: Permission denied"),
                                           ("no_probe", "the preflight did not measure /var/lib/docker")])
def test_free_disk_not_measured_says_why_and_how_to_skip(results, host, why):
    msg = failure(results, host)
    assert "Cannot tell the free space for /var/lib/docker" in msg and why in msg
    assert "docker_min_free_disk_gib to 0" in msg


# --- apt package lists --------------------------------------------------------------------


def test_the_plan_records_whether_apt_has_package_lists(results):
    # An image without lists gets them refreshed (cache_valid_time 0) and check mode skips the install.
    assert plan(results, "debian13_auto")["apt_lists_present"] is True
    assert plan(results, "no_apt_lists")["apt_lists_present"] is False
    for name in ("install-apt-distribution.yml", "install-apt-docker-ce.yml"):
        text = (ROLE / "tasks" / name).read_text()
        assert "_docker_plan.apt_lists_present" in text and "/var/lib/apt/lists" not in text, name


# --- daemon.json --------------------------------------------------------------------------


def test_default_daemon_json(results):
    p = plan(results, "debian13_auto")
    assert json.loads(p["daemon_json"]) == {
        "live-restore": True,
        "log-driver": "json-file",
        "log-opts": {"max-file": "3", "max-size": "10m"},
    }
    assert p["data_root"] == "/var/lib/docker"
    assert p["daemon_json_validate"] == "dockerd --validate --config-file %s"


def test_daemon_overrides_merge_over_the_defaults(results):
    p = plan(results, "daemon_overrides")
    assert json.loads(p["daemon_json"]) == {
        "data-root": "/data/docker",
        "live-restore": True,
        "log-driver": "json-file",
        "log-opts": {"max-file": "3", "max-size": "50m"},
    }
    assert p["data_root"] == "/data/docker"
