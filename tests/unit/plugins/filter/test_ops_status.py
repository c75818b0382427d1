"""llmops.devbox.ops_status_rows / ops_play_rows / ops_status_table: from what tasks/probe.yml registers
on a box to the rows and the table status.yml prints.

The probe results have the shapes Ansible registers: `docker ps --format '{json...}'` lines, the looped
`docker compose config --services`, ansible.builtin.uri, ansible.builtin.systemd_service and command results
(skipped ones too)."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from jinja2 import Undefined

from ansible_collections.llmops.devbox.plugins.filter.ops_status import (
    container_health,
    image_tag,
    ops_play_rows,
    ops_status_rows,
    ops_status_table,
    published,
)

LANGFUSE = ["langfuse-web", "langfuse-worker", "postgres", "clickhouse", "minio", "redis"]
LITELLM = ["litellm-haproxy", "litellm-blue", "litellm-green", "litellm-postgres"]
SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False", "false_condition": "x"}


def container(project, service, state="running", status="Up 2 hours (healthy)", image=None, ports="", name=None):
    """One line of docker ps with the probe's --format, parsed."""
    return {"project": project, "service": service, "name": name or f"{project}-{service}-1",
            "image": image or f"{service}:1.0", "state": state, "status": status, "ports": ports}


def ps(*containers, rc=0):
    return {"changed": False, "rc": rc, "cmd": ["docker", "ps"], "stderr": "", "stderr_lines": [],
            "stdout": "\n".join(json.dumps(c) for c in containers),
            "stdout_lines": [json.dumps(c) for c in containers]}


def compose(langfuse=None, litellm=None):
    """The looped `docker compose config --services`; None is a failed one (no compose file)."""
    results = []
    for stack, services in (("langfuse", langfuse), ("litellm", litellm)):
        item = {"stack": stack, "dir": f"/opt/{stack}"}
        if services is None:
            results.append({"rc": 1, "stdout_lines": [], "stderr": "no configuration file provided: not found",
                            "item": item, "failed": False})
        else:
            results.append({"rc": 0, "stdout_lines": list(services), "item": item})
    return {"changed": False, "msg": "All items completed", "results": results}


def uri(status, body=None, msg="OK (unknown bytes)"):
    out = {"changed": False, "status": status, "msg": msg, "url": "http://127.0.0.1/x", "redirected": False}
    if body is not None:
        out["json"] = body
    return out


REFUSED = uri(-1, msg="Status code was -1 and not [200, 500, 502, 503]: Request failed: <urlopen error [Errno 111] "
                      "Connection refused>")
CODE_SERVER = {
    "code_server_unit": {"changed": False, "name": "code-server@admin",
                         "status": {"ActiveState": "active", "LoadState": "loaded", "SubState": "running"}},
    "code_server_health": uri(200, {"status": "alive", "lastHeartbeat": 0}),
    "code_server_version": {"rc": 0, "stdout": "4.96.4 7b2e9ec9a with Code 1.96.4", "stdout_lines": ["4.96.4"]},
    "code_server_port": {"changed": False, "ports": [{"host": "127.0.0.1", "port": 8080, "listeners": [
        {"address": "127.0.0.1", "clashes": True, "pid": 812, "process": "node", "cgroup": ""},
        {"address": "::1", "clashes": False, "pid": 812, "process": "node", "cgroup": ""}]}]},
}


def healthy_probe(**over):
    probe = {
        "ps": ps(*[container("langfuse", s, ports="127.0.0.1:3000->3000/tcp" if s == "langfuse-web" else "")
                   for s in LANGFUSE],
                 container("litellm", "litellm-haproxy", status="Up 1 hour", image="haproxy:3.0.11",
                           ports="127.0.0.1:4000->4000/tcp, [::1]:4000->4000/tcp"),
                 container("litellm", "litellm-blue", image="ghcr.io/berriai/litellm-database:main-v1.108.7-stable"),
                 container("litellm", "litellm-postgres", image="postgres:16.4"),
                 container("other", "unrelated")),
        "compose_services": compose(LANGFUSE, LITELLM),
        "langfuse_health": uri(200, {"status": "OK", "version": "4.2.0"}),
        "litellm_health": uri(200, {"status": "healthy", "litellm_version": "1.108.7", "db": "connected"}),
        **CODE_SERVER,
    }
    probe.update(over)
    return probe


def rows(probe, selected=("langfuse", "litellm", "code_server"), **kw):
    kw.setdefault("active_slot", "litellm-blue")
    return ops_status_rows(probe, host="aio", selected=list(selected), **kw)["rows"]


def short(result_rows):
    """(stack, service, state, health, version, listen, ok, note) of each row."""
    return [tuple(r[k] for k in ("stack", "service", "state", "health", "version", "listen", "ok", "note"))
            for r in result_rows]


def test_a_healthy_all_in_one_box():
    out = ops_status_rows(healthy_probe(), host="aio", selected=["langfuse", "litellm", "code_server"],
                          active_slot="litellm-blue")
    assert all(r["host"] == "aio" for r in out["rows"])
    assert short(out["rows"]) == [
        ("langfuse", "langfuse-web", "running", "healthy", "1.0", "127.0.0.1:3000", True, ""),
        ("langfuse", "langfuse-worker", "running", "healthy", "1.0", "-", True, ""),
        ("langfuse", "postgres", "running", "healthy", "1.0", "-", True, ""),
        ("langfuse", "clickhouse", "running", "healthy", "1.0", "-", True, ""),
        ("langfuse", "minio", "running", "healthy", "1.0", "-", True, ""),
        ("langfuse", "redis", "running", "healthy", "1.0", "-", True, ""),
        ("langfuse", "GET /api/public/health", "HTTP 200", "ok", "4.2.0", "http://127.0.0.1:3000", True, ""),
        ("litellm", "litellm-haproxy", "running", "-", "3.0.11", "127.0.0.1:4000 [::1]:4000", True, ""),
        ("litellm", "litellm-postgres", "running", "healthy", "16.4", "-", True, ""),
        ("litellm", "litellm-blue (serving)", "running", "healthy", "main-v1.108.7-stable", "-", True, "serving"),
        ("litellm", "litellm-green (idle)", "not created", "-", "-", "-", True, "idle"),
        ("litellm", "GET /health/readiness", "HTTP 200", "ok", "1.108.7", "http://127.0.0.1:4000", True, ""),
        ("code_server", "code-server@admin", "active", "healthy", "4.96.4", "127.0.0.1:8080 [::1]:8080", True, ""),
    ]
    assert [c["name"] for c in out["containers"]][-1] == "other-unrelated-1"
    assert len(out["containers"]) == 10


def test_docker_down_is_one_row_with_its_error_and_no_container_rows():
    probe = healthy_probe(ps={"rc": 1, "stdout_lines": [], "msg": "non-zero return code",
                              "stderr": "  Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the "
                                        "docker daemon running?  "},
                          langfuse_health=REFUSED, litellm_health=uri(503, "text", msg="Status code was 503"))
    out = ops_status_rows(probe, host="aio", selected=["langfuse", "litellm"], active_slot="litellm-blue")
    assert out["containers"] == []
    assert short(out["rows"]) == [
        ("docker", "docker", "down", "-", "-", "-", False,
         "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docke"),
        ("langfuse", "GET /api/public/health", "HTTP -1", "failing", "-", "http://127.0.0.1:3000", False,
         "Status code was -1 and not [200, 500, 502, 503]: Request failed: <urlopen error "),
        ("litellm", "GET /health/readiness", "HTTP 503", "failing", "-", "http://127.0.0.1:4000", False,
         "Status code was 503"),
    ]


def test_docker_missing_says_what_the_command_module_said():
    probe = {"ps": {"rc": 2, "failed": True, "msg": "[Errno 2] No such file or directory: b'docker'"}}
    assert short(rows(probe, selected=["litellm"])) == [
        ("docker", "docker", "down", "-", "-", "-", False, "[Errno 2] No such file or directory: b'docker'"),
        ("litellm", "GET /health/readiness", "HTTP -1", "failing", "-", "http://127.0.0.1:4000", False, ""),
    ]


def test_a_skipped_docker_ps_is_not_docker_down():
    out = ops_status_rows({"ps": SKIPPED, "compose_services": {"results": [dict(SKIPPED, item={"stack": "langfuse"})]},
                           **CODE_SERVER}, host="box", selected=["code_server"], code_server_unit="code-server@dev")
    assert out["containers"] == []
    assert short(out["rows"]) == [
        ("code_server", "code-server@dev", "active", "healthy", "4.96.4", "127.0.0.1:8080 [::1]:8080", True, "")]


def test_services_without_container_and_containers_outside_the_compose_file():
    probe = healthy_probe(
        ps=ps(container("langfuse", "langfuse-web", status="Up 3 minutes (health: starting)",
                        image="langfuse/langfuse:3"),
              container("langfuse", "langfuse-worker", status="Up 3 minutes (unhealthy)",
                        image="localhost:5000/worker"),
              container("langfuse", "postgres", state="exited", status="Exited (1) 2 minutes ago", image="postgres"),
              container("langfuse", "orphan", image="x/y/z:")),
        compose_services=compose(["langfuse-web", "langfuse-worker", "postgres", "clickhouse"], []))
    assert short(rows(probe, selected=["langfuse"])) == [
        ("langfuse", "langfuse-web", "running", "starting", "3", "-", False, ""),
        ("langfuse", "langfuse-worker", "running", "unhealthy", "untagged", "-", False, ""),
        ("langfuse", "postgres", "exited", "-", "untagged", "-", False, ""),
        ("langfuse", "clickhouse", "missing", "-", "-", "-", False, "no container"),
        ("langfuse", "orphan", "running", "healthy", "", "-", True, ""),
        ("langfuse", "GET /api/public/health", "HTTP 200", "ok", "4.2.0", "http://127.0.0.1:3000", True, ""),
    ]


def test_a_stack_without_a_valid_compose_file_is_not_deployed():
    probe = healthy_probe(ps=ps(container("litellm", "litellm-blue")), compose_services=compose(None, None))
    assert short(rows(probe, selected=["langfuse", "litellm"], langfuse_dir="/srv/lf", litellm_dir="/srv/ll",
                      active_slot="")) == [
        ("langfuse", "/srv/lf/compose.yml", "missing", "-", "-", "-", False, "not deployed (no valid compose file)"),
        ("langfuse", "GET /api/public/health", "HTTP 200", "ok", "4.2.0", "http://127.0.0.1:3000", True, ""),
        ("litellm", "/srv/ll/compose.yml", "missing", "-", "-", "-", False, "not deployed (no valid compose file)"),
        ("litellm", "litellm-blue", "running", "healthy", "1.0", "-", True, ""),
        ("litellm", "GET /health/readiness", "HTTP 200", "ok", "1.108.7", "http://127.0.0.1:4000", True, ""),
    ]


def litellm_rows(containers, active, services=("litellm-haproxy", "litellm-blue", "litellm-green")):
    probe = healthy_probe(ps=ps(*containers), compose_services=compose([], list(services)))
    return short(rows(probe, selected=["litellm"], active_slot=active))[:-1]


def test_the_serving_slot_must_run_and_the_idle_one_may_be_stopped():
    assert litellm_rows([container("litellm", "litellm-haproxy"),
                         container("litellm", "litellm-blue", state="exited", status="Exited (0) 1 hour ago")],
                        "litellm-green") == [
        ("litellm", "litellm-haproxy", "running", "healthy", "1.0", "-", True, ""),
        ("litellm", "litellm-blue (idle)", "exited", "-", "1.0", "-", True, "idle"),
        ("litellm", "litellm-green (serving)", "missing", "-", "-", "-", False, "serving"),
    ]


def test_a_serving_slot_that_is_not_running_is_not_ok():
    assert litellm_rows([container("litellm", "litellm-haproxy"),
                         container("litellm", "litellm-green", state="restarting",
                                   status="Restarting (1) 5 seconds ago")],
                        "litellm-green")[2] == (
        "litellm", "litellm-green (serving)", "restarting", "-", "1.0", "-", False, "serving")


def test_without_a_serving_file_slots_are_plain_services():
    assert litellm_rows([container("litellm", "litellm-blue"),
                         container("litellm", "litellm-green", status="Up 1 second")], "") == [
        ("litellm", "litellm-haproxy", "missing", "-", "-", "-", False, "no container"),
        ("litellm", "litellm-blue", "running", "healthy", "1.0", "-", True, ""),
        ("litellm", "litellm-green", "running", "-", "1.0", "-", True, ""),
    ]


def test_a_serving_file_naming_an_unknown_slot_is_a_row():
    assert litellm_rows([container("litellm", "litellm-blue"), container("litellm", "litellm-blue", name="dup")],
                        "litellm-red", services=()) == [
        ("litellm", "litellm-blue (idle)", "running", "healthy", "1.0", "-", True, "idle"),
        ("litellm", "litellm-red", "missing", "-", "-", "-", False, "serving slot has no container"),
    ]


def test_the_slot_pattern_and_ports_are_taken_as_given():
    probe = healthy_probe(ps=ps(container("ll", "proxy-a"), container("ll", "sidecar")),
                          compose_services=compose([], ["proxy-a", "proxy-b", "sidecar"]))
    out = rows(probe, selected=["litellm"], active_slot="proxy-a", slot_regex="^proxy-(a|b)$", litellm_project="ll",
               litellm_port=4100)
    assert short(out) == [
        ("litellm", "sidecar", "running", "healthy", "1.0", "-", True, ""),
        ("litellm", "proxy-a (serving)", "running", "healthy", "1.0", "-", True, "serving"),
        ("litellm", "proxy-b (idle)", "not created", "-", "-", "-", True, "idle"),
        ("litellm", "GET /health/readiness", "HTTP 200", "ok", "1.108.7", "http://127.0.0.1:4100", True, ""),
    ]


@pytest.mark.parametrize("result, expected", [
    (uri(200, {"status": "OK"}), ("HTTP 200", "ok", "-", True, "")),
    (uri(200, "not json"), ("HTTP 200", "ok", "-", True, "")),
    (uri(500, {"version": "4.2.0"}, msg="Status code was 500 and not [200]: HTTP Error 500"),
     ("HTTP 500", "failing", "4.2.0", False, "Status code was 500 and not [200]: HTTP Error 500")),
    (SKIPPED, ("HTTP -1", "failing", "-", False, "")),
])
def test_the_langfuse_health_row(result, expected):
    (health,) = [r for r in rows(healthy_probe(langfuse_health=result), selected=["langfuse"])
                 if r["service"] == "GET /api/public/health"]
    assert (health["state"], health["health"], health["version"], health["ok"], health["note"]) == expected


def test_code_server_not_installed_and_not_answering():
    probe = {"code_server_unit": {"changed": False, "name": "code-server@admin",
                                  "status": {"ActiveState": "inactive", "LoadState": "not-found"}},
             "code_server_health": REFUSED,
             "code_server_version": {"rc": 127, "stdout": "", "stderr": "code-server: not found", "failed": False},
             "code_server_port": {"changed": False, "ports": [{"host": "127.0.0.1", "port": 8080, "listeners": []}]}}
    assert short(rows(probe, selected=["code_server"])) == [
        ("code_server", "code-server@admin", "missing", "failing", "-", "-", False,
         "GET /healthz: Status code was -1 and not [200, 500, 502, 503]: Request fai")]


def test_code_server_stopped_but_a_version_line_in_other_output():
    probe = {"code_server_unit": {"failed": True, "msg": "Service is in unknown state"},
             "code_server_health": uri(200, {}),
             "code_server_version": {"rc": 0, "stdout": "code-server\nv4.20.1 abc\n1.2.3"},
             "code_server_port": {"changed": False, "ports": [{"port": 8080, "listeners": [
                 {"address": "0.0.0.0"}, {"address": "0.0.0.0"}, {}, "odd"]}]}}
    assert short(rows(probe, selected=["code_server"])) == [
        ("code_server", "code-server@admin", "missing", "healthy", "4.20.1", "0.0.0.0:8080", False, "")]


def test_nothing_selected_gives_no_rows_and_empty_input_is_fine():
    assert ops_status_rows({}, host="box", selected=[]) == {"rows": [], "containers": []}


@pytest.mark.parametrize("image, tag", [
    ("ghcr.io/berriai/litellm-database:main-v1.108.7-stable", "main-v1.108.7-stable"),
    ("redis:7.2.4-alpine", "7.2.4-alpine"),
    ("postgres", "untagged"),
    ("localhost:5000/worker", "untagged"),
    ("localhost:5000/worker:2", "2"),
    ("docker.io/library/postgres:16@sha256:abc", "16@sha256"),
    ("x/y/z:", ""),
])
def test_image_tag(image, tag):
    assert image_tag(image) == tag


def test_a_long_tag_is_cut_to_28_characters():
    probe = healthy_probe(ps=ps(container("langfuse", "web", image="img:" + "v" * 40)),
                          compose_services=compose([], []))
    assert rows(probe, selected=["langfuse"])[0]["version"] == "v" * 28


@pytest.mark.parametrize("status, health", [
    ("Up 2 hours (healthy)", "healthy"), ("Up 1 minute (unhealthy)", "unhealthy"),
    ("Up 5 seconds (health: starting)", "starting"), ("Up 2 hours", "-"), ("Exited (0) 1 hour ago", "-"), (None, "-"),
])
def test_container_health(status, health):
    assert container_health(status) == health


@pytest.mark.parametrize("ports, listen", [
    ("", "-"), (None, "-"), ("5432/tcp", "-"),
    ("127.0.0.1:3000->3000/tcp", "127.0.0.1:3000"),
    ("5432/tcp, 0.0.0.0:4000->4000/tcp, :::4000->4000/tcp", "0.0.0.0:4000 :::4000"),
    ("127.0.0.1:3000->3000/tcp, 127.0.0.1:3000->3000/udp", "127.0.0.1:3000"),
])
def test_published(ports, listen):
    assert published(ports) == listen


@pytest.mark.parametrize("probe, kw, message", [
    ([], {}, "the input must be a mapping of the probe's registered results"),
    ({"docker": {}}, {}, "unknown probe result\\(s\\) docker"),
    ({"ps": "up"}, {}, "ps must be a registered task result"),
    ({"ps": {"rc": 0, "stdout_lines": ["not json"]}}, {}, r"ps.stdout_lines\[0\] is not a JSON object"),
    ({"ps": {"rc": 0, "stdout_lines": ["[1]"]}}, {}, r"ps.stdout_lines\[0\] is not a JSON object"),
    ({"ps": {"rc": 0, "stdout_lines": "x"}}, {}, "ps.stdout_lines must be a list of lines"),
    ({"compose_services": {"results": "x"}}, {}, "compose_services.results must be a list"),
    ({}, {"selected": "litellm"}, "selected must be a list of stacks"),
    ({}, {"host": ""}, "host must be the box's inventory name"),
    ({}, {"slot_regex": "("}, "slot_regex is not a regular expression"),
])
def test_wrong_shapes_are_refused(probe, kw, message):
    args = dict(host="box", selected=["litellm"])
    args.update(kw)
    with pytest.raises(AnsibleFilterError, match=message):
        ops_status_rows(probe, **args)


# --- ops_play_rows -------------------------------------------------------------------------------------------------


def a_row(host, service="litellm-haproxy", ok=True, note=""):
    return {"host": host, "stack": "litellm", "service": service, "state": "running", "health": "healthy",
            "version": "3.0.11", "listen": "127.0.0.1:4000", "ok": ok, "note": note}


NO_ANSWER = {"stack": "-", "service": "-", "state": "no answer", "health": "-", "version": "-", "listen": "-",
             "ok": False, "note": "unreachable or failed: see the error above"}


def test_play_rows_keep_play_order_and_add_a_row_for_a_box_that_did_not_answer():
    hostvars = {"alice": {"_ops_rows": [a_row("alice"), a_row("alice", "litellm-blue")]}, "bob": {},
                "carol": {"_ops_rows": []}, "dave": {"_ops_rows": Undefined()}}
    assert ops_play_rows(["bob", "alice", "carol", "dave", "eve"], hostvars) == [
        dict(NO_ANSWER, host="bob"), a_row("alice"), a_row("alice", "litellm-blue"), dict(NO_ANSWER, host="dave"),
        dict(NO_ANSWER, host="eve")]
    assert ops_play_rows([], {}) == []


def test_play_rows_refuse_wrong_shapes():
    with pytest.raises(AnsibleFilterError, match="the input must be the list of hosts"):
        ops_play_rows({"a": 1}, {})
    with pytest.raises(AnsibleFilterError, match="hostvars must be a mapping"):
        ops_play_rows(["a"], None)
    with pytest.raises(AnsibleFilterError, match="_ops_rows of a must be a list"):
        ops_play_rows(["a"], {"a": {"_ops_rows": {"x": 1}}})


# --- ops_status_table ----------------------------------------------------------------------------------------------

HEADER = ("HOST                 STACK        SERVICE                  STATE       HEALTH    VERSION"
          "                      LISTENING")


def test_the_table_has_a_header_and_one_aligned_line_per_row():
    assert ops_status_table([a_row("alice"), a_row("bob", "litellm-blue", ok=False, note="no container")]) == [
        HEADER,
        "alice                litellm      litellm-haproxy          running     healthy   3.0.11                       "
        "127.0.0.1:4000",
        "bob                  litellm      litellm-blue             running     healthy   3.0.11                       "
        "127.0.0.1:4000   <-- no container",
    ]


def test_a_row_that_is_not_ok_without_a_note_says_not_ok_and_long_values_push_the_columns():
    row = dict(a_row("carol-with-a-very-long-host-name", "a-very-long-service-name-that-overflows"), ok=False,
               version=1, listen=None)
    assert ops_status_table([row])[1] == (
        "carol-with-a-very-long-host-name litellm      a-very-long-service-name-that-overflows running     healthy   "
        "1                            None   <-- NOT OK")


def test_the_no_answer_row_and_an_empty_table():
    assert ops_status_table([dict(NO_ANSWER, host="bob")])[1] == (
        "bob                  -            -                        no answer   -         -                            "
        "-   <-- unreachable or failed: see the error above")
    assert ops_status_table([]) == [HEADER]


def test_the_table_refuses_rows_of_the_wrong_shape():
    with pytest.raises(AnsibleFilterError, match="the input must be a list of rows"):
        ops_status_table("rows")
    with pytest.raises(AnsibleFilterError, match="row 0 must be a mapping"):
        ops_status_table(["alice"])
    row = a_row("alice")
    del row["listen"], row["note"]
    with pytest.raises(AnsibleFilterError, match="row 0 has no listen, note"):
        ops_status_table([row])
