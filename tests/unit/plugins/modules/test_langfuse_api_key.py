"""llmops.devbox.langfuse_api_key through its real main(): key file on disk, API on a local server."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import sys
import threading
from contextlib import contextmanager

import pytest

from ansible_collections.llmops.devbox.plugins.modules.langfuse_api_key import KeyFile
from ansible_collections.llmops.devbox.tests.unit.httpserver import HttpServer, run_module

UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
PK = "pk-lf-test-0001"
SK = "sk-lf-test-secret-0001-abcd"
ORG_PK = "pk-lf-org-0001"
ORG_SK = "sk-lf-org-secret-0001-wxyz"
PROJECT = "proj-1"
KEYS = f"/api/public/projects/{PROJECT}/apiKeys"
MASK = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def api_key(**args):
    check_mode = args.pop("check_mode", False)
    diff = args.pop("diff", False)
    return run_module("langfuse_api_key", args, check_mode=check_mode, diff=diff)


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def keyfile(tmp_path):
    return tmp_path / "api-key.json"


@pytest.fixture
def server():
    with HttpServer() as srv:
        yield srv


# --- mode local ---------------------------------------------------------------------------

def test_local_creates_pair_once(keyfile):
    rc, first = api_key(path=str(keyfile), note="devbox")

    assert rc == 0, first
    assert first["changed"] is True
    assert re.fullmatch("pk-lf-" + UUID4, first["public_key"])
    assert re.fullmatch("sk-lf-" + UUID4, first["secret_key"])
    stored = json.loads(keyfile.read_text())
    assert stored["public_key"] == first["public_key"]
    assert stored["secret_key"] == first["secret_key"]
    assert stored["note"] == "devbox"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stored["created"])
    assert file_mode(keyfile) == 0o600
    assert os.stat(keyfile).st_uid == os.getuid()
    assert first["path"] == str(keyfile)

    rc, second = api_key(path=str(keyfile))

    assert rc == 0, second
    assert second["changed"] is False
    assert (second["public_key"], second["secret_key"]) == (first["public_key"], first["secret_key"])
    assert json.loads(keyfile.read_text()) == stored


def test_local_repairs_file_mode(keyfile):
    api_key(path=str(keyfile))
    keyfile.chmod(0o644)

    rc, result = api_key(path=str(keyfile))

    assert rc == 0, result
    assert result["changed"] is True
    assert file_mode(keyfile) == 0o600


# --- the key file is 0600 from its first byte ----------------------------------------------------
# An audit hook (installed once, idle outside watch_modes) lists the files of one directory with their
# permission bits at every audit event: before each open, chmod, rename/replace, unlink... So a file
# that is created readable by others and only chmod-ed or renamed into place later is seen that way.
_watch = {"dir": None, "seen": None}
_in_hook = threading.local()


def _audit(event, args):
    directory = _watch["dir"]
    if directory is None or getattr(_in_hook, "active", False):
        return
    _in_hook.active = True  # os.scandir and stat raise audit events of their own
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    _watch["seen"].append((event, entry.name, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)))
    except OSError:
        pass
    finally:
        _in_hook.active = False


@contextmanager
def watch_modes(directory):
    """Yield the list of (event, file name, mode) seen in directory while the block runs, under umask 0:
    with the loosest umask only the mode a file is created with keeps its content from others."""
    if not getattr(sys, "_llmops_mode_watch", False):
        sys.addaudithook(_audit)
        sys._llmops_mode_watch = True
    seen = []
    old_umask = os.umask(0)
    _watch.update(dir=str(directory), seen=seen)
    try:
        yield seen
    finally:
        _watch.update(dir=None, seen=None)
        os.umask(old_umask)
    seen.extend(("after", p.name, file_mode(p)) for p in directory.iterdir() if p.is_file())


class FailingModule:
    def fail_json(self, **kwargs):
        raise AssertionError(kwargs)


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "replacing-a-file"])
def test_key_file_is_created_0600_from_the_first_byte(keyfile, existing):
    if existing:
        keyfile.write_text(json.dumps({"public_key": "pk-lf-old-0001", "secret_key": "sk-lf-old-secret-0001-xyz"}))
        keyfile.chmod(0o600)

    with watch_modes(keyfile.parent) as seen:
        KeyFile(FailingModule(), str(keyfile)).write(PK, SK, "devbox")

    assert [event for event, _, _ in seen if event != "after"], "the audit hook saw nothing being written"
    readable = [(event, name, oct(mode)) for event, name, mode in seen if mode & 0o077]
    assert not readable, f"the key file was readable by others: {readable}"
    assert file_mode(keyfile) == 0o600
    assert sorted(p.name for p in keyfile.parent.iterdir()) == [keyfile.name]  # no temporary file left
    stored = json.loads(keyfile.read_text())
    assert (stored["public_key"], stored["secret_key"], stored["note"]) == (PK, SK, "devbox")


def test_local_user_supplied_keys_win_and_rewrite(keyfile):
    api_key(path=str(keyfile))
    generated = json.loads(keyfile.read_text())

    rc, result = api_key(path=str(keyfile), public_key=PK, secret_key=SK)

    assert rc == 0, result
    assert result["changed"] is True
    assert result["public_key"] == PK
    # Ansible masks every copy of a no_log option value in the result (documented).
    assert result["secret_key"] == MASK
    stored = json.loads(keyfile.read_text())
    assert (stored["public_key"], stored["secret_key"]) == (PK, SK)
    assert stored["public_key"] != generated["public_key"]
    assert file_mode(keyfile) == 0o600

    rc, again = api_key(path=str(keyfile), public_key=PK, secret_key=SK)
    assert rc == 0 and again["changed"] is False


@pytest.mark.parametrize("public_key, secret_key, complaint", [
    ("pk-test-0001", SK, "must be a string starting with pk-lf-"),
    (PK, "sk-xx-test-secret-0001", "must be a string starting with sk-lf-"),
    (PK, "sk-lf-short", "at least 20 characters"),
])
def test_local_rejects_invalid_supplied_keys(keyfile, public_key, secret_key, complaint):
    rc, result = api_key(path=str(keyfile), public_key=public_key, secret_key=secret_key)

    assert rc == 1
    assert complaint in result["msg"]
    assert secret_key not in json.dumps(result)
    assert not keyfile.exists()


def test_local_public_key_alone_is_refused(keyfile):
    rc, result = api_key(path=str(keyfile), public_key=PK)

    assert rc == 1
    assert "public_key" in result["msg"] and "secret_key" in result["msg"]


@pytest.mark.parametrize("content", [
    '{"public_key": "pk-lf-1", "secret_key": "sk-lf-leaky-secret-9999"',  # truncated JSON
    '["pk-lf-1", "sk-lf-leaky-secret-9999"]',
    '{"public_key": "pk-lf-1"}',
    '{"public_key": "nope", "secret_key": "sk-lf-leaky-secret-9999"}',
])
def test_local_malformed_file_fails_and_is_kept(keyfile, content):
    keyfile.write_text(content)

    rc, result = api_key(path=str(keyfile))

    assert rc == 1
    assert f"Key file {keyfile}" in result["msg"]
    assert "remove it" in result["msg"]
    assert "leaky-secret" not in json.dumps(result)
    assert keyfile.read_text() == content


def test_local_missing_directory(tmp_path):
    path = tmp_path / "missing" / "api-key.json"

    rc, result = api_key(path=str(path))

    assert rc == 1
    assert f"directory {path.parent} does not exist" in result["msg"]


def test_local_check_mode_writes_nothing_and_invents_no_secret(keyfile):
    rc, result = api_key(path=str(keyfile), check_mode=True, diff=True)

    assert rc == 0, result
    assert result["changed"] is True
    assert result["public_key"] == "" and result["secret_key"] == ""
    assert result["diff"]["before"] == {"public_key": None}
    assert not keyfile.exists()
    assert list(keyfile.parent.iterdir()) == []


def test_local_check_mode_returns_existing_pair(keyfile):
    rc, created = api_key(path=str(keyfile))
    assert rc == 0, created

    rc, result = api_key(path=str(keyfile), check_mode=True)

    assert rc == 0, result
    assert result["changed"] is False
    assert result["secret_key"] == created["secret_key"]


def test_local_check_mode_with_new_supplied_keys_keeps_file(keyfile):
    api_key(path=str(keyfile))
    before = keyfile.read_text()

    rc, result = api_key(path=str(keyfile), public_key=PK, secret_key=SK, check_mode=True, diff=True)

    assert rc == 0, result
    assert result["changed"] is True
    assert result["diff"]["after"] == {"public_key": PK}
    assert SK not in json.dumps(result)
    assert keyfile.read_text() == before


# --- mode api -----------------------------------------------------------------------------

def api_args(server, **extra):
    args = dict(mode="api", url=server.url, project_id=PROJECT, organization_public_key=ORG_PK,
                organization_secret_key=ORG_SK)
    args.update(extra)
    return args


def listed(*public_keys):
    return {"apiKeys": [{"id": f"id-{pk}", "publicKey": pk, "displaySecretKey": "sk-lf-...abcd",
                         "note": None, "createdAt": "2026-11-28T00:00:00Z"} for pk in public_keys]}


def org_auth_header():
    return "Basic " + base64.b64encode(f"{ORG_PK}:{ORG_SK}".encode()).decode()


def test_api_creates_missing_key(server, keyfile):
    server.respond(KEYS, 200, listed("pk-lf-someone-else"), method="GET")
    server.respond(KEYS, 201, {"id": "key-123", "publicKey": "x", "secretKey": "y"}, method="POST")

    rc, result = api_key(**api_args(server, path=str(keyfile), note="litellm"))

    assert rc == 0, result
    assert result["changed"] is True
    assert result["api_key_id"] == "key-123"
    stored = json.loads(keyfile.read_text())
    assert result["public_key"] == stored["public_key"]
    posts = server.requests_to(KEYS, "POST")
    assert len(posts) == 1
    assert posts[0].json() == {"note": "litellm", "publicKey": stored["public_key"],
                               "secretKey": stored["secret_key"]}
    assert posts[0].headers["authorization"] == org_auth_header()
    assert posts[0].headers["content-type"] == "application/json"


def test_api_existing_key_is_unchanged(server):
    server.respond(KEYS, 200, listed("pk-lf-other", PK), method="GET")

    rc, result = api_key(**api_args(server, public_key=PK, secret_key=SK))

    assert rc == 0, result
    assert result["changed"] is False
    assert result["api_key_id"] == f"id-{PK}"
    assert server.requests_to(KEYS, "POST") == []
    assert not result.get("warnings")


def test_api_existing_key_with_other_secret_warns(server):
    body = listed(PK)
    body["apiKeys"][0]["displaySecretKey"] = "sk-lf-...zzzz"
    server.respond(KEYS, 200, body, method="GET")

    rc, result = api_key(**api_args(server, public_key=PK, secret_key=SK))

    assert rc == 0, result
    assert result["changed"] is False
    # ansible-core 2.19 returns warnings as structured events; the text is inside.
    assert "exists in Langfuse with a different secret key" in json.dumps(result["warnings"])


def test_api_check_mode_does_not_post(server):
    server.respond(KEYS, 200, listed(), method="GET")
    server.respond(KEYS, 201, {"id": "key-123"}, method="POST")

    rc, result = api_key(**api_args(server, public_key=PK, secret_key=SK), check_mode=True)

    assert rc == 0, result
    assert result["changed"] is True
    assert server.requests_to(KEYS, "POST") == []


@pytest.mark.parametrize("status, expected", [
    (401, ["rejected the organisation key pk-lf-org-0001", "HTTP 401", "organization_secret_key"]),
    (403, ["HTTP 403", "organisation-scoped API key", "admin-api", "use mode=local"]),
    (500, ["HTTP 500", "boom"]),
])
def test_api_listing_errors(server, status, expected):
    # The server echoes the org secret: the message must not.
    server.respond(KEYS, status, {"message": f"boom {ORG_SK}"}, method="GET")

    rc, result = api_key(**api_args(server, public_key=PK, secret_key=SK))

    assert rc == 1
    for text in expected:
        assert text in result["msg"]
    assert result["status"] == status
    assert ORG_SK not in json.dumps(result)
    assert server.requests_to(KEYS, "POST") == []


def test_api_conflict_409(server, keyfile):
    server.respond(KEYS, 200, listed(), method="GET")
    server.respond(KEYS, 409, {"message": "API key already exists"}, method="POST")

    rc, result = api_key(**api_args(server, path=str(keyfile)))

    assert rc == 1
    assert "HTTP 409" in result["msg"]
    assert "Pick a new public_key" in result["msg"]
    secret = json.loads(keyfile.read_text())["secret_key"]
    assert secret not in json.dumps(result)


def test_api_unexpected_status_redacts_generated_secret(server, keyfile):
    server.respond(KEYS, 200, listed(), method="GET")
    keyfile.write_text(json.dumps({"public_key": PK, "secret_key": SK}))
    server.respond(KEYS, 422, {"error": f"bad secretKey {SK}"}, method="POST")

    rc, result = api_key(**api_args(server, path=str(keyfile)))

    assert rc == 1
    assert "HTTP 422" in result["msg"] and "bad secretKey ********" in result["msg"]
    assert SK not in json.dumps(result)


def test_api_needs_a_stable_pair(server):
    rc, result = api_key(**api_args(server))

    assert rc == 1
    assert "path" in result["msg"] and "public_key and secret_key" in result["msg"]
    assert server.requests == []


def test_api_unreachable():
    rc, result = api_key(mode="api", url="http://127.0.0.1:9", project_id=PROJECT,
                         organization_public_key=ORG_PK, organization_secret_key=ORG_SK,
                         public_key=PK, secret_key=SK)

    assert rc == 1
    assert "Could not reach Langfuse" in result["msg"] and "connection refused" in result["msg"]
