"""Helpers for the LiteLLM integration tests: a real LiteLLM proxy process (own venv) and the
litellm_trace_check module run through Ansible. (The Langfuse they send to is the stack of test
images in tests/integration/langfuse_stack.py.)

The proxy listens on a 127.0.0.1 port the OS picks. The LiteLLM venv
(.cache/litellm-venv, from tests/integration/requirements-litellm.txt) is built only when missing
or when the requirements changed; it is far too heavy for the tool venv.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
VENV = CACHE / "litellm-venv"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-litellm.txt"
RENDER_PLAYBOOK = ROOT / "tests" / "unit" / "roles" / "litellm" / "render_playbook.yml"
ROLE = ROOT / "roles" / "litellm"
TOOLS = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 3) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited ({proc.returncode}); log:\n{log.read_text()[-3000:]}")
        try:
            if get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s; log:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def ensure_litellm_venv() -> Path:
    """.cache/litellm-venv with the pinned LiteLLM; (re)built only when missing or outdated."""
    stamp = VENV / ".requirements.sha256"
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    litellm = VENV / "bin" / "litellm"
    if litellm.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return litellm
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    ca = "/etc/ssl/certs/ca-certificates.crt"
    env = dict(os.environ, **({"PIP_CERT": ca} if os.path.exists(ca) else {}))
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)], check=True, env=env,
                   timeout=1200)
    stamp.write_text(want + "\n")
    return litellm


def render_role(out: Path, role_vars: dict, secrets: dict) -> tuple[Path, dict]:
    """The role's litellm_config.yml and litellm.env, rendered by Ansible from role_vars."""
    import yaml

    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    host = {**defaults, **role_vars, "_litellm_secrets": secrets, "role_path": str(ROLE), "out_dir": str(out),
            "ansible_python_interpreter": sys.executable}
    inv = out / "inventory.json"
    inv.write_text(json.dumps({"all": {"hosts": {"proxy": host}}}))
    proc = subprocess.run([str(TOOLS / "ansible-playbook"), "-i", str(inv), str(RENDER_PLAYBOOK)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))
    if proc.returncode != 0:
        raise RuntimeError(f"rendering the role failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    env = {}
    for line in (out / "proxy" / "litellm.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return out / "proxy" / "litellm_config.yml", env


class Proxy:
    """A real LiteLLM proxy process on loopback."""

    def __init__(self, litellm: Path, config: Path, env: dict, workdir: Path, name: str = "proxy"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"litellm-{name}.log"
        self.cmd = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port)]
        # Only what the proxy needs: no proxy settings or cloud credentials from the caller leak in.
        self.env = {"PATH": f"{litellm.parent}:/usr/bin:/bin", "HOME": str(workdir), "NO_PROXY": "127.0.0.1,localhost",
                    **env}
        self.proc = None

    def start(self, timeout: float = 180) -> Proxy:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_http(self.url + "/health/liveliness", self.proc, self.log, timeout)
        return self

    def stop(self) -> None:
        stop(self.proc)


def run_trace_check(workdir: Path, **args) -> tuple[bool, dict, str]:
    """Run llmops.devbox.litellm_trace_check on localhost through ansible-playbook.

    Arguments travel in a vars file (not the command line); returns (ok, module result, raw output).
    """
    vars_file = workdir / "trace-check-args.json"
    vars_file.write_text(json.dumps({"check_args": args}))
    vars_file.chmod(0o600)
    playbook = workdir / "trace-check.yml"
    task_args = "".join(f"        {key}: \"{{{{ check_args.{key} }}}}\"\n" for key in args)
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - name: Trace check\n      llmops.devbox.litellm_trace_check:\n" + task_args
    )
    proc = subprocess.run(
        [str(TOOLS / "ansible-playbook"), "-i", "localhost,", str(playbook), "-e", f"@{vars_file}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
                 ANSIBLE_PYTHON_INTERPRETER=sys.executable),
    )
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    result = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return proc.returncode == 0, result, proc.stdout + proc.stderr
