"""diagnose.yml end to end: tasks/diagnose_findings.yml hands each box's evidence and its Langfuse box's
variables to llmops.devbox.ops_diagnose_findings, and tasks/report_diagnose.yml reports every box.
Each finding and fix text is tested on the filter (tests/unit/plugins/filter/test_ops_diagnose.py)."""

PLAY = """
- name: Findings from given evidence
  hosts: langfuse:devboxes
  gather_facts: false
  vars_files:
    - @ROOT@/playbooks/vars/ops.yml
  tasks:
    - name: Settings of the roles
      ansible.builtin.import_tasks: @ROOT@/playbooks/tasks/role_settings.yml
    - name: Work out findings
      ansible.builtin.include_tasks: @ROOT@/playbooks/tasks/diagnose_findings.yml
      when: inventory_hostname != 'gone'
    - name: Keep them
      ansible.builtin.copy:
        content: "{{ {'findings': _ops_findings, 'checks': _ops_checks} | to_json }}"
        dest: "{{ playbook_dir }}/out-{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
      when: inventory_hostname != 'gone'
    - name: Print the summary
      ansible.builtin.include_tasks: @ROOT@/playbooks/tasks/report_diagnose.yml
      args:
        apply:
          run_once: true
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
gone ansible_connection=local
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


def test_healthy_all_in_one_box_has_no_findings_and_lists_what_passed(harness):
    proc = harness.run(PLAY, ALL_IN_ONE, host_vars={"aio": devbox(path())})
    assert harness.out("out-aio.json") == {"findings": [], "checks": [
        "every service up and healthy (1)",
        "LANGFUSE_HOST http://langfuse-web:3000 (not loopback, as expected)",
        "DNS langfuse-web -> 172.19.0.6",
        "Langfuse health 200 from inside the proxy (version 4.2.0)",
        "key pair accepted by Langfuse",
        "OTLP endpoint accepts exports",
        "Langfuse callback configured (langfuse)",
        "trace check OK: trace abc visible",
    ]}
    assert "aio: trace check OK: trace abc visible" in proc.stdout
    assert "No findings - containers, configuration" in proc.stdout


def test_a_fleet_uses_the_langfuse_box_variables_and_reports_a_box_that_did_not_answer(harness):
    refused = path("http://10.0.0.1:3000", health={"status": -1, "version": "", "error": "ConnectionRefusedError"})
    host_vars = {
        "central": {"langfuse_bind_address": "127.0.0.1", "langfuse_port": 3100, "langfuse_network": "unused",
                    "_ops_langfuse_remote_url": "http://10.0.0.1:3000", "_ops_rows": [dict(GOOD_ROW, host="central")],
                    "ansible_default_ipv4": {"address": "10.0.0.1"}},
        "box": devbox(refused),
    }
    proc = harness.run(PLAY, FLEET, host_vars=host_vars, extra_vars={"diagnose_fail_on_findings": False})
    assert harness.out("out-central.json")["findings"] == [{
        "host": "central",
        "problem": "Langfuse listens on 127.0.0.1:3100 only: the dev boxes on other machines (box, gone) cannot send "
                   "traces to it.",
        "fix": "Set langfuse_bind_address to this box's private address in group_vars/langfuse.yml (its default IPv4 "
               "is 10.0.0.1), allow port 3100 from the dev boxes only (security group), then run site.yml.",
    }]
    box = harness.out("out-box.json")
    assert box["findings"] == [{
        "host": "box", "problem": "Cannot connect from litellm-blue to http://10.0.0.1:3000: ConnectionRefusedError",
        "fix": "Langfuse on central must listen on an address this box reaches (langfuse_bind_address, now 127.0.0.1) "
               "and its security group / firewall must allow port 3000 from box. Test on box: curl "
               "http://10.0.0.1:3000/api/public/health",
    }]
    assert "LANGFUSE_HOST http://10.0.0.1:3000 (not loopback, as expected)" in box["checks"]
    assert "[3] gone: did not answer or a check failed (see the error above)." in proc.stdout
    assert "FIX: Check SSH access (ansible -m ping gone) and sudo, then rerun." in proc.stdout
