"""The HAProxy test image's recipe declares the official image's interface (tests/contracts/haproxy.yml).

tests/images/haproxy/Dockerfile stands in for haproxy:<tag>; it must run as the contract's user and
uid/gid, keep the config path, workdir, entrypoint, CMD and STOPSIGNAL, and carry the contract's
version. Its entrypoint script is run here (no Docker) with a stand-in `haproxy` on PATH, to show it
turns commands into what the contract says the official entrypoint runs. Broken copies of the recipe
show that each check can fail. tests/integration/test_haproxy_image.py checks the built image.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = yaml.safe_load((ROOT / "tests" / "contracts" / "haproxy.yml").read_text())
RECIPE = ROOT / "tests" / "images" / "haproxy"
DOCKERFILE = (RECIPE / "Dockerfile").read_text()
ENTRYPOINT_SCRIPT = RECIPE / "docker-entrypoint.sh"
TEST_IMAGES = yaml.safe_load((ROOT / "tests" / "test-images.yml").read_text())


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def last(text: str, name: str) -> str | None:
    values = [args for word, args in instructions(text) if word == name]
    return values[-1] if values else None


def exec_form(value: str | None) -> list[str] | None:
    return json.loads(value) if value and value.startswith("[") else None


def recipe_problems(contract: dict, text: str) -> list[str]:
    """What the recipe gets wrong about the contract's interface (empty: nothing)."""
    process, paths, facts = contract["process"], contract["paths"], contract["facts"]
    problems = []
    if last(text, "USER") != process["user"]:
        problems.append(f"USER is {last(text, 'USER')!r}, the image runs as {process['user']!r}")
    runs = " ".join(args for word, args in instructions(text) if word == "RUN")
    user, workdir = process["user"], paths["workdir"]
    for tool, option, want in (("user", "--uid", process["uid"]), ("group", "--gid", process["gid"])):
        if not re.search(rf"\b{tool}(add|mod) [^&;|]*{option}[ =]{want} [^&;|]*\b{user}\b", runs):
            problems.append(f"no {tool}add/{tool}mod gives {user} {option} {want}")
    owned = rf"(install -d -o {user} -g {user}|chown (-\S+ )*{user}:{user})( -\S+ \S+)* {re.escape(workdir)}\b"
    if not re.search(owned, runs):
        problems.append(f"no RUN gives {workdir} to {user}")
    if last(text, "WORKDIR") != paths["workdir"]:
        problems.append(f"WORKDIR is {last(text, 'WORKDIR')!r}, upstream's is {paths['workdir']!r}")
    stop = last(text, "STOPSIGNAL")
    if stop != process["stop_signal"] or stop != contract["signals"]["stop"]:
        problems.append(f"STOPSIGNAL is {stop!r}, upstream's is {process['stop_signal']!r}")
    cmd = exec_form(last(text, "CMD"))
    if cmd != facts["entrypoint"]["image_cmd"]:
        problems.append(f"CMD is {cmd}, upstream's is {facts['entrypoint']['image_cmd']}")
    if not cmd or cmd[-1] != paths["config"]:
        problems.append(f"CMD does not read the config at {paths['config']}")
    entrypoint = exec_form(last(text, "ENTRYPOINT"))
    if entrypoint != facts["entrypoint"]["image_entrypoint"]:
        problems.append(f"ENTRYPOINT is {entrypoint}, upstream's is {facts['entrypoint']['image_entrypoint']}")
    copied = [shlex.split(args) for word, args in instructions(text) if word == "COPY"]
    script_dir = paths["entrypoint"].rsplit("/", 1)[0] + "/"
    if not any("docker-entrypoint.sh" in c[:-1] and c[-1] in (script_dir, paths["entrypoint"]) for c in copied):
        problems.append(f"the entrypoint script is not copied to {paths['entrypoint']}")
    if not re.search(rf"(ln -s\S* \S+|install( -\S+)* \S+) {re.escape(paths['binary'])}\b", runs):
        problems.append(f"haproxy is not at {paths['binary']}")
    version = contract["env"]["image_env"]["HAPROXY_VERSION"]
    envs = " ".join(args for word, args in instructions(text) if word == "ENV")
    if f"HAPROXY_VERSION={version}" not in envs:
        problems.append(f"ENV HAPROXY_VERSION is not {version}")
    if [word for word, _ in instructions(text)][:2] != ["ARG", "FROM"] or last(text, "FROM") != "${BASE}":
        problems.append("the recipe must start with ARG BASE / FROM ${BASE} (scripts/build-images.sh)")
    return problems


def test_recipe_declares_the_contracts_interface():
    assert recipe_problems(CONTRACT, DOCKERFILE) == []


def test_contract_facts_agree_with_each_other():
    assert CONTRACT["image"]["tag"] == CONTRACT["env"]["image_env"]["HAPROXY_VERSION"]
    assert CONTRACT["facts"]["entrypoint"]["image_cmd"][-1] == CONTRACT["paths"]["config"]
    assert CONTRACT["paths"]["config"].startswith(CONTRACT["paths"]["config_dir"] + "/")
    assert CONTRACT["process"]["stop_signal"] == CONTRACT["signals"]["stop"]


def test_test_image_carries_the_contracts_version():
    image = TEST_IMAGES[CONTRACT["image"]["role_variable"]]
    assert image == f"llmops-test/haproxy:{CONTRACT['image']['tag']}", image


@pytest.mark.parametrize("broken, problem", [
    (("USER haproxy", "USER root"), "USER is 'root'"),
    (("--uid 99", "--uid 100"), "--uid 99"),
    (("groupmod --gid 99", "groupmod --gid 101"), "groupmod gives haproxy --gid 99"),
    (("-o haproxy -g haproxy -m 0755 /var/lib/haproxy", "-m 0755 /var/lib/haproxy"), "/var/lib/haproxy to haproxy"),
    (("ln -s /usr/sbin/haproxy /usr/local/sbin/haproxy", "true"), "not at /usr/local/sbin/haproxy"),
    (("STOPSIGNAL SIGUSR1", "STOPSIGNAL SIGTERM"), "STOPSIGNAL is 'SIGTERM'"),
    (("WORKDIR /var/lib/haproxy", "WORKDIR /"), "WORKDIR is '/'"),
    (('"/usr/local/etc/haproxy/haproxy.cfg"]', '"/etc/haproxy/haproxy.cfg"]'), "config at"),
    (('CMD ["haproxy", "-f"', 'CMD ["haproxy", "-W", "-db", "-f"'), "CMD is"),
    (('ENTRYPOINT ["docker-entrypoint.sh"]', 'ENTRYPOINT ["haproxy"]'), "ENTRYPOINT is"),
    (("COPY docker-entrypoint.sh /usr/local/bin/", "COPY docker-entrypoint.sh /"), "not copied"),
    (("ENV HAPROXY_VERSION=3.0.11", "ENV HAPROXY_VERSION=3.0.12"), "HAPROXY_VERSION"),
])
def test_each_recipe_check_can_fail(broken, problem):
    old, new = broken
    assert old in DOCKERFILE, f"the recipe no longer contains {old!r}: update this test"
    problems = recipe_problems(CONTRACT, DOCKERFILE.replace(old, new))
    assert any(problem in p for p in problems), problems


# --- the entrypoint script's behaviour ------------------------------------------------------------

@pytest.fixture
def fake_path(tmp_path):
    """A PATH whose `haproxy` and `other` print their argv (one per line) instead of running."""
    for name in ("haproxy", "other"):
        program = tmp_path / name
        program.write_text(f'#!/bin/sh\necho {name}\nfor a in "$@"; do echo "$a"; done\n')
        program.chmod(0o755)
    return f"{tmp_path}:{os.environ.get('PATH', '/usr/bin:/bin')}"


def entrypoint(fake_path: str, *args: str) -> list[str]:
    proc = subprocess.run(["sh", str(ENTRYPOINT_SCRIPT), *args], capture_output=True, text=True,
                          env={"PATH": fake_path}, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_default_command_runs_master_worker_in_the_foreground(fake_path):
    cmd = CONTRACT["facts"]["entrypoint"]["image_cmd"]
    assert entrypoint(fake_path, *cmd) == ["haproxy", "-W", "-db", *cmd[1:]]


def test_options_alone_go_to_haproxy(fake_path):
    assert entrypoint(fake_path, "-f", "/x.cfg") == ["haproxy", "-W", "-db", "-f", "/x.cfg"]


def test_config_check_through_the_entrypoint_keeps_its_arguments(fake_path):
    assert entrypoint(fake_path, "haproxy", "-c", "-f", "/x.cfg") == ["haproxy", "-W", "-db", "-c", "-f", "/x.cfg"]


def test_other_commands_run_unchanged(fake_path):
    assert entrypoint(fake_path, "other", "haproxy", "-f", "a b") == ["other", "haproxy", "-f", "a b"]
