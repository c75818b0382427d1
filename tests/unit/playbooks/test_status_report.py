"""status.yml's report: one table for all boxes, non-zero exit when something is not healthy."""

PLAY = """
- name: Report given rows
  hosts: all
  gather_facts: false
  vars_files:
    - @ROOT@/playbooks/vars/ops.yml
  tasks:
    - name: Print the table and assert
      ansible.builtin.include_tasks: @ROOT@/playbooks/tasks/report_status.yml
      args:
        apply:
          run_once: true
          delegate_to: localhost
"""
INVENTORY = "[devboxes]\nalice ansible_connection=local\nbob ansible_connection=local\n"


def row(host, service, ok=True, state="running", health="healthy"):
    return {"host": host, "stack": "litellm", "service": service, "state": state, "health": health,
            "version": "main-v1.108.7-stable", "listen": "127.0.0.1:4000", "ok": ok,
            "note": "" if ok else "no container"}


def table(stdout):
    """The table lines of the debug output (JSON result format: one quoted string per line)."""
    lines = [line.strip().rstrip(",").strip('"') for line in stdout.splitlines()]
    return [line for line in lines
            if line.startswith("HOST") or (line.startswith(("alice", "bob")) and "litellm" in line)]


def test_all_healthy_boxes_pass_with_one_table(harness):
    host_vars = {"alice": {"_ops_rows": [row("alice", "litellm-haproxy")]},
                 "bob": {"_ops_rows": [row("bob", "litellm-haproxy")]}}
    proc = harness.run(PLAY, INVENTORY, host_vars=host_vars)
    lines = table(proc.stdout)
    assert lines[0].split() == ["HOST", "STACK", "SERVICE", "STATE", "HEALTH", "VERSION", "LISTENING"]
    assert [line.split()[0] for line in lines[1:]] == ["alice", "bob"]
    assert "All 2 services on 2 box(es) are up and healthy" in proc.stdout


def test_one_unhealthy_service_fails_the_run_and_is_marked(harness):
    host_vars = {"alice": {"_ops_rows": [row("alice", "litellm-haproxy")]},
                 "bob": {"_ops_rows": [row("bob", "litellm-blue", ok=False, state="exited", health="-")]}}
    proc = harness.run(PLAY, INVENTORY, host_vars=host_vars, check=False)
    assert proc.returncode != 0
    marked = [line for line in table(proc.stdout) if "<--" in line]
    assert len(marked) == 1 and marked[0].startswith("bob") and "exited" in marked[0]
    assert "Not healthy: bob/litellm-blue" in proc.stdout
