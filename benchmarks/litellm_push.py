#!/usr/bin/env python3
"""Measure LiteLLM config pushes under load: what do clients see, and how long is the switch?

In one run, against a converged target (role llmops.devbox.litellm: HAProxy on the box's
127.0.0.1:<port> in front of the blue/green slots litellm-blue / litellm-green):

1. makes sure the --before-vars config is served (not measured);
2. LiteLLM's own container start on the target: ``docker run -d --rm --network none`` of the image
   the serving slot runs, with that slot's config and env file, timed from the ``docker run`` call
   until /health/liveliness answers inside the container (``docker exec ... python3``, every 0.2 s),
   --start-runs times (default 2), median;
3. a config push under load: --after-vars pushed with ``ansible-playbook`` while the clients of
   benchmarks/proxy_load.py run from the controller through an SSH tunnel (keep-alive pool, a new
   connection per request, streams to the slow model in flight across the switch, a /v1/models
   watcher for --new-model);
4. an image bump under load: the serving image re-tagged on the target (``<repo>:<tag>-bump``, or
   back to ``<tag>`` when it already ends in -bump) and pushed with ``-e litellm_image=<that>`` plus
   the after vars; done when /opt/litellm/serving flips and the serving slot runs that image.

Prints one JSON document: per push, failed/sent per client kind (with error kinds), playbook wall
time, when the new config was served (from the playbook start, and from the creation of the new
slot's container), and the ratios of those to LiteLLM's own container start. Exits 1 when a push
failed (playbook error, or the new model / image never served); client failures are reported, not
judged. Not a timed test: run it by hand, e.g. against the demo target (make demo):

  benchmarks/litellm_push.py --inventory .demo/inventory.ini --host llmops-demo \\
      --playbook playbooks/litellm.yml --before-vars benchmarks/vars/push_before.yml \\
      --after-vars benchmarks/vars/push_after.yml

Both vars files (benchmarks/vars/ has a pair) set litellm_model_list with mock models (no provider
is called) and must declare
--model (default mock-a) and --slow-model (default mock-slow), a mock model with mock_delay, so each
stream stays in flight across the switch, e.g.:

  - model_name: mock-slow
    litellm_params: {model: openai/gpt-4o-mini, api_key: not-used, mock_response: "slow pong", mock_delay: 8}

--new-model (default mock-b) is listed only by the after vars. Set litellm_fallbacks: [] when the
list drops models that fallbacks name. The target is left serving the after vars and the bumped
tag (the same image); the next site.yml run puts the inventory's image back (one more push).
Times on the target (container creation) are corrected by the target's clock offset, measured
over SSH (about 0 for a local container target).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxy_load import ProxyLoad, ssh_from_inventory  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "/opt/litellm"
SERVING_FILE = f"{PROJECT}/serving"
PUSH_MESSAGE = "Pushing the proxy blue/green"

# Runs on the target as root: times LiteLLM's own start, outside the Compose project.
START_PROBE = r'''
import json, os, subprocess, sys, time
cfg = json.loads(sys.argv[1])
slot = open(cfg["serving_file"]).read().strip()
image = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", slot], capture_output=True, text=True,
                       check=True).stdout.strip()
config = "/app/config/%s.yaml" % slot.replace("litellm-", "", 1)
probe = ("import urllib.request;"
         "urllib.request.urlopen('http://127.0.0.1:4000/health/liveliness', timeout=2)")
runs, errors = [], []
for i in range(cfg["runs"]):
    name = "llmops-bench-start-%d-%d" % (os.getpid(), i)
    t0 = time.monotonic()
    run = subprocess.run(["docker", "run", "-d", "--rm", "--network", "none", "--name", name,
                          "--env-file", cfg["env_file"], "-v", cfg["config_dir"] + ":/app/config:ro",
                          "--entrypoint", "litellm", image, "--config", config, "--port", "4000"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        errors.append("docker run: " + run.stderr.strip()[-300:])
        continue
    ready = None
    while time.monotonic() - t0 < cfg["max_seconds"]:
        probe_run = subprocess.run(["docker", "exec", name, "python3", "-c", probe], capture_output=True, text=True)
        if probe_run.returncode == 0:
            ready = time.monotonic() - t0
            break
        if "No such container" in probe_run.stderr or "is not running" in probe_run.stderr:
            errors.append("container exited before it answered")
            break
        time.sleep(0.2)
    else:
        errors.append("no answer within %s s" % cfg["max_seconds"])
    if ready is None:
        logs = subprocess.run(["docker", "logs", "--tail", "5", name], capture_output=True, text=True)
        errors.append("last log lines: " + (logs.stdout + logs.stderr).strip()[-500:])
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    if ready is not None:
        runs.append(round(ready, 3))
print(json.dumps({"slot": slot, "image": image, "config": config, "runs": runs, "errors": errors}))
'''


# --- the target --------------------------------------------------------------------------------
def remote(ssh: list[str], script: str, timeout: float = 120, check: bool = True) -> str:
    """Run a shell script as root on the target; its stdout."""
    proc = subprocess.run(ssh + ["sudo sh -c " + shlex.quote(script)], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"on the target: {script[:120]!r} failed (exit {proc.returncode}): {proc.stderr[-500:]}")
    return proc.stdout


def clock_offset(ssh: list[str], samples: int = 7) -> float:
    """Target clock minus controller clock (seconds): the fastest of a few round trips in one ssh session
    (a new session per sample would put the connection set-up on one side of the midpoint)."""
    proc = subprocess.Popen(ssh + ["while read -r _; do date +%s.%N; done"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    best = None
    try:
        for _ in range(samples):
            t0 = time.time()
            proc.stdin.write("\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            t1 = time.time()
            if not line.strip():
                raise RuntimeError("could not read the target's clock")
            sample = (t1 - t0, float(line) - (t0 + t1) / 2)
            best = min(best, sample) if best else sample
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return best[1]


def docker_time(value: str) -> float:
    """Docker's RFC 3339 time with nanoseconds ("2025-11-30T19:06:01.123456789Z") as a Unix time."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", value.strip())
    if not m:
        raise ValueError(f"not a Docker time: {value!r}")
    frac = (m.group(2) or ".0")[:7]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.datetime.fromisoformat(m.group(1) + frac + zone).timestamp()


def serving_slot(ssh: list[str]) -> dict:
    """The serving slot: name, image, container creation and start times (target clock)."""
    fmt = "{{.Config.Image}}|{{.Created}}|{{.State.StartedAt}}"
    out = remote(ssh, f"slot=$(cat {SERVING_FILE}) && echo \"$slot\" && docker inspect -f '{fmt}' \"$slot\"")
    slot, line = out.strip().splitlines()[:2]
    image, created, started = line.split("|")
    return {"slot": slot, "image": image, "created": docker_time(created), "started": docker_time(started)}


def container_start(ssh: list[str], runs: int, max_seconds: float) -> dict:
    cfg = {"runs": runs, "max_seconds": max_seconds, "serving_file": SERVING_FILE,
           "env_file": f"{PROJECT}/litellm.env", "config_dir": f"{PROJECT}/config"}
    cmd = ssh + ["sudo", "python3", "-c", shlex.quote(START_PROBE), shlex.quote(json.dumps(cfg))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=runs * (max_seconds + 30) + 60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"container start measurement failed: {proc.stderr[-1000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["median_s"] = round(statistics.median(result["runs"]), 3) if result["runs"] else None
    return result


class ServingWatcher:
    """Reads /opt/litellm/serving on the target every 0.2 s (one ssh session); records the controller
    time at which its content first changes."""

    def __init__(self, ssh: list[str], max_seconds: float):
        # Ends by itself at max_seconds, or at the first write after ssh went away (cat: broken pipe).
        loop = f"end=$(( $(date +%s) + {int(max_seconds)} )); while [ $(date +%s) -lt $end ]; do " \
               f"cat {SERVING_FILE} || exit 0; sleep 0.2; done"
        self.proc = subprocess.Popen(ssh + ["sudo sh -c " + shlex.quote(loop)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        self.initial: str | None = None
        self.flipped_to: str | None = None
        self.flipped_at: float | None = None
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._first.wait(60):
            self.stop()
            raise RuntimeError(f"could not read {SERVING_FILE} on the target")

    def _read(self) -> None:
        for line in self.proc.stdout:
            value = line.strip()
            if not value:
                continue
            if self.initial is None:
                self.initial = value
                self._first.set()
            elif value != self.initial and self.flipped_at is None:
                self.flipped_at = time.time()
                self.flipped_to = value

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._thread.join(5)


# --- the controller ----------------------------------------------------------------------------
def ansible_env() -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def play(args, vars_file: str, extra: list[str] | None = None) -> dict:
    """One ansible-playbook run; every output line with the controller time it was read."""
    cmd = ["ansible-playbook", "-i", args.inventory, "--limit", args.host, args.playbook, "-e", f"@{vars_file}"]
    cmd += extra or []
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, bufsize=1)
    killer = threading.Timer(args.max_seconds, proc.kill)
    killer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append((time.time(), line.rstrip("\n")))
        rc = proc.wait()
    finally:
        killer.cancel()
    end = time.time()
    push_line = next((t for t, line in lines if PUSH_MESSAGE in line), None)
    return {"rc": rc, "start": start, "end": end, "wall_s": round(end - start, 2), "push_line_at": push_line,
            "tail": "\n".join(line for _, line in lines[-40:])}


def clients(result: dict, spanning: dict) -> dict:
    """Per client kind: sent, failed, error kinds, slowest request, requests under way when the new
    config was served (``in_flight_at_served``: they started on the old slot and crossed the switch)."""
    out = {}
    for kind in ("pool", "fresh", "stream", "watcher"):
        if kind in result:
            stats = result[kind]
            out[kind] = {k: stats[k] for k in ("sent", "failed", "errors", "latency_max_s")}
            if kind in spanning:
                out[kind]["in_flight_at_served"] = spanning[kind]
            if stats["first_failures"]:
                out[kind]["first_failures"] = stats["first_failures"][:5]
    if result.get("hung_threads"):
        out["hung_threads"] = result["hung_threads"]
    return out


def since(t: float | None, origin: float | None) -> float | None:
    return round(t - origin, 2) if t is not None and origin is not None else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def push_under_load(args, ssh: list[str], offset: float, start_median: float | None, vars_file: str,
                    extra: list[str], new_model: str | None, want_image: str | None) -> dict:
    """One push with the load running; the figures of the report."""
    before = serving_slot(ssh)
    watcher = ServingWatcher(ssh, args.max_seconds)
    try:
        with ProxyLoad(args.inventory, args.host, port=args.port, model=args.model, slow_model=args.slow_model,
                       new_model=new_model, pool_threads=args.pool_threads, fresh_threads=args.fresh_threads,
                       stream_threads=args.stream_threads, ssh_argv=ssh,
                       max_seconds=args.max_seconds + args.warmup + 2 * args.settle + 60) as load:
            time.sleep(args.warmup)
            print(f"==> pushing {vars_file} {' '.join(extra)} under load", file=sys.stderr)
            run = play(args, vars_file, extra)
            if new_model and run["rc"] == 0:
                load.wait_new_model(args.settle)
            time.sleep(args.settle)
            result = load.stop()
    finally:
        watcher.stop()
    after = serving_slot(ssh)
    if run["rc"] != 0:
        print(run["tail"], file=sys.stderr)
    created = after["created"] - offset if after["slot"] != before["slot"] else None
    flipped = watcher.flipped_at
    served = result["new_model_at"] if new_model else flipped
    switched = after["slot"] != before["slot"] and (want_image is None or after["image"] == want_image)
    served_from_created = since(served, created)
    served_from_start = since(served, run["start"])
    report = {
        "push_ok": run["rc"] == 0 and served is not None and switched,
        "playbook_rc": run["rc"],
        "playbook_wall_s": run["wall_s"],
        "slot": {"from": before["slot"], "to": after["slot"]},
        "image": {"from": before["image"], "to": after["image"]},
        "served_when": f"{new_model} listed by /v1/models" if new_model else f"{SERVING_FILE} flipped",
        "new_config_served_after_playbook_start_s": served_from_start,
        "new_config_served_after_slot_created_s": served_from_created,
        "push_message_after_playbook_start_s": since(run["push_line_at"], run["start"]),
        "slot_created_after_playbook_start_s": since(created, run["start"]),
        "serving_file_flipped_after_playbook_start_s": since(flipped, run["start"]),
        "litellm_container_start_median_s": start_median,
        "ratio_served_after_slot_created_to_container_start": ratio(served_from_created, start_median),
        "ratio_served_after_playbook_start_to_container_start": ratio(served_from_start, start_median),
        "load_seconds": result["seconds"],
        "load_stopped_by_max_seconds": result["deadline_reached"],
        "clients": clients(result, load.in_flight_at(served) if served is not None else {}),
    }
    if want_image is not None:
        report["image_switched"] = after["image"] == want_image
    return report


def bump_tag(image: str) -> str:
    """<repo>:<tag>-bump, or <repo>:<tag> for an image already bumped (so reruns alternate)."""
    if "@" in image:
        raise ValueError(f"cannot re-tag an image pinned by digest: {image}")
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        repo, tag = image, "latest"
    return f"{repo}:{tag[:-5]}" if tag.endswith("-bump") else f"{repo}:{tag}-bump"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--inventory", required=True)
    ap.add_argument("--host", required=True, help="inventory host name of the target")
    ap.add_argument("--playbook", required=True, help="playbook applying the litellm role")
    ap.add_argument("--before-vars", required=True, help="vars file of the config being served")
    ap.add_argument("--after-vars", required=True, help="vars file of the config to push")
    ap.add_argument("--model", default="mock-a", help="model the load asks for (in both configs)")
    ap.add_argument("--slow-model", default="mock-slow", help="mock model with mock_delay (in both configs)")
    ap.add_argument("--new-model", default="mock-b", help="model only the pushed config serves")
    ap.add_argument("--port", type=int, default=4000, help="proxy port on the target's loopback")
    ap.add_argument("--pool-threads", type=int, default=4)
    ap.add_argument("--fresh-threads", type=int, default=2)
    ap.add_argument("--stream-threads", type=int, default=2)
    ap.add_argument("--start-runs", type=int, default=2, help="LiteLLM container starts to time (median)")
    ap.add_argument("--warmup", type=float, default=3, help="seconds of load before a push")
    ap.add_argument("--settle", type=float, default=5, help="seconds of load after a push")
    ap.add_argument("--max-seconds", type=float, default=900, help="bound of each playbook run and each load")
    ap.add_argument("--skip-bump", action="store_true", help="no image bump")
    ap.add_argument("--ssh", default="", help="ssh command to reach the target (default from the inventory)")
    args = ap.parse_args()
    for name in ("inventory", "playbook", "before_vars", "after_vars"):
        setattr(args, name, str(Path(getattr(args, name)).resolve()))

    ssh = shlex.split(args.ssh) if args.ssh else ssh_from_inventory(args.inventory, args.host)
    print(f"==> making sure {args.before_vars} is served", file=sys.stderr)
    run = play(args, args.before_vars)
    if run["rc"] != 0:
        print(run["tail"], file=sys.stderr)
        return 1
    offset = clock_offset(ssh)

    print("==> timing LiteLLM's own container start on the target", file=sys.stderr)
    start = container_start(ssh, args.start_runs, min(args.max_seconds, 300))
    report = {"host": args.host, "target_clock_offset_s": round(offset, 3),
              "litellm_container_start": {k: start[k] for k in ("image", "slot", "config", "runs", "median_s",
                                                                  "errors")}}
    median = start["median_s"]

    report["config_push"] = push_under_load(args, ssh, offset, median, args.after_vars, [], args.new_model, None)

    if not args.skip_bump:
        image = serving_slot(ssh)["image"]
        bumped = bump_tag(image)
        remote(ssh, f"docker tag {shlex.quote(image)} {shlex.quote(bumped)}")
        report["image_bump"] = push_under_load(args, ssh, offset, median, args.after_vars,
                                               ["-e", f"litellm_image={bumped}"], None, bumped)

    pushes = [report[k] for k in ("config_push", "image_bump") if k in report]
    report["ok"] = all(p["push_ok"] for p in pushes)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, ValueError, subprocess.SubprocessError) as exc:
        print(f"litellm_push: {exc}", file=sys.stderr)
        sys.exit(1)
