"""Upgrades on box A (Molecule verify, last file): a jump upstream refuses is refused before anything changes;
a failed upgrade was preceded by a backup and says how to go back, and that way back works; a good upgrade
backs up, comes up healthy and passes the trace check.

Versions are simulated with tags of the test double on the box (no registry here): the same double as
another version, and an image that never becomes healthy as a broken release.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import yaml

A = "llmops-langfuse"
testinfra_hosts = [A]
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd()))
IMAGES = yaml.safe_load((PROJECT / "tests" / "test-images.yml").read_text())
WEB, WORKER = IMAGES["langfuse_web_image"], IMAGES["langfuse_worker_image"]


def retag(image, tag):
    return image.rsplit(":", 1)[0] + ":" + tag


def converge(*extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".collections"))
    run = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-l", A, *extra,
                          os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")],
                         env=env, capture_output=True, text=True, timeout=900, check=False)
    return run, " ".join((run.stdout + run.stderr).split())


def images(timeout=300, **tags):
    return ["-e", json.dumps({"langfuse_web_image": tags.get("web", WEB),
                              "langfuse_worker_image": tags.get("worker", WORKER), "langfuse_health_timeout": timeout})]


def running_web(host):
    return host.check_output("docker inspect -f '{{.Config.Image}}' langfuse-langfuse-web-1")


def backups(host):
    return sorted(host.check_output("ls /var/backups/langfuse").split())


def test_a_downgrade_across_major_versions_is_refused_before_anything_changes(host):
    host.check_output(f"docker tag {WEB} {retag(WEB, '3.225.0')} && docker tag {WORKER} {retag(WORKER, '3.225.0')}")
    before = backups(host)
    run, out = converge(*images(web=retag(WEB, "3.225.0"), worker=retag(WORKER, "3.225.0")))
    assert run.returncode != 0
    assert "upstream documents no downgrade across major versions" in out, out[-2000:]
    assert running_web(host) == WEB and backups(host) == before


def test_a_failed_upgrade_names_its_backup_and_the_way_back_works(host):
    broken = retag(WEB, "9.9.9")
    # A release that never answers its health check (another image under the web image's name).
    host.check_output(f"docker tag {IMAGES['langfuse_redis_image']} {broken}")
    before = backups(host)
    run, out = converge(*images(timeout=30, web=broken))
    assert run.returncode != 0
    (taken,) = sorted(set(backups(host)) - set(before))
    manifest = json.loads(host.check_output(f"cat /var/backups/langfuse/{taken}/manifest.json"))
    assert manifest["labels"] == {"reason": "upgrade", "from": WEB, "to": broken}
    assert f"The backup taken before it is {taken}" in out and "langfuse_restore_on_box=true" in out, out[-2500:]

    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".collections"))
    start = time.monotonic()
    back = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-l", A,
                           str(PROJECT / "playbooks" / "restore.yml"), "-e", "langfuse_restore_on_box=true",
                           "-e", f"langfuse_restore_name={taken}"],
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    flat = " ".join(back.stdout.split())
    assert back.returncode == 0, flat[-3000:]
    assert running_web(host) == WEB
    assert "logged in" in flat and re.search(r"Restored \S+ onto llmops-langfuse", flat)
    print(f"rollback restore: {time.monotonic() - start:.0f} s")


def test_a_good_upgrade_backs_up_first_and_passes_the_trace_check(host):
    newer = retag(WEB, "4.2.1"), retag(WORKER, "4.2.1")
    host.check_output(f"docker tag {WEB} {newer[0]} && docker tag {WORKER} {newer[1]}")
    before = backups(host)
    run, out = converge("-v", *images(web=newer[0], worker=newer[1]))
    assert run.returncode == 0, out[-3000:]
    assert running_web(host) == newer[0]
    (taken,) = sorted(set(backups(host)) - set(before))
    assert json.loads(host.check_output(f"cat /var/backups/langfuse/{taken}/manifest.json"))["labels"]["to"] == newer[0]
    check = re.search(r"TASK \[llmops.devbox.langfuse : Read the trace back\] \**\s*(\S+)", out)
    assert check and check.group(1) != "skipping:", out[-3000:]
    # The next unchanged run is no upgrade: no backup, no check.
    run, out = converge(*images(web=newer[0], worker=newer[1]))
    assert run.returncode == 0 and backups(host) == sorted(before + [taken])
    assert re.search(r"llmops-langfuse\s*:.*changed=0", out), out[-2000:]
