"""The README's commands, run as typed by a new user.

- "Using it on real boxes", with this checkout: `cp -r inventory.example inventory`, then
  `ansible-playbook site.yml -i inventory` (a folder, or a file, called inventory).
- The same with the plain `pip` + `ansible-galaxy` path: a fresh venv with only ansible-core from
  PyPI, the collection installed from the tarball `ansible-galaxy collection build` makes, and
  `ansible-playbook llmops.devbox.site -i inventory` from a folder that is not this checkout.
  Galaxy is unreachable here, so the dependencies are put in place first and the tarball is
  installed with --offline (on a real machine ansible-galaxy fetches them).
- A mistyped inventory, or one without boxes, fails instead of exiting 0 having done nothing.
- `site.yml --tags <role>` plans that role's tasks after the facts play (the run itself is in the
  fleet scenario).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHECKOUT_ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
ANSIBLE_CORE = next(line.strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
                    if line.startswith("ansible-core=="))
DEPENDENCIES = ["community/docker", "community/general", "community/library_inventory_filtering_v1",
                "ansible/posix"]


def run(cmd, cwd, env, timeout=300):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def inventory_as(kind, where):
    """The shipped example as the user copies it: a folder `inventory`, or a file `inventory`."""
    dest = where / "inventory"
    if kind == "folder":
        shutil.copytree(ROOT / "inventory.example", dest)
    else:
        shutil.copy(ROOT / "inventory.example" / "hosts.ini", dest)
    return dest


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_site_with_an_inventory_called_inventory_finds_the_example_box(tmp_path, kind):
    inv = inventory_as(kind, tmp_path)
    proc = run([BIN / "ansible-playbook", ROOT / "site.yml", "-i", inv, "--list-hosts"], ROOT, CHECKOUT_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "devbox1" in proc.stdout
    proc = run([BIN / "ansible-playbook", ROOT / "site.yml", "-i", inv, "--syntax-check"], ROOT, CHECKOUT_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_mistyped_inventory_fails(tmp_path):
    proc = run([BIN / "ansible-playbook", ROOT / "site.yml", "-i", tmp_path / "inventroy"], ROOT, CHECKOUT_ENV)
    assert proc.returncode != 0
    assert "No inventory was parsed" in proc.stdout + proc.stderr


def test_an_inventory_without_boxes_fails_and_says_what_to_do(tmp_path):
    inv = tmp_path / "inventory"
    inv.write_text("[others]\nsomewhere ansible_host=192.0.2.1\n")
    proc = run([BIN / "ansible-playbook", ROOT / "site.yml", "-i", inv], ROOT, CHECKOUT_ENV)
    assert proc.returncode != 0
    assert "has no box in [langfuse] or [devboxes]" in proc.stdout
    assert "somewhere" not in proc.stdout.split("PLAY RECAP")[-1]


@pytest.mark.parametrize("tag,first_task", [
    ("docker", "llmops.devbox.docker : Validating arguments"),
    ("langfuse", "llmops.devbox.langfuse : Validating arguments"),
    ("litellm", "llmops.devbox.litellm : Validating arguments"),
    ("code_server", "llmops.devbox.code_server : Validating arguments"),
])
def test_site_tags_plan_the_role_after_the_facts(tmp_path, tag, first_task):
    inv = inventory_as("folder", tmp_path)
    proc = run([BIN / "ansible-playbook", ROOT / "site.yml", "-i", inv, "--tags", tag, "--list-tasks"],
               ROOT, CHECKOUT_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Gather the OS, architecture and network" in out
    assert out.index("Gather the OS, architecture and network") < out.index(first_task)


@pytest.fixture(scope="module")
def installed_collection(tmp_path_factory):
    """A fresh venv with ansible-core from PyPI and the collection from its built tarball."""
    top = tmp_path_factory.mktemp("plain")
    venv = top / "venv"
    assert run([sys.executable, "-m", "venv", venv], top, os.environ).returncode == 0
    pip = run([venv / "bin" / "pip", "install", "-q", ANSIBLE_CORE], top, os.environ, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(PATH=f"{venv / 'bin'}:{os.environ['PATH']}", HOME=str(top / "home"))
    build = run([venv / "bin" / "ansible-galaxy", "collection", "build", ROOT, "--output-path", top], top, env)
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = next(top.glob("llmops-devbox-*.tar.gz"))
    collections = top / "home" / ".ansible" / "collections" / "ansible_collections"
    for dep in DEPENDENCIES:
        shutil.copytree(ROOT / ".collections" / "ansible_collections" / dep, collections / dep, symlinks=True)
    install = run([venv / "bin" / "ansible-galaxy", "collection", "install", tarball, "--offline"], top, env)
    assert install.returncode == 0, install.stdout + install.stderr
    work = top / "work"
    work.mkdir()
    shutil.copytree(collections / "llmops" / "devbox" / "inventory.example", work / "inventory")
    return venv, env, work


def test_the_installed_collection_runs_its_site_playbook(installed_collection):
    venv, env, work = installed_collection
    proc = run([venv / "bin" / "ansible-playbook", "llmops.devbox.site", "-i", "inventory", "--syntax-check"],
               work, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run([venv / "bin" / "ansible-playbook", "llmops.devbox.site", "-i", "inventory", "--list-tasks",
                "--tags", "litellm"], work, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "llmops.devbox.litellm : Validating arguments" in proc.stdout
    # the roles and modules come from the installed copy, not from this checkout
    doc = run([venv / "bin" / "ansible-doc", "llmops.devbox.langfuse_health"], work, env)
    assert doc.returncode == 0, doc.stdout + doc.stderr
    assert str(ROOT) not in doc.stdout


def test_the_installed_collection_refuses_an_inventory_without_boxes(installed_collection):
    venv, env, work = installed_collection
    proc = run([venv / "bin" / "ansible-playbook", "llmops.devbox.site", "-i", "inventroy"], work, env)
    assert proc.returncode != 0
    assert "has no box in [langfuse] or [devboxes]" in proc.stdout
