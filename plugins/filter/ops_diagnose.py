# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""What playbooks/diagnose.yml concludes from the evidence of each box.

``ops_diagnose_findings`` turns the evidence gathered on one box (service rows of tasks/probe.yml,
what the proxy container sees from trace_path_probe.py, masked log error lines, the trace check) into
findings ``{host, problem, fix[, lines]}`` and the checks that passed. ``ops_play_findings`` collects
the findings of every box of the play, with one finding for each box that did not answer.

Only names, URLs, statuses and already masked log lines go in; nothing here reads a secret.
Documentation: ops_diagnose_findings.yml and ops_play_findings.yml next to this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from jinja2 import Undefined

from ansible_collections.llmops.devbox.plugins.module_utils._values import is_list as _is_list
from ansible_collections.llmops.devbox.plugins.module_utils._values import text as _text
from ansible_collections.llmops.devbox.plugins.module_utils._values import unique as _unique

KEY_NAMES = ("LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY")
LANGFUSE_CALLBACKS = ("langfuse", "langfuse_otel")
# The Langfuse service name a proxy reaches on its own box (the shared Docker network).
SAME_BOX_HOST = "http://langfuse-web:3000"
_LOOPBACK_BIND = re.compile(r"^(127\.|localhost$|::1$)")
_EXPORT_LINE = re.compile(r"(?i)langfuse|otel|otlp|export")


def _mapping(value, what, default=None):
    if value is None:
        return {} if default is None else default
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"ops_diagnose_findings: {what} must be a mapping, got {type(value).__name__}")
    return value


def _list(value, what):
    if value is None:
        return []
    if not _is_list(value):
        raise AnsibleFilterError(f"ops_diagnose_findings: {what} must be a list, got {type(value).__name__}")
    return list(value)


def _services(host, rows, deploy_fix, start_fix):
    """One finding per stack with a service that is not ok; the check when every service is."""
    findings, checks = [], []
    bad = [r for r in rows if not r.get("ok")]
    stacks = []
    for r in bad:
        if r.get("stack") not in stacks:
            stacks.append(r.get("stack"))
    for stack in stacks:
        mine = [r for r in bad if r.get("stack") == stack]
        if all(r.get("state") == "missing" for r in mine):
            fix = deploy_fix
        elif stack == "docker":
            fix = f"Docker does not answer: sudo systemctl start docker, or site.yml --tags docker --limit {host}."
        else:
            fix = start_fix(stack)
        what = []
        for r in mine:
            health = _text(r.get("health"))
            note = _text(r.get("note"))
            what.append(f"{_text(r.get('service'))} {_text(r.get('state'))}"
                        + (f" / {health}" if health not in ("-", "failing") else "")
                        + (f" ({note})" if note else ""))
        findings.append({"host": host, "fix": fix, "problem": f"{_text(stack)} not healthy: " + "; ".join(what)})
    if not bad:
        checks.append(f"every service up and healthy ({len(rows)})")
    return findings, checks


def _langfuse_listening(host, remote_devboxes, bind, port, external_url, address):
    """Whether the dev boxes on other machines can reach this Langfuse box."""
    if _LOOPBACK_BIND.match(bind) and not external_url:
        return [{
            "host": host,
            "problem": f"Langfuse listens on {bind}:{port} only: the dev boxes on other machines ("
                       f"{', '.join(remote_devboxes)}) cannot send traces to it.",
            "fix": "Set langfuse_bind_address to this box's private address in group_vars/langfuse.yml (its default "
                   f"IPv4 is {address}), allow port {port} from the dev boxes only (security group), then run "
                   "site.yml.",
        }], []
    return [], [f"Langfuse listens on {bind}:{port} for the remote dev boxes"]


def _langfuse_from_proxy(ctx, path, actual, container):
    """DNS, health, key pair and OTLP endpoint of Langfuse as seen from inside the proxy container."""
    host, central, retry = ctx["host"], ctx["central"], ctx["retry"]
    findings, checks = [], []
    dns = _mapping(path.get("dns"), "evidence.path.dns")
    if dns.get("error"):
        if ctx["same_box"]:
            fix = ("On one box the proxy reaches Langfuse by service name: it must be on the Docker network "
                   f"{ctx['langfuse_network']} (litellm_langfuse_network) and Langfuse must run "
                   f"(playbooks/status.yml). {retry}")
        else:
            fix = ("Containers do not see the box's /etc/hosts: use a name the VPC DNS resolves, or the IP, as "
                   f"langfuse_external_url on {central}, then: {retry}")
        findings.append({"host": host, "problem": f"{_text(dns.get('name'))} does not resolve inside {container}: "
                                                  f"{_text(dns.get('error'))}", "fix": fix})
        return findings, checks
    addresses = " ".join(_text(a) for a in _list(dns.get("addresses"), "evidence.path.dns.addresses"))
    checks.append(f"DNS {_text(dns.get('name'))} -> {addresses}")
    health = _mapping(path.get("health"), "evidence.path.health")
    status = health.get("status", -1)
    if status == -1:
        if ctx["same_box"]:
            fix = "Langfuse is not running on this box: " + ctx["start_fix"]("langfuse")
        else:
            fix = (f"Langfuse on {central} must listen on an address this box reaches (langfuse_bind_address, now "
                   f"{ctx['central_bind']}) and its security group / firewall must allow port {actual.split(':')[-1]} "
                   f"from {host}. Test on {host}: curl {actual}/api/public/health")
        findings.append({"host": host, "problem": f"Cannot connect from {container} to {actual}: "
                                                  f"{_text(health.get('error'))}", "fix": fix})
        return findings, checks
    if status != 200:
        findings.append({
            "host": host,
            "problem": f"Langfuse at {actual} answers HTTP {status} on /api/public/health: "
                       f"{_text(health.get('error'))}",
            "fix": "Langfuse is up but not healthy (often its database): playbooks/status.yml, then "
                   f"playbooks/logs.yml -e stack=langfuse --limit {central}.",
        })
        return findings, checks
    checks.append(f"Langfuse health 200 from inside the proxy (version {_text(health.get('version')) or '?'})")
    auth = _mapping(path.get("auth"), "evidence.path.auth")
    if auth.get("status") in (401, 403):
        findings.append({
            "host": host, "problem": f"Langfuse rejects the proxy's key pair (HTTP {auth.get('status')} on "
                                     "/api/public/projects): every export is refused.",
            "fix": "The proxy holds keys that are not a key pair of this Langfuse project (rotated, or Langfuse "
                   f"redeployed). {retry} (It copies {ctx['langfuse_secrets_dir']}/api-key.json of the Langfuse box.)",
        })
    elif auth.get("status") != 200:
        findings.append({
            "host": host,
            "problem": f"GET /api/public/projects answers HTTP {_text(auth.get('status'))}: {_text(auth.get('error'))}",
            "fix": f"See the Langfuse web log: playbooks/logs.yml -e stack=langfuse --limit {central}.",
        })
    else:
        checks.append("key pair accepted by Langfuse")
    otlp = _mapping(path.get("otlp"), "evidence.path.otlp")
    if otlp.get("status") == 404:
        findings.append({
            "host": host,
            "problem": "Langfuse has no OTLP endpoint (POST /api/public/otel/v1/traces answers 404); "
                       "the LiteLLM callback only exports OTLP.",
            "fix": "Run Langfuse 3.63 or newer (role default: the v4 line, langfuse_version_line).",
        })
    elif otlp.get("status") == 200:
        checks.append("OTLP endpoint accepts exports")
    return findings, checks


def _callbacks(ctx, path, container):
    """The Langfuse callback in the proxy's config."""
    host, retry = ctx["host"], ctx["retry"]
    cb = _mapping(path.get("callbacks"), "evidence.path.callbacks")
    success = [_text(n) for n in _list(cb.get("success_callback"), "evidence.path.callbacks.success_callback")]
    names = _unique([_text(n) for n in _list(cb.get("callbacks"), "evidence.path.callbacks.callbacks")] + success)
    if "error" in cb:
        return [{"host": host, "problem": f"Cannot read the proxy config inside {container}: {_text(cb['error'])}",
                 "fix": retry}], []
    if not set(names) & set(LANGFUSE_CALLBACKS):
        return [{
            "host": host,
            "problem": f"The proxy config has no Langfuse callback (success_callback: {', '.join(success)}).",
            "fix": "Keep litellm_langfuse_enabled: true and no success_callback / callbacks in "
                   "litellm_litellm_settings_extra; then " + retry,
        }], []
    return [], [f"Langfuse callback configured ({', '.join(names)})"]


def _trace_path(ctx, evidence):
    """The path from inside the proxy container to Langfuse, the proxy's log and the trace check."""
    host, retry, expected, central = ctx["host"], ctx["retry"], ctx["expected_host"], ctx["central"]
    findings, checks = [], []
    proxy = evidence["proxy"]
    container = _text(proxy.get("name"))
    path = evidence["path"]
    if proxy.get("state", "") != "running":
        findings.append({"host": host, "problem": "No running LiteLLM proxy container to test the trace path from.",
                         "fix": ctx["start_fix"]("litellm")})
    elif evidence["path_error"] or not path:
        findings.append({"host": host,
                         "problem": f"The check inside {container} did not run: "
                                    f"{evidence['path_error'] or 'no output'}",
                         "fix": f"It needs python3 in the proxy image: docker exec {container} python3 -V on the box."})
    else:
        env = _mapping(path.get("env"), "evidence.path.env")
        for name in KEY_NAMES:
            state = _text(env.get(name, "missing"))
            if state != "set":
                findings.append({
                    "host": host,
                    "problem": f"{name} is {state} in the proxy container {container}: no traces are sent.",
                    "fix": retry + " Keep litellm_langfuse_enabled true and do not override litellm_langfuse_* with "
                                   "empty values.",
                })
        if (env.get("LANGFUSE_PUBLIC_KEY") == "set" and not path.get("public_key_ok")
                or env.get("LANGFUSE_SECRET_KEY") == "set" and not path.get("secret_key_ok")):
            findings.append({"host": host, "fix": retry,
                             "problem": "The proxy's Langfuse keys do not look like a project key pair "
                                        "(pk-lf-... / sk-lf-...)."})
        actual = _text(path.get("langfuse_host"))
        if path.get("host_is_loopback"):
            findings.append({
                "host": host,
                "problem": f"LANGFUSE_HOST is {actual}: inside the proxy container that is the container itself, "
                           "not the box.",
                "fix": f"Use {expected or 'the Langfuse service name or the central URL'}. Remove any "
                       f"litellm_langfuse_host override, then: {retry}",
            })
        elif actual and expected and actual.rstrip("/") != expected.rstrip("/"):
            findings.append({
                "host": host,
                "problem": f"The proxy sends traces to {actual}, but its Langfuse box {central} is at {expected}.",
                "fix": f"{retry} If that box is reached under another name, set langfuse_external_url on {central}.",
            })
        elif actual:
            checks.append(f"LANGFUSE_HOST {actual} (not loopback{', as expected' if expected else ''})")
        if "dns" in path:
            more, passed = _langfuse_from_proxy(ctx, path, actual, container)
            findings += more
            checks += passed
        more, passed = _callbacks(ctx, path, container)
        findings += more
        checks += passed
    lines = _list(evidence["log_errors"].get(container), f"evidence.log_errors[{container!r}]")
    export_errors = [line for line in lines if _EXPORT_LINE.search(_text(line))]
    if export_errors:
        findings.append({
            "host": host, "problem": f"The proxy logged failed exports to Langfuse in the last {ctx['since']}:",
            "lines": export_errors,
            "fix": "The findings above say why (401: keys; refused / timed out: reachability). Once fixed, new calls "
                   "are traced again; these lines age out of the window (-e diagnose_since=5m).",
        })
    trace = evidence["trace"]
    if trace is not None and trace.get("ok"):
        checks.append(f"trace check {_text(trace.get('line'))}")
    elif trace is not None:
        findings.append({
            "host": host, "problem": f"Trace check {_text(trace.get('line'))}",
            "fix": "Fix the findings above first. Include the Langfuse box in --limit; set trace_check_model if the "
                   "first model of the proxy cannot answer.",
        })
    return findings, checks


def _evidence(value):
    evidence = _mapping(value, "the evidence (input)")
    unknown = sorted(set(evidence) - {"rows", "proxy", "path", "path_error", "log_errors", "trace"})
    if unknown:
        raise AnsibleFilterError(f"ops_diagnose_findings: unknown evidence key(s) {', '.join(map(str, unknown))}; "
                                 "known: rows, proxy, path, path_error, log_errors, trace")
    rows = _list(evidence.get("rows"), "evidence.rows")
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise AnsibleFilterError(f"ops_diagnose_findings: evidence.rows[{index}] must be a mapping "
                                     "(a row of tasks/probe.yml), got " + type(row).__name__)
    log_errors = _mapping(evidence.get("log_errors"), "evidence.log_errors")
    trace = evidence.get("trace")
    if trace is not None:
        trace = _mapping(trace, "evidence.trace")
    return {
        "rows": rows,
        "proxy": _mapping(evidence.get("proxy"), "evidence.proxy"),
        "path": _mapping(evidence.get("path"), "evidence.path"),
        "path_error": _text(evidence.get("path_error")),
        "log_errors": log_errors,
        "trace": trace,
    }


def ops_diagnose_findings(evidence, host, selected, central="", langfuse_boxes=None, dev_boxes=None,
                          central_url="", central_bind="127.0.0.1", langfuse_bind="127.0.0.1", langfuse_port=3000,
                          langfuse_external_url="", address="?", langfuse_network="langfuse_default",
                          langfuse_secrets_dir="/etc/langfuse", langfuse_project="langfuse", since="15m"):
    """Findings {host, problem, fix[, lines]} and passed checks of one box, from its diagnose evidence."""
    evidence = _evidence(evidence)
    if not isinstance(host, str) or not host:
        raise AnsibleFilterError("ops_diagnose_findings: host must be the box's inventory name")
    selected = [_text(s) for s in _list(selected, "selected")]
    langfuse_boxes = [_text(b) for b in _list(langfuse_boxes, "langfuse_boxes")]
    dev_boxes = [_text(b) for b in _list(dev_boxes, "dev_boxes")]
    central = _text(central)
    same_box = central == host

    def start_fix(stack):
        return (f"ansible-playbook playbooks/start.yml -e stack={stack} --limit {host}; if it stays unhealthy, "
                f"read its log (playbooks/logs.yml -e stack={stack}).")

    ctx = {
        "host": host, "central": central, "same_box": same_box, "start_fix": start_fix,
        "retry": (f"Rerun ansible-playbook site.yml --tags litellm --limit {host}"
                  f"{(',' + central) if central and not same_box else ''}: it gives the proxy the URL and key pair of "
                  "its Langfuse box."),
        "expected_host": SAME_BOX_HOST if same_box else _text(central_url),
        "central_bind": _text(central_bind), "langfuse_network": _text(langfuse_network),
        "langfuse_secrets_dir": _text(langfuse_secrets_dir), "since": _text(since),
    }
    findings, checks = _services(host, evidence["rows"], f"Deploy it: ansible-playbook site.yml --limit {host}.",
                                 start_fix)
    # Only the first Langfuse box is the one the dev boxes on other machines report to.
    remote_devboxes = [b for b in dev_boxes if b not in langfuse_boxes] if langfuse_boxes[:1] == [host] else []
    if "langfuse" in selected and remote_devboxes:
        more, passed = _langfuse_listening(host, remote_devboxes, _text(langfuse_bind), _text(langfuse_port),
                                           _text(langfuse_external_url), _text(address))
        findings += more
        checks += passed
    if "litellm" in selected:
        more, passed = _trace_path(ctx, evidence)
        findings += more
        checks += passed
    # Langfuse's own errors (its containers are named <project>-<service>-<n>).
    prefix = f"{_text(langfuse_project)}-"
    for name, lines in sorted(evidence["log_errors"].items(), key=lambda kv: _text(kv[0]).lower()):
        if _text(name).startswith(prefix):
            findings.append({
                "host": host, "problem": f"{name} logged errors in the last {ctx['since']}:",
                "lines": _list(lines, f"evidence.log_errors[{name!r}]"),
                "fix": "The worker writes traces to ClickHouse and MinIO, the web side reads Postgres and ClickHouse: "
                       "check them with playbooks/status.yml, then the full log "
                       "(playbooks/logs.yml -e stack=langfuse).",
            })
    return {"findings": findings, "checks": checks}


def ops_play_findings(hosts, hostvars, name="_ops_findings"):
    """The findings of every box of the play, in play order; a box without findings did not answer."""
    if not _is_list(hosts):
        raise AnsibleFilterError(f"ops_play_findings: the input must be the list of hosts, got {type(hosts).__name__}")
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError(f"ops_play_findings: hostvars must be a mapping, got {type(hostvars).__name__}")
    out = []
    for host in hosts:
        found = _host_var(hostvars, host, name)
        if found is None:
            out.append({"host": host, "problem": "did not answer or a check failed (see the error above).",
                        "fix": f"Check SSH access (ansible -m ping {host}) and sudo, then rerun."})
        elif _is_list(found):
            out.extend(found)
        else:
            raise AnsibleFilterError(f"ops_play_findings: {name} of {host} must be a list, got {type(found).__name__}")
    return out


def _host_var(hostvars, host, name):
    """hostvars[host][name], None when the host or the variable is missing."""
    try:
        variables = hostvars[host]
    except KeyError:
        return None
    if not isinstance(variables, Mapping):
        return None
    try:
        value = variables[name]
    except KeyError:
        return None
    return None if isinstance(value, Undefined) else value


class FilterModule:
    """Diagnose findings."""

    def filters(self):
        return {
            "ops_diagnose_findings": ops_diagnose_findings,
            "ops_play_findings": ops_play_findings,
        }
