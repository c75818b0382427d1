"""How the code_server role installs code-server on each OS it has a default for, and what stops it on others.

- One ansible-playbook run (render_playbook.yml with install_cases) works out, with the role's own
  defaults and vars, the install plan for Debian 12 and 13, Ubuntu 22.04 and 24.04 and Amazon Linux
  2023, each on x86_64 and aarch64: the method, the URL, the checksum and the paths. The expected URLs
  and checksums are written out here, so a slip in vars/main.yml fails a test.
- One more (install_playbook.yml) runs the role's tasks/preflight_install.yml for boxes without a
  default and for settings that cannot work there: each stops with a message naming the OS and what to set.
- The pinned checksums equal those in tests/contracts/code-server-release.yml, and the task files
  download with a checksum and give every file they make a mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
ROLE = ROOT / "roles" / "code_server"
RELEASES = "https://github.com/coder/code-server/releases/download/v4.100.3"
CONTRACT = yaml.safe_load((ROOT / "tests" / "contracts" / "code-server-release.yml").read_text())
# Published for code-server 4.100.3's standalone archives (tests/contracts/code-server-release.yml):
# SHA-256 by conda-forge/code-server-feedstock, SHA-512 by coder/code-server-aur.
SHA256 = {"amd64": "5c4cee53de23a1f616fddcc5a2e78ea0b3e60d0115c9b97391a33cd5fad802fa",
          "arm64": "970198cfc1729882a9df16631741ec4cb6cb557c76fbeab4a1fbde6fd98348b9"}
SHA512 = {"amd64": "8b7b1420b28eda4168dc22f01e46639baaf491a2648c93231dace7cbfbcb0b3c1d14e68af21b28a501efe5c37bfc"
                   "0047091bd4d8b5b02935c0c3964bc75eba83",
          "arm64": "2c70a0631c925bffdaa9d04fbc83f74dc5700cafae2b53fe04b600673027a21a95c91408f29f7510a21e0420f389"
                   "776e592e794e034747607d91b6323d7bdb47"}
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def os_facts(distribution, version, major, family, machine="x86_64"):
    return {"distribution": distribution, "distribution_version": version, "distribution_major_version": major,
            "os_family": family, "architecture": machine}


# As setup reports them on those systems.
SYSTEMS = {
    "debian12": ("Debian", "12.11", "12", "Debian"),
    "debian13": ("Debian", "13.1", "13", "Debian"),
    "ubuntu2204": ("Ubuntu", "22.04", "22", "Debian"),
    "ubuntu2404": ("Ubuntu", "24.04", "24", "Debian"),
    "al2023": ("Amazon", "2023", "2023", "RedHat"),
}
CASES = {f"{name}-{machine}": os_facts(*system, machine=machine)
         for name, system in SYSTEMS.items() for machine in ARCH}


def run_playbook(playbook: Path, *args: str) -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), *args, str(playbook)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    out = tmp_path_factory.mktemp("install")
    extra = {"out_dir": str(out), "ansible_python_interpreter": sys.executable,
             "install_cases": [{"name": name, "facts": facts} for name, facts in CASES.items()]}
    run_playbook(HERE / "render_playbook.yml", "-i", "localhost,", "-e", json.dumps(extra))
    return json.loads((out / "install-cases.json").read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_is_the_standalone_release_with_pinned_checksums(plans, case):
    arch = ARCH[CASES[case]["architecture"]]
    got = plans[case]
    assert got["install"]["error"] == ""
    assert got["install"]["method"] == "standalone"
    assert got["install"]["url"] == f"{RELEASES}/code-server-4.100.3-linux-{arch}.tar.gz"
    assert got["install"]["checksum"] == f"sha256:{SHA256[arch]}"
    assert got["install"]["cross_check"] == SHA512[arch]
    assert got["download_path"] == f"/var/cache/code-server/code-server-4.100.3-linux-{arch}.tar.gz"
    assert got["standalone_dir"] == "/usr/local/lib/code-server-4.100.3"
    assert got["bin"] == "/usr/local/bin/code-server"


# --- preflight ------------------------------------------------------------------------------------

SUM = "sha256:" + "ab" * 32
AL2023 = os_facts(*SYSTEMS["al2023"])
# case -> (OS facts, settings, words the message must hold; None: the box passes)
PREFLIGHT = {
    "debian13": (os_facts(*SYSTEMS["debian13"]), {}, None),
    "al2023_arm": (os_facts(*SYSTEMS["al2023"], machine="aarch64"), {}, None),
    "rocky9": (os_facts("Rocky", "9.6", "9", "RedHat"), {}, None),
    "amazon_linux_2": (os_facts("Amazon", "2", "2", "RedHat"), {},
                       ["auto has no default for Amazon 2 (x86_64)", "code_server_install_method: standalone",
                        "Amazon Linux 2023"]),
    "ubuntu2004": (os_facts("Ubuntu", "20.04", "20", "Debian"), {},
                   ["auto has no default for Ubuntu 20.04 (x86_64)", "code_server_install_method: standalone"]),
    "armv7l": (os_facts(*SYSTEMS["debian13"], machine="armv7l"), {},
               ["auto has no default for Debian 13.1 (armv7l)", "x86_64 and aarch64",
                "code_server_install_method: local"]),
    "unpinned_version": (AL2023, {"code_server_version": "4.101.0"},
                         ["[code_server_standalone_checksum]", "code-server-4.101.0-linux-amd64.tar.gz",
                          "code_server_version: 4.100.3"]),
    "unpinned_version_with_checksum": (AL2023, {"code_server_version": "4.101.0",
                                                "code_server_standalone_checksum": SUM}, None),
    "deb_on_amazon": (AL2023, {"code_server_install_method": "deb", "code_server_deb_checksum": SUM},
                      ["[code_server_install_method] deb needs apt, which Amazon 2023 (x86_64)",
                       "code_server_install_method: auto"]),
    "npm_on_amazon": (AL2023, {"code_server_install_method": "npm"},
                      ["npm needs apt and Debian's Node.js, which Amazon 2023 (x86_64)"]),
    "rpm_on_amazon": (AL2023, {"code_server_install_method": "rpm", "code_server_rpm_checksum": SUM}, None),
    "npm_on_debian": (os_facts(*SYSTEMS["debian13"]), {"code_server_install_method": "npm"}, None),
}


@pytest.fixture(scope="module")
def preflight(tmp_path_factory):
    top = tmp_path_factory.mktemp("install-preflight")
    out = top / "out"
    out.mkdir()
    common = {"ansible_python_interpreter": sys.executable, "out_dir": str(out)}
    inventory = top / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {
        name: {**common, **settings, "case_facts": facts} for name, (facts, settings, _) in PREFLIGHT.items()}}}))
    run_playbook(HERE / "install_playbook.yml", "-i", str(inventory))
    results = {}
    for name in PREFLIGHT:
        error = out / f"{name}.error"
        results[name] = ("error", " ".join(error.read_text().split())) if error.exists() else ("ok", "")
    return results


@pytest.mark.parametrize("case", [c for c, (_, _, words) in PREFLIGHT.items() if words is None])
def test_boxes_the_role_can_install(preflight, case):
    assert preflight[case] == ("ok", ""), preflight[case][1]


@pytest.mark.parametrize("case", [c for c, (_, _, words) in PREFLIGHT.items() if words is not None])
def test_boxes_it_cannot_stop_naming_the_os_and_what_to_set(preflight, case):
    status, message = preflight[case]
    assert status == "error", f"{case} passed"
    assert message.startswith(f"code-server cannot be installed on {case} as set (nothing was changed):")
    for words in PREFLIGHT[case][2]:
        assert words in message


def test_the_install_check_runs_before_anything_changes():
    preflight_tasks = yaml.safe_load((ROLE / "tasks" / "preflight.yml").read_text())
    assert preflight_tasks[1]["ansible.builtin.include_tasks"] == "preflight_install.yml"


# --- pins and task files --------------------------------------------------------------------------

def test_pinned_checksums_are_the_contracts():
    pinned = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_code_server_release_checksums"]
    published = CONTRACT["facts"]["standalone_checksums"]["value"]
    version = CONTRACT["release"]["version"]
    assert set(pinned) == {version}
    assert {f"code-server-{version}-linux-{arch}.tar.gz": {k: v.strip() for k, v in sums.items()}
            for arch, sums in pinned[version].items()} == published
    for arch in ("amd64", "arm64"):
        assert pinned[version][arch]["sha256"] == SHA256[arch]
        assert pinned[version][arch]["sha512"].strip() == SHA512[arch]


def test_the_pinned_release_is_the_default_version():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["code_server_version"] == CONTRACT["release"]["version"]
    assert defaults["code_server_install_method"] == "auto"


def test_each_method_has_its_task_file():
    main = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    (include,) = [t["ansible.builtin.include_tasks"]["file"] for t in main
                  if isinstance(t.get("ansible.builtin.include_tasks"), dict)
                  and "install_" in t["ansible.builtin.include_tasks"]["file"]]
    template = jinja2.Environment(autoescape=False).from_string(include)  # noqa: S701 - a file name
    files = {m: template.render(_code_server_method=m) for m in ("standalone", "deb", "rpm", "local", "npm")}
    assert files == {"standalone": "install_standalone.yml", "deb": "install_deb.yml", "rpm": "install_rpm.yml",
                     "local": "install_deb.yml", "npm": "install_npm.yml"}
    for name in files.values():
        assert (ROLE / "tasks" / name).is_file(), name


def _tasks(name: str) -> list[dict]:
    found = []
    for task in yaml.safe_load((ROLE / "tasks" / name).read_text()):
        found += task.get("block", [task])
    return found


@pytest.mark.parametrize("name", ["install_standalone.yml", "install_deb.yml", "install_rpm.yml"])
def test_downloads_are_checksummed_and_files_have_a_mode(name):
    for task in _tasks(name):
        if "ansible.builtin.get_url" in task:
            assert task["ansible.builtin.get_url"]["checksum"] == "{{ _code_server_install.checksum }}"
        for module in ("ansible.builtin.get_url", "ansible.builtin.copy", "ansible.builtin.template",
                       "ansible.builtin.unarchive"):
            if module in task:
                assert task[module].get("mode"), task["name"]
        if task.get("ansible.builtin.file", {}).get("state") == "directory":
            assert task["ansible.builtin.file"].get("mode"), task["name"]


def test_rpm_goes_through_dnf():
    (install,) = [t for t in _tasks("install_rpm.yml") if "ansible.builtin.dnf" in t]
    assert install["ansible.builtin.dnf"]["name"] == "{{ _code_server_download_path }}"
    # Upstream's .rpm is unsigned (tests/contracts/code-server-release.yml, facts.packages.rpm_signature).
    assert install["ansible.builtin.dnf"]["disable_gpg_check"] is True
    assert "unsigned" in CONTRACT["facts"]["packages"]["value"]["rpm_signature"]
