"""port_forward.yml end to end: the boxes' inventory variables reach llmops.devbox.ops_port_forward, the SSH config
is written and the lines printed; port settings that cannot work stop the run before anything is written.
Ports, bind addresses, keys and credential paths are tested on the filter
(tests/unit/plugins/filter/test_ops_port_forward.py)."""

FLEET = """
[langfuse]
central ansible_host=10.0.1.10 langfuse_bind_address=10.0.1.10

[devboxes]
alice ansible_host=10.0.1.21
bob ansible_host=10.0.1.22 ansible_user=ubuntu ansible_port=2222 code_server_port=8443

[all:vars]
ansible_user=admin
ansible_ssh_private_key_file=/keys/devbox.pem
ansible_ssh_common_args=-o ProxyJump=ec2-user@bastion.example.com
"""

def run(harness, inventory, extra=None, check=True):
    (harness.tmp / "play.yml").write_text("")
    extra = dict({"port_forward_file": str(harness.tmp / "ssh_config")}, **(extra or {}))
    play = "- name: Port forwards\n  ansible.builtin.import_playbook: @ROOT@/playbooks/port_forward.yml\n"
    return harness.run(play, inventory, extra_vars=extra, check=check)


def hosts(config):
    """{alias: {keyword: [values]}} from an ssh_config text."""
    out, current = {}, None
    for line in config.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, value = line.split(None, 1)
        if key == "Host":
            current = out.setdefault(value, {})
        else:
            current.setdefault(key, []).append(value)
    return out


def test_fleet_boxes_get_distinct_ports_in_inventory_order(harness):
    proc = run(harness, FLEET)
    cfg = hosts((harness.tmp / "ssh_config").read_text())
    assert list(cfg) == ["llmops-central", "llmops-alice", "llmops-bob"]
    # box 0 runs only Langfuse (bound to its private address: forwarded there, not to loopback)
    assert cfg["llmops-central"]["LocalForward"] == ["127.0.0.1:3000 10.0.1.10:3000"]
    assert cfg["llmops-alice"]["LocalForward"] == ["127.0.0.1:4010 127.0.0.1:4000", "127.0.0.1:8090 127.0.0.1:8080"]
    assert cfg["llmops-bob"]["LocalForward"] == ["127.0.0.1:4020 127.0.0.1:4000", "127.0.0.1:8100 127.0.0.1:8443"]
    assert cfg["llmops-bob"]["User"] == ["ubuntu"] and cfg["llmops-bob"]["Port"] == ["2222"]
    assert cfg["llmops-alice"]["HostName"] == ["10.0.1.21"] and cfg["llmops-alice"]["User"] == ["admin"]
    assert all(c["IdentityFile"] == ["/keys/devbox.pem"] for c in cfg.values())
    assert all(c["ProxyJump"] == ["ec2-user@bastion.example.com"] for c in cfg.values())
    # the printed ssh -L lines match the file
    assert "-p 2222 -L 4020:127.0.0.1:4000 -L 8100:127.0.0.1:8443 ubuntu@10.0.1.22" in proc.stdout


def test_overlapping_ports_are_refused(harness):
    proc = run(harness, FLEET, {"port_forward_base": {"langfuse": 4010, "litellm": 4000, "code_server": 8080}},
               check=False)
    assert proc.returncode != 0
    assert "distinct local ports" in proc.stdout
    assert not (harness.tmp / "ssh_config").exists()
