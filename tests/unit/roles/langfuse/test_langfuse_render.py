"""Render tests of the langfuse role with hostile values, and its preflight refusals (no Docker).

One ansible-playbook run (render_playbook.yml) renders the six env files and compose.yml for made-up
hosts - defaults, and every variable that reaches an env file set to a hostile value (quotes, $HOME,
${X}, " #", {{ }}, %41, @ : /, backslashes, unicode, leading and trailing spaces) - and runs the
role's preflight for those hosts and for others that must be refused. Each hostile value must either
come back exactly when the files are read the way Compose reads them (compose_dotenv.py, a port of
Compose's reader, with a CLI environment in which $HOME and $X are set), or be refused before
anything changes, with a message that names the variable and the fix and shows no secret.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
import yaml

from ansible_collections.llmops.devbox.tests.unit.plugins.filter.compose_dotenv import parse
from ansible_collections.llmops.devbox.tests.unit.roles.langfuse.hostile import (
    CLI_ENV,
    NAME,
    PASSWORD,
    SECRETS,
    TEXT,
    failures,
    flat,
    free_port,
    run_playbook,
    unsafe,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
ROLE = ROOT / "roles" / "langfuse"
SERVICES = ["langfuse-web", "langfuse-worker", "postgres", "clickhouse", "redis", "minio"]
PK, SK = "pk-lf-" + NAME, "sk-lf-" + TEXT
DIGEST = "sha256:" + "0123456789abcdef" * 4

# Every role variable that reaches an env file, with a hostile value (all together in one host).
HOSTILE_VARS = {
    "langfuse_init_org_name": NAME,
    "langfuse_init_project_name": TEXT,
    "langfuse_admin_name": "Admin " + NAME + " \\",
    # As hostile as Langfuse's own e-mail check lets through (' and + are allowed before the @).
    "langfuse_admin_email": "o'brien+ops@example.com",
    "langfuse_nextauth_url": "https://lf.example.com/?q='\"$HOME #1 {{ y }}%41&x=${X}",
    "langfuse_init_public_key": PK,
    "langfuse_init_secret_key": SK,
    "langfuse_secrets": SECRETS,
    "langfuse_extra_env": {"SMTP_CONNECTION_URL": "smtp://u:p%40ss@mail:25/?x='\"$HOME #1",
                           "AUTH_CUSTOM_NAME": NAME, "EMPTY_VALUE": "", "A_NUMBER": 42, "A_BOOL": True,
                           "lower_case_name": TEXT},
}
CASES = {
    "defaults": {},
    "hostile": HOSTILE_VARS,
    # Accepted binds and pins: the any-address with the opt-in, IPv6 loopback, digests.
    "any_address_opted_in": {"langfuse_bind_address": "0.0.0.0", "langfuse_allow_remote_bind": True},
    "ipv6_loopback": {"langfuse_bind_address": "::1", "langfuse_media_upload_enabled": True},
    "digest_pinned": {"langfuse_postgres_image": f"postgres:17.12@{DIGEST}",
                      "langfuse_web_image": f"langfuse/langfuse:4.2.0@{DIGEST}"},
    # A proxy on another box for the LLM connection, and none at all.
    "connection_elsewhere": {"langfuse_llm_connection_base_url": "https://LLM-Gateway.internal.example:8443/v1"},
    "connection_off": {"langfuse_llm_connection_enabled": False},
}
PREFLIGHT_PASSES = ["defaults", "hostile", "any_address_opted_in", "ipv6_loopback", "digest_pinned",
                    "connection_elsewhere", "connection_off"]

FIX_LINE_BREAK = "an env file cannot carry it: remove it"
# Refused by the preflight: (variables, task that refuses, words the message must contain).
REFUSALS = {
    # Values no env file can carry, named (a secret's value never shown).
    "org_name_newline": ({"langfuse_init_org_name": "Joe's\nEVIL=1"}, "env files",
                         ["langfuse_init_org_name contains a line break (LF)", FIX_LINE_BREAK]),
    "project_name_cr": ({"langfuse_init_project_name": "Dev\rbox"}, "env files",
                        ["langfuse_init_project_name contains a carriage return (CR)"]),
    "admin_name_nul": ({"langfuse_admin_name": "Ad\x00min"}, "env files",
                       ["langfuse_admin_name contains a NUL character"]),
    "nextauth_url_newline": ({"langfuse_nextauth_url": "http://localhost:3000\nSALT=x"}, "env files",
                             ["langfuse_nextauth_url contains a line break"]),
    "secret_newline": ({"langfuse_secrets": {"salt": "salt-with-a-line\nbreak-0123456789"}}, "env files",
                       ["langfuse_secrets.salt contains a line break (LF)"]),
    "init_secret_key_newline": ({"langfuse_init_public_key": "pk-lf-1", "langfuse_init_secret_key": "sk-lf-1\nX=1"},
                                "env files", ["langfuse_init_secret_key contains a line break"]),
    "extra_env_newline": ({"langfuse_extra_env": {"SMTP_CONNECTION_URL": "smtp://x\nSALT=evil"}}, "env files",
                          ["langfuse_extra_env.SMTP_CONNECTION_URL contains a line break"]),
    "extra_env_bad_name": ({"langfuse_extra_env": {"SMTP URL": "x"}}, "env files",
                           ["langfuse_extra_env: 'SMTP URL' is not an environment variable name"]),
    "extra_env_mapping_value": ({"langfuse_extra_env": {"AUTH_X": {"a": 1}}}, "env files",
                                ["langfuse_extra_env.AUTH_X is a mapping"]),
    "extra_env_not_a_mapping": ({"langfuse_extra_env": "SMTP=1"}, "env files",
                                ["langfuse_extra_env must be a mapping"]),
    # Variables the role manages, through langfuse_extra_env.
    "extra_env_database_url": ({"langfuse_extra_env": {"DATABASE_URL": "postgresql://evil"}}, "leaves the role",
                               ["langfuse_extra_env sets DATABASE_URL, which the role manages", "remove it"]),
    "extra_env_salt_lower_case": ({"langfuse_extra_env": {"salt": "x"}}, "leaves the role",
                                  ["langfuse_extra_env sets salt, which the role manages"]),
    "extra_env_nextauth": ({"langfuse_extra_env": {"NEXTAUTH_SECRET": "x", "NEXTAUTH_URL": "y"}}, "leaves the role",
                           ["sets NEXTAUTH_SECRET, NEXTAUTH_URL", "remove them", "langfuse_nextauth_url"]),
    "extra_env_init": ({"langfuse_extra_env": {"LANGFUSE_INIT_USER_PASSWORD": "x"}}, "leaves the role",
                       ["sets LANGFUSE_INIT_USER_PASSWORD"]),
    "extra_env_signup_hostname": ({"langfuse_extra_env": {"AUTH_DISABLE_SIGNUP": "false", "HOSTNAME": "x"}},
                                  "leaves the role", ["sets AUTH_DISABLE_SIGNUP, HOSTNAME"]),
    "extra_env_keys": ({"langfuse_extra_env": {"ENCRYPTION_KEY": "0" * 64, "CLICKHOUSE_PASSWORD": "x",
                                               "LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY": "x",
                                               "REDIS_CONNECTION_STRING": "redis://x", "DATABASE_PASSWORD": "x",
                                               "PORT": "1"}},
                       "leaves the role", ["ENCRYPTION_KEY", "CLICKHOUSE_PASSWORD", "REDIS_CONNECTION_STRING",
                                           "DATABASE_PASSWORD", "PORT", "LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY"]),
    # Where langfuse-web is published.
    "bind_any_address": ({"langfuse_bind_address": "0.0.0.0"}, "opt-in",
                         ["langfuse_bind_address (0.0.0.0)", "on every interface", "langfuse_allow_remote_bind: true"]),
    "bind_ipv6_any": ({"langfuse_bind_address": "::"}, "opt-in",
                      ["langfuse_bind_address (::)", "langfuse_allow_remote_bind: true"]),
    "bind_private_address": ({"langfuse_bind_address": "10.0.1.10"}, "opt-in",
                             ["langfuse_bind_address (10.0.1.10)", "on that address",
                              "langfuse_allow_remote_bind: true"]),
    "bind_opt_in_false_string": ({"langfuse_bind_address": "10.0.1.10", "langfuse_allow_remote_bind": "no"}, "opt-in",
                                 ["langfuse_allow_remote_bind: true"]),
    "bind_host_name": ({"langfuse_bind_address": "localhost"}, "Check langfuse_bind_address",
                       ["langfuse_bind_address (localhost) is not an IP address"]),
    "bind_injection": ({"langfuse_bind_address": "127.0.0.1:1:1\"\n    privileged: true"},
                       "Check langfuse_bind_address", ["is not an IP address"]),
    # Ports.
    "port_zero": ({"langfuse_port": 0}, "Check langfuse_port",
                  ["langfuse_port (0) must be a whole number from 1 to 65535"]),
    "port_too_big": ({"langfuse_port": 65536}, "Check langfuse_port", ["langfuse_port (65536)"]),
    "port_not_a_number": ({"langfuse_port": "3000:3000"}, "Check langfuse_port", ["langfuse_port (3000:3000)"]),
    "port_float": ({"langfuse_port": 3000.5}, "Check langfuse_port", ["langfuse_port (3000.5)"]),
    "media_port_too_big": ({"langfuse_media_port": 70000}, "Check langfuse_media_port",
                           ["langfuse_media_port (70000) must be a whole number from 1 to 65535"]),
    "media_port_negative": ({"langfuse_media_port": -1}, "Check langfuse_media_port", ["langfuse_media_port (-1)"]),
    # Images.
    "web_image_latest": ({"langfuse_web_image": "langfuse/langfuse:latest"}, "pinned",
                         ["langfuse_web_image ('langfuse/langfuse:latest') uses the moving tag 'latest'",
                          "name:tag@sha256:<64 hex>"]),
    "worker_image_no_tag": ({"langfuse_worker_image": "langfuse/langfuse-worker"}, "pinned",
                            ["langfuse_worker_image ('langfuse/langfuse-worker') has no tag"]),
    "postgres_image_digest_only": ({"langfuse_postgres_image": f"postgres@{DIGEST}"}, "pinned",
                                   ["langfuse_postgres_image", "a digest alone"]),
    "clickhouse_image_bad_digest": ({"langfuse_clickhouse_image": "clickhouse/clickhouse-server:25.12@sha256:abc"},
                                    "pinned", ["langfuse_clickhouse_image", "sha256:<64 lower-case hex>"]),
    "redis_image_injection": ({"langfuse_redis_image": "redis:8.0.2\n    privileged: true"}, "pinned",
                              ["langfuse_redis_image", "is not an image reference"]),
    "minio_image_latest_upper": ({"langfuse_minio_image": "minio/minio:LATEST"}, "pinned",
                                 ["langfuse_minio_image", "'latest'"]),
    # Values some consumer cannot take, refused with the reason.
    "clickhouse_password_hostile": ({"langfuse_secrets": {"clickhouse_password": "click&house#pass?word=1"}},
                                    "ClickHouse password",
                                    ["langfuse_secrets.clickhouse_password may only use letters, digits",
                                     "openssl rand -hex 24"]),
    "encryption_key_not_hex": ({"langfuse_secrets": {"encryption_key": "z" * 64}}, "secrets you supplied",
                               ["encryption_key must be exactly 64 hex characters"]),
    "admin_email_hostile": ({"langfuse_admin_email": "jöe\"$HOME\"@example.com"}, "role variables",
                            ["langfuse_admin_email", "Langfuse refuses anything else"]),
    "org_id_hostile": ({"langfuse_init_org_id": "org'; DROP"}, "role variables",
                       ["langfuse_init_org_id / langfuse_init_project_id may use letters"]),
    "project_dir_space": ({"langfuse_project_dir": "/opt/lang fuse"}, "role variables", ["langfuse_project_dir"]),
    "connection_url_with_credentials": ({"langfuse_llm_connection_base_url": "http://u:p@litellm-haproxy:4001/v1"},
                                        "langfuse_llm_connection_base_url", ["no user, password"]),
    "connection_url_two_hosts": ({"langfuse_llm_connection_base_url": "http://a,b:4001/v1"},
                                 "langfuse_llm_connection_base_url", ["langfuse_llm_connection_base_url (http://a,b"]),
    "connection_url_no_scheme": ({"langfuse_llm_connection_base_url": "litellm-haproxy:4001"},
                                 "langfuse_llm_connection_base_url", ["must be an http(s) URL"]),
    "extra_env_widens_the_allowed_hosts": ({"langfuse_extra_env": {"LANGFUSE_LLM_CONNECTION_WHITELISTED_IP_SEGMENTS":
                                                                   "10.0.0.0/8"}}, "leaves the role",
                                           ["LANGFUSE_LLM_CONNECTION_WHITELISTED_IP_SEGMENTS"]),
    "restart_policy_injection": ({"langfuse_restart_policy": "always\n    privileged: true"}, "role variables",
                                 ["langfuse_restart_policy is one of"]),
    # What the box answers (llmops.devbox.box_probe): a port something else listens on (the test
    # holds it open, see rendered()), and a disk that is too small.
    "web_port_taken": ({}, "web port to be free",
                       ["is already in use by something other than this Langfuse stack", "listening: ",
                        "(pid ", "set langfuse_port to a free port"]),
    "too_little_disk": ({"langfuse_min_free_disk_gb": 1000000}, "enough free disk",
                        ["/var/lib/docker on too_little_disk has", "GiB free", "the Langfuse stack needs 1000000 GiB",
                         "lower langfuse_min_free_disk_gb"]),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("langfuse-render")
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    base = {**defaults, "role_path": str(ROLE), "out_dir": str(out),
            "ansible_python_interpreter": str(Path(__import__("sys").executable)),
            # What the secrets step hands over: the supplied secrets, else generated ones.
            "_langfuse_secrets": {**{k: "generated-" + k for k in SECRETS}, "encryption_key": "cd" * 32},
            "_langfuse_project_keys": {"public_key": "pk-lf-generated", "secret_key": "sk-lf-generated"},
            "langfuse_port": free_port(), "langfuse_min_free_disk_gb": 0}

    def host(case: dict) -> dict:
        merged = {**base, **unsafe(case)}
        if "langfuse_secrets" in case:
            merged["_langfuse_secrets"] = {**base["_langfuse_secrets"], **unsafe(case["langfuse_secrets"])}
        if case.get("langfuse_init_public_key"):
            merged["_langfuse_project_keys"] = unsafe({"public_key": case["langfuse_init_public_key"],
                                                      "secret_key": case["langfuse_init_secret_key"]})
        return merged

    hosts = {name: host(case) for name, case in CASES.items()}
    hosts.update({name: host(case) for name, (case, _, _) in REFUSALS.items()})
    inventory = {"all": {"hosts": hosts, "children": {
        "render": {"hosts": {name: None for name in CASES}},
        "preflight": {"hosts": {name: None for name in PREFLIGHT_PASSES + sorted(REFUSALS)}}}}}
    with socket.socket() as taken:  # something else on the web port
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        hosts["web_port_taken"]["langfuse_port"] = taken.getsockname()[1]
        report = run_playbook(HERE / "render_playbook.yml", inventory, out, check=True)
    return out, report


def env_files(rendered, case: str) -> dict[str, dict[str, str]]:
    out, report = rendered
    d = out / case
    assert (d / "compose.yml").exists(), json.dumps(report["stats"])
    return {svc: parse((d / f"{svc}.env").read_text(encoding="utf-8"), CLI_ENV) for svc in SERVICES}


def intended(rendered, case: str) -> dict[str, dict[str, str]]:
    out, _ = rendered
    return {svc: {k: str(v) for k, v in env.items()}
            for svc, env in json.loads((out / case / "intended.json").read_text(encoding="utf-8")).items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_compose_reads_back_exactly_what_the_role_meant(rendered, case):
    """Every variable of every env file, as Compose reads it, equals the value the role computed."""
    assert env_files(rendered, case) == intended(rendered, case)


def test_hostile_values_arrive_unchanged(rendered):
    env = env_files(rendered, "hostile")
    web, worker = env["langfuse-web"], env["langfuse-worker"]
    assert web["LANGFUSE_INIT_ORG_NAME"] == NAME
    assert web["LANGFUSE_INIT_PROJECT_NAME"] == TEXT  # leading and trailing spaces kept
    assert web["LANGFUSE_INIT_USER_NAME"] == HOSTILE_VARS["langfuse_admin_name"]
    assert web["LANGFUSE_INIT_USER_EMAIL"] == "o'brien+ops@example.com"
    assert web["NEXTAUTH_URL"] == worker["NEXTAUTH_URL"] == HOSTILE_VARS["langfuse_nextauth_url"]
    assert (web["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"], web["LANGFUSE_INIT_PROJECT_SECRET_KEY"]) == (PK, SK)
    assert web["SALT"] == worker["SALT"] == SECRETS["salt"]
    assert web["NEXTAUTH_SECRET"] == SECRETS["nextauth_secret"]
    assert web["LANGFUSE_INIT_USER_PASSWORD"] == SECRETS["admin_password"]
    assert web["REDIS_AUTH"] == env["redis"]["REDIS_AUTH"] == SECRETS["redis_password"]
    assert web["CLICKHOUSE_PASSWORD"] == env["clickhouse"]["CLICKHOUSE_PASSWORD"] == SECRETS["clickhouse_password"]
    assert env["minio"]["MINIO_ROOT_PASSWORD"] == SECRETS["minio_password"]
    for key in ("LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY", "LANGFUSE_S3_MEDIA_UPLOAD_SECRET_ACCESS_KEY",
                "LANGFUSE_S3_BATCH_EXPORT_SECRET_ACCESS_KEY"):
        assert web[key] == worker[key] == SECRETS["minio_password"]
    assert env["postgres"]["POSTGRES_PASSWORD"] == PASSWORD
    for svc in ("langfuse-web", "langfuse-worker"):
        for key, value in HOSTILE_VARS["langfuse_extra_env"].items():
            assert env[svc][key] == str(value), key


def test_database_url_carries_the_password_encoded(rendered):
    env = env_files(rendered, "hostile")
    url = env["langfuse-web"]["DATABASE_URL"]
    assert url == env["langfuse-worker"]["DATABASE_URL"]
    assert url == f"postgresql://postgres:{quote(PASSWORD, safe='')}@postgres:5432/postgres"
    parts = urlsplit(url)
    assert (parts.username, unquote(parts.password), parts.hostname, parts.port, parts.path) == (
        "postgres", PASSWORD, "postgres", 5432, "/postgres")


def test_no_variable_is_added_or_lost(rendered):
    """A value can never add a variable: the hostile files hold the defaults' names plus the extras."""
    plain, hostile = env_files(rendered, "defaults"), env_files(rendered, "hostile")
    extra = set(HOSTILE_VARS["langfuse_extra_env"])
    for svc in SERVICES:
        want = set(plain[svc]) | (extra if svc.startswith("langfuse-") else set())
        assert set(hostile[svc]) == want, svc


def test_nothing_is_templated_a_second_time(rendered):
    out, _ = rendered
    text = (out / "hostile" / "langfuse-web.env").read_text(encoding="utf-8")
    assert "{{ y }}" in text and "{{ 1 + 1 }}" in text and "from-the-cli" not in text


def test_default_files_stay_plain(rendered):
    """Generated values and defaults are written bare (or single-quoted), as before this change."""
    out, _ = rendered
    web = (out / "defaults" / "langfuse-web.env").read_text()
    assert "DATABASE_URL=postgresql://postgres:generated-postgres_password@postgres:5432/postgres\n" in web
    assert "LANGFUSE_INIT_PROJECT_NAME='Dev box'\n" in web and "HOSTNAME=0.0.0.0\n" in web
    assert '"' not in web.split("\n", 1)[1]


@pytest.mark.parametrize("case,port", [("defaults", None), ("any_address_opted_in", "0.0.0.0"),
                                       ("ipv6_loopback", "[::1]")])
def test_compose_publishes_where_asked(rendered, case, port):
    out, _ = rendered
    compose = yaml.safe_load((out / case / "compose.yml").read_text())
    ports = compose["services"]["langfuse-web"]["ports"]
    assert len(ports) == 1 and ports[0].startswith(f"{port or '127.0.0.1'}:")
    if case == "ipv6_loopback":
        assert compose["services"]["minio"]["ports"] == ["127.0.0.1:9090:9000"]


@pytest.mark.parametrize(("case", "host"), [("defaults", "127.0.0.1"), ("any_address_opted_in", "127.0.0.1"),
                                          ("ipv6_loopback", "[::1]")])
def test_tasks_reach_langfuse_web_where_it_is_bound(rendered, case, host):
    """llmops.devbox.connect_address: a wildcard on loopback, ::1 bracketed in the URL."""
    out, _ = rendered
    url = (out / case / "local_url.txt").read_text()
    port = yaml.safe_load((out / case / "compose.yml").read_text())["services"]["langfuse-web"]["ports"][0]
    assert url == f"http://{host}:{port.rsplit(':', 2)[-2]}"


@pytest.mark.parametrize("case", PREFLIGHT_PASSES)
def test_preflight_accepts(rendered, case):
    _, report = rendered
    assert failures(report, case) == []


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_preflight_refuses_naming_the_variable_and_the_fix(rendered, case):
    _, report = rendered
    variables, task_words, words = REFUSALS[case]
    failed = failures(report, case)
    assert failed, f"{case} was not refused"
    name, res = failed[0]
    assert task_words in name, (name, res.get("msg"))
    msg = flat(res.get("msg", ""))
    for word in words:
        assert flat(word) in msg, msg
    # No secret shows, anywhere in the result.
    shown = json.dumps(res, ensure_ascii=False)
    secrets = list((variables.get("langfuse_secrets") or {}).values()) + [variables.get("langfuse_init_secret_key")]
    for secret in secrets:
        if secret:
            assert secret not in shown and secret.split("\n")[0] not in shown


@pytest.mark.parametrize(("case", "allowed"), [("defaults", "litellm-haproxy"),
                                               ("connection_elsewhere", "llm-gateway.internal.example"),
                                               ("connection_off", None)])
def test_langfuse_allows_exactly_the_proxy_host(rendered, case, allowed):
    """Langfuse refuses internal hosts for LLM connections; the role allows the proxy's host and nothing wider."""
    env = env_files(rendered, case)
    for svc in ("langfuse-web", "langfuse-worker"):  # web registers and runs the playground, the worker evaluators
        opened = {k: v for k, v in env[svc].items() if k.startswith("LANGFUSE_LLM_CONNECTION_WHITELISTED")}
        assert opened == ({"LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST": allowed} if allowed else {}), svc
