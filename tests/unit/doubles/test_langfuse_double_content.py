"""The Langfuse double's content API (LLM connections, prompts, datasets) against its contract
(tests/contracts/langfuse-web.yml, content_api), over real HTTP through ContentServer, which
serves the double's own handler and routes with an in-memory store."""

from __future__ import annotations

import base64
import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from ansible_collections.llmops.devbox.tests.unit.langfuse_content_server import ContentServer, load_double

CONTRACT = yaml.safe_load((Path(__file__).resolve().parents[2] / "contracts" / "langfuse-web.yml").read_text())
CONTENT = CONTRACT["content_api"]
# Names the stub resolver knows (no DNS in unit tests); anything else does not resolve.
DNS = {"private-gw.example": ["10.1.2.3"], "public-gw.example": ["93.184.216.34"],
       "mixed-gw.example": ["93.184.216.34", "fd12::1"]}
CONN = "/api/public/llm-connections"
PROMPTS = "/api/public/v2/prompts"


@pytest.fixture
def srv():
    with ContentServer(whitelisted_hosts=["llm-gateway.internal", "litellm"],
                       resolver=lambda host: DNS.get(host, [])) as server:
        yield server


def call(server, method, path, body=None, auth=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method)
    pk, sk = auth or (server.public_key, server.secret_key)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{pk}:{sk}".encode()).decode())
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def connection(**extra):
    return {"provider": "litellm", "adapter": "openai", "secretKey": "sk-master-abcd1234", **extra}


# --- auth and errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [("GET", CONN), ("PUT", CONN), ("POST", PROMPTS),
                                              ("PATCH", PROMPTS + "/p/versions/1"),
                                              ("POST", "/api/public/v2/datasets"),
                                              ("GET", "/api/public/dataset-items/x")])
def test_wrong_keys_are_401_before_the_body_is_looked_at(srv, method, path):
    status, body = call(srv, method, path, {"junk": True}, auth=(srv.public_key, "sk-lf-wrong"))
    assert status == 401 and body["message"]
    status, _ = call(srv, method, path, {"junk": True}, auth=("pk-lf-other", srv.secret_key))
    assert status == 401
    assert srv.api.store.docs == {}


def test_a_route_without_the_method_is_405_with_upstreams_error_shape(srv):
    assert call(srv, "DELETE", "/api/public/v2/datasets/d") == (
        405, {"message": "Method not allowed", "error": "MethodNotAllowedError"})


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("PUT", CONN, {"adapter": "openai", "secretKey": "x"}, "provider"),
    ("PUT", CONN, connection(adapter="mistral"), "adapter"),
    ("PUT", CONN, connection(secretKey=""), "secretKey"),
    ("PUT", CONN, connection(baseURL="not a url"), "baseURL"),
    ("PUT", CONN, connection(adapter="anthropic", config={"region": "x"}), "config"),
    ("PUT", CONN, connection(adapter="bedrock"), "config"),
    ("POST", PROMPTS, {"name": "p", "prompt": "x", "labels": ["Prod"]}, "labels"),
    ("POST", PROMPTS, {"name": "a|b", "prompt": "x"}, "name"),
    ("POST", PROMPTS, {"name": "p", "prompt": "x", "commitMessage": "m" * 501}, "commitMessage"),
    ("POST", "/api/public/v2/datasets", {"description": "no name"}, "name"),
    ("POST", "/api/public/dataset-items", {"input": 1}, "datasetName"),
    ("POST", "/api/public/dataset-items", {"datasetName": "d", "status": "DONE"}, "status"),
])
def test_bad_bodies_are_400_invalid_request_data(srv, method, path, body, field):
    status, answer = call(srv, method, path, body)
    assert status == 400, answer
    assert answer["message"] == "Invalid request data"
    assert any(issue["path"][:1] == [field] for issue in answer["error"]), answer


def test_a_prompt_matching_neither_text_nor_chat_is_400(srv):
    status, answer = call(srv, "POST", PROMPTS, {"name": "p", "type": "chat", "prompt": "text"})
    assert status == 400 and answer["message"] == "Invalid request data"
    status, _ = call(srv, "POST", PROMPTS, {"name": "p", "prompt": [{"role": "user"}], "type": "chat"})
    assert status == 400


# --- LLM connections ---------------------------------------------------------------------------

def test_connection_is_created_201_then_updated_200_by_provider(srv):
    status, created = call(srv, "PUT", CONN, connection())
    assert status == 201
    assert set(created) == {"id", "provider", "adapter", "displaySecretKey", "baseURL", "customModels",
                            "withDefaultModels", "extraHeaderKeys", "config", "createdAt", "updatedAt"}
    assert created["withDefaultModels"] is True and created["customModels"] == []
    status, updated = call(srv, "PUT", CONN, connection(customModels=["gpt-x"], secretKey="sk-new-9876",
                                                        extraHeaders={"X-Team": "a"}))
    assert status == 200 and updated["id"] == created["id"]
    assert updated["customModels"] == ["gpt-x"] and updated["extraHeaderKeys"] == ["X-Team"]
    status, listed = call(srv, "GET", CONN)
    assert status == 200 and listed["meta"] == {"page": 1, "limit": 50, "totalItems": 1, "totalPages": 1}
    assert listed["data"] == [updated]


def test_secret_is_never_returned_nor_stored(srv):
    secret = "sk-very-secret-value-WXYZ"  # noqa: S105 - a test value
    _, created = call(srv, "PUT", CONN, connection(secretKey=secret, extraHeaders={"Auth": "hdr-secret"}))
    assert created["displaySecretKey"] == "..." + secret[-4:] == "...WXYZ"
    _, listed = call(srv, "GET", CONN)
    for text in (json.dumps(created), json.dumps(listed), json.dumps(list(srv.api.store.docs.values()))):
        assert secret not in text and "hdr-secret" not in text


def test_display_secret_key_special_cases():
    lf = load_double()
    assert lf.display_secret_key('{"apiKey":"abcdEFGH"}') == "...EFGH"
    assert lf.display_secret_key("__BEDROCK_DEFAULT_CREDENTIALS__") == "Default AWS credentials"
    assert lf.display_secret_key("__VERTEXAI_DEFAULT_CREDENTIALS__") == "Default GCP credentials (ADC)"


@pytest.mark.parametrize(("base_url", "reason"), [
    ("http://localhost:4000", "Blocked hostname detected"),
    ("http://api.localhost/v1", "Blocked hostname detected"),
    ("http://host.docker.internal:4000", "Blocked hostname detected"),
    ("http://10.0.0.5:4000/v1", "Blocked IP address detected"),
    ("http://127.0.0.1:4000", "Blocked IP address detected"),
    ("http://169.254.169.254/latest", "Blocked hostname detected"),
    ("http://[::1]:4000", "Blocked IP address detected"),
    ("http://0x7f.1:4000", "Blocked IP address detected"),
    ("http://private-gw.example/v1", "Blocked IP address detected"),
    ("http://mixed-gw.example/v1", "Blocked IP address detected"),
    ("http://nowhere.example/v1", "DNS lookup failed for nowhere.example"),
    ("ftp://public-gw.example/", "Only HTTP and HTTPS protocols are allowed"),
    ("http://user:pw@public-gw.example/", "URL credentials are not allowed. Use authentication headers instead."),
])
def test_blocked_base_urls_are_400_like_upstream(srv, base_url, reason):
    status, answer = call(srv, "PUT", CONN, connection(baseURL=base_url))
    assert (status, answer) == (400, {"message": f"Invalid baseURL: {reason}", "error": "InvalidRequestError"})
    assert srv.api.store.docs == {}


@pytest.mark.parametrize("base_url", ["http://llm-gateway.internal:4000/v1", "http://LiteLLM:4000",
                                      "https://public-gw.example/v1", "http://93.184.216.34:4000"])
def test_whitelisted_hosts_and_public_addresses_are_accepted(srv, base_url):
    status, answer = call(srv, "PUT", CONN, connection(baseURL=base_url))
    assert status == 201, answer
    assert answer["baseURL"] == base_url


def test_whitelisted_ips_and_segments_and_env_parsing():
    lf = load_double()
    wl = lf.parse_whitelist({"LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST": " LiteLLM , gw.internal",
                             "LANGFUSE_LLM_CONNECTION_WHITELISTED_IPS": "10.0.0.7",
                             "LANGFUSE_LLM_CONNECTION_WHITELISTED_IP_SEGMENTS": "172.20.0.0/16"})
    assert wl == {"hosts": ["litellm", "gw.internal"], "ips": ["10.0.0.7"], "ip_ranges": ["172.20.0.0/16"]}
    assert lf.parse_whitelist({}) == {"hosts": [], "ips": [], "ip_ranges": []}
    no_dns = lambda host: []  # noqa: E731 - whitelisted names must not be resolved at all
    assert lf.validate_base_url("http://gw.internal:4000", wl, no_dns) is None
    assert lf.validate_base_url("http://10.0.0.7:4000", wl, no_dns) is None
    assert lf.validate_base_url("http://172.20.3.4:4000", wl, no_dns) is None
    assert lf.validate_base_url("http://10.0.0.8:4000", wl, no_dns) == "Blocked IP address detected"


def test_load_config_reads_the_whitelist(langfuse):
    spec = CONTRACT
    env = {name: "x" for name in spec["env"]["required"]}
    env.update(DATABASE_URL="postgresql://u:p@db:5432/d", NEXTAUTH_URL="http://10.0.0.5:3000",
               CLICKHOUSE_CLUSTER_ENABLED="false", REDIS_HOST="redis",
               LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST="litellm,Proxy.Internal ")
    cfg = langfuse.load_config(env, "web", spec)
    assert cfg["llm_connection_whitelist"]["hosts"] == ["litellm", "proxy.internal"]


def test_unchanged_base_url_is_not_validated_again(srv):
    assert call(srv, "PUT", CONN, connection(baseURL="http://litellm:4000"))[0] == 201
    srv.api.whitelist = {"hosts": [], "ips": [], "ip_ranges": []}  # litellm would now be refused
    assert call(srv, "PUT", CONN, connection(baseURL="http://litellm:4000"))[0] == 200
    status, answer = call(srv, "PUT", CONN, connection(baseURL="http://litellm:4001"))
    assert status == 400 and answer["message"].startswith("Invalid baseURL:")


def test_bedrock_rules(srv):
    ok = connection(provider="bedrock", adapter="bedrock", config={"region": "eu-west-1"},
                    secretKey=json.dumps({"accessKeyId": "A", "secretAccessKey": "B"}))
    assert call(srv, "PUT", CONN, ok)[0] == 201
    status, answer = call(srv, "PUT", CONN, connection(secretKey="__BEDROCK_DEFAULT_CREDENTIALS__"))
    assert status == 400 and answer["error"] == "InvalidRequestError"


# --- prompts -----------------------------------------------------------------------------------

def test_prompt_versions_and_label_moves(srv):
    status, v1 = call(srv, "POST", PROMPTS, {"name": "summarise", "prompt": "A", "labels": ["production"]})
    assert status == 201 and v1["version"] == 1 and v1["labels"] == ["production", "latest"]
    assert v1["createdBy"] == "API" and v1["type"] == "text" and v1["config"] == {}
    _, v2 = call(srv, "POST", PROMPTS, {"name": "summarise", "prompt": "B", "labels": ["production", "staging"]})
    assert v2["version"] == 2 and v2["labels"] == ["production", "staging", "latest"]
    _, got1 = call(srv, "GET", PROMPTS + "/summarise?version=1")
    assert got1["labels"] == [] and got1["isActive"] is False  # production and latest moved to v2
    _, v3 = call(srv, "POST", PROMPTS, {"name": "summarise", "prompt": "C"})
    assert v3["version"] == 3 and v3["labels"] == ["latest"]
    _, got = call(srv, "GET", PROMPTS + "/summarise")  # default: label production
    assert got["version"] == 2 and got["isActive"] is True and got["resolutionGraph"] is None
    assert got["labels"] == ["production", "staging"]
    # PATCH adds labels to the version and takes them off the others.
    status, patched = call(srv, "PATCH", PROMPTS + "/summarise/versions/3", {"newLabels": ["production"]})
    assert status == 200 and patched["labels"] == ["production", "latest"]
    assert call(srv, "GET", PROMPTS + "/summarise?version=2")[1]["labels"] == ["staging"]
    assert call(srv, "GET", PROMPTS + "/summarise?label=staging")[1]["version"] == 2
    status, listed = call(srv, "GET", PROMPTS)
    assert status == 200
    assert listed["data"][0]["versions"] == [1, 2, 3]
    assert listed["data"][0]["labels"] == ["latest", "production", "staging"]
    assert listed["meta"] == listed["pagination"] == {"page": 1, "limit": 10, "totalItems": 1, "totalPages": 1}


def test_patch_refuses_latest_and_unknown_versions(srv):
    call(srv, "POST", PROMPTS, {"name": "p", "prompt": "x"})
    status, answer = call(srv, "PATCH", PROMPTS + "/p/versions/1", {"newLabels": ["latest"]})
    assert status == 400 and answer["message"] == "Invalid request data"
    assert answer["error"][0]["message"] == "Label 'latest' is always assigned to the latest prompt version"
    assert call(srv, "PATCH", PROMPTS + "/p/versions/9", {"newLabels": ["x"]}) == (
        404, {"message": "Prompt 'p' version 9 not found in project", "error": "LangfuseNotFoundError"})


def test_prompt_not_found_messages(srv):
    assert call(srv, "GET", PROMPTS + "/missing") == (
        404, {"message": "Prompt not found: 'missing' with label 'production'", "error": "LangfuseNotFoundError"})
    assert call(srv, "GET", PROMPTS + "/missing?version=3")[1]["message"] == \
        "Prompt not found: 'missing' with version 3"
    assert call(srv, "GET", PROMPTS + "/missing?label=dev")[1]["message"] == \
        "Prompt not found: 'missing' with label 'dev'"
    assert call(srv, "GET", PROMPTS + "/missing?label=dev&version=1") == (
        400, {"message": "Cannot specify both version and label", "error": "InvalidRequestError"})


def test_chat_prompts_folders_and_type_changes(srv):
    chat = [{"role": "system", "content": "hi {{x}}"}, {"type": "placeholder", "name": "history"}]
    status, created = call(srv, "POST", PROMPTS, {"name": "team/chat", "type": "chat", "prompt": chat,
                                                  "tags": ["a"], "config": {"model": "m"}})
    assert status == 201 and created["prompt"] == chat and created["tags"] == ["a"]
    _, got = call(srv, "GET", PROMPTS + "/team%2Fchat?label=latest")
    assert got["name"] == "team/chat" and got["config"] == {"model": "m"}
    _, v2 = call(srv, "POST", PROMPTS, {"name": "team/chat", "type": "chat", "prompt": chat})
    assert v2["tags"] == ["a"]  # absent tags copy the newest version's
    status, answer = call(srv, "POST", PROMPTS, {"name": "team/chat", "prompt": "text now"})
    assert (status, answer["error"]) == (400, "InvalidRequestError")


# --- datasets and items ------------------------------------------------------------------------

def test_dataset_upsert_by_name(srv):
    status, created = call(srv, "POST", "/api/public/v2/datasets", {"name": "evals", "description": "first",
                                                                    "metadata": {"k": 1}})
    assert status == 200
    status, updated = call(srv, "POST", "/api/public/v2/datasets", {"name": "evals", "description": None,
                                                                    "inputSchema": {"type": "object"}})
    assert status == 200 and updated["id"] == created["id"]
    assert updated["description"] == "first" and updated["metadata"] == {"k": 1}  # null/absent keep
    assert updated["inputSchema"] == {"type": "object"}
    assert call(srv, "GET", "/api/public/v2/datasets/evals") == (200, updated)
    assert call(srv, "GET", "/api/public/v2/datasets/nope") == (
        404, {"message": "Dataset not found", "error": "LangfuseNotFoundError"})
    status, answer = call(srv, "POST", "/api/public/v2/datasets", {"name": "/bad"})
    assert status == 400 and answer["message"].startswith("Dataset name not valid.")


def test_dataset_item_upsert_by_id(srv):
    call(srv, "POST", "/api/public/v2/datasets", {"name": "evals"})
    call(srv, "POST", "/api/public/v2/datasets", {"name": "other"})
    status, item = call(srv, "POST", "/api/public/dataset-items", {"datasetName": "evals", "id": "q1",
                                                                   "input": {"q": "2+2"}, "expectedOutput": "4"})
    assert status == 200 and item["id"] == "q1" and item["datasetName"] == "evals"
    assert item["status"] == "ACTIVE" and item["metadata"] is None and item["mediaReferences"] == []
    status, again = call(srv, "POST", "/api/public/dataset-items", {"datasetName": "evals", "id": "q1",
                                                                    "metadata": {"src": "x"}, "input": None})
    # A string that is JSON is stored as that JSON (contract: dataset_items.values).
    assert status == 200 and again["input"] == {"q": "2+2"} and again["expectedOutput"] == 4
    assert again["metadata"] == {"src": "x"} and again["createdAt"] == item["createdAt"]
    assert call(srv, "GET", "/api/public/dataset-items/q1") == (200, again)
    _, cleared = call(srv, "POST", "/api/public/dataset-items", {"datasetName": "evals", "id": "q1", "metadata": "",
                                                                 "input": "plain\u0000 text\n"})
    assert cleared["metadata"] is None and cleared["input"] == "plain text\n"
    again = cleared
    status, answer = call(srv, "POST", "/api/public/dataset-items", {"datasetName": "other", "id": "q1"})
    assert (status, answer["error"]) == (409, "LangfuseConflictError")
    status, answer = call(srv, "POST", "/api/public/dataset-items", {"datasetName": "ghost"})
    assert (status, answer["message"]) == (404, f"Dataset ghost not found for project {srv.project_id}")
    _, generated = call(srv, "POST", "/api/public/dataset-items", {"datasetName": "evals", "input": 1})
    assert generated["id"] and generated["id"] != "q1"
    call(srv, "POST", "/api/public/dataset-items", {"datasetName": "evals", "id": "old", "status": "ARCHIVED"})
    status, listed = call(srv, "GET", "/api/public/dataset-items?datasetName=evals&limit=1")
    assert status == 200
    assert listed["meta"] == {"page": 1, "limit": 1, "totalItems": 2, "totalPages": 2}  # ACTIVE only
    assert listed["data"][0]["id"] == generated["id"]  # newest first
    assert call(srv, "GET", "/api/public/dataset-items?datasetName=evals&page=2&limit=1")[1]["data"][0]["id"] == "q1"
    assert call(srv, "GET", "/api/public/dataset-items?datasetName=nope")[0] == 404
    assert call(srv, "GET", "/api/public/dataset-items/missing") == (
        404, {"message": "Dataset item not found", "error": "LangfuseNotFoundError"})
    assert call(srv, "GET", "/api/public/dataset-items?limit=101")[0] == 400


# --- storage: the Postgres store's SQL, run on SQLite ------------------------------------------

def test_pg_store_keeps_the_same_documents():
    lf = load_double()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE content_docs (kind text NOT NULL, project_id text NOT NULL, key text NOT NULL, "
               "doc text NOT NULL, PRIMARY KEY (kind, project_id, key))")
    assert "CREATE TABLE IF NOT EXISTS content_docs" in lf.SCHEMA

    def sql(query, args=()):
        return db.execute(query.replace("%s", "?"), args).fetchall()

    api = lf.ContentApi(lf.PgContentStore(sql), {"hosts": ["litellm"], "ips": [], "ip_ranges": []})
    assert api.call("PUT", CONN, {}, json.dumps(connection()).encode(), "p1")[0] == 201
    assert api.call("PUT", CONN, {}, json.dumps(connection()).encode(), "p1")[0] == 200
    assert api.call("POST", PROMPTS, {}, b'{"name": "n", "prompt": "x"}', "p1")[0] == 201
    assert api.call("POST", PROMPTS, {}, b'{"name": "n", "prompt": "y"}', "p1")[1]["version"] == 2
    status, body = api.call("GET", PROMPTS + "/n", {"label": "latest"}, b"", "p1")
    assert (status, body["version"]) == (200, 2)
    assert api.call("GET", CONN, {}, b"", "p2")[1]["data"] == []  # per project
    assert db.execute("SELECT count(*) FROM content_docs").fetchone()[0] == 3
