"""`make demo` and `make demo-down`, as the README gives them, on a target of their own.

The README's first command deploys the whole stack on the built-in local target. Run here as typed
(`make demo`), with LLMOPS_DEMO_NAME/LLMOPS_DEMO_DIR so a demo of the developer's own is left alone:
it must end saying the demo is deployed, the credential command it prints must work in a
non-interactive shell, the stack must answer on the box, an unchanged rerun of site.yml with the
demo's inventory must change nothing (its wall time is printed: a figure, not an assertion), and
`make demo-down` must remove the target and the folder.

It needs the test images (scripts/test.sh runs this stage after Molecule, which builds them; `make demo`
builds any that are missing) and takes a few minutes: scripts/test.sh runs it as its own stage, `demo`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAME = "llmops-demo-check"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def make(target, demo_dir, timeout=1800):
    env = dict(os.environ, LLMOPS_DEMO_NAME=NAME, LLMOPS_DEMO_DIR=str(demo_dir), ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(["make", target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    return proc.returncode, ANSI.sub("", proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    demo_dir = tmp_path_factory.mktemp("demo") / "demo"
    make("demo-down", demo_dir, timeout=300)  # a target left by an interrupted run
    rc, out = make("demo", demo_dir)
    try:
        yield rc, out, demo_dir
    finally:
        make("demo-down", demo_dir, timeout=300)


def test_make_demo_deploys_the_stack(demo):
    rc, out, _ = demo
    assert rc == 0, out[-6000:]
    assert re.search(r"demo deployed in \d+ s", out), out[-3000:]
    recap = re.search(rf"^{NAME}\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", out, re.MULTILINE)
    assert recap, out[-3000:]


def test_the_printed_credential_command_works_without_a_terminal(demo):
    rc, out, _ = demo
    assert rc == 0
    # The line as printed (the callback may wrap it): ssh -F <config> <box> sudo cat <file>
    line = re.search(r"read a credential on the box:\s+(ssh\s+-F\s+\S+\s+\S+)\s+sudo\s+cat\s+<file>", out)
    assert line, out[-3000:]
    host_argv = shlex.split(line.group(1))
    argv = host_argv + ["sudo", "cat", "/etc/litellm/master_key"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"sk-[0-9a-f]{64}", proc.stdout.strip())
    # The same SSH config reaches the services on the box's loopback, where the tunnels lead.
    for url in ("http://127.0.0.1:3000/api/public/health", "http://127.0.0.1:4000/health/liveliness",
                "http://127.0.0.1:8080/healthz"):
        proc = subprocess.run(host_argv + ["curl", "-fsS", "-o", "/dev/null", "-w", "%{http_code}", url],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
        assert proc.stdout == "200", (url, proc.stdout, proc.stderr)


def test_an_unchanged_rerun_changes_nothing(demo):
    rc, _, demo_dir = demo
    assert rc == 0
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", str(demo_dir / "inventory.ini"), "site.yml"], cwd=ROOT,
                          env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"), capture_output=True, text=True,
                          timeout=900, check=False)
    took = time.monotonic() - start
    out = ANSI.sub("", proc.stdout)
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    assert re.search(rf"^{NAME}\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", out, re.MULTILINE), out[-2000:]
    print(f"\nunchanged rerun of site.yml on the demo target: {took:.1f} s")


def test_make_demo_down_removes_the_target(demo):
    rc, _, demo_dir = demo
    assert rc == 0
    rc, out = make("demo-down", demo_dir, timeout=300)
    assert rc == 0, out
    assert not demo_dir.exists()
    names = subprocess.run(["docker", "ps", "--all", "--format", "{{.Names}}"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert NAME not in names
