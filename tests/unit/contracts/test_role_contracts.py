"""The roles' rendered Compose projects against upstream's contracts (tests/contracts/), no Docker.

One ansible-playbook run renders the langfuse and litellm roles' compose.yml and env files with their
defaults; every service that runs an upstream image is checked against that image's contract:
required variables set, no variable the pinned version does not read, healthchecks that reach the
process where it listens, the image's user and data paths. Deliberately broken copies show that
each check can fail (e.g. the worker env before HOSTNAME was set).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from contract_check import ROOT, check_service, load_contracts, service_env, shape_problems

HERE = Path(__file__).resolve().parent
CONTRACTS = load_contracts()
IMAGE_CONTRACTS = {n: c for n, c in CONTRACTS.items() if c.get("image", {}).get("compose_service")}
SECRETS = {"salt": "s" * 32, "encryption_key": "ab" * 32, "nextauth_secret": "n" * 32,
           "postgres_password": "p" * 24, "clickhouse_password": "c" * 24, "redis_password": "r" * 24,
           "minio_password": "m" * 24, "admin_password": "a" * 24}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("contracts")
    host = {"out_dir": str(out), "roles_dir": str(ROOT / "roles"), "role_path": str(ROOT / "roles" / "litellm"),
            "ansible_python_interpreter": sys.executable,
            "_langfuse_secrets": SECRETS, "_langfuse_project_keys": {"public_key": "pk-lf-x", "secret_key": "sk-lf-x"},
            "_litellm_secrets": {"master_key": "sk-m", "salt_key": "sk-s", "postgres_password": "p" * 24,
                                 "connection_key": "sk-c"},
            "litellm_langfuse_public_key": "pk-lf-x", "litellm_langfuse_secret_key": "sk-lf-x"}
    inv = out / "inventory.json"
    inv.write_text(json.dumps({"all": {"hosts": {"box": host}}}))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv), str(HERE / "render_playbook.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
             "HOME": str(out)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    projects = {}
    for role in ("langfuse", "litellm"):
        compose = yaml.safe_load((out / role / "compose.yml").read_text())
        projects[role] = (out / role, compose)
    return projects


def services_of(rendered, contract):
    image = contract["image"]
    project_dir, compose = rendered[image["role"]]
    names = image["compose_service"]
    for name in [names] if isinstance(names, str) else names:
        assert name in compose["services"], f"{contract['name']}: no service {name} in the {image['role']} role"
        yield name, compose["services"][name], service_env(project_dir, compose["services"][name])


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_contract_says_where_each_fact_was_read(name):
    assert shape_problems(name, CONTRACTS[name]) == []


@pytest.mark.parametrize("name", sorted(IMAGE_CONTRACTS))
def test_role_default_image_is_the_contracts_tag(rendered, name):
    contract = IMAGE_CONTRACTS[name]
    want = f"{contract['image']['repository']}:{contract['image']['tag']}"
    for service_name, service, _ in services_of(rendered, contract):
        assert service["image"].split("@")[0] == want, f"{service_name} deploys {service['image']}, contract: {want}"


@pytest.mark.parametrize("name", sorted(IMAGE_CONTRACTS))
def test_rendered_service_honours_the_contract(rendered, name):
    problems = []
    for service_name, service, env in services_of(rendered, IMAGE_CONTRACTS[name]):
        problems += check_service(IMAGE_CONTRACTS[name], service_name, service, env)
    assert problems == []


# --- each check can fail ----------------------------------------------------------------------

def worker(rendered):
    contract = CONTRACTS["langfuse-worker"]
    (name, service, env), = services_of(rendered, contract)
    return contract, name, copy.deepcopy(service), dict(env)


def test_worker_env_without_hostname_is_caught(rendered):
    """The first release's worker env: no HOSTNAME, so Docker's container id decides the address."""
    contract, name, service, env = worker(rendered)
    del env["HOSTNAME"]
    problems = check_service(contract, name, service, env)
    assert any("HOSTNAME" in p and "container id" in p for p in problems), problems


def test_missing_required_variable_is_caught(rendered):
    contract, name, service, env = worker(rendered)
    required = contract["env"]["required"][0]
    del env[required]
    assert any(required in p and "not set" in p for p in check_service(contract, name, service, env))


def test_variable_the_version_does_not_read_is_caught(rendered):
    contract, name, service, env = worker(rendered)
    env["LANGFUSE_S3_EVENT_UPLOAD_BUKET"] = "langfuse"
    assert any("BUKET" in p for p in check_service(contract, name, service, env))


def test_healthcheck_on_the_wrong_port_or_route_is_caught(rendered):
    contract, name, service, env = worker(rendered)
    service["healthcheck"]["test"] = ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:3000/api/public/health"]
    problems = check_service(contract, name, service, env)
    assert any("port 3000" in p for p in problems) and any("/api/public/health" in p for p in problems), problems


def test_volume_at_the_wrong_path_is_caught(rendered):
    contract = CONTRACTS["postgres"]
    (name, service, env), *_ = services_of(rendered, contract)
    service = copy.deepcopy(service)
    service["volumes"] = ["postgres_data:/var/lib/postgres"]
    assert any("mounted at /var/lib/postgres," in p for p in check_service(contract, name, service, env))
