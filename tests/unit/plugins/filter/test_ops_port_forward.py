"""llmops.devbox.ops_port_forward: distinct local ports per box, SSH settings from the inventory, the
SSH config text and the lines port_forward.yml prints (paths of credentials, never values)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable
from jinja2 import Undefined

from ansible_collections.llmops.devbox.plugins.filter.ops_port_forward import ops_port_forward

CONFIG = "/home/me/.ssh/llmops.conf"
COMMON = {"ansible_user": "admin", "ansible_ssh_private_key_file": "/keys/devbox.pem",
          "ansible_ssh_common_args": "-o ProxyJump=ec2-user@bastion.example.com", "inventory_dir": "/inv"}
FLEET = {
    "central": dict(COMMON, ansible_host="10.0.1.10", langfuse_bind_address="10.0.1.10"),
    "alice": dict(COMMON, ansible_host="10.0.1.21"),
    "bob": dict(COMMON, ansible_host="10.0.1.22", ansible_user="ubuntu", ansible_port=2222, code_server_port=8443),
}


class HostVars(Mapping):
    """Like ansible-core's hostvars of a box: a variable whose template needs missing facts is undefined
    (2.19 hands back an undefined marker, older releases raise)."""

    def __init__(self, variables, unresolved=(), raising=False):
        self._vars, self._unresolved, self._raising = dict(variables), set(unresolved), raising

    def __getitem__(self, name):
        if name in self._unresolved:
            if self._raising:
                raise AnsibleUndefinedVariable("'ansible_default_ipv4' is undefined")
            return Undefined(name="ansible_default_ipv4")
        return self._vars[name]

    def __contains__(self, name):
        return name in self._vars or name in self._unresolved

    def __iter__(self):
        return iter(self._vars)

    def __len__(self):
        return len(self._vars)


def as_list(value):
    return list(value) if isinstance(value, tuple) else value


def forward(hostvars, langfuse=("central",), dev=("alice", "bob"), play=None, **kw):
    return ops_port_forward(hostvars, langfuse_boxes=as_list(langfuse), dev_boxes=as_list(dev),
                            play_boxes=list(hostvars) if play is None else play, config_file=CONFIG, **kw)


def local_forwards(result):
    return {b["box"]: [(f["local"], f["remote"]) for f in b["forwards"]] for b in result["boxes"]}


def test_a_fleet_gets_distinct_ports_in_inventory_order_and_one_config_host_per_box():
    out = forward(FLEET)
    assert out["problem"] == ""
    assert out["config"] == f"""# Written by playbooks/port_forward.yml. Open the tunnels of a box with:
#   ssh -F {CONFIG} -N llmops-<box>
# or add "Include {CONFIG}" at the top of ~/.ssh/config.

Host llmops-central
  HostName 10.0.1.10
  User admin
  Port 22
  IdentityFile /keys/devbox.pem
  IdentitiesOnly yes
  ProxyJump ec2-user@bastion.example.com
  ExitOnForwardFailure yes
  ServerAliveInterval 30
  # Langfuse: http://localhost:3000
  LocalForward 127.0.0.1:3000 10.0.1.10:3000

Host llmops-alice
  HostName 10.0.1.21
  User admin
  Port 22
  IdentityFile /keys/devbox.pem
  IdentitiesOnly yes
  ProxyJump ec2-user@bastion.example.com
  ExitOnForwardFailure yes
  ServerAliveInterval 30
  # LiteLLM: http://localhost:4010
  LocalForward 127.0.0.1:4010 127.0.0.1:4000
  # code-server: http://localhost:8090
  LocalForward 127.0.0.1:8090 127.0.0.1:8080

Host llmops-bob
  HostName 10.0.1.22
  User ubuntu
  Port 2222
  IdentityFile /keys/devbox.pem
  IdentitiesOnly yes
  ProxyJump ec2-user@bastion.example.com
  ExitOnForwardFailure yes
  ServerAliveInterval 30
  # LiteLLM: http://localhost:4020
  LocalForward 127.0.0.1:4020 127.0.0.1:4000
  # code-server: http://localhost:8100
  LocalForward 127.0.0.1:8100 127.0.0.1:8443
"""


def test_the_printed_lines_match_the_config_and_name_credential_files_only():
    assert forward(FLEET)["lines"] == [
        f"SSH config written to {CONFIG} (ssh -F {CONFIG} -N llmops-<box>). Or, per box:",
        "",
        "== central ==",
        "ssh -N -i /keys/devbox.pem -J ec2-user@bastion.example.com -L 3000:10.0.1.10:3000 admin@10.0.1.10",
        "  Langfuse     http://localhost:3000  user admin@example.com, password: key admin_password in "
        "/etc/langfuse/secrets.json; project API keys: /etc/langfuse/api-key.json",
        f"  read a credential on the box: ssh -F {CONFIG} llmops-central sudo cat <file>",
        "",
        "== alice ==",
        "ssh -N -i /keys/devbox.pem -J ec2-user@bastion.example.com -L 4010:127.0.0.1:4000 -L 8090:127.0.0.1:8080 "
        "admin@10.0.1.21",
        "  LiteLLM      http://localhost:4010  API key (Bearer): /etc/litellm/master_key",
        "  code-server  http://localhost:8090  password: ~admin/.config/code-server/config.yaml (password:), generated "
        "one also in ~admin/.config/code-server/generated-password",
        f"  read a credential on the box: ssh -F {CONFIG} llmops-alice sudo cat <file>",
        "",
        "== bob ==",
        "ssh -N -i /keys/devbox.pem -J ec2-user@bastion.example.com -p 2222 -L 4020:127.0.0.1:4000 "
        "-L 8100:127.0.0.1:8443 ubuntu@10.0.1.22",
        "  LiteLLM      http://localhost:4020  API key (Bearer): /etc/litellm/master_key",
        "  code-server  http://localhost:8100  password: ~admin/.config/code-server/config.yaml (password:), generated "
        "one also in ~admin/.config/code-server/generated-password",
        f"  read a credential on the box: ssh -F {CONFIG} llmops-bob sudo cat <file>",
    ]


def test_an_all_in_one_box_forwards_all_three_services_with_the_sign_in_hint_only_when_needed():
    box = {"ansible_host": "203.0.113.10", "inventory_dir": "/inv"}
    out = forward({"devbox1": box}, langfuse=["devbox1"], dev=["devbox1"])
    assert local_forwards(out) == {"devbox1": [(3000, "127.0.0.1:3000"), (4000, "127.0.0.1:4000"),
                                               (8080, "127.0.0.1:8080")]}
    assert not [line for line in out["lines"] if "sign-in redirects" in line]
    moved = forward({"devbox1": box}, langfuse=["devbox1"], dev=["devbox1"], base={"langfuse": 3100})
    assert moved["lines"][5] == ("               (sign-in redirects to http://localhost:3000 = langfuse_nextauth_url: "
                                 "forward to that local port, or change it)")


@pytest.mark.parametrize("nextauth, hint", [("http://localhost:3000", False), ("https://lf.example.com", True),
                                            ("http://localhost", True), ("http://localhost:bad", True)])
def test_the_sign_in_hint_compares_the_port_of_langfuse_nextauth_url(nextauth, hint):
    out = forward({"central": {"langfuse_nextauth_url": nextauth}}, dev=())
    assert any(f"(sign-in redirects to {nextauth} =" in line for line in out["lines"]) is hint


def test_a_box_keeps_its_ports_under_limit():
    out = forward(FLEET, play=["bob"])
    assert local_forwards(out) == {"bob": [(4020, "127.0.0.1:4000"), (8100, "127.0.0.1:8443")]}
    assert "Host llmops-central" not in out["config"] and "Host llmops-bob" in out["config"]


def test_a_langfuse_box_that_is_also_a_dev_box_is_numbered_once():
    hostvars = {"lf": {}, "d1": {}, "d2": {}}
    out = forward(hostvars, langfuse=["lf"], dev=["d1", "lf", "d2"])
    assert [b["box"] for b in out["boxes"]] == ["lf", "d1", "d2"]
    assert local_forwards(out) == {"lf": [(3000, "127.0.0.1:3000"), (4000, "127.0.0.1:4000"), (8080, "127.0.0.1:8080")],
                                   "d1": [(4010, "127.0.0.1:4000"), (8090, "127.0.0.1:8080")],
                                   "d2": [(4020, "127.0.0.1:4000"), (8100, "127.0.0.1:8080")]}


def test_bases_and_step_are_configurable_and_taken_as_numbers():
    out = forward(FLEET, base={"langfuse": "13000", "litellm": 14000, "code_server": 18000}, step="100")
    assert local_forwards(out) == {"central": [(13000, "10.0.1.10:3000")],
                                   "alice": [(14100, "127.0.0.1:4000"), (18100, "127.0.0.1:8080")],
                                   "bob": [(14200, "127.0.0.1:4000"), (18200, "127.0.0.1:8443")]}
    assert out["problem"] == ""


@pytest.mark.parametrize("base, step, shown", [
    # Langfuse of box 1 would be 4010, alice's LiteLLM port.
    ({"langfuse": 4010}, 10, "{'langfuse': 4010, 'litellm': 4000, 'code_server': 8080} and step 10"),
    ({"langfus": 1}, 10, "{'langfuse': 3000, 'litellm': 4000, 'code_server': 8080, 'langfus': 1} and step 10"),
    ({}, 0, "{'langfuse': 3000, 'litellm': 4000, 'code_server': 8080} and step 0"),
    ({}, -10, "{'langfuse': 3000, 'litellm': 4000, 'code_server': 8080} and step -10"),
    ({"code_server": 65530}, 10, "{'langfuse': 3000, 'litellm': 4000, 'code_server': 65530} and step 10"),
])
def test_port_settings_that_cannot_work_are_explained(base, step, shown):
    hostvars = dict(FLEET, extra={})
    out = forward(hostvars, dev=["alice", "bob", "extra"], play=["central", "alice", "bob"], base=base, step=step)
    assert out["problem"] == (
        "port_forward_base (keys langfuse, litellm, code_server) and port_forward_step must give every box distinct "
        f"local ports below 65536: now {shown} for 4 boxes. Spread the bases further apart than step * number of "
        "boxes.")


@pytest.mark.parametrize("step", [0, -1])
def test_a_step_below_one_is_refused_even_for_a_single_box(step):
    out = forward({"alice": {}}, langfuse=(), dev=["alice"], step=step)
    assert local_forwards(out) == {"alice": [(4000, "127.0.0.1:4000"), (8080, "127.0.0.1:8080")]}
    assert out["problem"].endswith(f"and step {step} for 1 boxes. Spread the bases further apart than step * number of "
                                   "boxes.")


def test_ports_of_boxes_outside_the_run_do_not_collide():
    # central would take 4000 for Langfuse, alice's LiteLLM port is 4010: only bob runs.
    out = forward(FLEET, play=["bob"], base={"langfuse": 4010})
    assert out["problem"] == ""


@pytest.mark.parametrize("bind, remote", [
    ("10.0.1.10", "10.0.1.10:3100"), ("0.0.0.0", "127.0.0.1:3100"), ("::", "[::1]:3100"),  # noqa: S104
    ("", "127.0.0.1:3100"), (None, "127.0.0.1:3100"),
])
def test_langfuse_is_forwarded_to_its_bind_address_or_loopback(bind, remote):
    out = forward({"central": {"langfuse_bind_address": bind, "langfuse_port": 3100, "ansible_host": "10.9.9.9"}},
                  dev=())
    assert local_forwards(out) == {"central": [(3000, remote)]}


@pytest.mark.parametrize("raising", [False, True])
def test_a_bind_address_that_needs_missing_facts_falls_back_to_the_ssh_address(raising):
    central = HostVars({"ansible_host": "192.0.2.10"}, unresolved=["langfuse_bind_address"], raising=raising)
    assert local_forwards(forward({"central": central}, dev=()))["central"] == [(3000, "192.0.2.10:3000")]
    bare = HostVars({}, unresolved=["langfuse_bind_address"], raising=raising)
    out = forward({"central": bare}, dev=())
    assert local_forwards(out)["central"] == [(3000, "127.0.0.1:3000")]
    assert "HostName central" in out["config"]


def test_no_bind_address_means_loopback_not_the_ssh_address():
    assert local_forwards(forward({"central": {"ansible_host": "192.0.2.10"}}, dev=()))["central"] == [
        (3000, "127.0.0.1:3000")]


@pytest.mark.parametrize("bind, remote", [("::", "[::1]:8443"), ("10.1.1.1", "10.1.1.1:8443"),  # noqa: S104
                                          ("", "127.0.0.1:8443")])
def test_code_server_is_forwarded_to_its_bind_address_or_loopback(bind, remote):
    out = forward({"alice": {"code_server_bind_address": bind, "code_server_port": 8443, "litellm_port": 4444}},
                  langfuse=())
    assert local_forwards(out) == {"alice": [(4000, "127.0.0.1:4444"), (8080, remote)]}


@pytest.mark.parametrize("variables, key", [
    ({"ansible_ssh_private_key_file": "/keys/a.pem"}, "/keys/a.pem"),
    ({"ansible_ssh_private_key_file": "~/.ssh/a"}, "~/.ssh/a"),
    ({"ansible_ssh_private_key_file": "keys/a.pem", "inventory_dir": "/inv"}, "/inv/keys/a.pem"),
    ({"ansible_private_key_file": "keys/b.pem", "inventory_dir": "/inv"}, "/inv/keys/b.pem"),
    ({"ansible_ssh_private_key_file": "/keys/a.pem", "ansible_private_key_file": "/keys/b.pem"}, "/keys/a.pem"),
    ({}, ""),
])
def test_the_private_key_file(variables, key):
    (box,) = forward({"alice": variables}, langfuse=())["boxes"]
    assert box["key"] == key
    assert ("IdentitiesOnly yes" in forward({"alice": variables}, langfuse=())["config"]) is bool(key)


@pytest.mark.parametrize("args, jump", [
    ("-o ProxyJump=ec2-user@bastion.example.com", "ec2-user@bastion.example.com"),
    ("-o ConnectTimeout=2 -o ProxyJump  jump.example -o X=1", "jump.example"),
    ("-o ProxyCommand='ssh -W %h:%p bastion'", ""),
    ("", ""),
])
def test_a_proxy_jump_in_the_ssh_arguments(args, jump):
    (box,) = forward({"alice": {"ansible_ssh_common_args": args}}, langfuse=())["boxes"]
    assert box["jump"] == jump


def test_user_and_port_come_from_the_inventory_with_ssh_defaults():
    hostvars = {"a": {"ansible_user": "u", "ansible_ssh_user": "v", "ansible_port": "22"},
                "b": {"ansible_ssh_user": "v", "ansible_port": 2200}, "c": {}}
    out = forward(hostvars, langfuse=(), dev=["a", "b", "c"])
    assert [(b["user"], b["port"], b["host"]) for b in out["boxes"]] == [("u", "22", "a"), ("v", 2200, "b"),
                                                                           ("", 22, "c")]
    assert [line for line in out["lines"] if line.startswith("ssh ")] == [
        "ssh -N -L 4000:127.0.0.1:4000 -L 8080:127.0.0.1:8080 u@a",
        "ssh -N -p 2200 -L 4010:127.0.0.1:4000 -L 8090:127.0.0.1:8080 v@b",
        "ssh -N -L 4020:127.0.0.1:4000 -L 8100:127.0.0.1:8080 c",
    ]
    assert "  Port 22\n" in out["config"] and "User" not in out["config"].split("Host llmops-c")[1]


def test_credential_folders_and_users_come_from_the_inventory():
    hostvars = {"box": {"langfuse_secrets_dir": "/srv/lf", "litellm_secrets_dir": "/srv/ll", "code_server_user": "dev",
                        "langfuse_admin_email": "ops@example.com", "langfuse_port": 3100,
                        "langfuse_nextauth_url": "http://localhost:3000"}}
    lines = forward(hostvars, langfuse=["box"], dev=["box"])["lines"]
    assert lines[4:8] == [
        "  Langfuse     http://localhost:3000  user ops@example.com, password: key admin_password in "
        "/srv/lf/secrets.json; project API keys: /srv/lf/api-key.json",
        "  LiteLLM      http://localhost:4000  API key (Bearer): /srv/ll/master_key",
        "  code-server  http://localhost:8080  password: ~dev/.config/code-server/config.yaml (password:), generated "
        "one also in ~dev/.config/code-server/generated-password",
        f"  read a credential on the box: ssh -F {CONFIG} llmops-box sudo cat <file>",
    ]


def test_no_box_gives_the_header_only():
    out = forward({}, langfuse=(), dev=())
    assert out == {"boxes": [], "problem": "", "lines": [
        f"SSH config written to {CONFIG} (ssh -F {CONFIG} -N llmops-<box>). Or, per box:"],
        "config": f"""# Written by playbooks/port_forward.yml. Open the tunnels of a box with:
#   ssh -F {CONFIG} -N llmops-<box>
# or add "Include {CONFIG}" at the top of ~/.ssh/config.
"""}


@pytest.mark.parametrize("hostvars, kw, message", [
    ([], {}, "the input must map each box to its variables"),
    ({}, {"langfuse": "central"}, "langfuse_boxes must be a list"),
    ({}, {"play": "central"}, "play_boxes must be a list"),
    ({}, {"base": [3000]}, "base \\(port_forward_base\\) must be a mapping"),
    ({}, {"base": {"litellm": "4k"}}, "port_forward_base.litellm must be an integer, got '4k'"),
    ({}, {"step": "ten"}, "port_forward_step must be an integer, got 'ten'"),
    ({}, {"step": True}, "port_forward_step must be an integer, got True"),
    ({"alice": {"ansible_port": "ssh"}}, {"langfuse": ()}, "ansible_port of alice must be an integer"),
    ({}, {"play": ["alice"], "langfuse": ()}, "no variables for box 'alice'"),
])
def test_wrong_shapes_are_refused(hostvars, kw, message):
    with pytest.raises(AnsibleFilterError, match=message):
        forward(hostvars, **kw)


DEMO = {"ansible_host": "172.17.0.2", "ansible_user": "admin", "ansible_ssh_private_key_file": "/k/id_ed25519",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}


def test_the_ssh_options_ansible_uses_go_into_the_config_and_the_lines():
    """make demo's target has a new host key on each start: the config connects the way Ansible does."""
    out = forward({"llmops-demo": DEMO}, langfuse=("llmops-demo",), dev=("llmops-demo",))
    (box,) = out["boxes"]
    assert box["options"] == [("StrictHostKeyChecking", "no"), ("UserKnownHostsFile", "/dev/null")]
    assert "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n" in out["config"]
    assert " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -L " in "\n".join(out["lines"])


@pytest.mark.parametrize("args, options", [
    ("-o ProxyCommand='ssh -W %h:%p bastion' -oConnectTimeout=5", [("ProxyCommand", "ssh -W %h:%p bastion"),
                                                                   ("ConnectTimeout", "5")]),
    ("-o ProxyJump=jump.example", []),  # written as ProxyJump on its own
    ("-C -v", []),
    ("", []),
])
def test_ssh_options_are_read_in_both_spellings(args, options):
    (box,) = forward({"alice": {"ansible_ssh_common_args": args}}, langfuse=())["boxes"]
    assert box["options"] == options


def test_a_box_already_named_llmops_is_not_prefixed_twice():
    out = forward({"llmops-demo": DEMO, "alice": {}}, langfuse=("llmops-demo",), dev=("llmops-demo", "alice"))
    assert [b["alias"] for b in out["boxes"]] == ["llmops-demo", "llmops-alice"]
    assert f"ssh -F {CONFIG} llmops-demo sudo cat <file>" in "\n".join(out["lines"])
    assert "llmops-llmops" not in out["config"] + "\n".join(out["lines"])


def test_ssh_reads_the_written_config(tmp_path):
    """OpenSSH's own parser (ssh -G) takes the config as written, with the options and forwards."""
    import subprocess
    config = tmp_path / "ssh_config"
    config.write_text(forward({"llmops-demo": DEMO}, langfuse=("llmops-demo",), dev=("llmops-demo",))["config"])
    shown = subprocess.run(["ssh", "-G", "-F", str(config), "llmops-demo"], capture_output=True, text=True,
                           check=True).stdout.lower()
    assert "hostname 172.17.0.2" in shown and "stricthostkeychecking false" in shown
    assert "userknownhostsfile /dev/null" in shown and "localforward [127.0.0.1]:3000 [127.0.0.1]:3000" in shown
