"""The litellm role with hostile values (no Docker): what it writes comes back exactly, what it cannot
carry or must not run is refused before anything changes, and a failed push shows no secret.

One ansible-playbook run (hostile_playbook.yml) renders litellm.env, postgres.env, compose.yml and
litellm_config.yml for made-up hosts whose every variable that reaches a file holds a hostile value
(quotes, $HOME, ${X}, " #", {{ }}, %41, @ : /, backslashes, unicode), masks made-up log lines of a
failed proxy slot as tasks/push.yml does, and runs the role's preflight (check mode). The env files
are read the way Compose reads them (compose_dotenv.py, with $HOME and $X set in its environment),
the config file the way LiteLLM does (YAML).
"""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, urlsplit

import pytest
import yaml

from ansible_collections.llmops.devbox.tests.unit.plugins.filter.compose_dotenv import parse
from ansible_collections.llmops.devbox.tests.unit.roles.langfuse.hostile import (
    CLI_ENV,
    NAME,
    PASSWORD,
    TEXT,
    failures,
    flat,
    run_playbook,
    unsafe,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
ROLE = ROOT / "roles" / "litellm"
MASTER = "sk-" + "1f" * 32
SALT = "sk-" + "2e" * 32
PK, SK = "pk-lf-" + NAME, "sk-lf-" + TEXT
DIGEST = "sha256:" + "0123456789abcdef" * 4
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPx'RfiC\"YEXAMPLEKEY $HOME #1"  # noqa: S105 - test value
OPENAI_KEY = "sk-proj-" + NAME
MOCK_KEY = "mock-literal-key-0123"
HOSTILE_MODELS = [
    {"model_name": NAME, "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "os.environ/OPENAI_API_KEY",
                                            "api_base": "https://x.example.com/v1?q='\"$HOME #1 {{ y }}%41"}},
    {"model_name": "mock " + TEXT, "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": MOCK_KEY,
                                                       "mock_response": TEXT}},
]
HOSTILE_VARS = {
    "litellm_langfuse_host": "https://lf.example.com/?q='\"$HOME #1 {{ y }}%41&x=${X}",
    "litellm_langfuse_public_key": PK,
    "litellm_langfuse_secret_key": SK,
    "litellm_extra_env": {"AWS_ACCESS_KEY_ID": "AKIA" + "X" * 16, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                          "OPENAI_API_KEY": OPENAI_KEY, "EMPTY_VALUE": "", "A_NUMBER": 7, "lower_name": TEXT},
    "litellm_model_list": HOSTILE_MODELS,
    "litellm_fallbacks": [{NAME: ["mock " + TEXT]}],
    "litellm_litellm_settings_extra": {"drop_params": True, "hostile": NAME},
    "litellm_general_settings_extra": {"proxy_batch_write_at": 60, "hostile": TEXT},
}
CASES = {
    "defaults": {},
    "hostile": HOSTILE_VARS,
    # The default model list takes the region: a hostile one must reach the config file unchanged.
    "hostile_region": {"litellm_aws_region": "us-east-1 {{ y }} $HOME #1 'x' \"x\""},
    "digest_pinned": {"litellm_image": f"ghcr.io/berriai/litellm-database:main-v1.108.7-stable@{DIGEST}",
                      "litellm_postgres_image": f"postgres:17.7@{DIGEST}"},
}
PREFLIGHT_PASSES = sorted(CASES)

# (variables, words in the name of the task that refuses, words the message must contain)
REFUSALS = {
    "image_latest": ({"litellm_image": "ghcr.io/berriai/litellm-database:latest"}, "pinned",
                     ["litellm_image ('ghcr.io/berriai/litellm-database:latest') uses the moving tag 'latest'",
                      "exact tag", "name:tag@sha256:<64 hex>"]),
    "image_no_tag": ({"litellm_image": "ghcr.io/berriai/litellm-database"}, "pinned",
                     ["litellm_image ('ghcr.io/berriai/litellm-database') has no tag"]),
    "image_digest_only": ({"litellm_image": f"ghcr.io/berriai/litellm-database@{DIGEST}"}, "pinned",
                          ["litellm_image", "a digest alone"]),
    "postgres_image_latest": ({"litellm_postgres_image": "postgres:latest"}, "pinned",
                              ["litellm_postgres_image ('postgres:latest')"]),
    "postgres_image_injection": ({"litellm_postgres_image": "postgres:17\n    privileged: true"}, "pinned",
                                 ["litellm_postgres_image", "is not an image reference"]),
    "compromised_1_82_7": ({"litellm_image": "ghcr.io/berriai/litellm-database:main-v1.82.7-stable"}, "compromised",
                           ["LiteLLM 1.82.7", "credential stealer", "BerriAI/litellm#24512", "Pin another release"]),
    "compromised_1_82_8": ({"litellm_image": "ghcr.io/berriai/litellm:v1.82.8"}, "compromised", ["LiteLLM 1.82.8"]),
    "compromised_with_digest": ({"litellm_image": f"ghcr.io/berriai/litellm-database:main-v1.82.8-nightly@{DIGEST}"},
                                "compromised", ["LiteLLM 1.82.8"]),
    "literal_api_key": ({"litellm_model_list": [{"model_name": "gpt", "litellm_params": {
        "model": "openai/gpt-4o", "api_key": "sk-literal-provider-key"}}]}, "credentials written",
        ["litellm_model_list writes api_key as a value in gpt", "api_key: os.environ/OPENAI_API_KEY",
         "litellm_extra_env"]),
    "literal_aws_secret": ({"litellm_model_list": [{"model_name": "claude", "litellm_params": {
        "model": "bedrock/x", "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "literal-aws-secret"}}]},
        "credentials written", ["writes aws_access_key_id, aws_secret_access_key as a value in claude"]),
    "extra_env_master_key": ({"litellm_extra_env": {"LITELLM_MASTER_KEY": "sk-1234"}}, "leaves the role",
                             ["litellm_extra_env sets LITELLM_MASTER_KEY, which the role manages", "remove it"]),
    "extra_env_database_url": ({"litellm_extra_env": {"DATABASE_URL": "postgresql://evil", "DATABASE_HOST": "evil"}},
                               "leaves the role", ["sets DATABASE_URL, DATABASE_HOST", "remove them"]),
    "extra_env_langfuse": ({"litellm_extra_env": {"LANGFUSE_HOST": "https://evil", "LANGFUSE_SECRET_KEY": "x",
                                                  "LANGFUSE_OTEL_HOST": "https://evil"}}, "leaves the role",
                           ["LANGFUSE_HOST", "LANGFUSE_SECRET_KEY", "LANGFUSE_OTEL_HOST"]),
    "extra_env_lower_case_salt": ({"litellm_extra_env": {"litellm_salt_key": "x"}}, "leaves the role",
                                  ["sets litellm_salt_key"]),
    "extra_env_weak_key_switch": ({"litellm_extra_env": {"LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "1",
                                                         "PORT": "1"}},
                                  "leaves the role", ["LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY, PORT"]),
    "extra_env_newline": ({"litellm_extra_env": {"AWS_SECRET_ACCESS_KEY": "secret-line\nLITELLM_MASTER_KEY=sk-1234"}},
                          "litellm.env", ["litellm_extra_env.AWS_SECRET_ACCESS_KEY contains a line break (LF)"]),
    "extra_env_bad_name": ({"litellm_extra_env": {"AWS KEY": "x"}}, "litellm.env",
                           ["litellm_extra_env: 'AWS KEY' is not an environment variable name"]),
    "langfuse_secret_key_newline": ({"litellm_langfuse_secret_key": "sk-lf-x\nLITELLM_MASTER_KEY=sk-1234"},
                                    "litellm.env", ["litellm_langfuse_secret_key contains a line break"]),
    "langfuse_host_cr": ({"litellm_langfuse_host": "https://lf.example.com\rX=1"}, "litellm.env",
                         ["litellm_langfuse_host contains a carriage return"]),
    "port_zero": ({"litellm_port": 0}, "Check litellm_port",
                  ["litellm_port (0) and litellm_haproxy_stats_port (8404) must be two different whole numbers"]),
    "stats_port_same": ({"litellm_haproxy_stats_port": 4000}, "Check litellm_port",
                        ["litellm_haproxy_stats_port (4000)", "two different"]),
    "stop_grace_shorter_than_request_timeout": ({"litellm_stop_grace_period": 120}, "role variables",
                                                ["no shorter than litellm_request_timeout"]),
    "port_too_big": ({"litellm_port": 70000}, "Check litellm_port", ["litellm_port (70000)"]),
    "port_mapping": ({"litellm_port": "4000:4000"}, "Check litellm_port", ["litellm_port (4000:4000)"]),
    "postgres_user_injection": ({"litellm_postgres_user": "litellm -d x; rm -rf /"}, "database user",
                                ["litellm_postgres_user (litellm -d x; rm -rf /)", "plain Postgres names"]),
    "postgres_db_hostile": ({"litellm_postgres_db": "lite'llm"}, "database user", ["litellm_postgres_db (lite'llm)"]),
    "network_injection": ({"litellm_langfuse_network": "langfuse_default\n    external: false"}, "network name",
                          ["litellm_langfuse_network", "Docker network name"]),
    "project_dir_space": ({"litellm_project_dir": "/opt/lite llm"}, "role variables", ["litellm_project_dir"]),
    "stop_grace_injection": ({"litellm_stop_grace_period": "1s\n    privileged: true"}, "role variables",
                             ["litellm_stop_grace_period a whole number"]),
    # What the box answers (llmops.devbox.box_probe): the stats port held by something else (the test
    # holds it open, see rendered()).
    "stats_port_taken": ({}, "proxy ports to be free",
                         ["is already in use by something other than this LiteLLM stack", "listening: ", "(pid ",
                          "litellm_port / litellm_haproxy_stats_port to a free port"]),
}
SECRET_WORDS = ["sk-literal-provider-key", "literal-aws-secret", "secret-line", "sk-1234", "sk-lf-x"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("litellm-hostile")
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    base = {**defaults, "litellm_langfuse_public_key": "pk-lf-x", "litellm_langfuse_secret_key": "sk-lf-render",
            "_litellm_secrets": {"master_key": MASTER, "salt_key": SALT, "postgres_password": "generated" * 3},
            "role_path": str(ROLE), "out_dir": str(out), "ansible_python_interpreter": sys.executable}
    hosts = {name: {**base, **unsafe(case)} for name, case in CASES.items()}
    # The secrets step generates the database password; a hostile one shows the URL encoding.
    hosts["hostile"]["_litellm_secrets"] = unsafe({"master_key": MASTER, "salt_key": SALT,
                                                   "postgres_password": PASSWORD})
    hosts["hostile"]["fake_log_lines"] = unsafe(fake_log_lines())
    hosts.update({name: {**base, **unsafe(case)} for name, (case, _, _) in REFUSALS.items()})
    # The preflight checks that nothing else holds the proxy's ports: give the hosts that must pass free ones.
    for name in PREFLIGHT_PASSES:
        hosts[name].update(zip(("litellm_port", "litellm_haproxy_stats_port"), free_ports(2)))
    inventory = {"all": {"hosts": hosts, "children": {
        "render": {"hosts": {name: None for name in CASES}},
        "preflight": {"hosts": {name: None for name in PREFLIGHT_PASSES + sorted(REFUSALS)}}}}}
    with socket.socket() as taken:  # something else on the stats port
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        hosts["stats_port_taken"].update(litellm_port=free_ports(1)[0],
                                         litellm_haproxy_stats_port=taken.getsockname()[1])
        return out, run_playbook(HERE / "hostile_playbook.yml", inventory, out, check=True)


def free_ports(count: int) -> list[int]:
    """count different ports nothing listens on (held together while chosen, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def database_url() -> str:
    return f"postgresql://litellm:{quote(PASSWORD, safe='')}@litellm-postgres:5432/litellm"


def fake_log_lines() -> list[str]:
    """What a failing proxy might print: every secret the box holds, in the shapes logs give them."""
    return [
        f"LITELLM_MASTER_KEY={MASTER} salt={SALT}",
        f"prisma: P1001 can't reach database server at {database_url()}",
        f"connect: password={quote(PASSWORD, safe='')} raw={PASSWORD}",
        f"langfuse: 401 for {PK}:{SK}",
        f"boto3 config {json.dumps({'aws_secret_access_key': AWS_SECRET})}",
        f"openai: Incorrect API key provided: {OPENAI_KEY!r} form={quote_plus(OPENAI_KEY)}",
        f"mock model key {MOCK_KEY}",
        "ordinary line: model claude-sonnet not found",
    ]


def files(rendered, case):
    out, report = rendered
    d = out / case
    assert (d / "compose.yml").exists(), json.dumps(report["stats"])
    intended = json.loads((d / "intended.json").read_text(encoding="utf-8"))
    return d, intended


@pytest.mark.parametrize("case", sorted(CASES))
def test_compose_reads_back_exactly_what_the_role_meant(rendered, case):
    d, intended = files(rendered, case)
    for name in ("litellm.env", "postgres.env"):
        want = {k: str(v) for k, v in intended[name].items()}
        assert parse((d / name).read_text(encoding="utf-8"), CLI_ENV) == want, name


@pytest.mark.parametrize("case", sorted(CASES))
def test_litellm_reads_back_exactly_the_config(rendered, case):
    d, intended = files(rendered, case)
    assert yaml.safe_load((d / "litellm_config.yml").read_text(encoding="utf-8")) == intended["config"]


def test_hostile_values_arrive_unchanged(rendered):
    d, _ = files(rendered, "hostile")
    env = parse((d / "litellm.env").read_text(encoding="utf-8"), CLI_ENV)
    assert env["LANGFUSE_HOST"] == HOSTILE_VARS["litellm_langfuse_host"]
    assert (env["LANGFUSE_PUBLIC_KEY"], env["LANGFUSE_SECRET_KEY"]) == (PK, SK)
    for key, value in HOSTILE_VARS["litellm_extra_env"].items():
        assert env[key] == str(value), key
    assert (env["LITELLM_MASTER_KEY"], env["LITELLM_SALT_KEY"]) == (MASTER, SALT)
    pg = parse((d / "postgres.env").read_text(encoding="utf-8"), CLI_ENV)
    assert pg == {"POSTGRES_USER": "litellm", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "litellm"}
    config = yaml.safe_load((d / "litellm_config.yml").read_text(encoding="utf-8"))
    assert config["model_list"] == HOSTILE_MODELS
    assert config["litellm_settings"]["fallbacks"] == HOSTILE_VARS["litellm_fallbacks"]
    assert config["litellm_settings"]["hostile"] == NAME and config["general_settings"]["hostile"] == TEXT
    region = yaml.safe_load((d.parent / "hostile_region" / "litellm_config.yml").read_text(encoding="utf-8"))
    assert {m["litellm_params"]["aws_region_name"] for m in region["model_list"]} == {
        CASES["hostile_region"]["litellm_aws_region"]}


def test_database_url_carries_the_password_encoded(rendered):
    d, _ = files(rendered, "hostile")
    url = parse((d / "litellm.env").read_text(encoding="utf-8"), CLI_ENV)["DATABASE_URL"]
    assert url == database_url()
    parts = urlsplit(url)
    assert (parts.username, unquote(parts.password), parts.hostname, parts.port, parts.path) == (
        "litellm", PASSWORD, "litellm-postgres", 5432, "/litellm")
    # Bare in the file: `docker run --env-file` (the config validation) reads it the same way.
    assert f"DATABASE_URL={url}\n" in (d / "litellm.env").read_text(encoding="utf-8")


def test_no_variable_is_added(rendered):
    plain = parse((files(rendered, "defaults")[0] / "litellm.env").read_text(), CLI_ENV)
    hostile = parse((files(rendered, "hostile")[0] / "litellm.env").read_text(encoding="utf-8"), CLI_ENV)
    assert set(hostile) == set(plain) | set(HOSTILE_VARS["litellm_extra_env"])


def test_the_failed_push_message_masks_every_secret(rendered):
    d, _ = files(rendered, "hostile")
    masked = (d / "masked.txt").read_text(encoding="utf-8")
    for secret in (MASTER, SALT, PASSWORD, quote(PASSWORD, safe=""), database_url(), SK, AWS_SECRET,
                   json.dumps(AWS_SECRET)[1:-1], OPENAI_KEY, repr(OPENAI_KEY)[1:-1], quote_plus(OPENAI_KEY),
                   MOCK_KEY, "AKIA" + "X" * 16):
        assert secret not in masked, secret
    assert "ordinary line: model claude-sonnet not found" in masked
    assert masked.count("********") >= 10


def test_push_masks_before_it_shortens():
    """tasks/push.yml masks the failed task's message and the log lines with every secret, then shortens."""
    push = (ROLE / "tasks" / "push.yml").read_text()
    fail = push[push.index("- name: Fail loudly"):]
    assert "replace(_litellm_secrets.master_key" not in push
    assert re.search(r"ansible_failed_result\.msg \| default\(''\)"
                     r" \| llmops\.devbox\.mask_secrets\(_litellm_secret_values\) \| truncate", fail)
    assert re.search(r"join\(' \| '\) \| llmops\.devbox\.mask_secrets\(_litellm_secret_values\)\)\[-3000:\]", fail)
    start = push.index("- name: Read the last log lines of the failed slot")
    logs = push[start:push.index("- name: Send requests back", start)]
    assert "no_log: true" in logs


@pytest.mark.parametrize("case", PREFLIGHT_PASSES)
def test_preflight_accepts(rendered, case):
    _, report = rendered
    assert failures(report, case) == []


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_preflight_refuses_naming_the_variable_and_the_fix(rendered, case):
    _, report = rendered
    _, task_words, words = REFUSALS[case]
    failed = failures(report, case)
    assert failed, f"{case} was not refused"
    name, res = failed[0]
    assert task_words in name, (name, res.get("msg"))
    msg = flat(res.get("msg", ""))
    for word in words:
        assert flat(word) in msg, msg
    shown = json.dumps(res, ensure_ascii=False)
    for secret in SECRET_WORDS + ["sk-lf-render", MASTER]:
        assert secret not in shown, secret
