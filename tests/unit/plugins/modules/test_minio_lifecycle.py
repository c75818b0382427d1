"""llmops.devbox.minio_lifecycle: one expiry rule with our ID, every other rule untouched; and the module end to end
against a fake `docker` whose `mc` keeps the bucket's rules in a file."""

from __future__ import annotations

import json
import stat
import sys

import pytest

from ansible_collections.llmops.devbox.plugins.module_utils._stack import StackError
from ansible_collections.llmops.devbox.plugins.modules.minio_lifecycle import desired_rules, parse_export
from ansible_collections.llmops.devbox.tests.unit.httpserver import run_module

ID = "llmops-expire-events"


def rule(rule_id=ID, prefix="events/", days=30, status="Enabled"):
    return {"ID": rule_id, "Status": status, "Filter": {"Prefix": prefix}, "Expiration": {"Days": days}}


MEDIA = {"ID": "media-tier", "Status": "Enabled", "Filter": {"Prefix": "media/"},
         "Transition": {"Days": 90, "StorageClass": "COLD"}}
OLD_STYLE = {"ID": "legacy", "Status": "Disabled", "Prefix": "tmp/", "Expiration": {"Days": 1}}


# --- desired_rules -----------------------------------------------------------------------------


def test_add_to_an_empty_configuration():
    assert desired_rules([], ID, "events/", 30) == [rule()]


def test_other_rules_are_kept_untouched():
    assert desired_rules([MEDIA, OLD_STYLE], ID, "events/", 30) == [MEDIA, OLD_STYLE, rule()]


def test_no_change_when_equal():
    assert desired_rules([MEDIA, rule(), OLD_STYLE], ID, "events/", 30) is None


def test_no_change_with_the_prefix_outside_the_filter():
    # An older mc prints the prefix at the rule's top level.
    mine = {"ID": ID, "Status": "Enabled", "Prefix": "events/", "Expiration": {"Days": 30}}
    assert desired_rules([mine], ID, "events/", 30) is None


@pytest.mark.parametrize("have", [
    rule(days=7),
    rule(prefix="media/"),
    rule(status="Disabled"),
    {"ID": ID, "Status": "Enabled", "Filter": {"Prefix": "events/"}},
    {"ID": ID, "Status": "Enabled", "Expiration": {"Days": 30}},
])
def test_change_when_days_prefix_or_status_differ(have):
    assert desired_rules([MEDIA, have], ID, "events/", 30) == [MEDIA, rule()]


def test_duplicates_of_our_id_collapse_to_one():
    assert desired_rules([rule(), MEDIA, rule()], ID, "events/", 30) == [MEDIA, rule()]
    assert desired_rules([rule(days=1), rule(days=2)], ID, "events/", 30) == [rule()]


def test_a_rule_with_another_id_on_the_same_prefix_is_not_ours():
    theirs = rule(rule_id="someone-else")
    assert desired_rules([theirs], ID, "events/", 30) == [theirs, rule()]


def test_days_zero_removes_ours():
    assert desired_rules([MEDIA, rule(), OLD_STYLE], ID, "events/", 0) == [MEDIA, OLD_STYLE]
    assert desired_rules([rule(), rule(days=3)], ID, "events/", 0) == []


def test_days_zero_without_ours_changes_nothing():
    assert desired_rules([MEDIA], ID, "events/", 0) is None
    assert desired_rules([], ID, "events/", 0) is None


def test_the_current_rules_are_not_changed_in_place():
    current = [MEDIA, rule(days=7)]
    snapshot = json.loads(json.dumps(current))
    desired_rules(current, ID, "events/", 30)
    assert current == snapshot


# --- parse_export ------------------------------------------------------------------------------


def success(rules):
    return json.dumps({"status": "success", "target": "local/langfuse", "config": {"Rules": rules},
                       "updatedAt": "2026-12-01T20:30:00Z"})


def error(message, cause):
    return json.dumps({"status": "error", "error": {"message": message, "cause": {"message": cause, "error": {}},
                                                    "type": "fatal"}})


def test_parse_success():
    assert parse_export(0, success([rule(), MEDIA]) + "\n") == [rule(), MEDIA]


def test_parse_success_takes_the_last_line():
    assert parse_export(0, "mc: something said first\n" + success([rule()])) == [rule()]


@pytest.mark.parametrize("config", [{}, {"Rules": None}, None])
def test_parse_success_without_rules(config):
    assert parse_export(0, json.dumps({"status": "success", "config": config})) == []


@pytest.mark.parametrize("out", [
    error("Unable to get lifecycle configuration", "The lifecycle configuration not set for this bucket"),
    error("Unable to get lifecycle", "lifecycle configuration not set"),
    json.dumps({"status": "error",
                "error": {"message": "x", "cause": {"error": {"Code": "NoSuchLifecycleConfiguration"}}}}),
])
def test_parse_no_lifecycle_configuration_is_no_rules(out):
    assert parse_export(1, out) == []


@pytest.mark.parametrize("rc,out", [
    (1, error("Unable to get lifecycle", "Access Denied.")),
    (1, error("Unable to get lifecycle", "Bucket does not exist")),
    (1, "mc: <ERROR> not JSON at all"),
    (1, ""),
    (0, json.dumps({"status": "error", "error": {"message": "odd"}})),
    (0, "not json"),
    (126, "OCI runtime exec failed: exec: \"sh\": executable file not found"),
])
def test_parse_other_errors_raise(rc, out):
    with pytest.raises(StackError, match=f"mc ilm rule export failed \\(exit {rc}\\)"):
        parse_export(rc, out)


def test_parse_error_message_keeps_the_tail():
    with pytest.raises(StackError) as err:
        parse_export(1, error("Unable to get lifecycle", "Access Denied."))
    assert "Access Denied." in str(err.value)


# --- main, with a fake docker --------------------------------------------------------------------

FAKE = r'''#!{python}
import json, os, re, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(here, "calls.log"), "a") as fh:
    fh.write(json.dumps(args) + "\n")
state_path = os.path.join(here, "state.json")
state = json.load(open(state_path))
if args[:1] == ["compose"] and args[3:] == ["ps", "--all", "--quiet", "minio"]:
    print("id-minio")
    sys.exit(0)
if args[:3] == ["exec", "-i", "id-minio"] and args[3:5] == ["sh", "-c"]:
    cmd = args[5].split("exec mc --json ", 1)[1]
    if cmd.startswith("ilm rule export "):
        if state.get("export_error"):
            print(json.dumps({"status": "error", "error": {"message": "Unable to get lifecycle",
                                                           "cause": {"message": state["export_error"]}}}))
            sys.exit(1)
        if state["rules"] is None:
            print(json.dumps({"status": "error", "error": {"message": "Unable to get lifecycle",
                             "cause": {"message": "The lifecycle configuration not set", "error": {}}}}))
            sys.exit(1)
        print(json.dumps({"status": "success", "config": {"Rules": state["rules"]}}))
        sys.exit(0)
    if cmd.startswith("ilm rule import "):
        state["rules"] = json.loads(sys.stdin.read())["Rules"]
        print(json.dumps({"status": "success"}))
    elif cmd.startswith("ilm rule rm --id "):
        rid = cmd.split()[4]
        state["rules"] = [r for r in state["rules"] if r["ID"] != rid]
        print(json.dumps({"status": "success"}))
    else:
        sys.exit(3)
    json.dump(state, open(state_path, "w"))
    sys.exit(0)
sys.stderr.write("fake docker: unexpected %r\n" % (args,))
sys.exit(2)
'''


@pytest.fixture
def docker(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker"
    script.write_text(FAKE.replace("{python}", sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")

    class Docker:
        def state(self, rules, export_error=""):
            (bindir / "state.json").write_text(json.dumps({"rules": rules, "export_error": export_error}))

        def rules(self):
            return json.loads((bindir / "state.json").read_text())["rules"]

        def calls(self):
            log = bindir / "calls.log"
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def mc(self):
            return [c[5].split("exec mc --json ", 1)[1] for c in self.calls() if c[0] == "exec"]

    return Docker()


ARGS = {"project_dir": "/opt/langfuse", "prefix": "events/", "days": 30}


def test_main_adds_the_rule_to_a_bucket_without_lifecycle(docker):
    docker.state(None)
    rc, result = run_module("minio_lifecycle", ARGS)
    assert rc == 0, result
    assert result["changed"] is True and result["rules"] == [rule()]
    assert docker.rules() == [rule()]
    assert docker.mc() == ["ilm rule export local/langfuse", "ilm rule import local/langfuse"]
    for call in docker.calls():
        assert "-e" not in call
        if call[0] == "exec":
            assert call[5].startswith('MC_HOST_local="http://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD@127.0.0.1:9000" ')


def test_main_keeps_other_rules_and_a_rerun_changes_nothing(docker):
    docker.state([MEDIA, rule(days=7)])
    rc, result = run_module("minio_lifecycle", ARGS)
    assert rc == 0, result
    assert result["changed"] is True and docker.rules() == [MEDIA, rule()]
    rc, result = run_module("minio_lifecycle", ARGS)
    assert rc == 0, result
    assert result["changed"] is False and result["rules"] == [MEDIA, rule()]
    assert docker.mc()[-1] == "ilm rule export local/langfuse"


def test_main_check_mode_changes_nothing(docker):
    docker.state([MEDIA])
    rc, result = run_module("minio_lifecycle", ARGS, check_mode=True)
    assert rc == 0, result
    assert result["changed"] is True and result["rules"] == [MEDIA, rule()]
    assert docker.rules() == [MEDIA]
    assert docker.mc() == ["ilm rule export local/langfuse"]


def test_main_days_zero_imports_the_other_rules_without_ours(docker):
    docker.state([MEDIA, rule()])
    rc, result = run_module("minio_lifecycle", dict(ARGS, days=0))
    assert rc == 0, result
    assert result["changed"] is True and result["rules"] == [MEDIA]
    assert docker.mc() == ["ilm rule export local/langfuse", "ilm rule import local/langfuse"]
    assert docker.rules() == [MEDIA]


def test_main_days_zero_removes_the_last_rule_with_rm(docker):
    docker.state([rule()])
    rc, result = run_module("minio_lifecycle", dict(ARGS, days=0, bucket="other", rule_id="mine"))
    assert rc == 0, result
    assert result["changed"] is False and result["rules"] == [rule()]
    rc, result = run_module("minio_lifecycle", dict(ARGS, days=0))
    assert rc == 0, result
    assert result["changed"] is True and result["rules"] == []
    assert docker.mc()[-1] == f"ilm rule rm --id {ID} local/langfuse"
    assert docker.rules() == []


@pytest.mark.parametrize("prefix", ["", "/", "events"])
def test_main_refuses_a_prefix_that_is_not_a_folder(docker, prefix):
    docker.state([])
    rc, result = run_module("minio_lifecycle", dict(ARGS, prefix=prefix))
    assert rc == 1 and "must be a folder such as events/" in result["msg"]
    assert docker.calls() == []


def test_main_refuses_a_bucket_name_for_the_shell(docker):
    docker.state([])
    rc, result = run_module("minio_lifecycle", dict(ARGS, bucket="langfuse; rm -rf /"))
    assert rc == 1 and "bucket 'langfuse; rm -rf /' may only hold letters" in result["msg"]
    assert docker.calls() == []


def test_main_fails_on_an_export_error(docker):
    docker.state([], export_error="Access Denied.")
    rc, result = run_module("minio_lifecycle", ARGS)
    assert rc == 1
    assert result["msg"].startswith("MinIO lifecycle of bucket langfuse: mc ilm rule export failed (exit 1)")
    assert "Access Denied." in result["msg"]
    assert "Check that the minio container of /opt/langfuse runs" in result["msg"]
