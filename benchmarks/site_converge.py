#!/usr/bin/env python3
"""How long does site.yml take? First converge of an all-in-one box, idempotent rerun, fleet of 1 vs 2.

On fresh local "EC2" targets (scripts/target.sh), from this checkout:
  * all-in-one (one box in [langfuse] and [devboxes]):
      - docker role alone,
      - image loading, reported separately: the test images copied into the target's engine
        (no registry here; on a real box Compose pulls them instead),
      - first converge of site.yml (everything else: Langfuse, LiteLLM, code-server built from npm),
      - rerun of site.yml (idempotent: changed must be 0);
  * fleet: the same first converge (docker role + image load + site.yml, all timed) of 1 box
    (central all-in-one) and of 2 boxes (central + one dev box) in one run, and their ratio.
With --repeat N each figure is the median of N runs (fresh targets each time).
Targets are named operations-bench-* and removed at the end (unless --keep).

  benchmarks/site_converge.py [--repeat 1] [--skip-fleet] [--keep]

Not a timed test: run it by hand. Needs the test images (scripts/build-images.sh) and the venv.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "scripts" / "target.sh"
KEY = ROOT / ".cache" / "ssh" / "id_ed25519"
DEMO_VARS = ROOT / "tests" / "demo-vars.yml"
TEST_IMAGES = ROOT / "tests" / "test-images.yml"


def images():
    """The stack's test images (tests/test-images.yml), as the roles deploy them."""
    listed = yaml.safe_load(TEST_IMAGES.read_text())
    return sorted({v for k, v in listed.items() if k.startswith(("langfuse_", "litellm_"))})


def sh(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def create(name):
    return sh([str(TARGET), "create", name]).stdout.strip().splitlines()[-1]


def destroy(name):
    subprocess.run([str(TARGET), "destroy", name], check=False, capture_output=True)


def inventory(path, boxes):
    """boxes: [(name, address)], the first one central (both groups), the others dev boxes."""
    central = boxes[0][0]
    # With a second box, the central Langfuse listens on its network address (fleet topology).
    bind = " langfuse_bind_address='{{ ansible_default_ipv4.address }}'" if len(boxes) > 1 else ""
    lines = ["[langfuse]", f"{central} ansible_host={boxes[0][1]}{bind}", "", "[devboxes]", central]
    lines += [f"{name} ansible_host={address}" for name, address in boxes[1:]]
    lines += ["", "[all:vars]", "ansible_user=admin", f"ansible_ssh_private_key_file={KEY}",
              "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"]
    path.write_text("\n".join(lines) + "\n")


def playbook(inv, *args):
    """(seconds, changed count) of one ansible-playbook run; fails loudly on error."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", str(inv), "-e", f"@{DEMO_VARS}", "-e", f"@{TEST_IMAGES}", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"ansible-playbook {' '.join(args)} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}")
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", proc.stdout.split("PLAY RECAP")[-1]))
    return seconds, changed


def prepare_ca(name):
    """Test-only: npm on the target trusts this machine's TLS inspection (code_server_npm_cafile)."""
    sh(["docker", "exec", name, "mkdir", "-p", "/usr/local/share/llmops-test"])
    dest = f"{name}:/usr/local/share/llmops-test/ca-certificates.crt"
    sh(["docker", "cp", "/etc/ssl/certs/ca-certificates.crt", dest])


def converge(boxes, workdir, rerun=False):
    """Fresh targets -> timings {docker, images, site, total[, rerun, rerun_changed]}."""
    for name, _ in boxes:
        destroy(name)
    boxes = [(name, create(name)) for name, _ in boxes]
    inv = workdir / f"inventory-{len(boxes)}.ini"
    inventory(inv, boxes)
    for name, _ in boxes:
        prepare_ca(name)
    out = {}
    # The docker role alone (site.yml --tags docker also runs every role's argument validation,
    # which needs the Langfuse facts of a full run).
    docker_pb = workdir / "docker.yml"
    docker_pb.write_text("- name: Docker\n  hosts: all\n  become: true\n  roles: [llmops.devbox.docker]\n")
    out["docker"], _ = playbook(inv, str(docker_pb))
    start = time.monotonic()
    loads = [subprocess.Popen([str(TARGET), "load", name, *images()], stdout=subprocess.DEVNULL)
             for name, _ in boxes]
    if any(p.wait() != 0 for p in loads):
        sys.exit("loading the test images failed: run scripts/build-images.sh first")
    out["images"] = time.monotonic() - start
    out["site"], _ = playbook(inv, str(ROOT / "site.yml"))
    out["total"] = out["docker"] + out["images"] + out["site"]
    if rerun:
        out["rerun"], out["rerun_changed"] = playbook(inv, str(ROOT / "site.yml"))
    return out


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (median reported)")
    parser.add_argument("--skip-fleet", action="store_true", help="only the all-in-one figures")
    parser.add_argument("--keep", action="store_true", help="keep the last targets for inspection")
    args = parser.parse_args()
    names = ["operations-bench-central", "operations-bench-box"]
    aio, fleet2 = [], []
    with tempfile.TemporaryDirectory(prefix="site-converge-") as tmp:
        work = Path(tmp)
        try:
            for i in range(args.repeat):
                print(f"run {i + 1}/{args.repeat}: all-in-one (fleet of 1) ...", file=sys.stderr, flush=True)
                aio.append(converge([(names[0], "")], work, rerun=True))
                if not args.skip_fleet:
                    print(f"run {i + 1}/{args.repeat}: fleet of 2 ...", file=sys.stderr, flush=True)
                    fleet2.append(converge([(names[0], ""), (names[1], "")], work))
        finally:
            if not args.keep:
                for name in names:
                    destroy(name)
    n = f"median of {args.repeat}" if args.repeat > 1 else "1 run"
    print(f"site.yml converge on fresh local targets ({n}; seconds)")
    print(f"  all-in-one: docker role                 {median(aio, 'docker'):7.1f}")
    print(f"  all-in-one: image loading (test only)   {median(aio, 'images'):7.1f}")
    print(f"  all-in-one: site.yml first converge     {median(aio, 'site'):7.1f}")
    print(f"  all-in-one: site.yml rerun              {median(aio, 'rerun'):7.1f}"
          f"   (changed={max(r['rerun_changed'] for r in aio)})")
    if fleet2:
        one, two = median(aio, "total"), median(fleet2, "total")
        print(f"  fleet of 1 box: docker + images + site  {one:7.1f}")
        print(f"  fleet of 2 boxes: docker + images + site{two:7.1f}   (images {median(fleet2, 'images'):.1f},"
              f" site {median(fleet2, 'site'):.1f})")
        print(f"  ratio 2 boxes / 1 box                   {two / one:7.2f}")


if __name__ == "__main__":
    main()
