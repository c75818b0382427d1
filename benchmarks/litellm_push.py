#!/usr/bin/env python3
"""Measure a LiteLLM config push under load: do clients notice the blue/green switch?

While `ansible-playbook` pushes a changed config to a target (role llmops.devbox.litellm), a
bounded request loop runs ON the target (over SSH) against the proxy on 127.0.0.1:<port>:
  * N worker threads send chat completions, each on a new connection;
  * one thread sends them over a single keep-alive connection (reconnecting after an error);
  * a watcher polls /v1/models to see when the new model is served.
Prints push wall time, time until the new model is served, requests sent and failed.
Not a timed test: run it by hand against a converged target, e.g. the Molecule one:

  benchmarks/litellm_push.py --inventory INV --host HOST --playbook PB \
      --before-vars a.yml --after-vars b.yml --model mock-a --new-model mock-b

The playbook must apply the litellm role with mock models (no provider is called). The loop stops
by itself after --max-seconds or --max-requests, whichever comes first.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

# Runs on the target with sudo (it reads the master key); standard library only.
REMOTE = r'''
import http.client, json, sys, threading, time
cfg = json.loads(sys.argv[1])
key = open(cfg["key_file"]).read().strip()
stop = threading.Event()
lock = threading.Lock()
stats = {"sent": 0, "failed": 0, "errors": {}, "ka_sent": 0, "ka_failed": 0, "ka_errors": {},
         "new_model_at": None, "started": time.time()}
body = json.dumps({"model": cfg["model"], "messages": [{"role": "user", "content": "hi"}]})
hdrs = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

def note(prefix, err):
    with lock:
        stats[prefix + "failed"] += 1
        e = stats[prefix + "errors"]; e[err] = e.get(err, 0) + 1

def one(conn):
    conn.request("POST", "/v1/chat/completions", body, hdrs)
    r = conn.getresponse(); r.read()
    return r.status

def worker():
    while not stop.is_set():
        with lock:
            if stats["sent"] >= cfg["max_requests"]:
                return
            stats["sent"] += 1
        c = http.client.HTTPConnection("127.0.0.1", cfg["port"], timeout=60)
        try:
            st = one(c)
            if st != 200:
                note("", "HTTP %d" % st)
        except Exception as exc:
            note("", type(exc).__name__)
        finally:
            c.close()

def keepalive():
    c = None
    while not stop.is_set() and stats["ka_sent"] < cfg["max_requests"]:
        c = c or http.client.HTTPConnection("127.0.0.1", cfg["port"], timeout=60)
        stats["ka_sent"] += 1
        try:
            st = one(c)
            if st != 200:
                note("ka_", "HTTP %d" % st)
        except Exception as exc:
            note("ka_", type(exc).__name__)
            c.close(); c = None
        time.sleep(0.05)

def watcher():
    while not stop.is_set() and stats["new_model_at"] is None:
        c = http.client.HTTPConnection("127.0.0.1", cfg["port"], timeout=10)
        try:
            c.request("GET", "/v1/models", headers=hdrs)
            r = c.getresponse(); data = json.loads(r.read() or b"{}")
            if any(m.get("id") == cfg["new_model"] for m in data.get("data", [])):
                stats["new_model_at"] = time.time()
        except Exception:
            pass
        finally:
            c.close()
        time.sleep(0.2)

threads = [threading.Thread(target=worker) for _ in range(cfg["workers"])]
threads += [threading.Thread(target=keepalive), threading.Thread(target=watcher)]
for t in threads:
    t.start()
print("READY", flush=True)
# Stop when the controller closes stdin, or at the time bound.
reader = threading.Thread(target=sys.stdin.read, daemon=True); reader.start()
reader.join(cfg["max_seconds"])
stop.set()
for t in threads:
    t.join(70)
stats["ended"] = time.time()
print("RESULT " + json.dumps(stats), flush=True)
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inventory", required=True)
    ap.add_argument("--host", required=True, help="inventory host name of the target")
    ap.add_argument("--playbook", required=True, help="playbook applying the litellm role")
    ap.add_argument("--before-vars", required=True, help="vars file of the config being served")
    ap.add_argument("--after-vars", required=True, help="vars file of the config to push")
    ap.add_argument("--model", default="mock-a", help="model the load asks for (in both configs)")
    ap.add_argument("--new-model", default="mock-b", help="model only the pushed config serves")
    ap.add_argument("--port", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--max-requests", type=int, default=20000)
    ap.add_argument("--max-seconds", type=int, default=300)
    ap.add_argument("--settle", type=float, default=5, help="seconds of load after the push")
    ap.add_argument("--ssh", default="", help="ssh command to reach the target (default from ansible inventory)")
    args = ap.parse_args()

    def play(vars_file):
        cmd = ["ansible-playbook", "-i", args.inventory, "--limit", args.host, args.playbook, "-e", f"@{vars_file}"]
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        return proc, time.time() - start

    print(f"==> making sure {args.before_vars} is served", file=sys.stderr)
    proc, _ = play(args.before_vars)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
        return 1

    ssh = shlex.split(args.ssh) if args.ssh else ssh_from_inventory(args.inventory, args.host)
    cfg = {"port": args.port, "model": args.model, "new_model": args.new_model, "workers": args.workers,
           "max_requests": args.max_requests, "max_seconds": args.max_seconds,
           "key_file": "/etc/litellm/master_key"}
    remote = ssh + ["sudo", "python3", "-c", shlex.quote(REMOTE), shlex.quote(json.dumps(cfg))]
    loop = subprocess.Popen(remote, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if loop.stdout.readline().strip() != "READY":
        print("the request loop did not start on the target", file=sys.stderr)
        return 1
    time.sleep(2)
    print(f"==> pushing {args.after_vars} under load", file=sys.stderr)
    push_start = time.time()
    proc, push_wall = play(args.after_vars)
    time.sleep(args.settle)
    loop.stdin.close()
    out = loop.stdout.read()
    loop.wait()
    result = next((json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")), None)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
    if result is None:
        print("no result from the request loop", file=sys.stderr)
        return 1
    # Target clock vs controller clock: the target is a local container sharing the kernel clock.
    new_at = result["new_model_at"]
    print(json.dumps({
        "push_ok": proc.returncode == 0,
        "push_wall_seconds": round(push_wall, 1),
        "new_model_served_after_seconds": round(new_at - push_start, 1) if new_at else None,
        "load_seconds": round(result["ended"] - result["started"], 1),
        "requests_new_connection": {"sent": result["sent"], "failed": result["failed"], "errors": result["errors"]},
        "requests_keepalive": {"sent": result["ka_sent"], "failed": result["ka_failed"],
                               "errors": result["ka_errors"]},
    }, indent=2))
    return 0 if proc.returncode == 0 else 1


def ssh_from_inventory(inventory: str, host: str) -> list[str]:
    """ssh argv for the host, from `ansible-inventory` (address, user, key)."""
    data = json.loads(subprocess.run(["ansible-inventory", "-i", inventory, "--host", host],
                                     capture_output=True, text=True, check=True).stdout)
    argv = ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
    if data.get("ansible_ssh_private_key_file"):
        argv += ["-i", os.path.expanduser(data["ansible_ssh_private_key_file"])]
    user = data.get("ansible_user")
    addr = data.get("ansible_host", host)
    argv.append(f"{user}@{addr}" if user else addr)
    return argv


if __name__ == "__main__":
    sys.exit(main())
