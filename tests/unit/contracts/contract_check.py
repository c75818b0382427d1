"""Checks of a rendered Compose service against an upstream contract (tests/contracts/*.yml).

Plain functions, so that tests can call them with the roles' rendered files and with deliberately
broken ones. Each check returns a list of problems (empty: the service honours the contract).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = ROOT / "tests" / "contracts"
WILDCARDS = {"0.0.0.0", "::", "", "*", "[::]"}  # noqa: S104 - listen addresses, compared only
CONTAINER_ID = "<container id>"
URL = re.compile(r"https?://(\[[^\]]+\]|[^/:'\"\s]+):(\d+)(/[^\s'\"?]*)?")


def load_contracts() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(CONTRACTS.glob("*.yml"))}


# --- shape ------------------------------------------------------------------------------------

def _sources_missing(node, where: str) -> list[str]:
    """Every fact group (a dict holding facts) must say where it was read."""
    problems = []
    if isinstance(node, dict):
        if "source" in node:
            src = node["source"]
            if not src or not (isinstance(src, (list, str))):
                problems.append(f"{where}: empty source")
        for key, value in node.items():
            if key != "source":
                problems += _sources_missing(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems += _sources_missing(value, f"{where}[{i}]")
    return problems


def _has_source(node) -> bool:
    if isinstance(node, dict):
        return "source" in node or any(_has_source(v) for v in node.values())
    if isinstance(node, list):
        return bool(node) and all(_has_source(v) for v in node)
    return False


def shape_problems(name: str, contract: dict) -> list[str]:
    problems = []
    up = contract.get("upstream") or {}
    if not up.get("repo") or not up.get("ref"):
        problems.append(f"{name}: upstream.repo and upstream.ref are required")
    if contract.get("name") != name:
        problems.append(f"{name}: name must be the file name ({contract.get('name')!r})")
    for group in ("listen", "health", "process", "volumes", "env"):
        if group in contract and not _has_source(contract[group]):
            problems.append(f"{name}: {group} does not say where it was read (source)")
    for key, fact in (contract.get("facts") or {}).items():
        if not _has_source(fact):
            problems.append(f"{name}: facts.{key} does not say where it was read (source)")
    return problems + _sources_missing(contract, name)


# --- rendered files ---------------------------------------------------------------------------

def parse_env_file(text: str) -> dict[str, str]:
    """Compose's env-file reading for the forms the roles write: KEY=value, KEY='literal'."""
    env = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        env[key.strip()] = value
    return env


def service_env(project_dir: Path, service: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    files = service.get("env_file") or []
    for f in [files] if isinstance(files, str) else files:
        path = Path(f if isinstance(f, str) else f["path"])
        env.update(parse_env_file((path if path.is_absolute() else project_dir / path).read_text()))
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    env.update({k: str(v) for k, v in environment.items()})
    return env


def _words(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def _flag(words: list[str], flag: str) -> str | None:
    for i, word in enumerate(words):
        if word == flag and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    # Flags inside a `sh -c "..."` command line.
    for word in words:
        if flag in word and " " in word:
            found = _flag(shlex.split(word), flag)
            if found is not None:
                return found
    return None


def effective_listen(contract: dict, service: dict, env: dict) -> tuple[str, int | None]:
    """(address, port) the process listens on, as the contract says it decides them."""
    listen = contract.get("listen") or {}
    words = _words(service.get("entrypoint")) + _words(service.get("command"))

    def decide(spec: dict, kind: str):
        if not spec:
            return None
        if spec.get("env") and spec["env"] in env:
            return env[spec["env"]]
        if spec.get("flag"):
            value = _flag(words, spec["flag"])
            if value is not None:
                if spec.get("flag_format") == "host:port":
                    host, _, port = value.rpartition(":")
                    return host if kind == "address" else port
                return value
        if kind == "address" and spec.get("docker_sets_env") and spec.get("env") not in env:
            return CONTAINER_ID
        return spec.get("default")

    address = decide(listen.get("address") or {}, "address")
    port = decide(listen.get("port") or {}, "port")
    return ("" if address is None else str(address)), (int(port) if port not in (None, "") else None)


def _probe(service: dict) -> tuple[str, str | None]:
    """The healthcheck as ('http', url) or ('command', program)."""
    test = (service.get("healthcheck") or {}).get("test")
    if not test:
        return "none", None
    words = test if isinstance(test, list) else ["CMD-SHELL", test]
    line = " ".join(words[1:])
    url = URL.search(line)
    if url:
        return "http", url.group(0)
    cmd = words[1:] if words[0] == "CMD" else shlex.split(words[1]) if len(words) > 1 else []
    programs = [w for w in cmd if "=" not in w]
    return "command", (programs[0] if programs else None)


def check_service(contract: dict, service_name: str, service: dict, env: dict) -> list[str]:
    """Problems of one rendered compose service against the contract of the image it runs."""
    where = f"{service_name} ({contract['name']} contract)"
    problems = []
    spec = contract.get("env") or {}
    # Variables the process needs.
    for name in spec.get("required") or []:
        if name not in env and name not in (spec.get("image_env") or {}):
            problems.append(f"{where}: required variable {name} is not set")
    # Variables the pinned version does not read (a typo, or a setting from another version).
    known = set(spec.get("known") or [])
    if known and spec.get("known_complete", True):
        words = " ".join(_words(service.get("command")) + _words((service.get("healthcheck") or {}).get("test")))
        used_by_command = set(re.findall(r"\$\$\{?([A-Z_][A-Z0-9_]*)", words))
        for name in sorted(set(env) - known - used_by_command):
            problems.append(f"{where}: sets {name}, which the pinned version does not read")
    # The healthcheck must reach the process where it listens.
    kind, probe = _probe(service)
    health = contract.get("health") or []
    if kind == "http":
        m = URL.search(probe)
        host, port, path = m.group(1).strip("[]"), int(m.group(2)), m.group(3) or "/"
        address, listen_port = effective_listen(contract, service, env)
        if address == CONTAINER_ID and host in ("127.0.0.1", "localhost", "::1"):
            problems.append(f"{where}: healthcheck probes {host}:{port}, but the process listens on "
                            f"$HOSTNAME, which Docker sets to the container id (set HOSTNAME=0.0.0.0)")
        elif address not in WILDCARDS and address != CONTAINER_ID and host != address and not (
                address in ("127.0.0.1", "localhost") and host in ("127.0.0.1", "localhost")):
            problems.append(f"{where}: healthcheck probes {host}, the process listens on {address}")
        if listen_port is not None and port != listen_port:
            problems.append(f"{where}: healthcheck probes port {port}, the process listens on {listen_port}")
        paths = {h.get("path") for h in health if h.get("path")}
        if paths and path not in paths:
            problems.append(f"{where}: healthcheck probes {path}, not a health route of the image "
                            f"({', '.join(sorted(paths))})")
    elif kind == "command":
        commands = {h.get("command") for h in health if h.get("command")}
        commands |= {str(h["command"]).split()[0] for h in health if h.get("command")}
        if commands and probe not in commands:
            problems.append(f"{where}: healthcheck runs {probe}, which the image does not provide for "
                            f"health ({', '.join(sorted(c for c in commands if c))})")
    # The user the service runs as, where the role sets one.
    process = contract.get("process") or {}
    if service.get("user") and process.get("uid") is not None:
        uid = str(service["user"]).split(":")[0]
        if uid not in (str(process["uid"]), str(process.get("user", ""))):
            problems.append(f"{where}: runs as user {service['user']}, the image's process runs as "
                            f"uid {process['uid']}")
    # Named volumes must be mounted where the image keeps its data.
    paths = set((contract.get("volumes") or {}).get("paths") or [])
    for vol in service.get("volumes") or []:
        source, _, target = str(vol).partition(":")
        target = target.split(":")[0]
        if paths and not source.startswith((".", "/")) and target not in paths:
            problems.append(f"{where}: volume {source} is mounted at {target}, the image keeps its data in "
                            f"{', '.join(sorted(paths))}")
    return problems
