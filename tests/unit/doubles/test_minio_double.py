"""The MinIO double's Signature V4 check, against the worked examples of the S3 API reference
(credentials AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 24 May 2013); bucket
lifecycle and the `mc ilm rule export/import` client (contract minio: facts)."""

import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

PROGRAM = Path(__file__).resolve().parents[2] / "images" / "minio-double" / "minio_double.py"

KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
HOST = "examplebucket.s3.amazonaws.com"


def _auth(signed, signature):
    return (f"AWS4-HMAC-SHA256 Credential={KEY}/20130524/us-east-1/s3/aws4_request,"
            f"SignedHeaders={signed},Signature={signature}")


def _get_object_headers(signature):
    return {"host": HOST, "range": "bytes=0-9", "x-amz-content-sha256": EMPTY,
            "x-amz-date": "20130524T000000Z",
            "authorization": _auth("host;range;x-amz-content-sha256;x-amz-date", signature)}


GET_OBJECT_SIG = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def test_header_signature_of_aws_example_is_accepted(minio):
    headers = _get_object_headers(GET_OBJECT_SIG)
    assert minio.verify_request(KEY, SECRET, "GET", "/test.txt", "", headers) == EMPTY


def test_query_string_is_canonicalised_like_aws(minio):
    headers = {"host": HOST, "x-amz-content-sha256": EMPTY, "x-amz-date": "20130524T000000Z",
               "authorization": _auth("host;x-amz-content-sha256;x-amz-date",
                                      "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")}
    # Parameters arrive unsorted; the signature covers them sorted.
    minio.verify_request(KEY, SECRET, "GET", "/", "prefix=J&max-keys=2", headers)


@pytest.mark.parametrize(("secret", "code"), [("wrong-secret", "SignatureDoesNotMatch")])
def test_wrong_secret_is_refused(minio, secret, code):
    with pytest.raises(minio.S3Error) as err:
        minio.verify_request(KEY, secret, "GET", "/test.txt", "", _get_object_headers(GET_OBJECT_SIG))
    assert err.value.code == code and err.value.status == 403


def test_unknown_access_key_and_tampered_request_are_refused(minio):
    with pytest.raises(minio.S3Error) as err:
        minio.verify_request("OTHERKEY", SECRET, "GET", "/test.txt", "", _get_object_headers(GET_OBJECT_SIG))
    assert err.value.code == "InvalidAccessKeyId"
    headers = _get_object_headers(GET_OBJECT_SIG)
    headers["range"] = "bytes=0-99"
    with pytest.raises(minio.S3Error) as err:
        minio.verify_request(KEY, SECRET, "GET", "/test.txt", "", headers)
    assert err.value.code == "SignatureDoesNotMatch"


def test_anonymous_request_is_denied(minio):
    with pytest.raises(minio.S3Error) as err:
        minio.verify_request(KEY, SECRET, "GET", "/langfuse/x", "", {"host": "minio:9000"})
    assert err.value.code == "AccessDenied"


PRESIGNED = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
             "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
             "&X-Amz-SignedHeaders=host"
             "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")


def test_presigned_url_is_accepted_until_it_expires(minio):
    within = datetime(2013, 5, 24, 12, tzinfo=timezone.utc)
    assert minio.verify_request(KEY, SECRET, "GET", "/test.txt", PRESIGNED, {"host": HOST},
                                now=within) == "UNSIGNED-PAYLOAD"
    with pytest.raises(minio.S3Error, match="expired"):
        minio.verify_request(KEY, SECRET, "GET", "/test.txt", PRESIGNED, {"host": HOST},
                             now=datetime(2013, 5, 26, tzinfo=timezone.utc))


def test_aws_chunked_body_is_decoded_and_trailers_dropped(minio):
    body = (b"5;chunk-signature=abc\r\nhello\r\n6\r\n world\r\n0\r\n"
            b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n")
    assert minio.decode_aws_chunked(body) == b"hello world"


def test_bucket_directory_and_object_store(minio, tmp_path):
    store = minio.Store(str(tmp_path))
    (tmp_path / "langfuse").mkdir()  # `mkdir -p /data/langfuse` makes the bucket
    assert store.buckets() == ["langfuse"]
    etag = store.put("langfuse", "events/a/b.pb", b"data", "application/x-protobuf")
    meta = store.stat("langfuse", "events/a/b.pb")
    assert meta["etag"] == etag and meta["size"] == 4 and meta["content_type"] == "application/x-protobuf"
    assert [k for k, _ in store.list("langfuse", "events/")] == ["events/a/b.pb"]
    with pytest.raises(minio.S3Error) as err:
        store.object_path("langfuse", "../escape")
    assert err.value.code == "InvalidArgument"
    with pytest.raises(minio.S3Error) as err:
        store.stat("missing-bucket", "x")
    assert err.value.code == "NoSuchBucket"


# --- bucket lifecycle --------------------------------------------------------------------------

LIFECYCLE = (b'<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ID>events</ID>'
             b"<Status>Enabled</Status><Filter><Prefix>events/</Prefix></Filter><Expiration><Days>30</Days>"
             b"</Expiration></Rule><Rule><ID>old</ID><Prefix>legacy/</Prefix><Status>Disabled</Status>"
             b"<Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>")


def test_lifecycle_document_is_parsed_with_or_without_namespace(minio):
    rules = minio.parse_lifecycle(LIFECYCLE)
    assert [(r["id"], r["status"], r["prefix"], r["days"], r["legacy"]) for r in rules] == [
        ("events", "Enabled", "events/", 30, False), ("old", "Disabled", "legacy/", 1, True)]
    again = minio.parse_lifecycle(minio.lifecycle_xml(rules).encode().replace(minio.S3_NS.encode(), b""))
    assert again == rules


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"<LifecycleConfiguration><Rule>", 400, "MalformedXML"),
    (b"<Other/>", 400, "MalformedXML"),
    (b"<LifecycleConfiguration><Rule><Status>Enabled</Status></Rule></LifecycleConfiguration>", 400,
     "InvalidArgument"),
    (b"<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><Date>2030-01-01T00:00:00Z</Date>"
     b"</Expiration></Rule></LifecycleConfiguration>", 400, "InvalidArgument"),
    (b"<LifecycleConfiguration><Rule><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>"
     b"</LifecycleConfiguration>", 400, "InvalidArgument"),
    (b"<LifecycleConfiguration></LifecycleConfiguration>", 400, "InvalidArgument"),
])
def test_bad_lifecycle_documents_are_refused(minio, body, status, code):
    with pytest.raises(minio.S3Error) as err:
        minio.parse_lifecycle(body)
    assert (err.value.status, err.value.code) == (status, code)


def test_expiry_removes_only_old_objects_under_an_enabled_rules_prefix(minio, tmp_path):
    store = minio.Store(str(tmp_path))
    (tmp_path / "langfuse").mkdir()
    for key in ("events/a/1.json", "events/2.json", "media/x.png", "legacy/y", "eventsish"):
        store.put("langfuse", key, b"x", "application/octet-stream")
    store.set_lifecycle("langfuse", minio.parse_lifecycle(LIFECYCLE))
    old = time.time() - 40 * 86400
    for key in ("events/a/1.json", "media/x.png", "legacy/y", "eventsish"):
        os.utime(tmp_path / "langfuse" / key, (old, old))
    assert store.expire() == ["langfuse/events/a/1.json"]  # legacy/ is under a Disabled rule
    left = [k for k, _ in store.list("langfuse", "")]
    assert left == ["events/2.json", "eventsish", "legacy/y", "media/x.png"]
    # With a one-second day, everything under events/ older than 30 s goes.
    assert store.expire(day_seconds=1, now=time.time() + 31) == ["langfuse/events/2.json"]


def test_lifecycle_is_gone_with_its_bucket_config(minio, tmp_path):
    store = minio.Store(str(tmp_path))
    (tmp_path / "langfuse").mkdir()
    with pytest.raises(minio.S3Error) as err:
        store.get_lifecycle("langfuse")
    assert (err.value.status, err.value.code) == (404, "NoSuchLifecycleConfiguration")
    assert str(err.value) == "The lifecycle configuration does not exist"
    store.set_lifecycle("langfuse", minio.parse_lifecycle(LIFECYCLE))
    assert (tmp_path / ".minio.sys" / "buckets" / "langfuse" / "lifecycle.xml").is_file()
    store.delete_lifecycle("langfuse")
    with pytest.raises(minio.S3Error):
        store.get_lifecycle("langfuse")


# --- over HTTP, and mc -------------------------------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """A running double (one-second lifecycle days, scanned every 0.2 s) with bucket langfuse."""
    (tmp_path / "langfuse").mkdir()
    port = _free_port()
    env = {**os.environ, "MINIO_ROOT_USER": "minio", "MINIO_ROOT_PASSWORD": "minio-password",
           "MINIO_DOUBLE_ILM_INTERVAL": "0.2", "MINIO_DOUBLE_DAY_SECONDS": "1"}
    proc = subprocess.Popen([sys.executable, str(PROGRAM), "server", "--address", f"127.0.0.1:{port}",
                             "--console-address", f"127.0.0.1:{_free_port()}", str(tmp_path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/minio/health/live", timeout=2).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    yield port
    proc.kill()
    proc.wait()


def _mc(minio, monkeypatch, capsys, args, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = minio.mc_main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


RULES = {"Rules": [{"Expiration": {"Days": 30}, "ID": "langfuse-events", "Filter": {"Prefix": "events/"},
                    "Status": "Enabled"}]}


def test_mc_ilm_export_and_import_round_trip(minio, server, monkeypatch, capsys):
    monkeypatch.setenv("MC_HOST_local", f"http://minio:minio-password@127.0.0.1:{server}")
    # Nothing set yet: MinIO answers NoSuchLifecycleConfiguration, mc reports it and exits 1.
    code, out, err = _mc(minio, monkeypatch, capsys, ["ilm", "rule", "export", "local/langfuse"])
    assert code == 1 and out == ""
    assert err == "mc: <ERROR> Unable to get lifecycle configuration. The lifecycle configuration does not exist.\n"
    code, out, _ = _mc(minio, monkeypatch, capsys, ["--json", "ilm", "rule", "export", "local/langfuse"])
    error = json.loads(out)  # fatal errors stay indented over several lines, even when piped
    assert code == 1 and error["status"] == "error" and out.count("\n") > 5
    assert error["error"]["cause"]["error"]["Code"] == "NoSuchLifecycleConfiguration"

    code, out, _ = _mc(minio, monkeypatch, capsys, ["ilm", "rule", "import", "local/langfuse"], json.dumps(RULES))
    assert (code, out) == (0, "Lifecycle configuration imported successfully to `local/langfuse`.\n")
    code, out, _ = _mc(minio, monkeypatch, capsys, ["ilm", "rule", "export", "local/langfuse"])
    assert code == 0 and json.loads(out) == RULES and out.startswith('{\n "Rules"')
    code, out, _ = _mc(minio, monkeypatch, capsys, ["ilm", "rule", "export", "--json", "local/langfuse"])
    # Not a terminal (as under Ansible): mc prints --json results on one line.
    assert out.count("\n") == 1
    exported = json.loads(out)
    assert list(exported) == ["status", "target", "config", "updatedAt"]
    assert exported["status"] == "success" and exported["target"] == "local/langfuse"
    assert exported["config"] == RULES
    assert datetime.strptime(exported["updatedAt"][:19], "%Y-%m-%dT%H:%M:%S").year >= 2024
    # Importing what was exported is a no-op (the roles' idempotent path).
    code, out, _ = _mc(minio, monkeypatch, capsys, ["--json", "ilm", "rule", "import", "local/langfuse"],
                       json.dumps(exported["config"]))
    assert code == 0 and json.loads(out) == {"status": "success", "target": "local/langfuse"}


def test_mc_import_refuses_an_empty_rule_list_and_bad_json(minio, server, monkeypatch, capsys):
    monkeypatch.setenv("MC_HOST_local", f"http://minio:minio-password@127.0.0.1:{server}")
    code, _, err = _mc(minio, monkeypatch, capsys, ["ilm", "rule", "import", "local/langfuse"], '{"Rules": []}')
    assert code == 1 and "The provided ILM configuration does not contain any rule, aborting." in err
    code, _, err = _mc(minio, monkeypatch, capsys, ["ilm", "rule", "import", "local/langfuse"], "{not json")
    assert code == 1 and err.startswith("mc: <ERROR> Unable to read ILM configuration")


def test_mc_without_credentials_is_denied(minio, server, monkeypatch, capsys):
    monkeypatch.setenv("MC_HOST_local", f"http://127.0.0.1:{server}")
    code, _, err = _mc(minio, monkeypatch, capsys, ["ilm", "rule", "export", "local/langfuse"])
    assert code == 1 and "Access Denied." in err
    monkeypatch.setenv("MC_HOST_local", f"http://minio:wrong-password@127.0.0.1:{server}")
    code, _, err = _mc(minio, monkeypatch, capsys, ["ilm", "rule", "export", "local/langfuse"])
    assert code == 1 and "signature we calculated does not match" in err


def test_mc_alias_from_environment(minio, monkeypatch):
    monkeypatch.delenv("MC_HOST_local", raising=False)
    assert minio.mc_alias("local") == ("http://localhost:9000", "", "")
    # Like mc: no percent-decoding; the secret runs to the last '@'.
    monkeypatch.setenv("MC_HOST_x", "https://AK:se%2Fc@ret@minio.internal:9000")
    assert minio.mc_alias("x") == ("https://minio.internal:9000", "AK", "se%2Fc@ret")
    with pytest.raises(minio.McError, match="Unable to initialize client for nope"):
        minio.mc_alias("nope")


@pytest.mark.parametrize("args", [["ilm", "rule", "add", "local/langfuse"], ["admin", "info", "local"], []])
def test_mc_other_commands_name_what_the_double_supports(minio, monkeypatch, capsys, args):
    code, _, err = _mc(minio, monkeypatch, capsys, args)
    assert code == 1 and "ilm rule export" in err and "mc ready ALIAS" in err


def _s3(minio, port, method, query, body=b"", headers=None):
    url = f"http://127.0.0.1:{port}/langfuse?{query}"
    req = urllib.request.Request(url, data=body or None, method=method,
                                 headers=minio.sign("minio", "minio-password", method, url, body, headers))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_lifecycle_over_s3(minio, server):
    def md5(body):
        return {"Content-MD5": base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()}

    status, body = _s3(minio, server, "PUT", "lifecycle=", LIFECYCLE)
    assert status == 400 and b"MissingContentMD5" in body  # MinIO wants Content-MD5
    assert _s3(minio, server, "PUT", "lifecycle=", LIFECYCLE, md5(LIFECYCLE))[0] == 200
    status, body = _s3(minio, server, "GET", "lifecycle=")
    assert status == 200 and [r["id"] for r in minio.parse_lifecycle(body)] == ["events", "old"]
    status, body = _s3(minio, server, "PUT", "lifecycle=", b"<broken", md5(b"<broken"))
    assert status == 400 and b"<Code>MalformedXML</Code>" in body
    assert _s3(minio, server, "DELETE", "lifecycle=")[0] == 204
    status, body = _s3(minio, server, "GET", "lifecycle=")
    assert status == 404 and b"<Code>NoSuchLifecycleConfiguration</Code>" in body


def test_server_expires_objects_in_the_background(minio, server, tmp_path, monkeypatch, capsys):
    store = minio.Store(str(tmp_path))
    for key in ("events/old.json", "media/old.png"):
        store.put("langfuse", key, b"x", "application/octet-stream")
    monkeypatch.setenv("MC_HOST_local", f"http://minio:minio-password@127.0.0.1:{server}")
    rules = {"Rules": [{"Expiration": {"Days": 1}, "ID": "e", "Filter": {"Prefix": "events/"},
                        "Status": "Enabled"}]}
    assert _mc(minio, monkeypatch, capsys, ["ilm", "rule", "import", "local/langfuse"], json.dumps(rules))[0] == 0
    deadline = time.monotonic() + 10
    while (tmp_path / "langfuse" / "events" / "old.json").exists():
        assert time.monotonic() < deadline, "the expiry scan did not remove events/old.json"
        time.sleep(0.2)
    assert (tmp_path / "langfuse" / "media" / "old.png").exists()
