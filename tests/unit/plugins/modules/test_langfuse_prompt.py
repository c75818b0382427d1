"""llmops.devbox.langfuse_prompt through its real main(), against the Langfuse test double over HTTP."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from ansible_collections.llmops.devbox.plugins.module_utils._http import request
from ansible_collections.llmops.devbox.tests.unit.httpserver import HttpServer, run_module, unused_url
from ansible_collections.llmops.devbox.tests.unit.langfuse_content_server import ContentServer

WRITES = ("POST", "PATCH", "PUT", "DELETE")
SK = "sk-lf-s3cret-for-scripted-servers"
SK_WRONG = "sk-lf-wrong-secret-0123456789"
TEXT_A = "Summarise this text: {{text}}"
TEXT_B = "Summarise this text in three bullet points: {{text}}"


@pytest.fixture
def lf():
    with ContentServer() as srv:
        yield srv


def prompt(srv, check_mode=False, diff=False, **args):
    args.setdefault("name", "summarise")
    args.setdefault("prompt", TEXT_A)
    args = dict(url=srv.url, public_key=srv.public_key, secret_key=srv.secret_key, **args)
    return run_module("langfuse_prompt", args, check_mode=check_mode, diff=diff)


def ok(srv, **args):
    rc, result = prompt(srv, **args)
    assert rc == 0, result
    return result


def writes(srv):
    return [(method, path) for method, path in srv.requests if method in WRITES]


def versions(srv, name="summarise"):
    """{version: labels} as Langfuse reports them (read over HTTP, like any client)."""
    auth = (srv.public_key, srv.secret_key)
    listing = request(f"{srv.url}/api/public/v2/prompts?name={quote(name)}", basic_auth=auth).json()
    numbers = [v for entry in listing["data"] if entry["name"] == name for v in entry["versions"]]
    out = {}
    for number in numbers:
        got = request(f"{srv.url}/api/public/v2/prompts/{quote(name, safe='')}?version={number}", basic_auth=auth)
        out[number] = sorted(got.json()["labels"])
    return out


def add_label_elsewhere(srv, version, label, name="summarise"):
    """A person sets a label in the UI (the same API call)."""
    resp = request(f"{srv.url}/api/public/v2/prompts/{quote(name, safe='')}/versions/{version}", "PATCH",
                   json_body={"newLabels": [label]}, basic_auth=(srv.public_key, srv.secret_key))
    assert resp.status == 200, resp.text()


# --- create and idempotence -------------------------------------------------------------------

def test_create_then_rerun_is_unchanged(lf):
    first = ok(lf, labels=["production"], tags=["team-a"], commit_message="first")

    assert first["changed"] is True
    assert first["created"] is True
    assert first["version"] == 1
    assert set(first["labels"]) == {"production", "latest"}
    assert first["moved_labels"] == [{"label": "production", "from_version": None, "to_version": 1}]
    assert versions(lf) == {1: ["latest", "production"]}
    post = [path for method, path in writes(lf)]
    assert post == ["/api/public/v2/prompts"]

    count = len(lf.requests)
    again = ok(lf, labels=["production"], tags=["team-a"], commit_message="first")

    assert again["changed"] is False
    assert again["created"] is False
    assert again["version"] == 1
    assert again["moved_labels"] == []
    assert [r for r in lf.requests[count:] if r[0] in WRITES] == []


def test_changed_content_creates_version_and_moves_label(lf):
    ok(lf, labels=["production"])
    second = ok(lf, prompt=TEXT_B, labels=["production"])

    assert second["changed"] is True
    assert second["created"] is True
    assert second["version"] == 2
    assert second["moved_labels"] == [{"label": "production", "from_version": 1, "to_version": 2}]
    assert versions(lf) == {1: [], 2: ["latest", "production"]}


def test_rollback_moves_label_back_without_new_version(lf):
    ok(lf, labels=["production"])
    ok(lf, prompt=TEXT_B, labels=["production"])
    count = len(lf.requests)

    back = ok(lf, prompt=TEXT_A, labels=["production"])

    assert back["changed"] is True
    assert back["created"] is False
    assert back["version"] == 1
    assert back["moved_labels"] == [{"label": "production", "from_version": 2, "to_version": 1}]
    assert [m for m, _ in lf.requests[count:] if m in WRITES] == ["PATCH"]
    assert versions(lf) == {1: ["production"], 2: ["latest"]}
    assert back["summary"] == "summarise: production (from v2) put on v1"
    again = ok(lf, prompt=TEXT_A, labels=["production"])
    assert again["changed"] is False
    assert again["summary"] == "summarise: unchanged (v1, production)"


def test_ab_labels_are_idempotent(lf):
    a = ok(lf, prompt=TEXT_A, labels=["variant-a"])
    b = ok(lf, prompt=TEXT_B, labels=["variant-b"])
    assert (a["version"], b["version"]) == (1, 2)
    count = len(lf.requests)

    for _ in range(2):
        assert ok(lf, prompt=TEXT_A, labels=["variant-a"])["changed"] is False
        assert ok(lf, prompt=TEXT_B, labels=["variant-b"])["changed"] is False

    assert [r for r in lf.requests[count:] if r[0] in WRITES] == []
    assert versions(lf) == {1: ["variant-a"], 2: ["latest", "variant-b"]}


def test_labels_set_elsewhere_are_kept(lf):
    ok(lf, labels=["production"])
    add_label_elsewhere(lf, 1, "reviewed")
    ok(lf, prompt=TEXT_B, labels=["staging"])

    # Content A gets a second label of ours: "reviewed" (set by a person) stays on it.
    result = ok(lf, prompt=TEXT_A, labels=["production", "canary"])

    assert result["changed"] is True
    assert result["moved_labels"] == [{"label": "canary", "from_version": None, "to_version": 1}]
    assert versions(lf) == {1: ["canary", "production", "reviewed"], 2: ["latest", "staging"]}
    assert set(result["labels"]) == {"canary", "production", "reviewed"}


def test_no_labels_means_only_the_content(lf):
    first = ok(lf, labels=[])
    assert first["created"] is True and first["moved_labels"] == []
    assert ok(lf)["changed"] is False
    assert versions(lf) == {1: ["latest"]}


def test_chat_prompt_with_folder_name_and_config(lf):
    messages = [{"role": "system", "content": "You are brief."},
                {"type": "placeholder", "name": "history"},
                {"role": "user", "content": "{{question}}"}]
    args = dict(name="support/answer", type="chat", prompt=messages,
                config={"model": "claude", "temperature": 1.0, "stop": ["\n\n"], "json": True},
                labels=["production"])

    first = ok(lf, **args)
    assert first["created"] is True
    # Same content, keys in another order and 1 for 1.0: Langfuse stores it as the same JSON.
    args["config"] = {"json": True, "stop": ["\n\n"], "temperature": 1, "model": "claude"}
    assert ok(lf, **args)["changed"] is False
    # true is not 1: another config is another version.
    args["config"] = dict(args["config"], json=1)
    assert ok(lf, **args)["version"] == 2
    assert versions(lf, "support/answer") == {1: [], 2: ["latest", "production"]}
    assert any(path.startswith("/api/public/v2/prompts/support%2Fanswer") for _, path in lf.requests)


def test_list_order_in_chat_is_content(lf):
    one = [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]
    ok(lf, type="chat", prompt=one)
    result = ok(lf, type="chat", prompt=list(reversed(one)))
    assert result["created"] is True and result["version"] == 2


# --- check mode and diff ----------------------------------------------------------------------

def test_check_mode_sends_no_write(lf):
    result = ok(lf, check_mode=True, labels=["production"])
    assert result["changed"] is True
    assert result["created"] is True
    assert result["version"] is None
    assert result["moved_labels"] == [{"label": "production", "from_version": None, "to_version": None}]
    assert writes(lf) == []

    ok(lf, labels=["production"])
    ok(lf, prompt=TEXT_B, labels=["production"])
    count = len(lf.requests)
    rollback = ok(lf, check_mode=True, prompt=TEXT_A, labels=["production"])
    assert rollback["changed"] is True
    assert rollback["created"] is False
    assert rollback["version"] == 1
    assert rollback["moved_labels"] == [{"label": "production", "from_version": 2, "to_version": 1}]
    assert [r for r in lf.requests[count:] if r[0] in WRITES] == []
    assert versions(lf) == {1: [], 2: ["latest", "production"]}


def test_diff_shows_version_labels_and_content(lf):
    created = ok(lf, diff=True, labels=["production"])
    assert created["diff"]["before"] == {}
    assert created["diff"]["after"]["prompt"] == TEXT_A
    assert created["diff"]["after"]["version"] == 1

    moved = ok(lf, diff=True, check_mode=True, prompt=TEXT_B, labels=["production"])
    before, after = moved["diff"]["before"], moved["diff"]["after"]
    assert before["version"] == 1 and before["prompt"] == TEXT_A
    assert "production" in before["labels"]
    assert after["version"] is None and after["prompt"] == TEXT_B
    assert set(after["labels"]) == {"production", "latest"}
    assert after["config"] == {}

    same = ok(lf, diff=True, labels=["production"])
    assert same["diff"]["before"] == same["diff"]["after"]


# --- refusals and failures --------------------------------------------------------------------

def test_latest_label_refused_before_any_request(lf):
    rc, result = prompt(lf, labels=["production", "latest"])
    assert rc == 1
    assert "'latest'" in result["msg"] and "newest version" in result["msg"]
    assert lf.requests == []


@pytest.mark.parametrize("args, words", [
    (dict(labels=["Production"]), "not valid"),
    (dict(type="chat", prompt="just text"), "list of messages"),
    (dict(type="chat", prompt=[{"role": "user", "content": "x", "name": "n"}]), "exactly the string keys"),
    (dict(type="text", prompt=[{"role": "user", "content": "x"}]), "must be a string"),
    (dict(name="a|b"), "'|'"),
])
def test_bad_options_refused(lf, args, words):
    rc, result = prompt(lf, **args)
    assert rc == 1 and words in result["msg"], result
    assert writes(lf) == []


def test_other_type_refused(lf):
    ok(lf)
    rc, result = prompt(lf, type="chat", prompt=[{"role": "user", "content": "x"}])
    assert rc == 1
    assert "text prompt" in result["msg"] and "another name" in result["msg"]
    assert [m for m, _ in writes(lf)] == ["POST"]


def test_wrong_keys_fail_clearly_without_secret(lf):
    rc, result = run_module("langfuse_prompt", dict(url=lf.url, public_key=lf.public_key, secret_key=SK_WRONG,
                                                    name="summarise", prompt=TEXT_A))
    assert rc == 1
    assert result.get("failed") is True
    assert "401" in result["msg"]
    assert "wrong public/secret key for this Langfuse project" in result["msg"]
    assert SK_WRONG not in json.dumps(result)
    assert writes(lf) == []


def test_server_error_names_method_path_and_message():
    with HttpServer() as srv:
        srv.respond("/api/public/v2/prompts", 500, {"message": "Internal Server Error", "error": "db gone"})
        rc, result = run_module("langfuse_prompt", dict(url=srv.url, public_key="pk-lf-x", secret_key=SK,
                                                        name="summarise", prompt=TEXT_A))
    assert rc == 1
    assert "GET /api/public/v2/prompts?name=summarise" in result["msg"]
    assert "HTTP 500" in result["msg"] and "db gone" in result["msg"]
    assert "docker logs langfuse-web" in result["msg"]
    assert result["status"] == 500
    assert SK not in json.dumps(result)


def test_refused_connection_says_check_langfuse_is_up():
    url = unused_url()
    rc, result = run_module("langfuse_prompt", dict(url=url, public_key="pk-lf-x", secret_key=SK,
                                                    name="summarise", prompt=TEXT_A))
    assert rc == 1
    assert f"Is Langfuse up at {url}" in result["msg"]
    assert "refused" in result["msg"]


def test_create_refused_by_server_reports_its_message():
    with HttpServer() as srv:
        srv.respond("/api/public/v2/prompts", 200, {"data": [], "meta": {}}, method="GET")
        srv.respond("/api/public/v2/prompts", 400,
                    {"message": "Invalid request data", "error": [{"path": ["name"], "message": "bad name"}]},
                    method="POST")
        rc, result = run_module("langfuse_prompt", dict(url=srv.url, public_key="pk-lf-x", secret_key=SK,
                                                        name="summarise", prompt=TEXT_A))
    assert rc == 1
    assert "POST /api/public/v2/prompts" in result["msg"] and "HTTP 400" in result["msg"]
    assert "name: bad name" in result["msg"]
