# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""SSH port forwards of playbooks/port_forward.yml: one SSH config host and one ``ssh -L`` line per box.

Boxes are numbered in inventory order, [langfuse] first, over the whole inventory (not only the
boxes of this run), so a box keeps its local ports under --limit: box i forwards its services to
local ports base + step * i. Everything comes from the boxes' inventory variables; credentials are
named by the file that holds them on the box, never by value.

Documentation: ops_port_forward.yml next to this file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable
from jinja2 import Undefined

from ansible_collections.llmops.devbox.plugins.module_utils._address import connect_address
from ansible_collections.llmops.devbox.plugins.module_utils._values import is_list as _is_list
from ansible_collections.llmops.devbox.plugins.module_utils._values import text as _text

BASE = {"langfuse": 3000, "litellm": 4000, "code_server": 8080}
LAST_PORT = 65535
_JUMP = re.compile(r"ProxyJump[= ]\s*(\S+)")
_MISSING = object()


def _integer(value, what):
    if isinstance(value, bool):
        raise AnsibleFilterError(f"ops_port_forward: {what} must be an integer, got {value!r}")
    try:
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"ops_port_forward: {what} must be an integer, got {value!r}") from exc


def _var(variables, name, default=_MISSING):
    """A box's variable; default when it is not set or its template cannot be resolved (facts missing)."""
    try:
        value = variables[name]
    except (KeyError, AnsibleUndefinedVariable):
        return default
    # ansible-core 2.19 hands an undefined value back as a marker instead of raising.
    return default if isinstance(value, Undefined) else value


def _ssh_options(variables):
    """The -o Name=Value options Ansible passes to ssh for this box (ansible_ssh_common_args and
    ansible_ssh_extra_args), as (Name, Value) pairs, so the written SSH config connects the way Ansible
    does (e.g. a local test target's host-key settings). ProxyJump is handled on its own."""
    options = []
    for name in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        try:
            words = shlex.split(_text(_var(variables, name, "")))
        except ValueError as exc:
            raise AnsibleFilterError(f"ops_port_forward: {name} is not valid shell words: {exc}") from exc
        for i, word in enumerate(words):
            value = words[i + 1] if word == "-o" and i + 1 < len(words) else word[2:] if word.startswith("-o") else None
            if not value:
                continue
            key, sep, val = value.partition("=") if "=" in value else value.strip().partition(" ")
            if sep and key.strip().lower() != "proxyjump" and "\n" not in val and "\n" not in key:
                options.append((key.strip(), val.strip()))
    return options


def _forward_target(bind):
    """Where ssh -L connects on the box: the one bind rule (a wildcard bind at its loopback)."""
    return connect_address(bind, bracket=True)


def _box(name, index, variables, langfuse, dev, base, step):
    forwards = []
    if langfuse:
        bind = _var(variables, "langfuse_bind_address")
        if bind is _MISSING:
            # Set, but its template needs facts this run has not got: the SSH address is the best guess.
            bind = _var(variables, "ansible_host", "127.0.0.1") if "langfuse_bind_address" in variables else "127.0.0.1"
        forwards.append({"name": "Langfuse", "local": base["langfuse"] + step * index,
                         "remote": f"{_forward_target(bind)}:{_text(_var(variables, 'langfuse_port', 3000))}"})
    if dev:
        forwards.append({"name": "LiteLLM", "local": base["litellm"] + step * index,
                         "remote": f"127.0.0.1:{_text(_var(variables, 'litellm_port', 4000))}"})
        bind = _var(variables, "code_server_bind_address", "127.0.0.1")
        forwards.append({"name": "code-server", "local": base["code_server"] + step * index,
                         "remote": f"{_forward_target(bind)}:{_text(_var(variables, 'code_server_port', 8080))}"})
    key = _text(_var(variables, "ansible_ssh_private_key_file", _var(variables, "ansible_private_key_file", "")))
    if key and not key.startswith(("/", "~")):
        inventory_dir = _var(variables, "inventory_dir", None)
        key = f"{inventory_dir}/{key}" if inventory_dir else key
    jump = _JUMP.search(_text(_var(variables, "ansible_ssh_common_args", "")))
    return {
        # A box already named llmops-... keeps its name as the alias (no llmops-llmops-...).
        "box": name, "alias": name if name.startswith("llmops-") else f"llmops-{name}",
        "options": _ssh_options(variables),
        "host": _text(_var(variables, "ansible_host", name)),
        "user": _text(_var(variables, "ansible_user", _var(variables, "ansible_ssh_user", ""))),
        "port": _var(variables, "ansible_port", 22), "key": key, "jump": jump.group(1) if jump else "",
        "forwards": forwards,
        "nextauth": _text(_var(variables, "langfuse_nextauth_url",
                               f"http://localhost:{_text(_var(variables, 'langfuse_port', 3000))}")),
        "admin_email": _text(_var(variables, "langfuse_admin_email", "admin@example.com")),
        "langfuse_secrets": _text(_var(variables, "langfuse_secrets_dir", "/etc/langfuse")),
        "litellm_secrets": _text(_var(variables, "litellm_secrets_dir", "/etc/litellm")),
        "cs_user": _text(_var(variables, "code_server_user", "admin")),
    }


def _config(boxes, config_file):
    out = [
        "# Written by playbooks/port_forward.yml. Open the tunnels of a box with:",
        f"#   ssh -F {config_file} -N llmops-<box>",
        f'# or add "Include {config_file}" at the top of ~/.ssh/config.',
    ]
    for b in boxes:
        out += ["", f"Host {b['alias']}", f"  HostName {b['host']}"]
        if b["user"]:
            out.append(f"  User {b['user']}")
        out.append(f"  Port {b['port']}")
        if b["key"]:
            out += [f"  IdentityFile {b['key']}", "  IdentitiesOnly yes"]
        if b["jump"]:
            out.append(f"  ProxyJump {b['jump']}")
        out += [f"  {key} {value}" for key, value in b["options"]]
        out += ["  ExitOnForwardFailure yes", "  ServerAliveInterval 30"]
        for f in b["forwards"]:
            out += [f"  # {f['name']}: http://localhost:{f['local']}",
                    f"  LocalForward 127.0.0.1:{f['local']} {f['remote']}"]
    return "\n".join(out) + "\n"


def _port_of(url):
    try:
        return urlsplit(url).port or 80
    except ValueError:
        return None


def _lines(boxes, config_file):
    out = [f"SSH config written to {config_file} (ssh -F {config_file} -N llmops-<box>). Or, per box:"]
    for b in boxes:
        out += ["", f"== {b['box']} =="]
        out.append("ssh -N" + (f" -i {b['key']}" if b["key"] else "") + (f" -J {b['jump']}" if b["jump"] else "")
                   + (f" -p {b['port']}" if _integer(b["port"], f"ansible_port of {b['box']}") != 22 else "")
                   + "".join(f" -o {shlex.quote(f'{key}={value}')}" for key, value in b["options"])
                   + "".join(f" -L {f['local']}:{f['remote']}" for f in b["forwards"])
                   + " " + (f"{b['user']}@" if b["user"] else "") + b["host"])
        for f in b["forwards"]:
            if f["name"] == "Langfuse":
                out.append(f"  Langfuse     http://localhost:{f['local']}  user {b['admin_email']}, password: key "
                           f"admin_password in {b['langfuse_secrets']}/secrets.json; project API keys: "
                           f"{b['langfuse_secrets']}/api-key.json")
                if _port_of(b["nextauth"]) != f["local"]:
                    out.append(f"               (sign-in redirects to {b['nextauth']} = langfuse_nextauth_url: forward "
                               "to that local port, or change it)")
            elif f["name"] == "LiteLLM":
                out.append(f"  LiteLLM      http://localhost:{f['local']}  API key (Bearer): "
                           f"{b['litellm_secrets']}/master_key")
            else:
                out.append(f"  code-server  http://localhost:{f['local']}  password: ~{b['cs_user']}"
                           f"/.config/code-server/config.yaml (password:), generated one also in ~{b['cs_user']}"
                           "/.config/code-server/generated-password")
        out.append(f"  read a credential on the box: ssh -F {config_file} {b['alias']} sudo cat <file>")
    return out


def ops_port_forward(hostvars, langfuse_boxes, dev_boxes, play_boxes, config_file, base=None, step=10):
    """Port forwards of every box of the run: the boxes, the SSH config text, the lines to print, a problem."""
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("ops_port_forward: the input must map each box to its variables (hostvars), "
                                 f"got {type(hostvars).__name__}")
    for what, value in (("langfuse_boxes", langfuse_boxes), ("dev_boxes", dev_boxes), ("play_boxes", play_boxes)):
        if not _is_list(value):
            raise AnsibleFilterError(f"ops_port_forward: {what} must be a list of inventory names, "
                                     f"got {type(value).__name__}")
    if base is None:
        base = {}
    if not isinstance(base, Mapping):
        raise AnsibleFilterError("ops_port_forward: base (port_forward_base) must be a mapping of langfuse, litellm, "
                                 f"code_server to ports, got {type(base).__name__}")
    ports = dict(BASE, **base)
    numbers = {name: _integer(ports[name], f"port_forward_base.{name}") for name in BASE}
    step_number = _integer(step, "port_forward_step")
    # The whole inventory, not only this run's hosts: a box keeps its ports under --limit.
    boxes = list(langfuse_boxes) + [b for b in dev_boxes if b not in langfuse_boxes]
    out = []
    for index, name in enumerate(boxes):
        if name not in play_boxes:
            continue
        try:
            variables = hostvars[name]
        except KeyError:
            variables = None
        if not isinstance(variables, Mapping):
            raise AnsibleFilterError(f"ops_port_forward: no variables for box {name!r} in the input")
        out.append(_box(name, index, variables, name in langfuse_boxes, name in dev_boxes, numbers, step_number))
    local = [f["local"] for b in out for f in b["forwards"]]
    problem = ""
    if (set(ports) - set(BASE) or step_number <= 0 or len(local) != len(set(local))
            or any(port > LAST_PORT for port in local)):
        problem = (f"port_forward_base (keys {', '.join(BASE)}) and port_forward_step must give every box distinct "
                   f"local ports below {LAST_PORT + 1}: now {ports} and step {step_number} for {len(boxes)} boxes. "
                   "Spread the bases further apart than step * number of boxes.")
    config_file = _text(config_file)
    return {"boxes": out, "config": _config(out, config_file), "lines": _lines(out, config_file), "problem": problem}


class FilterModule:
    """SSH port forwards."""

    def filters(self):
        return {"ops_port_forward": ops_port_forward}
