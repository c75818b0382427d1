"""status.yml end to end: tasks/probe.yml's results become rows (llmops.devbox.ops_status_rows), the rows of
every box one table (ops_play_rows, ops_status_table), and the run fails when something is not healthy.
The branches of the rows and the table are tested on the filters (tests/unit/plugins/filter/test_ops_status.py)."""

import json

PLAY = """
- name: Report given rows
  hosts: all
  gather_facts: false
  vars_files:
    - @ROOT@/playbooks/vars/ops.yml
  tasks:
    - name: Settings of the roles
      ansible.builtin.import_tasks: @ROOT@/playbooks/tasks/role_settings.yml
    - name: Print the table and assert
      ansible.builtin.include_tasks: @ROOT@/playbooks/tasks/report_status.yml
      args:
        apply:
          run_once: true
          delegate_to: localhost
"""
INVENTORY = "[devboxes]\nalice ansible_connection=local\nbob ansible_connection=local\ncarol ansible_connection=local\n"
FMT = "%-20s %-12s %-24s %-11s %-9s %-28s %s"


def row(host, service, ok=True, state="running", health="healthy"):
    return {"host": host, "stack": "litellm", "service": service, "state": state, "health": health,
            "version": "main-v1.108.7-stable", "listen": "127.0.0.1:4000", "ok": ok,
            "note": "" if ok else "no container"}


def table(stdout):
    """The table lines of the debug output (JSON result format: one quoted string per line)."""
    lines = [line.strip().rstrip(",").strip('"') for line in stdout.splitlines()]
    return [line for line in lines if line.startswith("HOST ")
            or line.startswith(("alice ", "bob ", "carol ", "box ")) and ": ok=" not in line]


def test_all_healthy_boxes_pass_with_one_table(harness):
    host_vars = {"alice": {"_ops_rows": [row("alice", "litellm-haproxy")]},
                 "bob": {"_ops_rows": [row("bob", "litellm-haproxy")]},
                 "carol": {"_ops_rows": []}}
    proc = harness.run(PLAY, INVENTORY, host_vars=host_vars)
    lines = table(proc.stdout)
    assert lines[0].split() == ["HOST", "STACK", "SERVICE", "STATE", "HEALTH", "VERSION", "LISTENING"]
    assert [line.split()[0] for line in lines[1:]] == ["alice", "bob"]
    assert "All 2 services on 3 box(es) are up and healthy" in proc.stdout


def test_an_unhealthy_service_and_a_box_that_did_not_answer_fail_the_run_and_are_marked(harness):
    host_vars = {"alice": {"_ops_rows": [row("alice", "litellm-haproxy")]},
                 "bob": {"_ops_rows": [row("bob", "litellm-blue", ok=False, state="exited", health="-")]}}
    proc = harness.run(PLAY, INVENTORY, host_vars=host_vars, check=False)
    assert proc.returncode != 0
    assert [line for line in table(proc.stdout) if "<--" in line] == [
        FMT % ("bob", "litellm", "litellm-blue", "exited", "-", "main-v1.108.7-stable", "127.0.0.1:4000")
        + "   <-- no container",
        FMT % ("carol", "-", "-", "no answer", "-", "-", "-") + "   <-- unreachable or failed: see the error above"]
    assert "Not healthy: bob/litellm-blue, carol/-." in proc.stdout


PROBE_PLAY = """
- name: Probe a box whose docker CLI is a stand-in, then report
  hosts: all
  gather_facts: false
  vars_files:
    - @ROOT@/playbooks/vars/ops.yml
  environment:
    PATH: "{{ playbook_dir }}/bin:/usr/local/bin:/usr/bin:/bin"
  tasks:
    - name: Settings of the roles
      ansible.builtin.import_tasks: @ROOT@/playbooks/tasks/role_settings.yml
    - name: Look at the services
      ansible.builtin.include_tasks: @ROOT@/playbooks/tasks/probe.yml
    - name: Print the table and assert
      ansible.builtin.include_tasks: @ROOT@/playbooks/tasks/report_status.yml
      args:
        apply:
          run_once: true
          delegate_to: localhost
"""
CONTAINERS = [
    {"project": "langfuse", "service": "langfuse-web", "name": "langfuse-langfuse-web-1",
     "image": "langfuse/langfuse:3", "state": "running", "status": "Up 2 hours (healthy)",
     "ports": "127.0.0.1:3000->3000/tcp"},
    {"project": "langfuse", "service": "postgres", "name": "langfuse-postgres-1", "image": "postgres:17",
     "state": "exited", "status": "Exited (1) 2 minutes ago", "ports": ""},
    {"project": "litellm", "service": "litellm-haproxy", "name": "litellm-haproxy", "image": "haproxy:3.0.11",
     "state": "running", "status": "Up 1 hour", "ports": "127.0.0.1:4000->4000/tcp"},
    {"project": "litellm", "service": "litellm-blue", "name": "litellm-blue",
     "image": "ghcr.io/berriai/litellm-database:main-v1.108.7-stable", "state": "running",
     "status": "Up 1 hour (healthy)", "ports": ""},
]


def test_probe_results_become_rows_and_the_table(harness):
    """tasks/probe.yml with a stand-in docker CLI; the health endpoints do not answer (port 9 is closed)."""
    bin_dir = harness.tmp / "bin"
    bin_dir.mkdir()
    ps_lines = " ".join(f"'{json.dumps(c)}'" for c in CONTAINERS)
    (bin_dir / "docker").write_text(
        "#!/bin/sh\n"
        'case "$1 $3" in\n'
        f"  'ps '*) printf '%s\\n' {ps_lines} ;;\n"
        "  'compose '*/langfuse) printf 'langfuse-web\\npostgres\\nclickhouse\\n' ;;\n"
        "  'compose '*/litellm) printf 'litellm-haproxy\\nlitellm-blue\\nlitellm-green\\n' ;;\n"
        "  *) exit 1 ;;\n"
        "esac\n")
    (bin_dir / "docker").chmod(0o755)
    for stack in ("langfuse", "litellm"):
        (harness.tmp / stack).mkdir()
    (harness.tmp / "litellm" / "serving").write_text("litellm-blue:stamp\n")
    host_vars = {"box": {"ansible_connection": "local", "langfuse_project_dir": str(harness.tmp / "langfuse"),
                         "litellm_project_dir": str(harness.tmp / "litellm"), "langfuse_port": 9, "litellm_port": 9,
                         "code_server_port": 9}}
    proc = harness.run(PROBE_PLAY, "[langfuse]\nbox\n[devboxes]\nbox\n", host_vars=host_vars, check=False)
    assert proc.returncode != 0
    lines = table(proc.stdout)
    refused = lines[4].split("   <-- ")[1]  # what ansible.builtin.uri said, cut to 80 characters
    assert refused
    assert lines[1:9] == [
        FMT % ("box", "langfuse", "langfuse-web", "running", "healthy", "3", "127.0.0.1:3000"),
        FMT % ("box", "langfuse", "postgres", "exited", "-", "17", "-") + "   <-- NOT OK",
        FMT % ("box", "langfuse", "clickhouse", "missing", "-", "-", "-") + "   <-- no container",
        FMT % ("box", "langfuse", "GET /api/public/health", "HTTP -1", "failing", "-", "http://127.0.0.1:9")
        + "   <-- " + refused,
        FMT % ("box", "litellm", "litellm-haproxy", "running", "-", "3.0.11", "127.0.0.1:4000"),
        FMT % ("box", "litellm", "litellm-blue (serving)", "running", "healthy", "main-v1.108.7-stable", "-"),
        FMT % ("box", "litellm", "litellm-green (idle)", "not created", "-", "-", "-"),
        FMT % ("box", "litellm", "GET /health/readiness", "HTTP -1", "failing", "-", "http://127.0.0.1:9")
        + "   <-- " + refused,
    ]
    assert lines[9].split()[:3] == ["box", "code_server", "code-server@admin"]
    assert "Not healthy: box/postgres, box/clickhouse, box/GET /api/public/health, box/GET /health/readiness" \
        in proc.stdout
