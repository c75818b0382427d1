"""llmops.devbox.ops_diagnose_findings / ops_play_findings: from the evidence diagnose.yml gathers on a box
to the findings (problem and fix) a user reads, and the checks that passed.

The evidence has the shapes the probes give: rows of tasks/probe.yml, the JSON object
files/trace_path_probe.py prints inside the proxy container, masked log lines by container name and
the trace check of tasks/trace_check.yml."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError
from jinja2 import Undefined

from ansible_collections.llmops.devbox.plugins.filter.ops_diagnose import ops_diagnose_findings, ops_play_findings

ALL = ["langfuse", "litellm", "code_server"]
RETRY_AIO = ("Rerun ansible-playbook site.yml --tags litellm --limit aio: it gives the proxy the URL and key pair of "
             "its Langfuse box.")
RETRY_FLEET = ("Rerun ansible-playbook site.yml --tags litellm --limit box,central: it gives the proxy the URL and key "
               "pair of its Langfuse box.")
HEALTHY_CHECKS = [
    "every service up and healthy (2)",
    "LANGFUSE_HOST http://langfuse-web:3000 (not loopback, as expected)",
    "DNS langfuse-web -> 172.19.0.6",
    "Langfuse health 200 from inside the proxy (version 4.2.0)",
    "key pair accepted by Langfuse",
    "OTLP endpoint accepts exports",
    "Langfuse callback configured (langfuse)",
    "trace check OK: trace 5f1c visible in http://127.0.0.1:3000 after 4 s",
]


def row(service="langfuse-web", stack="langfuse", state="running", health="healthy", ok=True, note=""):
    return {"host": "aio", "stack": stack, "service": service, "state": state, "health": health, "version": "4.2.0",
            "listen": "127.0.0.1:3000", "ok": ok, "note": note}


def path(host="http://langfuse-web:3000", **over):
    """What trace_path_probe.py prints when everything works."""
    out = {
        "env": {"LANGFUSE_HOST": "set", "LANGFUSE_PUBLIC_KEY": "set", "LANGFUSE_SECRET_KEY": "set",
                "LITELLM_MASTER_KEY": "set", "DATABASE_URL": "missing"},
        "langfuse_host": host, "host_is_loopback": False, "public_key_ok": True, "secret_key_ok": True,
        "callbacks": {"callbacks": [], "success_callback": ["langfuse"], "failure_callback": ["langfuse"]},
        "dns": {"name": host.split("//")[1].split(":")[0], "addresses": ["172.19.0.6"], "error": ""},
        "health": {"status": 200, "version": "4.2.0", "error": ""},
        "auth": {"status": 200, "error": ""},
        "otlp": {"status": 200, "error": ""},
    }
    out.update(over)
    return out


def evidence(p=None, **over):
    out = {
        "rows": [row(), row("litellm-haproxy", "litellm")],
        "proxy": {"project": "litellm", "service": "litellm-blue", "name": "litellm-blue", "state": "running"},
        "path": path() if p is None else p, "path_error": "", "log_errors": {},
        "trace": {"ok": True, "line": "OK: trace 5f1c visible in http://127.0.0.1:3000 after 4 s"},
    }
    out.update(over)
    return out


def aio(ev=None, **kw):
    """An all-in-one box: Langfuse and the dev box on one machine."""
    args = dict(host="aio", selected=ALL, central="aio", langfuse_boxes=["aio"], dev_boxes=["aio"])
    args.update(kw)
    return ops_diagnose_findings(evidence() if ev is None else ev, **args)


def fleet(ev=None, host="box", **kw):
    """A dev box reporting to the Langfuse box 'central'."""
    args = dict(host=host, selected=["litellm", "code_server"], central="central", langfuse_boxes=["central"],
                dev_boxes=["box", "box2"], central_url="http://10.0.0.1:3000", central_bind="10.0.0.1")
    args.update(kw)
    return ops_diagnose_findings(evidence(path("http://10.0.0.1:3000")) if ev is None else ev, **args)


def only(result):
    (finding,) = result["findings"]
    return finding


# --- a healthy box and empty input ---------------------------------------------------------------------------------


def test_a_healthy_all_in_one_box_has_no_finding_and_lists_every_check():
    assert aio() == {"findings": [], "checks": HEALTHY_CHECKS}


def test_a_healthy_dev_box_of_a_fleet_expects_the_central_url():
    out = fleet()
    assert out["findings"] == []
    assert out["checks"][1] == "LANGFUSE_HOST http://10.0.0.1:3000 (not loopback, as expected)"


def test_empty_evidence_and_nothing_selected_give_only_the_service_check():
    assert ops_diagnose_findings({}, host="aio", selected=[]) == {
        "findings": [], "checks": ["every service up and healthy (0)"]}


def test_null_parts_of_the_evidence_count_as_empty():
    out = ops_diagnose_findings({"rows": None, "proxy": None, "path": None, "path_error": None, "log_errors": None,
                                 "trace": None}, host="aio", selected=["langfuse"])
    assert out == {"findings": [], "checks": ["every service up and healthy (0)"]}


# --- 1. services ---------------------------------------------------------------------------------------------------


def test_services_down_give_one_finding_per_stack_with_the_start_command():
    rows = [row("postgres", state="exited", health="-", ok=False),
            row("langfuse-web", health="unhealthy", ok=False),
            row("langfuse-worker", health="starting", ok=False, note="restarting"),
            row("minio", state="missing", health="-", ok=False, note="no container"),
            row("clickhouse")]
    out = aio(evidence(rows=rows))
    assert out["findings"][0] == {
        "host": "aio",
        "problem": "langfuse not healthy: postgres exited; langfuse-web running / unhealthy; "
                   "langfuse-worker running / starting (restarting); minio missing (no container)",
        "fix": "ansible-playbook playbooks/start.yml -e stack=langfuse --limit aio; if it stays unhealthy, read its "
               "log (playbooks/logs.yml -e stack=langfuse).",
    }
    assert not [c for c in out["checks"] if c.startswith("every service")]


def test_a_stack_whose_every_row_is_missing_is_to_be_deployed():
    rows = [row("/opt/litellm/compose.yml", "litellm", state="missing", health="-", ok=False,
                note="not deployed (no valid compose file)"),
            row("GET /health/readiness", "litellm", state="missing", health="failing", ok=False, note="")]
    assert aio(evidence(rows=rows))["findings"][0] == {
        "host": "aio",
        "problem": "litellm not healthy: /opt/litellm/compose.yml missing (not deployed (no valid compose file)); "
                   "GET /health/readiness missing",
        "fix": "Deploy it: ansible-playbook site.yml --limit aio.",
    }


def test_docker_down_says_how_to_start_docker():
    rows = [row("docker", "docker", state="down", health="-", ok=False, note="Cannot connect to the Docker daemon")]
    assert aio(evidence(rows=rows))["findings"][0] == {
        "host": "aio", "problem": "docker not healthy: docker down (Cannot connect to the Docker daemon)",
        "fix": "Docker does not answer: sudo systemctl start docker, or site.yml --tags docker --limit aio.",
    }


def test_stacks_keep_the_order_of_their_first_bad_row_and_are_told_apart_exactly():
    rows = [row("code-server@admin", "code_server", state="inactive", health="failing", ok=False),
            row("a", "Langfuse", state="exited", health="-", ok=False),
            row("b", "langfuse", state="exited", health="-", ok=False)]
    out = aio(evidence(rows=rows))
    assert [f["problem"] for f in out["findings"][:3]] == [
        "code_server not healthy: code-server@admin inactive", "Langfuse not healthy: a exited",
        "langfuse not healthy: b exited"]


# --- 2. Langfuse reachable by remote dev boxes ---------------------------------------------------------------------


def central(bind="127.0.0.1", **kw):
    args = dict(host="central", selected=["langfuse"], central="central", langfuse_boxes=["central", "central2"],
                dev_boxes=["box", "central2", "box2"], langfuse_bind=bind, langfuse_port=3000)
    args.update(kw)
    return ops_diagnose_findings({"rows": [row()]}, **args)


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.1.1", "localhost", "::1"])
def test_langfuse_on_loopback_is_flagged_on_the_first_langfuse_box(bind):
    assert central(bind, address="10.0.0.1") == {"findings": [{
        "host": "central",
        "problem": f"Langfuse listens on {bind}:3000 only: the dev boxes on other machines (box, box2) cannot send "
                   "traces to it.",
        "fix": "Set langfuse_bind_address to this box's private address in group_vars/langfuse.yml (its default IPv4 "
               "is 10.0.0.1), allow port 3000 from the dev boxes only (security group), then run site.yml.",
    }], "checks": ["every service up and healthy (1)"]}


def test_an_unknown_address_is_shown_as_a_question_mark():
    assert "(its default IPv4 is ?)" in only(central())["fix"]


@pytest.mark.parametrize("kw", [{"bind": "10.0.0.1"}, {"bind": "0.0.0.0"}, {"langfuse_external_url": "https://lf.example"},
                                {"bind": "localhost.example.com"}])
def test_langfuse_reachable_by_the_remote_dev_boxes_is_a_check(kw):
    bind = kw.pop("bind", "127.0.0.1")
    out = central(bind, **kw)
    assert out["findings"] == []
    assert out["checks"][1] == f"Langfuse listens on {bind}:3000 for the remote dev boxes"


@pytest.mark.parametrize("kw", [
    {"host": "central2", "central": "central2"},            # not the first Langfuse box
    {"dev_boxes": ["central", "central2"]},                  # no dev box on another machine
    {"selected": ["code_server"]},                           # Langfuse not looked at
])
def test_the_listening_check_only_runs_for_the_box_remote_dev_boxes_report_to(kw):
    assert central(**kw) == {"findings": [], "checks": ["every service up and healthy (1)"]}


# --- 3. the trace path inside the proxy container ------------------------------------------------------------------


def test_no_running_proxy_means_starting_litellm():
    out = aio(evidence({}, proxy={"name": "litellm-blue", "state": "exited"}, trace=None))
    assert out["findings"] == [{
        "host": "aio", "problem": "No running LiteLLM proxy container to test the trace path from.",
        "fix": "ansible-playbook playbooks/start.yml -e stack=litellm --limit aio; if it stays unhealthy, read its log "
               "(playbooks/logs.yml -e stack=litellm).",
    }]
    assert out["checks"] == ["every service up and healthy (2)"]


@pytest.mark.parametrize("error, said", [("OCI runtime exec failed: python3: not found", "OCI runtime exec failed: "
                                                                                          "python3: not found"),
                                         ("", "no output")])
def test_a_probe_that_did_not_run_asks_for_python3_in_the_image(error, said):
    assert only(aio(evidence({}, path_error=error, trace=None))) == {
        "host": "aio", "problem": f"The check inside litellm-blue did not run: {said}",
        "fix": "It needs python3 in the proxy image: docker exec litellm-blue python3 -V on the box.",
    }


def test_langfuse_variables_that_are_not_set_stop_every_trace():
    p = path()
    p["env"].update(LANGFUSE_HOST="missing", LANGFUSE_SECRET_KEY="empty")  # noqa: S106 - the probe's word for empty
    out = aio(evidence(p))
    assert out["findings"][:2] == [
        {"host": "aio", "problem": "LANGFUSE_HOST is missing in the proxy container litellm-blue: no traces are sent.",
         "fix": RETRY_AIO + " Keep litellm_langfuse_enabled true and do not override litellm_langfuse_* with empty "
                            "values."},
        {"host": "aio", "problem": "LANGFUSE_SECRET_KEY is empty in the proxy container litellm-blue: no traces are "
                                   "sent.",
         "fix": RETRY_AIO + " Keep litellm_langfuse_enabled true and do not override litellm_langfuse_* with empty "
                            "values."},
    ]


@pytest.mark.parametrize("bad", ["public_key_ok", "secret_key_ok"])
def test_keys_that_do_not_look_like_a_project_key_pair(bad):
    assert only(aio(evidence(path(**{bad: False})))) == {
        "host": "aio", "fix": RETRY_AIO,
        "problem": "The proxy's Langfuse keys do not look like a project key pair (pk-lf-... / sk-lf-...).",
    }


def test_the_key_shape_is_not_judged_for_a_key_that_is_not_set():
    p = path(public_key_ok=False)
    p["env"]["LANGFUSE_PUBLIC_KEY"] = "empty"
    assert [f["problem"] for f in aio(evidence(p))["findings"]] == [
        "LANGFUSE_PUBLIC_KEY is empty in the proxy container litellm-blue: no traces are sent."]


def test_localhost_as_langfuse_host_is_explained_with_the_service_name():
    finding = aio(evidence(path("http://localhost:3000", host_is_loopback=True)))["findings"][0]
    assert finding == {
        "host": "aio",
        "problem": "LANGFUSE_HOST is http://localhost:3000: inside the proxy container that is the container itself, "
                   "not the box.",
        "fix": f"Use http://langfuse-web:3000. Remove any litellm_langfuse_host override, then: {RETRY_AIO}",
    }


def test_loopback_without_a_known_langfuse_url_names_what_to_use():
    finding = fleet(evidence(path("http://127.0.0.1:3000", host_is_loopback=True)), central_url="")["findings"][0]
    assert finding["fix"] == ("Use the Langfuse service name or the central URL. Remove any litellm_langfuse_host "
                              f"override, then: {RETRY_FLEET}")


def test_a_proxy_sending_to_another_url_than_its_langfuse_box():
    assert fleet(evidence(path("http://10.0.0.99:3000")))["findings"][0] == {
        "host": "box", "problem": "The proxy sends traces to http://10.0.0.99:3000, but its Langfuse box central is at "
                                  "http://10.0.0.1:3000.",
        "fix": RETRY_FLEET + " If that box is reached under another name, set langfuse_external_url on central.",
    }


def test_a_trailing_slash_is_the_same_url_and_an_unknown_expectation_is_not_claimed():
    assert fleet(central_url="http://10.0.0.1:3000/")["findings"] == []
    out = fleet(central_url="")
    assert out["findings"] == []
    assert out["checks"][1] == "LANGFUSE_HOST http://10.0.0.1:3000 (not loopback)"


def test_the_retry_fix_without_a_langfuse_box_limits_to_the_box_only():
    out = fleet(evidence(path("http://10.0.0.1:3000", public_key_ok=False)), central="", langfuse_boxes=[])
    assert only(out)["fix"] == ("Rerun ansible-playbook site.yml --tags litellm --limit box: it gives the proxy the "
                                "URL and key pair of its Langfuse box.")


def test_no_langfuse_host_skips_the_network_checks():
    p = {k: v for k, v in path().items() if k not in ("dns", "health", "auth", "otlp")}
    p.update(langfuse_host="")
    p["env"]["LANGFUSE_HOST"] = "missing"
    out = aio(evidence(p))
    assert [f["problem"] for f in out["findings"]] == [
        "LANGFUSE_HOST is missing in the proxy container litellm-blue: no traces are sent."]
    assert out["checks"] == ["every service up and healthy (2)", "Langfuse callback configured (langfuse)",
                             "trace check OK: trace 5f1c visible in http://127.0.0.1:3000 after 4 s"]


def test_dns_failure_on_one_box_points_to_the_docker_network():
    p = path(dns={"name": "langfuse-web", "addresses": [], "error": "[Errno -2] Name or service not known"})
    out = aio(evidence(p), langfuse_network="lf_net")
    assert out["findings"] == [{
        "host": "aio",
        "problem": "langfuse-web does not resolve inside litellm-blue: [Errno -2] Name or service not known",
        "fix": "On one box the proxy reaches Langfuse by service name: it must be on the Docker network lf_net "
               "(litellm_langfuse_network) and Langfuse must run (playbooks/status.yml). " + RETRY_AIO,
    }]
    # Nothing behind DNS is claimed.
    assert not [c for c in out["checks"] if c.startswith(("DNS", "Langfuse health", "key pair", "OTLP"))]


def test_dns_failure_in_a_fleet_points_to_a_name_the_vpc_resolves():
    p = path("http://langfuse.internal:3000", dns={"name": "langfuse.internal", "addresses": [], "error": "NXDOMAIN"})
    assert fleet(evidence(p), central_url="http://langfuse.internal:3000")["findings"] == [{
        "host": "box", "problem": "langfuse.internal does not resolve inside litellm-blue: NXDOMAIN",
        "fix": "Containers do not see the box's /etc/hosts: use a name the VPC DNS resolves, or the IP, as "
               f"langfuse_external_url on central, then: {RETRY_FLEET}",
    }]


def test_connection_refused_on_one_box_means_langfuse_is_not_running():
    p = path(health={"status": -1, "version": "", "error": "ConnectionRefusedError: [Errno 111] Connection refused"})
    out = aio(evidence(p))
    assert out["findings"] == [{
        "host": "aio",
        "problem": "Cannot connect from litellm-blue to http://langfuse-web:3000: ConnectionRefusedError: [Errno 111] "
                   "Connection refused",
        "fix": "Langfuse is not running on this box: ansible-playbook playbooks/start.yml -e stack=langfuse --limit "
               "aio; if it stays unhealthy, read its log (playbooks/logs.yml -e stack=langfuse).",
    }]
    assert "DNS langfuse-web -> 172.19.0.6" in out["checks"]
    assert not [c for c in out["checks"] if c.startswith(("Langfuse health", "key pair", "OTLP"))]


def test_connection_refused_in_a_fleet_names_the_bind_address_and_the_port():
    p = path("http://10.0.0.1:3100", health={"status": -1, "version": "", "error": "TimeoutError: timed out"})
    assert fleet(evidence(p), central_url="http://10.0.0.1:3100", central_bind="127.0.0.1")["findings"] == [{
        "host": "box", "problem": "Cannot connect from litellm-blue to http://10.0.0.1:3100: TimeoutError: timed out",
        "fix": "Langfuse on central must listen on an address this box reaches (langfuse_bind_address, now 127.0.0.1) "
               "and its security group / firewall must allow port 3100 from box. Test on box: curl "
               "http://10.0.0.1:3100/api/public/health",
    }]


def test_an_unhealthy_langfuse_points_to_its_database_and_logs():
    p = path("http://10.0.0.1:3000",
             health={"status": 503, "version": "", "error": '{"status":"Database not available"}'})
    assert fleet(evidence(p))["findings"] == [{
        "host": "box",
        "problem": 'Langfuse at http://10.0.0.1:3000 answers HTTP 503 on /api/public/health: '
                   '{"status":"Database not available"}',
        "fix": "Langfuse is up but not healthy (often its database): playbooks/status.yml, then playbooks/logs.yml "
               "-e stack=langfuse --limit central.",
    }]


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_keys_point_to_recopying_the_key_pair(status):
    out = aio(evidence(path(auth={"status": status, "error": "Unauthorized"})), langfuse_secrets_dir="/srv/lf")
    assert out["findings"] == [{
        "host": "aio",
        "problem": f"Langfuse rejects the proxy's key pair (HTTP {status} on /api/public/projects): every export is "
                   "refused.",
        "fix": "The proxy holds keys that are not a key pair of this Langfuse project (rotated, or Langfuse "
               f"redeployed). {RETRY_AIO} (It copies /srv/lf/api-key.json of the Langfuse box.)",
    }]
    assert "key pair accepted by Langfuse" not in out["checks"]


def test_another_answer_to_the_key_check_points_to_the_web_log():
    assert fleet(evidence(path("http://10.0.0.1:3000", auth={"status": 500, "error": "Internal Server Error"})))[
        "findings"] == [{
            "host": "box", "problem": "GET /api/public/projects answers HTTP 500: Internal Server Error",
            "fix": "See the Langfuse web log: playbooks/logs.yml -e stack=langfuse --limit central.",
        }]


def test_no_otlp_endpoint_asks_for_a_newer_langfuse():
    assert aio(evidence(path(otlp={"status": 404, "error": "Not Found"})))["findings"] == [{
        "host": "aio",
        "problem": "Langfuse has no OTLP endpoint (POST /api/public/otel/v1/traces answers 404); the LiteLLM callback "
                   "only exports OTLP.",
        "fix": "Run Langfuse 3.63 or newer (role default: the v4 line, langfuse_version_line).",
    }]


def test_another_otlp_answer_is_neither_a_finding_nor_a_check():
    out = aio(evidence(path(otlp={"status": 400, "error": "Bad Request"})))
    assert out["findings"] == []
    assert "OTLP endpoint accepts exports" not in out["checks"]


def test_an_unknown_langfuse_version_is_a_question_mark():
    out = aio(evidence(path(health={"status": 200, "version": "", "error": ""})))
    assert "Langfuse health 200 from inside the proxy (version ?)" in out["checks"]


def test_an_unreadable_proxy_config():
    assert aio(evidence(path(callbacks={"error": "FileNotFoundError: /app/config.yaml"})))["findings"] == [{
        "host": "aio",
        "problem": "Cannot read the proxy config inside litellm-blue: FileNotFoundError: /app/config.yaml",
        "fix": RETRY_AIO,
    }]


@pytest.mark.parametrize("callbacks, said", [
    ({"callbacks": ["prometheus"], "success_callback": ["s3", "datadog"], "failure_callback": []}, "s3, datadog"),
    ({}, ""),
])
def test_a_proxy_config_without_a_langfuse_callback(callbacks, said):
    assert aio(evidence(path(callbacks=callbacks)))["findings"] == [{
        "host": "aio", "problem": f"The proxy config has no Langfuse callback (success_callback: {said}).",
        "fix": "Keep litellm_langfuse_enabled: true and no success_callback / callbacks in "
               f"litellm_litellm_settings_extra; then {RETRY_AIO}",
    }]


def test_the_configured_callbacks_are_listed_once():
    p = path(callbacks={"callbacks": ["langfuse_otel", "langfuse_otel"], "success_callback": ["langfuse", "Langfuse"]})
    assert "Langfuse callback configured (langfuse_otel, langfuse)" in aio(evidence(p))["checks"]


def test_failed_exports_in_the_proxy_log_are_shown_with_the_failed_trace_check():
    lines = ["05:02:39 - LiteLLM:ERROR: langfuse_sdk.py:739 - Langfuse export to http://x/api/public/otel failed",
             "ERROR: database timeout", "OTLP exporter failed", "Export error: ********"]
    ev = evidence(log_errors={"litellm-blue": lines, "litellm-green": ["langfuse failed"]},
                  trace={"ok": False, "line": "FAILED: the trace did not show up in Langfuse within 90 s"})
    assert aio(ev, since="30m")["findings"] == [
        {"host": "aio", "problem": "The proxy logged failed exports to Langfuse in the last 30m:",
         "lines": [lines[0], lines[2], lines[3]],
         "fix": "The findings above say why (401: keys; refused / timed out: reachability). Once fixed, new calls are "
                "traced again; these lines age out of the window (-e diagnose_since=5m)."},
        {"host": "aio", "problem": "Trace check FAILED: the trace did not show up in Langfuse within 90 s",
         "fix": "Fix the findings above first. Include the Langfuse box in --limit; set trace_check_model if the first "
                "model of the proxy cannot answer."},
    ]


def test_a_trace_check_that_did_not_run_is_neither_a_finding_nor_a_check():
    out = aio(evidence(trace=None))
    assert out["findings"] == []
    assert out["checks"] == HEALTHY_CHECKS[:-1]


def test_the_trace_path_is_only_looked_at_when_litellm_is_selected():
    out = aio(evidence(path(host_is_loopback=True), trace={"ok": False, "line": "FAILED"}), selected=["langfuse"])
    assert out == {"findings": [], "checks": ["every service up and healthy (2)"]}


# --- 4. Langfuse's own errors --------------------------------------------------------------------------------------


def test_langfuse_container_errors_are_findings_sorted_by_container():
    ev = evidence(log_errors={"langfuse-langfuse-worker-1": ["worker ERROR clickhouse"],
                              "langfuse-langfuse-web-1": ["web ERROR a", "web ERROR b"],
                              "Langfuse-web-1": ["not the project"], "langfusex-1": ["not the project"]})
    fix = ("The worker writes traces to ClickHouse and MinIO, the web side reads Postgres and ClickHouse: check them "
           "with playbooks/status.yml, then the full log (playbooks/logs.yml -e stack=langfuse).")
    assert aio(ev, selected=["langfuse"])["findings"] == [
        {"host": "aio", "problem": "langfuse-langfuse-web-1 logged errors in the last 15m:",
         "lines": ["web ERROR a", "web ERROR b"], "fix": fix},
        {"host": "aio", "problem": "langfuse-langfuse-worker-1 logged errors in the last 15m:",
         "lines": ["worker ERROR clickhouse"], "fix": fix},
    ]


def test_the_evidence_is_not_changed():
    ev = evidence(path(host_is_loopback=True), log_errors={"langfuse-web-1": ["x"]})
    before = copy.deepcopy(ev)
    aio(ev)
    assert ev == before


# --- wrong shapes --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ev, message", [
    ([], "the evidence (input) must be a mapping, got list"),
    ({"rowz": []}, "unknown evidence key(s) rowz"),
    ({"rows": "x"}, "evidence.rows must be a list, got str"),
    ({"rows": ["x"]}, "evidence.rows[0] must be a mapping"),
    ({"proxy": []}, "evidence.proxy must be a mapping, got list"),
    ({"log_errors": ["x"]}, "evidence.log_errors must be a mapping, got list"),
    ({"trace": "OK"}, "evidence.trace must be a mapping, got str"),
])
def test_wrong_evidence_shapes_are_refused_with_what_is_wrong(ev, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        ops_diagnose_findings(ev, host="aio", selected=ALL)


def test_wrong_argument_shapes_are_refused():
    with pytest.raises(AnsibleFilterError, match="host must be"):
        ops_diagnose_findings({}, host="", selected=ALL)
    with pytest.raises(AnsibleFilterError, match="selected must be a list"):
        ops_diagnose_findings({}, host="aio", selected="langfuse")
    with pytest.raises(AnsibleFilterError, match=r"evidence.path.dns.addresses must be a list"):
        aio(evidence(path(dns={"name": "x", "addresses": "10.0.0.1", "error": ""})))
    with pytest.raises(AnsibleFilterError, match=r"evidence.log_errors\['litellm-blue'\] must be a list"):
        aio(evidence(log_errors={"litellm-blue": "one line"}))


# --- ops_play_findings ---------------------------------------------------------------------------------------------


def test_play_findings_keep_play_order_and_name_a_box_that_did_not_answer():
    one = {"host": "a", "problem": "p", "fix": "f"}
    hostvars = {"a": {"_ops_findings": [one]}, "b": {"other": 1}, "c": {"_ops_findings": []},
                "d": {"_ops_findings": Undefined()}}
    assert ops_play_findings(["b", "a", "c", "d", "e"], hostvars) == [
        {"host": "b", "problem": "did not answer or a check failed (see the error above).",
         "fix": "Check SSH access (ansible -m ping b) and sudo, then rerun."},
        one,
        {"host": "d", "problem": "did not answer or a check failed (see the error above).",
         "fix": "Check SSH access (ansible -m ping d) and sudo, then rerun."},
        {"host": "e", "problem": "did not answer or a check failed (see the error above).",
         "fix": "Check SSH access (ansible -m ping e) and sudo, then rerun."},
    ]
    assert ops_play_findings([], {}) == []


def test_play_findings_refuse_wrong_shapes():
    with pytest.raises(AnsibleFilterError, match="the input must be the list of hosts"):
        ops_play_findings("a", {})
    with pytest.raises(AnsibleFilterError, match="hostvars must be a mapping"):
        ops_play_findings(["a"], [])
    with pytest.raises(AnsibleFilterError, match="_ops_findings of a must be a list"):
        ops_play_findings(["a"], {"a": {"_ops_findings": "none"}})
