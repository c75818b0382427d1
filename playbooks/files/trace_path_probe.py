"""Run INSIDE the LiteLLM proxy container: docker exec -i <container> python3 - < this file.

Looks at the path a trace takes from the proxy to Langfuse, as the proxy sees it: which Langfuse
variables are set, whether LANGFUSE_HOST points at the container itself, DNS, the health
endpoint, whether the key pair is accepted, the OTLP endpoint, and the callbacks in the config.
Prints one JSON object. Never prints a secret value: only names, set/empty, and key prefixes.
Standard library only (the proxy image has Python, nothing else is assumed).
"""

import base64
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request

NAMES = ("LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LITELLM_MASTER_KEY", "DATABASE_URL")
LOOPBACK = ("localhost", "localhost.localdomain", "ip6-localhost", "::1", "0.0.0.0")  # noqa: S104 - names, not a bind
TIMEOUT = 5


def call(url, headers=None, data=None, method="GET"):
    """(status, body-or-reason); status -1 when no HTTP answer came back."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 - http(s) URL from the proxy env
            return resp.status, resp.read(2000).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(500).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return -1, f"{type(reason).__name__}: {reason}"


def config_callbacks(path):
    """Callback names from the proxy config file."""
    try:
        import yaml  # the proxy image has PyYAML (a LiteLLM dependency)

        with open(path, encoding="utf-8") as handle:
            settings = (yaml.safe_load(handle) or {}).get("litellm_settings") or {}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    keys = ("callbacks", "success_callback", "failure_callback")
    return {key: [str(v) for v in settings.get(key) or []] for key in keys}


def config_path():
    """The --config file the proxy runs with (argument, else the command line of PID 1)."""
    if len(sys.argv) > 1:
        return sys.argv[1]
    try:
        with open("/proc/1/cmdline", "rb") as handle:
            args = handle.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return ""
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return ""


def main():
    config = config_path()
    env = {name: ("set" if os.environ.get(name) else "empty" if name in os.environ else "missing") for name in NAMES}
    host = os.environ.get("LANGFUSE_HOST", "").strip().rstrip("/")
    public = os.environ.get("LANGFUSE_PUBLIC_KEY", "")
    secret = os.environ.get("LANGFUSE_SECRET_KEY", "")
    parts = urllib.parse.urlsplit(host)
    hostname = (parts.hostname or "").lower()
    shown = urllib.parse.urlunsplit((parts.scheme, parts.hostname or "", "", "", "")) if host else ""
    if parts.port:
        shown = f"{shown}:{parts.port}"
    out = {
        "env": env,
        "langfuse_host": shown,
        "host_is_loopback": hostname in LOOPBACK or hostname.startswith("127."),
        "public_key_ok": public.startswith("pk-lf-"),
        "secret_key_ok": secret.startswith("sk-lf-"),
        "callbacks": config_callbacks(config) if config else {"error": "no --config in the container command"},
    }
    if not host:
        print(json.dumps(out))
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
        out["dns"] = {"name": hostname, "addresses": sorted({i[4][0] for i in infos}), "error": ""}
    except OSError as exc:
        out["dns"] = {"name": hostname, "addresses": [], "error": str(exc)[:200]}
    status, body = call(f"{host}/api/public/health")
    version = ""
    if status == 200:
        try:
            version = json.loads(body).get("version", "")
        except ValueError:
            pass
    out["health"] = {"status": status, "version": version, "error": "" if status == 200 else body[:200]}
    auth = {"Authorization": "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()}
    status, body = call(f"{host}/api/public/projects", headers=auth)
    out["auth"] = {"status": status, "error": "" if status == 200 else body[:200].replace(secret or "\0", "********")}
    # An empty OTLP export is a valid request: anything but 404 means the endpoint exists.
    headers = dict(auth, **{"Content-Type": "application/x-protobuf", "x-langfuse-ingestion-version": "4"})
    status, body = call(f"{host}/api/public/otel/v1/traces", headers=headers, data=b"", method="POST")
    error = "" if 200 <= status < 300 else body[:200].replace(secret or "\0", "********")
    out["otlp"] = {"status": status, "error": error}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
