"""Render tests of the litellm role: the files database mode deploys (it cannot run on machines that
cannot download Prisma's engines), the live-test mode, central Langfuse, and the preflight refusals.

One ansible-playbook run renders compose.yml, litellm.env, postgres.env and litellm_config.yml with
Ansible's own templating for made-up hosts. Expected values are spelled out here on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
ROLE = ROOT / "roles" / "litellm"
MASTER = "sk-" + "1f" * 32
SALT = "sk-" + "2e" * 32
PGPASS = "PgPassw0rdPgPassw0rdPgPassw0rd12"
CONNECTION_KEY = "sk-" + "3d" * 32
PK, SK = "pk-lf-render", "sk-lf-render"
MOCK_MODELS = [{"model_name": "mock-a",
                "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "fake", "mock_response": "hi"}}]

CASES = {
    # Real-box defaults: database mode, Langfuse on the same box.
    "db_mode": {},
    # What the live tests run: no database, mock models, offline cost map.
    "no_db": {"litellm_database_enabled": False, "litellm_model_list": MOCK_MODELS, "litellm_fallbacks": [],
              "litellm_local_model_cost_map": True},
    # Central Langfuse reached by URL, no shared network, OTel callback, extras and extra env.
    "central": {"litellm_langfuse_host": "https://langfuse.example.com", "litellm_langfuse_network": "",
                "litellm_langfuse_callback": "langfuse_otel", "litellm_port": 4400,
                "litellm_litellm_settings_extra": {"drop_params": True, "num_retries": 5},
                "litellm_general_settings_extra": {"proxy_batch_write_at": 60},
                "litellm_extra_env": {"AWS_PROFILE": "bedrock"}},
    "no_langfuse": {"litellm_langfuse_enabled": False, "litellm_database_enabled": False},
}
# Expected to be refused by the preflight, with a word the message must contain.
REFUSALS = {
    "localhost_host": ({"litellm_langfuse_host": "http://localhost:3000"}, "inside its\ncontainer"),
    "loopback_ip": ({"litellm_langfuse_host": "http://127.0.0.1:3000"}, "localhost / 127.0.0.1"),
    # Other spellings of the container itself: case, IPv6, the rest of 127/8, the any address.
    "localhost_upper_case": ({"litellm_langfuse_host": "http://LOCALHOST:3000"}, "localhost / 127.0.0.1"),
    "loopback_ipv6": ({"litellm_langfuse_host": "http://[::1]:3000"}, "localhost / 127.0.0.1"),
    "loopback_ip_127_0_0_2": ({"litellm_langfuse_host": "http://127.0.0.2:3000"}, "localhost / 127.0.0.1"),
    "any_address": ({"litellm_langfuse_host": "http://0.0.0.0:3000"}, "localhost / 127.0.0.1"),
    "no_keys": ({"litellm_langfuse_public_key": ""}, "pk-lf-"),
    "latest_image": ({"litellm_image": "ghcr.io/berriai/litellm-database:latest"}, "exact tag"),
    "model_without_model": ({"litellm_model_list": [{"model_name": "x", "litellm_params": {}}]},
                            "litellm_params.model"),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    base = {**defaults, "litellm_langfuse_public_key": PK, "litellm_langfuse_secret_key": SK,
            "_litellm_secrets": {"master_key": MASTER, "salt_key": SALT, "postgres_password": PGPASS,
                                 "connection_key": CONNECTION_KEY},
            "role_path": str(ROLE), "out_dir": str(out), "ansible_python_interpreter": sys.executable}
    hosts = {name: {**base, **case} for name, case in CASES.items()}
    refusals = {name: {**base, **case} for name, (case, _) in REFUSALS.items()}
    inventory = {"all": {"hosts": hosts, "children": {"preflight": {"hosts": refusals}}}}
    inv = out / "inventory.json"
    inv.write_text(json.dumps(inventory))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv), str(HERE / "render_playbook.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json",
             "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(out)},
    )
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    return out, report


def files(rendered, case):
    out, report = rendered
    d = out / case
    assert (d / "compose.yml").exists(), json.dumps(report["stats"])
    env = dict(line.split("=", 1) for line in (d / "litellm.env").read_text().splitlines()
               if line and not line.startswith("#"))
    return (yaml.safe_load((d / "compose.yml").read_text()), env,
            yaml.safe_load((d / "litellm_config.yml").read_text()), (d / "litellm_config.yml").read_text(),
            (d / "postgres.env").read_text())


def test_db_mode_compose(rendered):
    compose, _, _, _, _ = files(rendered, "db_mode")
    assert compose["name"] == "litellm"
    services = compose["services"]
    assert set(services) == {"litellm-haproxy", "litellm-blue", "litellm-green", "litellm-postgres"}
    assert services["litellm-postgres"]["image"] == "postgres:17.7"
    assert services["litellm-postgres"]["volumes"] == ["postgres:/var/lib/postgresql/data"]
    assert "pg_isready -h 127.0.0.1 -U litellm -d litellm" in services["litellm-postgres"]["healthcheck"]["test"][1]
    for slot in ("blue", "green"):
        svc = services[f"litellm-{slot}"]
        assert svc["image"] == "ghcr.io/berriai/litellm-database:main-v1.108.7-stable"
        assert svc["command"][:2] == ["--config", f"/app/config/{slot}.yaml"]
        assert svc["depends_on"] == {"litellm-postgres": {"condition": "service_healthy"}}
        assert set(svc["networks"]) == {"default", "langfuse"}
        assert "ports" not in svc  # only HAProxy is published
        assert "/health/liveliness" in svc["healthcheck"]["test"][-1]
        # A stop (push, lifecycle) never cuts a stream LiteLLM would still serve.
        assert int(svc["stop_grace_period"].rstrip("s")) >= 600
        assert svc["init"] is True  # a SIGTERM while LiteLLM starts must not be dropped (PID 1)
    haproxy = services["litellm-haproxy"]
    assert haproxy["image"] == "haproxy:3.0.11"  # its own image: a LiteLLM bump never recreates it
    assert haproxy["ports"] == ["127.0.0.1:4000:4000", "127.0.0.1:8404:8404"]
    assert haproxy["volumes"] == ["./haproxy/conf:/usr/local/etc/haproxy:ro", "./haproxy/run:/var/run/haproxy"]
    assert haproxy["networks"]["default"]["aliases"] == ["litellm"]
    assert compose["networks"]["langfuse"] == {"external": True, "name": "langfuse_default"}
    assert "postgres" in compose["volumes"]


def test_db_mode_env_and_config(rendered):
    _, env, config, raw, pg_env = files(rendered, "db_mode")
    assert env["DATABASE_URL"] == f"postgresql://litellm:{PGPASS}@litellm-postgres:5432/litellm"
    assert env["LITELLM_MASTER_KEY"] == MASTER
    assert env["LITELLM_SALT_KEY"] == SALT
    assert env["LANGFUSE_HOST"] == "http://langfuse-web:3000"
    assert (env["LANGFUSE_PUBLIC_KEY"], env["LANGFUSE_SECRET_KEY"]) == (PK, SK)
    assert "LITELLM_LOCAL_MODEL_COST_MAP" not in env
    assert f"POSTGRES_PASSWORD={PGPASS}" in pg_env.splitlines()
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY",
                                          "database_url": "os.environ/DATABASE_URL"}
    settings = config["litellm_settings"]
    assert settings["success_callback"] == ["langfuse"] and settings["failure_callback"] == ["langfuse"]
    assert settings["num_retries"] == 2 and settings["request_timeout"] == 600
    assert settings["fallbacks"] == [{"claude-sonnet": ["claude-haiku"]}]
    names = [m["model_name"] for m in config["model_list"]]
    assert names == ["claude-sonnet", "claude-haiku"]
    for m in config["model_list"]:
        assert m["litellm_params"]["model"].startswith("bedrock/")
        assert m["litellm_params"]["aws_region_name"] == "us-east-1"
    # No secret value in the config file.
    for secret in (MASTER, SALT, PGPASS, SK):
        assert secret not in raw
    assert raw.startswith("#")  # ansible_managed comment


def test_no_db_mode(rendered):
    compose, env, config, _, _ = files(rendered, "no_db")
    assert "litellm-postgres" not in compose["services"]
    assert "volumes" not in compose
    assert "depends_on" not in compose["services"]["litellm-blue"]
    assert "DATABASE_URL" not in env
    assert "database_url" not in config["general_settings"]
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert config["model_list"] == MOCK_MODELS
    assert config["litellm_settings"]["fallbacks"] == []


def test_central_langfuse(rendered):
    compose, env, config, _, _ = files(rendered, "central")
    assert "networks" not in compose or "langfuse" not in compose["networks"]
    assert set(compose["services"]["litellm-blue"]["networks"]) == {"default"}
    assert compose["services"]["litellm-haproxy"]["ports"] == ["127.0.0.1:4400:4000", "127.0.0.1:8404:8404"]
    assert env["LANGFUSE_HOST"] == "https://langfuse.example.com"
    assert env["AWS_PROFILE"] == "bedrock"
    settings = config["litellm_settings"]
    assert settings["success_callback"] == ["langfuse_otel"]
    assert settings["num_retries"] == 5  # extras win
    assert settings["drop_params"] is True
    assert config["general_settings"]["proxy_batch_write_at"] == 60


def test_langfuse_disabled(rendered):
    _, env, config, _, _ = files(rendered, "no_langfuse")
    assert not any(k.startswith("LANGFUSE_") for k in env)
    assert "success_callback" not in config["litellm_settings"]


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_preflight_refuses(rendered, case):
    _, report = rendered
    failed = [
        (task["task"]["name"], res)
        for play in report["plays"] for task in play["tasks"]
        for host, res in task["hosts"].items() if host == case and res.get("failed")
    ]
    assert failed, f"{case} was not refused"
    name, res = failed[0]
    assert REFUSALS[case][1].replace("\n", " ") in " ".join(res["msg"].split()), res["msg"]
    assert SK not in json.dumps(res)


def haproxy_cfg(rendered, case):
    out, _ = rendered
    sections, current = {}, None
    for raw in (out / case / "haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        if not line.startswith(" "):
            current = line.strip()
            sections[current] = []
        else:
            sections[current].append(" ".join(line.split()))
    return sections


def test_haproxy_routes_per_request_to_ready_slots(rendered):
    cfg = haproxy_cfg(rendered, "db_mode")
    backend = cfg["backend litellm"]
    assert "option httpchk GET /health/readiness" in backend  # LiteLLM's readiness route (contract)
    assert {"server blue litellm-blue:4000", "server green litellm-green:4000"} <= set(backend)
    default_server = next(line for line in backend if line.startswith("default-server"))
    assert "resolvers docker" in default_server and "init-addr none" in default_server
    assert "inter 1000ms" in default_server
    assert "mode http" in cfg["defaults"]  # per request, not per connection
    # Only a request that never reached a slot is retried: a completion is not idempotent.
    assert "retry-on conn-failure" in cfg["defaults"]
    assert "nameserver docker 127.0.0.11:53" in cfg["resolvers docker"]


def test_haproxy_waits_for_long_streams(rendered):
    cfg = haproxy_cfg(rendered, "db_mode")
    timeouts = {line.split()[1]: line.split()[2] for line in cfg["defaults"] if line.startswith("timeout ")}
    for name in ("server", "client"):
        assert int(timeouts[name].rstrip("s")) > 600, name  # longer than litellm_request_timeout
    # A stop or reload lets streams end before Docker's SIGKILL (stop_grace_period 630 s).
    assert "hard-stop-after 605s" in cfg["global"]


def test_haproxy_runtime_api_and_metrics(rendered):
    cfg = haproxy_cfg(rendered, "db_mode")
    assert "stats socket /var/run/haproxy/admin.sock mode 600 level admin" in cfg["global"]
    assert "http-request use-service prometheus-exporter if { path /metrics }" in cfg["frontend stats"]
    assert "bind :8404" in cfg["frontend stats"] and "bind :4000" in cfg["frontend litellm"]


def test_haproxy_facts_the_role_relies_on_are_upstreams():
    """Reload signal, user and config directory come from tests/contracts/haproxy.yml."""
    contract = yaml.safe_load((ROOT / "tests" / "contracts" / "haproxy.yml").read_text())
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!unsafe", lambda load, node: load.construct_scalar(node))
    role_vars = yaml.load((ROLE / "vars" / "main.yml").read_text(), Loader=loader)  # noqa: S506 (SafeLoader)
    assert "SIG" + role_vars["_litellm_haproxy_reload_signal"] in contract["signals"]["reload"]
    assert role_vars["_litellm_haproxy_uid"] == contract["process"]["uid"]  # owns the socket directory
    assert role_vars["_litellm_haproxy_conf_dir"] == contract["paths"]["config_dir"]
    assert contract["paths"]["config"] == role_vars["_litellm_haproxy_conf_dir"] + "/haproxy.cfg"


def test_haproxy_reload_never_marks_the_container_stopped_by_hand():
    """`docker kill --signal` sets Docker's stopped-by-hand flag: HAProxy would stay down after a reboot
    (seen on Docker 26). The handler signals the master from inside the container instead."""
    handlers = yaml.safe_load((ROLE / "handlers" / "main.yml").read_text())
    argv = next(h for h in handlers if h.get("listen") == "litellm haproxy reload")["ansible.builtin.command"]["argv"]
    assert argv[:3] == ["docker", "exec", "{{ _litellm_haproxy_service }}"] and "kill" not in argv[:2]
    assert argv[3:5] == ["sh", "-c"] and argv[5].endswith(" 1")  # PID 1 is HAProxy's master


def test_langfuse_reaches_the_proxy_on_its_own_network_with_its_own_key(rendered):
    """The frontend for Langfuse's LLM connection: on the Langfuse network only, one key, no secret in the file."""
    out, _ = rendered
    compose, _, _, _, _ = files(rendered, "db_mode")
    haproxy = compose["services"]["litellm-haproxy"]
    assert set(haproxy["networks"]) == {"default", "langfuse"}
    assert haproxy["env_file"] == ["haproxy.env"]
    assert haproxy["ports"] == ["127.0.0.1:4000:4000", "127.0.0.1:8404:8404"]  # 4001 is not published
    cfg = haproxy_cfg(rendered, "db_mode")
    headers = [line for line in (out / "db_mode" / "haproxy.cfg").read_text().splitlines()
               if line and not line[0].isspace() and not line.startswith("#")]
    assert headers == ["global", "defaults", "resolvers docker", "frontend litellm", "frontend langfuse_connection",
                       "backend litellm", "frontend stats"]
    assert cfg["frontend litellm"] == ["bind :4000", "default_backend litellm"]
    front = cfg["frontend langfuse_connection"]
    assert front[0] == "bind :4001"
    # Nothing passes without exactly the dedicated key (and never when it is unset or short)...
    assert ('http-request deny deny_status 401 unless { env(LLMOPS_CONNECTION_KEY),length ge 32 } '
            '{ req.hdr(authorization) -m str "Bearer ${LLMOPS_CONNECTION_KEY-unset}" }') in front
    # ...and what passes goes on with the master key, to the same slots.
    assert 'http-request set-header Authorization "Bearer ${LLMOPS_MASTER_KEY-unset}"' in front
    assert "default_backend litellm" in front
    text = (out / "db_mode" / "haproxy.cfg").read_text()
    assert MASTER not in text and CONNECTION_KEY not in text
    env = dict(line.split("=", 1) for line in (out / "db_mode" / "haproxy.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env == {"LLMOPS_CONNECTION_KEY": CONNECTION_KEY, "LLMOPS_MASTER_KEY": MASTER}


def test_no_connection_frontend_without_the_langfuse_network(rendered):
    compose, _, _, _, _ = files(rendered, "central")
    haproxy = compose["services"]["litellm-haproxy"]
    assert "env_file" not in haproxy and set(haproxy["networks"]) == {"default"}
    cfg = haproxy_cfg(rendered, "central")
    assert list(cfg) == ["global", "defaults", "resolvers docker", "frontend litellm", "backend litellm",
                         "frontend stats"]
    assert cfg["frontend litellm"] == ["bind :4000", "default_backend litellm"]


def test_haproxy_env_expansion_is_the_contracts():
    """The frontend relies on HAProxy expanding "${NAME-default}" and an env() fetch (tests/contracts/haproxy.yml)."""
    contract = yaml.safe_load((ROOT / "tests" / "contracts" / "haproxy.yml").read_text())
    expansion = contract["env"]["expansion"]
    assert expansion["quoted_only"] is True
    assert expansion["default_syntax"] == "${NAME-default}"
    assert expansion["sample_fetch"] == "env(NAME)"
