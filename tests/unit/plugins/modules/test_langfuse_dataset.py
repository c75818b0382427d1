"""llmops.devbox.langfuse_dataset through its real main(), against the Langfuse test double over HTTP."""

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
ITEMS = [
    {"id": "refund-001", "input": {"question": "How long do refunds take?"},
     "expected_output": "Within 5 working days."},
    {"id": "refund-002", "input": {"question": "Refund after 60 days?"}, "expected_output": "No.",
     "metadata": {"topic": "refunds", "weight": 1.0}},
]


@pytest.fixture
def lf():
    with ContentServer() as srv:
        yield srv


def dataset(srv, check_mode=False, diff=False, **args):
    args.setdefault("name", "support/regression")
    args = dict(url=srv.url, public_key=srv.public_key, secret_key=srv.secret_key, **args)
    return run_module("langfuse_dataset", args, check_mode=check_mode, diff=diff)


def ok(srv, **args):
    rc, result = dataset(srv, **args)
    assert rc == 0, result
    return result


def writes(srv, since=0):
    return [(method, path) for method, path in srv.requests[since:] if method in WRITES]


def get(srv, path):
    resp = request(srv.url + path, basic_auth=(srv.public_key, srv.secret_key))
    return resp.status, (resp.json() if resp.body else None)


def item(srv, item_id):
    status, data = get(srv, f"/api/public/dataset-items/{quote(item_id, safe='')}")
    return data if status == 200 else None


def test_create_then_rerun_is_unchanged(lf):
    first = ok(lf, description="regression set", metadata={"owner": "support"}, items=ITEMS)

    assert first["changed"] is True
    assert first["created"] is True
    assert first["items_created"] == ["refund-001", "refund-002"]
    assert first["items_updated"] == []
    assert first["items_unchanged"] == 0
    status, ds = get(lf, "/api/public/v2/datasets/" + quote("support/regression", safe=""))
    assert status == 200 and ds["description"] == "regression set" and ds["metadata"] == {"owner": "support"}
    stored = item(lf, "refund-002")
    assert stored["datasetName"] == "support/regression"
    assert stored["input"] == {"question": "Refund after 60 days?"}
    assert stored["expectedOutput"] == "No."

    count = len(lf.requests)
    again = ok(lf, description="regression set", metadata={"owner": "support"}, items=ITEMS)

    assert again["changed"] is False
    assert again["created"] is False
    assert again["items_created"] == [] and again["items_updated"] == []
    assert again["items_unchanged"] == 2
    assert again["summary"] == "support/regression: dataset unchanged; items 0 created, 0 updated, 2 unchanged"
    assert writes(lf, count) == []


def test_changed_item_updated_new_item_added_unlisted_untouched(lf):
    ok(lf, items=ITEMS)
    changed = [dict(ITEMS[0], expected_output="Within 3 working days."),
               {"id": "refund-003", "input": "Where is my refund?"}]
    count = len(lf.requests)

    result = ok(lf, items=changed)

    assert result["changed"] is True
    assert result["created"] is False
    assert result["items_updated"] == ["refund-001"]
    assert result["items_created"] == ["refund-003"]
    assert result["items_unchanged"] == 0
    assert [m for m, _ in writes(lf, count)] == ["POST", "POST"]
    assert item(lf, "refund-001")["expectedOutput"] == "Within 3 working days."
    assert item(lf, "refund-003")["input"] == "Where is my refund?"
    # refund-002 was not listed: still there, as it was.
    untouched = item(lf, "refund-002")
    assert untouched["expectedOutput"] == "No." and untouched["metadata"] == {"topic": "refunds", "weight": 1}
    assert ok(lf, items=changed)["changed"] is False


def test_left_out_fields_are_not_managed(lf):
    ok(lf, items=ITEMS)
    count = len(lf.requests)
    result = ok(lf, items=[{"id": "refund-002", "expected_output": "No."}])
    assert result["changed"] is False and result["items_unchanged"] == 1
    assert writes(lf, count) == []


def test_json_compare_is_type_exact(lf):
    ok(lf, items=ITEMS)
    # 1 for 1.0 and another key order: the same JSON.
    same = [ITEMS[0], dict(ITEMS[1], metadata={"weight": 1, "topic": "refunds"})]
    assert ok(lf, items=same)["changed"] is False
    # true is not 1.
    other = [ITEMS[0], dict(ITEMS[1], metadata={"weight": True, "topic": "refunds"})]
    assert ok(lf, items=other)["items_updated"] == ["refund-002"]


def test_json_looking_strings_are_idempotent(lf):
    # Langfuse stores a string that is valid JSON as that JSON ("4" becomes 4); either way a rerun
    # must find the item unchanged.
    items = [{"id": "math-1", "input": '{"question": "2+2?"}', "expected_output": "4"}]
    first = ok(lf, items=items)
    assert first["items_created"] == ["math-1"]
    count = len(lf.requests)
    assert ok(lf, items=items)["changed"] is False
    assert writes(lf, count) == []


def test_description_change_updates_dataset_only(lf):
    ok(lf, description="v1", items=ITEMS)
    count = len(lf.requests)
    result = ok(lf, description="v2", items=ITEMS)
    assert result["changed"] is True
    assert result["created"] is False and result["dataset_updated"] is True
    assert result["items_unchanged"] == 2
    assert writes(lf, count) == [("POST", "/api/public/v2/datasets")]


def test_check_mode_sends_no_write(lf):
    result = ok(lf, check_mode=True, description="x", items=ITEMS)
    assert result["changed"] is True
    assert result["created"] is True
    assert result["items_created"] == ["refund-001", "refund-002"]
    assert writes(lf) == []
    assert get(lf, "/api/public/v2/datasets/" + quote("support/regression", safe=""))[0] == 404

    ok(lf, items=ITEMS)
    count = len(lf.requests)
    changed = ok(lf, check_mode=True, items=[dict(ITEMS[0], input={"question": "?"})])
    assert changed["changed"] is True
    assert changed["items_updated"] == ["refund-001"]
    assert writes(lf, count) == []
    assert item(lf, "refund-001")["input"] == {"question": "How long do refunds take?"}


def test_diff_shows_dataset_and_changed_items(lf):
    ok(lf, description="v1", items=ITEMS)
    result = ok(lf, diff=True, check_mode=True, description="v2",
                items=[dict(ITEMS[0], expected_output="Soon."), ITEMS[1]])
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert before["dataset"]["description"] == "v1" and after["dataset"]["description"] == "v2"
    assert list(before["items"]) == ["refund-001"] and list(after["items"]) == ["refund-001"]
    assert before["items"]["refund-001"]["expectedOutput"] == "Within 5 working days."
    assert after["items"]["refund-001"]["expectedOutput"] == "Soon."


def test_item_of_another_dataset_fails_before_any_write(lf):
    ok(lf, name="other", items=[{"id": "shared-1", "input": "x"}])
    count = len(lf.requests)
    rc, result = dataset(lf, items=[{"id": "new-1", "input": "y"}, {"id": "shared-1", "input": "x"}])
    assert rc == 1
    assert "'shared-1'" in result["msg"] and "'other'" in result["msg"] and "another id" in result["msg"]
    assert writes(lf, count) == []


def test_duplicate_ids_refused(lf):
    rc, result = dataset(lf, items=[{"id": "a", "input": 1}, {"id": "a", "input": 2}])
    assert rc == 1 and "listed twice" in result["msg"]
    assert lf.requests == []


def test_wrong_keys_fail_clearly_without_secret(lf):
    rc, result = run_module("langfuse_dataset", dict(url=lf.url, public_key=lf.public_key, secret_key=SK_WRONG,
                                                     name="ds", items=ITEMS))
    assert rc == 1
    assert "401" in result["msg"]
    assert "wrong public/secret key for this Langfuse project" in result["msg"]
    assert SK_WRONG not in json.dumps(result)
    assert writes(lf) == []


def test_refused_connection_says_check_langfuse_is_up():
    url = unused_url()
    rc, result = run_module("langfuse_dataset", dict(url=url, public_key="pk-lf-x", secret_key=SK,
                                                     name="ds"))
    assert rc == 1
    assert f"Is Langfuse up at {url}" in result["msg"]


def test_server_error_on_item_write_is_reported():
    with HttpServer() as srv:
        srv.respond("/api/public/v2/datasets/ds", 200, {"name": "ds", "description": None, "metadata": None})
        srv.respond("/api/public/dataset-items/a", 404, {"message": "Dataset item not found"})
        srv.respond("/api/public/dataset-items", 409, {"message": "Dataset item id a already exists in another "
                                                                  "dataset", "error": "LangfuseConflictError"})
        rc, result = run_module("langfuse_dataset", dict(url=srv.url, public_key="pk-lf-x", secret_key=SK,
                                                         name="ds", items=[{"id": "a", "input": "q"}]))
        sent = srv.requests_to("/api/public/dataset-items", "POST")[0].json()
    assert rc == 1
    assert "POST /api/public/dataset-items" in result["msg"] and "HTTP 409" in result["msg"]
    assert "already exists in another dataset" in result["msg"]
    assert sent == {"id": "a", "datasetName": "ds", "input": "q"}
    assert SK not in json.dumps(result)
