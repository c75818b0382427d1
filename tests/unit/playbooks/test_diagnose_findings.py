"""diagnose.yml's findings: from the evidence of each box to the problem and the fix a user reads."""

PLAY = """
- name: Findings from given evidence
  hosts: langfuse:devboxes
  gather_facts: false
  vars_files:
    - @ROOT@/playbooks/vars/ops.yml
  tasks:
    - name: Work out findings
      ansible.builtin.include_tasks: @ROOT@/playbooks/tasks/diagnose_findings.yml
    - name: Keep them
      ansible.builtin.copy:
        content: "{{ {'findings': _ops_findings, 'checks': _ops_checks} | to_json }}"
        dest: "{{ playbook_dir }}/out-{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
"""

ALL_IN_ONE = """
[langfuse]
aio ansible_connection=local

[devboxes]
aio
"""

FLEET = """
[langfuse]
central ansible_connection=local

[devboxes]
box ansible_connection=local
"""

GOOD_ROW = {"host": "aio", "stack": "langfuse", "service": "langfuse-web", "state": "running", "health": "healthy",
            "version": "4.2.0", "listen": "127.0.0.1:3000", "ok": True, "note": ""}


def path(host="http://langfuse-web:3000", **over):
    base = {
        "env": {"LANGFUSE_HOST": "set", "LANGFUSE_PUBLIC_KEY": "set", "LANGFUSE_SECRET_KEY": "set"},
        "langfuse_host": host, "host_is_loopback": False, "public_key_ok": True, "secret_key_ok": True,
        "callbacks": {"callbacks": [], "success_callback": ["langfuse"], "failure_callback": ["langfuse"]},
        "dns": {"name": host.split("//")[1].split(":")[0], "addresses": ["172.19.0.6"], "error": ""},
        "health": {"status": 200, "version": "4.2.0", "error": ""},
        "auth": {"status": 200, "error": ""},
        "otlp": {"status": 200, "error": ""},
    }
    base.update(over)
    return base


def devbox(path_evidence, rows=None, trace_ok=True, log_errors=None):
    return {
        "_ops_rows": rows if rows is not None else [GOOD_ROW],
        "_ops_proxy": {"name": "litellm-blue", "state": "running", "service": "litellm-blue"},
        "_ops_path": path_evidence, "_ops_path_error": "",
        "_ops_log_errors": log_errors or {},
        "_ops_trace": {"ok": trace_ok, "line": "OK: trace abc visible" if trace_ok else "FAILED: not visible in 60 s"},
    }


def findings(harness, inventory, host_vars, host):
    harness.run(PLAY, inventory, host_vars=host_vars)
    return harness.out(f"out-{host}.json")


def problems(result):
    return [f["problem"] for f in result["findings"]]


def test_healthy_all_in_one_box_has_no_findings_and_lists_what_passed(harness):
    out = findings(harness, ALL_IN_ONE, {"aio": devbox(path())}, "aio")
    assert out["findings"] == []
    checks = " | ".join(out["checks"])
    for expected in ("every service up and healthy", "LANGFUSE_HOST http://langfuse-web:3000", "DNS langfuse-web",
                     "health 200", "key pair accepted", "OTLP endpoint", "callback configured", "trace check OK"):
        assert expected in checks


def test_localhost_as_langfuse_host_is_explained_with_the_service_name_fix(harness):
    out = findings(harness, ALL_IN_ONE, {"aio": devbox(path("http://localhost:3000", host_is_loopback=True))}, "aio")
    loopback = [f for f in out["findings"] if "LANGFUSE_HOST is http://localhost:3000" in f["problem"]]
    assert loopback, out
    assert "container itself" in loopback[0]["problem"]
    assert "http://langfuse-web:3000" in loopback[0]["fix"]
    assert "site.yml --tags litellm" in loopback[0]["fix"]


def test_rejected_keys_point_to_recopying_the_key_pair(harness):
    evidence = path(auth={"status": 401, "error": "Unauthorized"})
    out = findings(harness, ALL_IN_ONE, {"aio": devbox(evidence)}, "aio")
    (finding,) = [f for f in out["findings"] if "rejects" in f["problem"]]
    assert "HTTP 401" in finding["problem"]
    assert "api-key.json" in finding["fix"] and "site.yml --tags litellm --limit aio" in finding["fix"]


def test_services_down_give_one_finding_per_stack_with_the_start_command(harness):
    rows = [dict(GOOD_ROW, service=s, state="exited", health="-", ok=False) for s in ("postgres", "langfuse-web")]
    out = findings(harness, ALL_IN_ONE, {"aio": devbox(path(), rows=rows)}, "aio")
    stack = [f for f in out["findings"] if f["problem"].startswith("langfuse not healthy")]
    assert len(stack) == 1
    assert "postgres exited" in stack[0]["problem"] and "langfuse-web exited" in stack[0]["problem"]
    assert "playbooks/start.yml -e stack=langfuse --limit aio" in stack[0]["fix"]


def test_fleet_langfuse_on_loopback_and_unreachable_from_the_dev_box(harness):
    refused = path("http://10.0.0.1:3000", health={"status": -1, "version": "", "error": "ConnectionRefusedError"})
    host_vars = {
        "central": {"langfuse_bind_address": "127.0.0.1", "langfuse_external_url": "http://10.0.0.1:3000",
                    "_ops_langfuse_remote_url": "http://10.0.0.1:3000", "_ops_rows": [dict(GOOD_ROW, host="central")]},
        "box": devbox(refused),
    }
    out = findings(harness, FLEET, host_vars, "box")
    (finding,) = [f for f in out["findings"] if f["problem"].startswith("Cannot connect")]
    assert "http://10.0.0.1:3000" in finding["problem"]
    assert "langfuse_bind_address, now 127.0.0.1" in finding["fix"] and "security group" in finding["fix"]
    # No Langfuse health/auth checks are claimed when the connection failed.
    assert not [c for c in out["checks"] if "key pair accepted" in c]


def test_central_langfuse_on_loopback_is_flagged_on_the_langfuse_box(harness):
    host_vars = {
        "central": {"langfuse_bind_address": "127.0.0.1", "_ops_rows": [dict(GOOD_ROW, host="central")]},
        "box": devbox(path("http://10.0.0.1:3000")),
    }
    out = findings(harness, FLEET, host_vars, "central")
    (finding,) = out["findings"]
    assert "listens on 127.0.0.1:3000 only" in finding["problem"] and "box" in finding["problem"]
    assert "langfuse_bind_address" in finding["fix"]


def test_dev_box_sending_to_another_url_than_its_langfuse_box(harness):
    host_vars = {
        "central": {"langfuse_bind_address": "10.0.0.1", "_ops_langfuse_remote_url": "http://10.0.0.1:3000",
                    "_ops_rows": [dict(GOOD_ROW, host="central")]},
        "box": devbox(path("http://10.0.0.99:3000")),
    }
    out = findings(harness, FLEET, host_vars, "box")
    (finding,) = [f for f in out["findings"] if "sends traces to" in f["problem"]]
    assert "http://10.0.0.99:3000" in finding["problem"] and "http://10.0.0.1:3000" in finding["problem"]
    assert "--limit box,central" in finding["fix"]


def test_export_errors_in_the_proxy_log_are_shown_with_the_failed_trace_check(harness):
    lines = ["05:02:39 - LiteLLM:ERROR: langfuse_sdk.py:739 - Langfuse export to http://x/api/public/otel failed"]
    evidence = devbox(path(), trace_ok=False, log_errors={"litellm-blue": lines})
    out = findings(harness, ALL_IN_ONE, {"aio": evidence}, "aio")
    exported = [f for f in out["findings"] if "failed exports" in f["problem"]]
    assert exported and exported[0]["lines"] == lines
    assert any(f["problem"].startswith("Trace check FAILED") for f in out["findings"])


def test_missing_callback_and_missing_keys(harness):
    evidence = path(callbacks={"callbacks": [], "success_callback": [], "failure_callback": []})
    evidence["env"]["LANGFUSE_SECRET_KEY"] = "empty"  # noqa: S105 - the probe's word for an empty variable
    out = findings(harness, ALL_IN_ONE, {"aio": devbox(evidence)}, "aio")
    text = problems(out)
    assert any("LANGFUSE_SECRET_KEY is empty" in p for p in text)
    assert any("no Langfuse callback" in p for p in text)
