"""logs.yml / diagnose.yml masking end to end: tasks/secret_values.yml reads every secret kept on the box and
llmops.devbox.ops_redact masks them and the token/password shapes of vars/ops.yml. The shapes and escapes are
tested on the filter (tests/unit/plugins/filter/test_ops_redact.py)."""

import json

PLAY = """
- name: Mask a text
  hosts: all
  gather_facts: false
  vars_files:
    - @ROOT@/playbooks/vars/ops.yml
  tasks:
    - name: Settings of the roles
      ansible.builtin.import_tasks: @ROOT@/playbooks/tasks/role_settings.yml
    - name: Read the secret values of this box
      ansible.builtin.include_tasks: @ROOT@/playbooks/tasks/secret_values.yml
    - name: Write the masked text
      ansible.builtin.copy:
        content: "{{ _ops_text | llmops.devbox.ops_redact(_ops_secret_values | default([]), _ops_redact_patterns) }}"
        dest: "{{ playbook_dir }}/masked.txt"
        mode: "0600"
      vars:
        _ops_text: "{{ lookup('ansible.builtin.file', playbook_dir ~ '/raw.txt') }}"
"""

SECRETS = {
    "salt": "Zq8sUu1jvN0Yk3mWc6bA2tRe",
    "encryption_key": "0f" * 32,
    "admin_password": "Pw5xQ9zT2kLm7Nb",
    "redis_password": "Rd7hG2fK9sPq1Wz",
}
KEYS = {"public_key": "pk-lf-11111111-2222-3333-4444-555555555555",
        "secret_key": "sk-lf-99999999-8888-7777-6666-555555555555"}
MASTER = "sk-" + "ab12" * 16


def test_secret_values_and_token_shapes_are_masked(harness):
    box = harness.tmp / "box"
    (box / "langfuse").mkdir(parents=True)
    (box / "litellm").mkdir()
    (box / "langfuse" / "secrets.json").write_text(json.dumps(SECRETS))
    (box / "langfuse" / "api-key.json").write_text(json.dumps(KEYS))
    (box / "litellm" / "master_key").write_text(MASTER)
    (box / "litellm" / "litellm.env").write_text(
        "LANGFUSE_HOST=http://langfuse-web:3000\nAWS_SECRET_ACCESS_KEY='aws/Secret+Value0123456789'\n")
    raw = "\n".join([
        f"worker: redis auth {SECRETS['redis_password']} rejected",                      # bare value
        f"decrypt with {SECRETS['encryption_key']}",
        f"login admin / {SECRETS['admin_password']}",
        f"export to langfuse with {KEYS['public_key']}:{KEYS['secret_key']}",
        f"proxy: Authorization: Bearer {MASTER}",
        "boto: using aws/Secret+Value0123456789",
        "DATABASE_URL=postgresql://postgres:not-in-any-file-1@postgres:5432/postgres",   # shape only
        "client said: api_key=sk-someone-elses-key-123456",
        "INFO GET /health/liveliness 200 OK",
    ])
    (harness.tmp / "raw.txt").write_text(raw)
    host_vars = {"box": {"ansible_connection": "local", "langfuse_secrets_dir": str(box / "langfuse"),
                         "litellm_secrets_dir": str(box / "litellm"), "litellm_project_dir": str(box / "litellm")}}
    proc = harness.run(PLAY, "[devboxes]\nbox\n", host_vars=host_vars)
    masked = (harness.tmp / "masked.txt").read_text()
    for secret in [*SECRETS.values(), KEYS["secret_key"], MASTER, "aws/Secret+Value0123456789",
                   "not-in-any-file-1", "sk-someone-elses-key-123456"]:
        assert secret not in masked, secret
        assert secret not in proc.stdout, secret
    # What helps debugging stays: the public key, URLs, the line structure.
    assert KEYS["public_key"] in masked
    assert "postgresql://postgres:********@postgres:5432/postgres" in masked
    assert masked.splitlines()[-1] == "INFO GET /health/liveliness 200 OK"
    assert len(masked.splitlines()) == len(raw.splitlines())
