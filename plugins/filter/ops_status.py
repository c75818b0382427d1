# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""The service rows of playbooks/status.yml (and diagnose.yml) and the table they are printed as.

``ops_status_rows`` turns what tasks/probe.yml registered on one box (``docker ps`` JSON lines, the
services of the deployed compose files, the health endpoints, the code-server unit) into one row per
service ``{host, stack, service, state, health, version, listen, ok, note}``. ``ops_play_rows``
collects the rows of every box of the play (one failing row for a box that did not answer) and
``ops_status_table`` formats rows as the table status.yml prints.

Documentation: ops_status_rows.yml, ops_play_rows.yml and ops_status_table.yml next to this file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from jinja2 import Undefined

from ansible_collections.llmops.devbox.plugins.module_utils._values import is_list as _is_list
from ansible_collections.llmops.devbox.plugins.module_utils._values import text as _text
from ansible_collections.llmops.devbox.plugins.module_utils._values import unique as _unique

TABLE_FORMAT = "%-20s %-12s %-24s %-11s %-9s %-28s %s"
TABLE_HEADER = ("HOST", "STACK", "SERVICE", "STATE", "HEALTH", "VERSION", "LISTENING")
ROW_KEYS = ("host", "stack", "service", "state", "health", "version", "listen", "ok", "note")
PROBES = ("ps", "compose_services", "langfuse_health", "litellm_health", "code_server_unit", "code_server_health",
          "code_server_version", "code_server_port")
SLOT_REGEX = r"^litellm-(blue|green)$"
_VERSION = re.compile(r"(?m)^v?(\d+\.\d+\.\d+)")


def _listening(port_probe):
    """address:port of every socket llmops.devbox.box_probe found listening on the probed port."""
    ports = port_probe.get("ports") if isinstance(port_probe.get("ports"), list) else []
    out = []
    for entry in ports[:1]:
        if not isinstance(entry, Mapping):
            continue
        for listener in entry.get("listeners") or []:
            address = _text(listener.get("address") if isinstance(listener, Mapping) else "")
            if address:
                out.append(f"[{address}]:{entry.get('port')}" if ":" in address else f"{address}:{entry.get('port')}")
    return out


def _result(probe, name):
    value = probe.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"ops_status_rows: {name} must be a registered task result (a mapping), "
                                 f"got {type(value).__name__}")
    return value


def _lines(result, key, where):
    value = result.get(key)
    if value is None:
        return []
    if not _is_list(value):
        raise AnsibleFilterError(f"ops_status_rows: {where}.{key} must be a list of lines, got {type(value).__name__}")
    return [_text(line) for line in value]


def image_tag(image):
    """The tag of an image reference (what follows ':' in its last path part), 'untagged' without one."""
    last = _text(image).rsplit("/", maxsplit=1)[-1]
    return last.split(":")[1].strip() if ":" in last else "untagged"


def container_health(status):
    """Health from the STATUS column of docker ps ('-' for a container without a healthcheck)."""
    status = _text(status)
    if "(unhealthy)" in status:
        return "unhealthy"
    if "(health: starting)" in status:
        return "starting"
    if "(healthy)" in status:
        return "healthy"
    return "-"


def published(ports):
    """The host addresses of the published ports in the PORTS column of docker ps ('-' when none)."""
    found = [re.sub(r"->.*$", "", part) for part in _text(ports).split(", ") if "->" in part]
    return " ".join(_unique(found)).strip() or "-"


def _containers(ps):
    """The containers of docker ps --format '{json...}', [] when docker did not answer."""
    if ps.get("rc", 1) != 0:
        return []
    out = []
    for index, line in enumerate(_lines(ps, "stdout_lines", "ps")):
        try:
            container = json.loads(line)
        except ValueError as exc:
            raise AnsibleFilterError(f"ops_status_rows: ps.stdout_lines[{index}] is not a JSON object ({exc})") from exc
        if not isinstance(container, Mapping):
            raise AnsibleFilterError(f"ops_status_rows: ps.stdout_lines[{index}] is not a JSON object")
        out.append(container)
    return out


def _defined(compose_services):
    """{stack: [services]} of every compose file that docker compose config read."""
    results = compose_services.get("results") or []
    if not _is_list(results):
        raise AnsibleFilterError("ops_status_rows: compose_services.results must be a list (a looped task result)")
    out = {}
    for result in results:
        if not isinstance(result, Mapping) or result.get("rc") != 0:
            continue
        item = result.get("item")
        stack = item.get("stack") if isinstance(item, Mapping) else None
        out[_text(stack)] = _lines(result, "stdout_lines", "compose_services.results[]")
    return out


def _http_row(host, stack, service, result, version_key, listen):
    status = result.get("status", -1)
    body = result.get("json")
    return {"host": host, "stack": stack, "service": service, "state": f"HTTP {status}",
            "health": "ok" if status == 200 else "failing",
            "version": body.get(version_key, "-") if isinstance(body, Mapping) else "-",
            "listen": listen, "ok": status == 200,
            "note": "" if status == 200 else _text(result.get("msg")).strip()[:80]}


def _missing(host, stack, service, note, state="missing", ok=False):
    return {"host": host, "stack": stack, "service": service, "state": state, "health": "-", "version": "-",
            "listen": "-", "ok": ok, "note": note}


def _container_row(host, stack, container, role):
    health = container_health(container.get("status"))
    up = container.get("state") == "running" and health in ("healthy", "-")
    return {"host": host, "stack": stack,
            "service": _text(container.get("service")) + (f" ({role})" if role else ""),
            "state": container.get("state"), "health": health, "version": image_tag(container.get("image"))[:28],
            "listen": published(container.get("ports")), "ok": up or role == "idle", "note": role}


def ops_status_rows(probe, host, selected, active_slot="", langfuse_project="langfuse", langfuse_dir="/opt/langfuse",
                    langfuse_url="http://127.0.0.1:3000", litellm_project="litellm", litellm_dir="/opt/litellm",
                    litellm_port=4000, slot_regex=SLOT_REGEX, code_server_unit="code-server@admin"):
    """Rows {host, stack, service, state, health, version, listen, ok, note} and containers of one box."""
    if not isinstance(probe, Mapping):
        raise AnsibleFilterError(f"ops_status_rows: the input must be a mapping of the probe's registered results, "
                                 f"got {type(probe).__name__}")
    unknown = sorted(set(probe) - set(PROBES))
    if unknown:
        raise AnsibleFilterError(f"ops_status_rows: unknown probe result(s) {', '.join(map(str, unknown))}; "
                                 f"known: {', '.join(PROBES)}")
    if not isinstance(host, str) or not host:
        raise AnsibleFilterError("ops_status_rows: host must be the box's inventory name")
    if not _is_list(selected):
        raise AnsibleFilterError(f"ops_status_rows: selected must be a list of stacks, got {type(selected).__name__}")
    try:
        slot = re.compile(slot_regex)
    except (re.error, TypeError) as exc:
        raise AnsibleFilterError(f"ops_status_rows: slot_regex is not a regular expression ({exc})") from exc
    active_slot = _text(active_slot)
    ps = _result(probe, "ps")
    containers = _containers(ps)
    defined = _defined(_result(probe, "compose_services"))
    docker_answers = ps.get("rc", 1) == 0
    rows = []
    if ps.get("rc", 0) != 0:
        note = ps["stderr"] if "stderr" in ps else ps.get("msg", "")
        rows.append(_missing(host, "docker", "docker", _text(note).strip()[:80], state="down"))

    if "langfuse" in selected and docker_answers:
        mine = [c for c in containers if c.get("project") == langfuse_project]
        if "langfuse" not in defined:
            rows.append(_missing(host, "langfuse", f"{langfuse_dir}/compose.yml",
                                 "not deployed (no valid compose file)"))
        services = defined.get("langfuse", [])
        for service in services + [c.get("service") for c in mine if c.get("service") not in services]:
            found = [c for c in mine if c.get("service") == service]
            rows.append(_container_row(host, "langfuse", found[0], "") if found
                        else _missing(host, "langfuse", service, "no container"))
    if "langfuse" in selected:
        rows.append(_http_row(host, "langfuse", "GET /api/public/health", _result(probe, "langfuse_health"), "version",
                              langfuse_url))

    if "litellm" in selected and docker_answers:
        mine = [c for c in containers if c.get("project") == litellm_project]
        services = defined.get("litellm", []) + [c.get("service") for c in mine]
        slots = _unique([s for s in services if slot.match(_text(s))])
        fixed = _unique([s for s in services if s not in slots])
        if "litellm" not in defined:
            rows.append(_missing(host, "litellm", f"{litellm_dir}/compose.yml", "not deployed (no valid compose file)"))
        for service in fixed + slots:
            found = [c for c in mine if c.get("service") == service]
            # The idle slot is stopped on purpose; which one serves is only known from the serving file.
            role = "" if service in fixed else "serving" if service == active_slot else "idle" if active_slot else ""
            if found:
                rows.append(_container_row(host, "litellm", found[0], role))
            else:
                rows.append(_missing(host, "litellm", _text(service) + (f" ({role})" if role else ""),
                                     role or "no container", state="not created" if role == "idle" else "missing",
                                     ok=role == "idle"))
        if active_slot and active_slot not in slots:
            rows.append(_missing(host, "litellm", active_slot, "serving slot has no container"))
    if "litellm" in selected:
        rows.append(_http_row(host, "litellm", "GET /health/readiness", _result(probe, "litellm_health"),
                              "litellm_version", f"http://127.0.0.1:{litellm_port}"))

    if "code_server" in selected:
        unit = _result(probe, "code_server_unit").get("status") or {}
        if not isinstance(unit, Mapping):
            unit = {}
        health = _result(probe, "code_server_health")
        active = unit.get("ActiveState", "missing")
        answers = health.get("status", -1) == 200
        version = _VERSION.search(_text(_result(probe, "code_server_version").get("stdout")))
        listening = _listening(_result(probe, "code_server_port"))
        rows.append({
            "host": host, "stack": "code_server", "service": code_server_unit,
            "state": active if unit.get("LoadState", "not-found") != "not-found" else "missing",
            "health": "healthy" if answers else "failing",
            "version": version.group(1) if version else "-",
            "listen": " ".join(_unique(listening)) or "-",
            "ok": active == "active" and answers,
            "note": "" if answers else "GET /healthz: " + _text(health.get("msg")).strip()[:60],
        })
    return {"rows": rows, "containers": containers}


def ops_play_rows(hosts, hostvars, name="_ops_rows"):
    """The rows of every box of the play, in play order; a box without rows gets one failing row."""
    if not _is_list(hosts):
        raise AnsibleFilterError(f"ops_play_rows: the input must be the list of hosts, got {type(hosts).__name__}")
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError(f"ops_play_rows: hostvars must be a mapping, got {type(hostvars).__name__}")
    rows = []
    for host in hosts:
        try:
            variables = hostvars[host]
            found = variables[name] if isinstance(variables, Mapping) else None
        except KeyError:
            found = None
        if found is None or isinstance(found, Undefined):
            rows.append({"host": host, "stack": "-", "service": "-", "state": "no answer", "health": "-",
                         "version": "-", "listen": "-", "ok": False,
                         "note": "unreachable or failed: see the error above"})
        elif _is_list(found):
            rows.extend(found)
        else:
            raise AnsibleFilterError(f"ops_play_rows: {name} of {host} must be a list, got {type(found).__name__}")
    return rows


def ops_status_table(rows):
    """The status table: a header line, then one line per row, a marker and the note on rows not ok."""
    if not _is_list(rows):
        raise AnsibleFilterError(f"ops_status_table: the input must be a list of rows, got {type(rows).__name__}")
    lines = [TABLE_FORMAT % TABLE_HEADER]
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise AnsibleFilterError(f"ops_status_table: row {index} must be a mapping, got {type(row).__name__}")
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise AnsibleFilterError(f"ops_status_table: row {index} has no {', '.join(missing)}")
        line = TABLE_FORMAT % tuple(row[key] for key in ROW_KEYS[:7])
        lines.append(line + ("" if row["ok"] else "   <-- " + (_text(row["note"]) or "NOT OK")))
    return lines


def ops_disk_report(volume_lines, disk, warn_percent=80, host=""):
    """Disk use of a box: one line per Docker volume of a Compose project (``NAME<TAB>BYTES`` lines, as
    status.yml's du loop prints them), the filesystem Docker keeps them on (a box_probe ``disk`` entry:
    mount, size_bytes, free_bytes), and ``warnings`` when that filesystem is fuller than warn_percent."""
    if not isinstance(disk, Mapping):
        raise AnsibleFilterError("ops_disk_report: disk must be a box_probe disk entry (mount, size_bytes, free_bytes)")
    volumes = []
    for line in _text(volume_lines).splitlines():
        name, _sep, size = line.partition("\t")
        if name.strip() and size.strip().isdigit():
            volumes.append({"volume": name.strip(), "bytes": int(size)})
    volumes.sort(key=lambda v: (-v["bytes"], v["volume"]))
    size, free = disk.get("size_bytes"), disk.get("free_bytes")
    percent = round(100.0 * (size - free) / size, 1) if size and free is not None else None
    mount = _text(disk.get("mount") or disk.get("path"))
    lines = [f"{v['volume']:<40} {v['bytes'] / 1048576:>10.1f} MiB" for v in volumes]
    lines.append(f"{mount or '?'}: {'?' if percent is None else percent} % used of "
                 f"{(size or 0) / 1024**3:.1f} GiB ({(free or 0) / 1024**3:.1f} GiB free)")
    warnings = []
    if percent is not None and percent > float(warn_percent):
        biggest = ", ".join(f"{v['volume']} {v['bytes'] / 1048576:.0f} MiB" for v in volumes[:3])
        warnings.append(f"{host or 'box'}: {mount} is {percent} % full (warning above {warn_percent} %). Biggest "
                        f"volumes: {biggest or 'none'}. Check the TTLs (langfuse_clickhouse_log_ttl_days, "
                        f"langfuse_retention_days), old backups in langfuse_backup_dir, or grow the disk.")
    return {"volumes": volumes, "percent": percent, "lines": lines, "warnings": warnings}


class FilterModule:
    """Status rows and table."""

    def filters(self):
        return {
            "ops_disk_report": ops_disk_report,
            "ops_status_rows": ops_status_rows,
            "ops_play_rows": ops_play_rows,
            "ops_status_table": ops_status_table,
        }
