#!/usr/bin/python3
"""MinIO server TEST DOUBLE (and a one-command `mc`) for offline tests of the llmops.devbox roles.

Not MinIO. It honours what the Langfuse compose stack touches: `minio server --address :9000
--console-address :9001 /data`, MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (refused when too short,
like MinIO), buckets as directories under the data path (so `mkdir -p /data/langfuse` makes a
bucket), path-style S3 with AWS Signature V4 checked against the root credentials (Authorization
header or presigned URL; aws-chunked bodies are decoded, chunk signatures are not checked),
ListBuckets, Head/Create/Delete bucket, ListObjects(V2), Put/Get/Head/Delete object, bucket
lifecycle (Put/Get/Delete ?lifecycle, Expiration Days rules by prefix, applied by a background
scan), the health endpoints /minio/health/{live,ready,cluster}, a placeholder console page.

Run as `mc` it is a small client: `mc ready ALIAS`, `mc [--json] ilm rule export ALIAS/BUCKET` and
`mc [--json] ilm rule import ALIAS/BUCKET` (JSON on stdin), with aliases from MC_HOST_<alias>
and requests signed with SigV4 like the server checks them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

log = logging.getLogger("minio-double")
SYS_DIR = ".minio.sys"
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
UNSIGNED = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


# --------------------------------------------------------------------------------------------
# AWS Signature Version 4
# --------------------------------------------------------------------------------------------

def _uri_encode(value: str, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


def canonical_query(raw_query: str, skip: str = "") -> str:
    pairs = [(k, v) for k, v in parse_qsl(raw_query, keep_blank_values=True) if k != skip]
    encoded = sorted((_uri_encode(k), _uri_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def expected_signature(secret: str, method: str, raw_path: str, raw_query: str,
                       headers: dict[str, str], signed_headers: list[str], payload_hash: str,
                       amz_date: str, scope: str, skip_query: str = "") -> str:
    """Signature V4 of a request as received (headers: lower-case names)."""
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers)
    canonical_request = "\n".join([
        method, raw_path or "/", canonical_query(raw_query, skip_query), canonical_headers,
        ";".join(signed_headers), payload_hash])
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, scope,
        hashlib.sha256(canonical_request.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    return hmac.new(signing_key(secret, date, region, service), string_to_sign.encode(),
                    hashlib.sha256).hexdigest()


def verify_request(access_key: str, secret: str, method: str, raw_path: str, raw_query: str,
                   headers: dict[str, str], now: datetime | None = None) -> str:
    """Check a request's SigV4 against the root credentials; return the payload hash claimed.

    Raises S3Error with the code MinIO would answer.
    """
    query = dict(parse_qsl(raw_query, keep_blank_values=True))
    auth = headers.get("authorization", "")
    if auth.startswith("AWS4-HMAC-SHA256 "):
        fields = dict(item.strip().split("=", 1) for item in auth[17:].split(","))
        credential, signed, signature = (fields.get("Credential", ""),
                                         fields.get("SignedHeaders", ""),
                                         fields.get("Signature", ""))
        amz_date = headers.get("x-amz-date", "")
        payload_hash = headers.get("x-amz-content-sha256", EMPTY_SHA256)
        skip = ""
    elif query.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256":
        credential, signed, signature = (query.get("X-Amz-Credential", ""),
                                         query.get("X-Amz-SignedHeaders", ""),
                                         query.get("X-Amz-Signature", ""))
        amz_date = query.get("X-Amz-Date", "")
        payload_hash, skip = UNSIGNED, "X-Amz-Signature"
        expires = int(query.get("X-Amz-Expires", "0") or 0)
        try:
            issued = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise S3Error(403, "AccessDenied", "X-Amz-Date is malformed") from None
        if ((now or datetime.now(timezone.utc)) - issued).total_seconds() > expires:
            raise S3Error(403, "AccessDenied", "Request has expired")
    elif auth:
        raise S3Error(400, "InvalidRequest", "Only AWS Signature Version 4 is supported")
    else:
        raise S3Error(403, "AccessDenied", "Access Denied.")
    key_id, _, scope = credential.partition("/")
    if key_id != access_key:
        raise S3Error(403, "InvalidAccessKeyId",
                      "The Access Key Id you provided does not exist in our records.")
    want = expected_signature(secret, method, raw_path, raw_query, headers,
                              [h for h in signed.split(";") if h], payload_hash, amz_date, scope,
                              skip)
    if not hmac.compare_digest(want, signature):
        raise S3Error(403, "SignatureDoesNotMatch",
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your key and signing method.")
    return payload_hash


def decode_aws_chunked(body: bytes) -> bytes:
    """Body of an aws-chunked upload: `<hex size>[;chunk-signature=..]\\r\\n<data>\\r\\n`...

    A zero-size chunk ends the data; trailers (e.g. checksums) after it are ignored.
    """
    out, pos = bytearray(), 0
    while True:
        end = body.index(b"\r\n", pos)
        size = int(body[pos:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[end + 2:end + 2 + size]
        pos = end + 2 + size + 2


# --------------------------------------------------------------------------------------------
# Bucket lifecycle: Expiration Days rules, filtered by prefix
# --------------------------------------------------------------------------------------------

MALFORMED = ("The XML you provided was not well-formed or did not validate against our published "
             "schema.")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element | None, name: str) -> ET.Element | None:
    """First child of that local name, whatever its namespace (clients send it or not)."""
    if el is None:
        return None
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el: ET.Element | None, name: str) -> str | None:
    found = _child(el, name)
    return None if found is None else (found.text or "").strip()


def parse_lifecycle(body: bytes) -> list[dict]:
    """Rules of a LifecycleConfiguration document, as {id, status, prefix, days, legacy}."""
    try:
        # Request bodies of a loopback test double; expat refuses entity expansion bombs.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError:
        raise S3Error(400, "MalformedXML", MALFORMED) from None
    if _local(root.tag) != "LifecycleConfiguration":
        raise S3Error(400, "MalformedXML", MALFORMED)
    rules = []
    for rule in (c for c in root if _local(c.tag) == "Rule"):
        status = _text(rule, "Status")
        if status not in ("Enabled", "Disabled"):
            raise S3Error(400, "InvalidArgument", "Status must be set to either Enabled or Disabled")
        filt, legacy = _child(rule, "Filter"), _text(rule, "Prefix")
        if filt is not None and (_child(filt, "Tag") is not None or
                                 _child(_child(filt, "And"), "Tag") is not None):
            raise S3Error(501, "NotImplemented", "The MinIO test double supports prefix filters only")
        prefix = _text(filt, "Prefix") or _text(_child(filt, "And"), "Prefix") or legacy or ""
        expiration = _child(rule, "Expiration")
        if expiration is None:
            raise S3Error(400, "InvalidArgument", "The MinIO test double supports Expiration Days "
                                                  "rules only")
        try:
            days = int(_text(expiration, "Days") or "")
        except ValueError:
            raise S3Error(400, "InvalidArgument", "Exactly one of Days (positive integer) or Date "
                                                  "(positive ISO 8601 format) should be present "
                                                  "inside Expiration.") from None
        if days <= 0:
            raise S3Error(400, "InvalidArgument", "Days must be positive integer when used with "
                                                  "Expiration")
        # MinIO gives a rule without ID a generated one.
        rules.append({"id": _text(rule, "ID") or uuid.uuid4().hex[:20], "status": status,
                      "prefix": prefix, "days": days, "legacy": filt is None and legacy is not None})
    if not rules:
        raise S3Error(400, "InvalidArgument", "Lifecycle configuration should have at least one rule")
    if len({r["id"] for r in rules}) != len(rules):
        raise S3Error(400, "InvalidArgument", "Rule ID must be unique. Found same ID for more than "
                                              "one rule")
    return rules


def lifecycle_xml(rules: list[dict]) -> str:
    parts = []
    for r in rules:
        where = (f"<Prefix>{escape(r['prefix'])}</Prefix>" if r.get("legacy")
                 else f"<Filter><Prefix>{escape(r['prefix'])}</Prefix></Filter>")
        parts.append(f"<Rule><ID>{escape(r['id'])}</ID><Status>{r['status']}</Status>{where}"
                     f"<Expiration><Days>{int(r['days'])}</Days></Expiration></Rule>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<LifecycleConfiguration xmlns="{S3_NS}">'
            + "".join(parts) + "</LifecycleConfiguration>")


# --------------------------------------------------------------------------------------------
# Storage: /data/<bucket>/<key>, metadata in /data/.minio.sys/meta/<bucket>/<key>.json
# --------------------------------------------------------------------------------------------

class Store:
    def __init__(self, root: str):
        self.root = root
        self.lock = threading.Lock()

    def bucket_dir(self, bucket: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) or bucket == SYS_DIR:
            raise S3Error(400, "InvalidBucketName", "The specified bucket is not valid.")
        return os.path.join(self.root, bucket)

    def need_bucket(self, bucket: str) -> str:
        path = self.bucket_dir(bucket)
        if not os.path.isdir(path):
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist")
        return path

    def object_path(self, bucket: str, key: str) -> str:
        base = self.need_bucket(bucket)
        path = os.path.normpath(os.path.join(base, key))
        if not key or not path.startswith(base + os.sep) or key.endswith("/"):
            raise S3Error(400, "InvalidArgument", f"Object name {key!r} is not valid here")
        return path

    def meta_path(self, bucket: str, key: str) -> str:
        return os.path.join(self.root, SYS_DIR, "meta", bucket, key + ".json")

    def buckets(self) -> list[str]:
        return sorted(d for d in os.listdir(self.root)
                      if d != SYS_DIR and os.path.isdir(os.path.join(self.root, d)))

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> str:
        path = self.object_path(bucket, key)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        with self.lock:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + f".{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
            meta = self.meta_path(bucket, key)
            os.makedirs(os.path.dirname(meta), exist_ok=True)
            with open(meta, "w", encoding="utf-8") as fh:
                json.dump({"etag": etag, "content_type": content_type}, fh)
        return etag

    def stat(self, bucket: str, key: str) -> dict:
        path = self.object_path(bucket, key)
        if not os.path.isfile(path):
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
        try:
            with open(self.meta_path(bucket, key), encoding="utf-8") as fh:
                meta = json.load(fh)
        except OSError:
            with open(path, "rb") as fh:
                meta = {"etag": hashlib.md5(fh.read(), usedforsecurity=False).hexdigest()}
        st = os.stat(path)
        meta.update(size=st.st_size, mtime=st.st_mtime, path=path)
        meta.setdefault("content_type", "application/octet-stream")
        return meta

    def delete(self, bucket: str, key: str) -> None:
        path = self.object_path(bucket, key)
        for p in (path, self.meta_path(bucket, key)):
            if os.path.isfile(p):
                os.remove(p)

    def lifecycle_path(self, bucket: str) -> str:
        return os.path.join(self.root, SYS_DIR, "buckets", bucket, "lifecycle.xml")

    def get_lifecycle(self, bucket: str) -> tuple[list[dict], float]:
        """(rules, time set) of a bucket; NoSuchLifecycleConfiguration when it has none."""
        self.need_bucket(bucket)
        path = self.lifecycle_path(bucket)
        try:
            with open(path, "rb") as fh:
                return parse_lifecycle(fh.read()), os.stat(path).st_mtime
        except OSError:
            raise S3Error(404, "NoSuchLifecycleConfiguration",
                          "The lifecycle configuration does not exist") from None

    def set_lifecycle(self, bucket: str, rules: list[dict]) -> None:
        self.need_bucket(bucket)
        path = self.lifecycle_path(bucket)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with self.lock, open(path, "w", encoding="utf-8") as fh:
            fh.write(lifecycle_xml(rules))

    def delete_lifecycle(self, bucket: str) -> None:
        self.need_bucket(bucket)
        if os.path.exists(self.lifecycle_path(bucket)):
            os.remove(self.lifecycle_path(bucket))

    def expire(self, day_seconds: float = 86400, now: float | None = None) -> list[str]:
        """Delete objects older than an Enabled rule's Days under its prefix; return bucket/key.
        MinIO rounds expiry up to the next midnight UTC; the double counts from the mtime."""
        now = time.time() if now is None else now
        gone = []
        for bucket in self.buckets():
            try:
                rules, _ = self.get_lifecycle(bucket)
            except S3Error:
                continue
            for rule in (r for r in rules if r["status"] == "Enabled"):
                for key, meta in self.list(bucket, rule["prefix"]):
                    if meta["mtime"] + rule["days"] * day_seconds <= now:
                        self.delete(bucket, key)
                        gone.append(f"{bucket}/{key}")
        return gone

    def list(self, bucket: str, prefix: str) -> list[tuple[str, dict]]:
        base = self.need_bucket(bucket)
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.endswith(".tmp"):
                    continue
                key = os.path.relpath(os.path.join(dirpath, name), base).replace(os.sep, "/")
                if key.startswith(prefix):
                    keys.append(key)
        return [(k, self.stat(bucket, k)) for k in sorted(keys)]


def _http_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

class S3Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MinIO"
    store: Store
    access_key: str
    secret_key: str

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.address_string(), fmt % args)

    def reply(self, status: int, body: bytes | str = b"", content_type: str = "application/xml",
              headers: dict | None = None, length: int | None = None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.send_header("x-amz-request-id", uuid.uuid4().hex[:16].upper())
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def s3_error(self, err: S3Error, resource: str):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{err.code}</Code>'
                f"<Message>{escape(str(err))}</Message><Resource>{escape(resource)}</Resource>"
                f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>")
        self.reply(err.status, body)

    def read_body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method: str):
        raw_path, _, raw_query = self.path.partition("?")
        path = unquote(raw_path)
        if path.startswith("/minio/health/"):
            return self.reply(200 if path.rstrip("/") in (
                "/minio/health/live", "/minio/health/ready", "/minio/health/cluster",
                "/minio/health/cluster/read") else 404)
        body = self.read_body() if method in ("PUT", "POST") else b""
        try:
            headers = {k.lower(): v for k, v in self.headers.items()}
            payload_hash = verify_request(self.access_key, self.secret_key, method, raw_path,
                                          raw_query, headers)
            if payload_hash.startswith("STREAMING-") or \
                    "aws-chunked" in headers.get("content-encoding", ""):
                body = decode_aws_chunked(body)
            elif re.fullmatch(r"[0-9a-f]{64}", payload_hash) and \
                    hashlib.sha256(body).hexdigest() != payload_hash:
                raise S3Error(400, "XAmzContentSHA256Mismatch",
                              "The provided 'x-amz-content-sha256' header does not match what "
                              "was computed.")
            bucket, _, key = path.lstrip("/").partition("/")
            query = dict(parse_qsl(raw_query, keep_blank_values=True))
            self.s3(method, bucket, key, query, body)
        except S3Error as err:
            log.info("%s %s -> %s", method, path, err.code)
            self.s3_error(err, path)

    def s3(self, method: str, bucket: str, key: str, query: dict, body: bytes):
        st = self.store
        if not bucket:
            if method != "GET":
                raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed")
            items = "".join(f"<Bucket><Name>{escape(b)}</Name><CreationDate>"
                            f"{_iso(os.stat(st.bucket_dir(b)).st_mtime)}</CreationDate></Bucket>"
                            for b in st.buckets())
            return self.reply(200, f'<?xml version="1.0" encoding="UTF-8"?>\n'
                                   f'<ListAllMyBucketsResult xmlns="{S3_NS}"><Owner><ID>minio'
                                   f"</ID></Owner><Buckets>{items}</Buckets>"
                                   f"</ListAllMyBucketsResult>")
        if not key:
            return self.bucket_op(method, bucket, query, body)
        if method == "PUT":
            etag = st.put(bucket, key, body,
                          self.headers.get("Content-Type") or "application/octet-stream")
            return self.reply(200, headers={"ETag": f'"{etag}"'})
        if method in ("GET", "HEAD"):
            meta = st.stat(bucket, key)
            with open(meta["path"], "rb") as fh:
                data = fh.read() if method == "GET" else b""
            return self.reply(200, data, meta["content_type"], length=meta["size"],
                              headers={"ETag": f'"{meta["etag"]}"',
                                       "Last-Modified": _http_date(meta["mtime"])})
        if method == "DELETE":
            st.delete(bucket, key)
            return self.reply(204)
        raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed")

    def bucket_op(self, method: str, bucket: str, query: dict, body: bytes = b""):
        st = self.store
        if "lifecycle" in query:
            return self.lifecycle_op(method, bucket, query, body)
        if method == "HEAD":
            st.need_bucket(bucket)
            return self.reply(200, headers={"x-amz-bucket-region": "us-east-1"})
        if method == "PUT":
            path = st.bucket_dir(bucket)
            if os.path.isdir(path):
                raise S3Error(409, "BucketAlreadyOwnedByYou",
                              "Your previous request to create the named bucket succeeded and "
                              "you already own it.")
            os.makedirs(path)
            return self.reply(200, headers={"Location": "/" + bucket})
        if method == "DELETE":
            path = st.need_bucket(bucket)
            if st.list(bucket, ""):
                raise S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not "
                                                     "empty")
            os.rmdir(path)
            shutil.rmtree(os.path.dirname(st.lifecycle_path(bucket)), ignore_errors=True)
            return self.reply(204)
        if method == "GET" and "location" in query:
            st.need_bucket(bucket)
            return self.reply(200, f'<?xml version="1.0" encoding="UTF-8"?>\n'
                                   f'<LocationConstraint xmlns="{S3_NS}"></LocationConstraint>')
        if method == "GET":
            prefix = query.get("prefix", "")
            limit = int(query.get("max-keys", "1000") or 1000)
            objects = st.list(bucket, prefix)
            contents = "".join(
                f"<Contents><Key>{escape(k)}</Key><LastModified>{_iso(m['mtime'])}</LastModified>"
                f"<ETag>&quot;{m['etag']}&quot;</ETag><Size>{m['size']}</Size>"
                f"<StorageClass>STANDARD</StorageClass></Contents>" for k, m in objects[:limit])
            v2 = query.get("list-type") == "2"
            count = f"<KeyCount>{min(len(objects), limit)}</KeyCount>" if v2 else ""
            return self.reply(200, f'<?xml version="1.0" encoding="UTF-8"?>\n'
                                   f'<ListBucketResult xmlns="{S3_NS}"><Name>{escape(bucket)}'
                                   f"</Name><Prefix>{escape(prefix)}</Prefix>{count}"
                                   f"<MaxKeys>{limit}</MaxKeys><IsTruncated>"
                                   f"{'true' if len(objects) > limit else 'false'}</IsTruncated>"
                                   f"{contents}</ListBucketResult>")
        raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed")


    def lifecycle_op(self, method: str, bucket: str, query: dict, body: bytes):
        st = self.store
        if method == "GET":
            rules, updated = st.get_lifecycle(bucket)
            headers = {}
            if query.get("withUpdatedAt") == "true":
                headers["X-Minio-LifecycleConfig-UpdatedAt"] = _iso(updated)
            return self.reply(200, lifecycle_xml(rules), headers=headers)
        if method == "PUT":
            # MinIO wants Content-MD5 (or an x-amz-checksum-*) on PutBucketLifecycle.
            md5 = self.headers.get("Content-MD5")
            if not md5 and not any(k.lower().startswith("x-amz-checksum-") for k in self.headers):
                raise S3Error(400, "MissingContentMD5", "Missing or invalid required header for "
                                                        "this request: Content-Md5 or "
                                                        "Amz-Content-Checksum")
            digest = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
            if md5 and md5 != digest:
                raise S3Error(400, "BadDigest", "The Content-Md5 you specified did not match what "
                                                "we received.")
            st.need_bucket(bucket)
            st.set_lifecycle(bucket, parse_lifecycle(body))
            return self.reply(200)
        if method == "DELETE":
            st.delete_lifecycle(bucket)
            return self.reply(204)
        raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed")


class ConsoleHandler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        log.debug("console %s", fmt % args)

    def do_GET(self):
        data = (b"<!doctype html><title>MinIO Console (test double)</title>"
                b"<h1>MinIO test double</h1><p>Not the real MinIO console.</p>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _addr(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return (host or "0.0.0.0"), int(port or default_port)


def ilm_loop(store: Store) -> None:
    """Apply lifecycle expiry every MINIO_DOUBLE_ILM_INTERVAL seconds; MINIO_DOUBLE_DAY_SECONDS
    lets tests make a lifecycle day last a second."""
    interval = float(os.environ.get("MINIO_DOUBLE_ILM_INTERVAL") or 60)
    day = float(os.environ.get("MINIO_DOUBLE_DAY_SECONDS") or 86400)
    while True:
        time.sleep(interval)
        try:
            for name in store.expire(day):
                log.info("lifecycle: expired %s", name)
        except (OSError, S3Error) as exc:
            log.warning("lifecycle scan failed: %s", exc)


def server_main(args: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    address, console, dirs = ":9000", ":9001", []
    it = iter(args)
    for arg in it:
        if arg in ("--address", "--console-address"):
            value = next(it, "")
            address, console = (value, console) if arg == "--address" else (address, value)
        elif arg.startswith("--address="):
            address = arg.split("=", 1)[1]
        elif arg.startswith("--console-address="):
            console = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            print(f"minio (test double): unsupported flag {arg}", file=sys.stderr)
            return 1
        else:
            dirs.append(arg)
    if len(dirs) != 1:
        print("minio (test double): exactly one data directory is supported", file=sys.stderr)
        return 1
    user = os.environ.get("MINIO_ROOT_USER") or "minioadmin"
    password = os.environ.get("MINIO_ROOT_PASSWORD") or "minioadmin"
    if len(user) < 3 or len(password) < 8:
        print("FATAL Unable to validate credentials inherited from the shell environment: "
              "Invalid credentials: MINIO_ROOT_USER needs at least 3 characters and "
              "MINIO_ROOT_PASSWORD at least 8", file=sys.stderr)
        return 1
    os.makedirs(os.path.join(dirs[0], SYS_DIR), exist_ok=True)
    log.info("MinIO TEST DOUBLE (not the real MinIO server); data in %s", dirs[0])
    attrs = {"store": Store(dirs[0]), "access_key": user, "secret_key": password}
    api = ThreadingHTTPServer(_addr(address, 9000), type("H", (S3Handler,), attrs))
    ui = ThreadingHTTPServer(_addr(console, 9001), ConsoleHandler)
    for srv in (api, ui):
        srv.daemon_threads = True
    threading.Thread(target=ui.serve_forever, daemon=True).start()
    threading.Thread(target=ilm_loop, args=(attrs["store"],), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("API: %s  Console: %s", address, console)
    try:
        api.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


# --------------------------------------------------------------------------------------------
# mc: ready, ilm rule export, ilm rule import
# --------------------------------------------------------------------------------------------

MC_GLOBAL_FLAGS = ("--json", "--quiet", "-q", "--no-color", "--disable-pager")
MC_SUPPORTED = ("mc (test double): supported are `mc ready ALIAS`, `mc [--json] ilm rule export "
                "ALIAS/BUCKET` and `mc [--json] ilm rule import ALIAS/BUCKET`")


class McError(Exception):
    """mc's fatal error: a message and its cause (contract minio: facts.mc_ilm_export_import)."""

    def __init__(self, message: str, cause: str, error: dict | None = None):
        super().__init__(message)
        self.message, self.cause, self.error = message, cause, error or {}

    def line(self) -> str:
        """mc's punctuation: '.' before a capitalised cause, ':' otherwise; the cause ends in '.'."""
        msg, cause = self.message.strip(), self.cause.strip()
        if msg and cause:
            if msg[-1] not in ":.":
                msg += "." if cause[0].isupper() else ":"
            if not cause.endswith("."):
                cause += "."
        return f"{msg} {cause}"


def mc_alias(alias: str) -> tuple[str, str, str]:
    """(base URL, access key, secret key) of an alias. Like mc, MC_HOST_<alias> splits
    http(s)://ACCESS:SECRET@host at the first ':' and the last '@' without percent-decoding; a
    second ':' makes the rest a session token. Without it, alias `local` is mc's default config
    entry http://localhost:9000 with no credentials."""
    url = os.environ.get(f"MC_HOST_{alias}")
    if url is None:
        if alias == "local":
            return "http://localhost:9000", "", ""
        raise McError(f"Unable to initialize client for {alias}",
                      f"No valid configuration found for '{alias}' host alias")
    m = re.fullmatch(r"(https?://)(.*?):(.*?):(.*)@(.*?)", url) or \
        re.fullmatch(r"(https?://)(.*?):(.*)@(.*?)", url)
    access = secret = ""
    if m:
        access, secret, url = m.group(2), m.group(3), m.group(1) + m.groups()[-1]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/") or parts.query:
        raise McError(f"Unable to initialize client for {alias}", "Invalid argument.")
    return f"{parts.scheme}://{parts.netloc}", access, secret


def sign(access: str, secret: str, method: str, url: str, body: bytes,
         headers: dict[str, str] | None = None, now: datetime | None = None) -> dict[str, str]:
    """Headers of a SigV4-signed request (us-east-1, s3), computed with the server's own helpers."""
    parts = urlsplit(url)
    amz_date = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    signed = {"host": parts.netloc, "x-amz-date": amz_date,
              "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
              **{k.lower(): v for k, v in (headers or {}).items()}}
    if not access:
        return signed  # anonymous, as mc sends it for an alias without keys
    names = sorted(signed)
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    signature = expected_signature(secret, method, parts.path or "/", parts.query, signed, names,
                                   signed["x-amz-content-sha256"], amz_date, scope)
    signed["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                               f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return signed


def s3_call(target: str, method: str, query: str, body: bytes = b"",
            headers: dict[str, str] | None = None, what: str = "") -> tuple[bytes, dict]:
    """One signed request to ALIAS/BUCKET?query; an S3 error becomes mc's McError(what, ...)."""
    alias, _, rest = target.partition("/")
    bucket = rest.split("/")[0]
    base, access, secret = mc_alias(alias)
    if not bucket:
        raise McError(what, "Bucket name cannot be empty.")
    url = f"{base}/{quote(bucket)}?{query}"
    req = urllib.request.Request(url, data=body if method == "PUT" else None, method=method,
                                 headers=sign(access, secret, method, url, body, headers))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        try:
            root = ET.fromstring(exc.read())  # noqa: S314 - the double's own error document
            code, message = _text(root, "Code") or "", _text(root, "Message") or str(exc)
        except ET.ParseError:
            code, message = "", str(exc)
        # minio-go's ErrorResponse as encoding/json writes it (the status code is not exported).
        raise McError(what, message, {"Code": code, "Message": message, "BucketName": bucket,
                                      "Key": "", "Resource": f"/{bucket}", "RequestID": "",
                                      "HostID": "", "Region": "", "Server": "MinIO"}) from None
    except OSError as exc:
        raise McError(what, str(exc)) from None


def rules_to_json(rules: list[dict]) -> dict:
    """minio-go's lifecycle.Configuration as JSON (its field tags), zero values left out."""
    out = []
    for r in rules:
        rule = {"Expiration": {"Days": r["days"]}, "ID": r["id"]}
        if r.get("legacy"):
            rule["Prefix"] = r["prefix"]
        else:
            rule["Filter"] = {"Prefix": r["prefix"]} if r["prefix"] else {}
        rule["Status"] = r["status"]
        out.append(rule)
    return {"Rules": out}


def _get(obj, key: str, default=None):
    """Go's JSON decoding matches field names case-insensitively."""
    if not isinstance(obj, dict):
        return default
    return next((v for k, v in obj.items() if k.lower() == key.lower()), default)


def rules_from_json(cfg) -> list[dict]:
    rules = []
    for r in _get(cfg, "Rules") or []:
        filt = _get(r, "Filter") or {}
        days = _get(_get(r, "Expiration") or {}, "Days") or 0
        prefix = _get(filt, "Prefix") or _get(_get(filt, "And") or {}, "Prefix") or \
            _get(r, "Prefix") or ""
        rules.append({"id": _get(r, "ID") or "", "status": _get(r, "Status") or "",
                      "prefix": prefix, "days": days,
                      "legacy": not filt and bool(_get(r, "Prefix"))})
    return rules


def _go_time(ts: float) -> str:
    """A time as Go's encoding/json writes it (RFC 3339, trailing zero fractions dropped)."""
    text = datetime.fromtimestamp(round(ts, 3), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text.rstrip("0").rstrip(".") + "Z"


def mc_print(doc: dict) -> None:
    """printMsg in --json mode: indented by one space on a terminal, one line otherwise (mc
    compacts JSON when stdout or stderr is not a terminal, as under Ansible)."""
    if sys.stdout.isatty() and sys.stderr.isatty():
        print(json.dumps(doc, indent=1))
    else:
        print(json.dumps(doc, separators=(",", ":")))


def mc_ilm_export(target: str, as_json: bool) -> int:
    body, headers = s3_call(target, "GET", "lifecycle=&withUpdatedAt=true",
                            what="Unable to get lifecycle configuration")
    try:
        rules = parse_lifecycle(body) if body.strip() else []
    except S3Error:
        rules = []
    # mc's own check; MinIO answers NoSuchLifecycleConfiguration (above) before it is reached.
    if not rules:
        raise McError("Unable to export lifecycle configuration", "lifecycle configuration not set")
    config = rules_to_json(rules)
    if not as_json:
        print(json.dumps(config, indent=1))
        return 0
    updated = headers.get("X-Minio-LifecycleConfig-UpdatedAt")
    stamp = datetime.strptime(updated, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp() if updated else 0
    mc_print({"status": "success", "target": target, "config": config,
              "updatedAt": _go_time(stamp) if stamp else "0001-01-01T00:00:00Z"})
    return 0


def mc_ilm_import(target: str, as_json: bool) -> int:
    try:
        config = json.loads(sys.stdin.read())
    except ValueError as exc:
        raise McError("Unable to read ILM configuration", str(exc)) from None
    rules = rules_from_json(config)
    if not rules:
        # Like mc: an empty rule list would delete the configuration, so it is refused.
        raise McError("The provided ILM configuration does not contain any rule, aborting.", "")
    body = lifecycle_xml(rules).encode()
    md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
    s3_call(target, "PUT", "lifecycle=", body, {"Content-MD5": md5,
                                                  "Content-Type": "application/xml"},
            what="Unable to set new lifecycle rules")
    if as_json:
        mc_print({"status": "success", "target": target})
    else:
        print(f"Lifecycle configuration imported successfully to `{target}`.")
    return 0


def mc_ready(alias: str) -> int:
    """`mc ready ALIAS`, as upstream's client does it (contract minio: health): poll the server's
    /minio/health/cluster until it answers 200, every 5 s, never giving up by itself (a health check
    using it fails by its timeout)."""
    try:
        base, _, _ = mc_alias(alias)
    except McError:
        print(f"mc: alias {alias} is not configured", file=sys.stderr)
        return 1
    while True:
        try:
            with urllib.request.urlopen(base + "/minio/health/cluster", timeout=5) as resp:
                if resp.status == 200:
                    print(f"The cluster '{alias}' is ready")
                    return 0
        except OSError as exc:
            print(f"mc: the cluster '{alias}' is unreachable: {exc}", file=sys.stderr)
        time.sleep(5)


def mc_main(args: list[str]) -> int:
    as_json = "--json" in args
    words = [a for a in args if a not in MC_GLOBAL_FLAGS]
    if any(w.startswith("-") for w in words):
        print(MC_SUPPORTED, file=sys.stderr)
        return 1
    if len(words) == 2 and words[0] == "ready":
        return mc_ready(words[1])
    if len(words) == 4 and words[:3] in (["ilm", "rule", "export"], ["ilm", "rule", "import"]):
        try:
            if words[2] == "export":
                return mc_ilm_export(words[3], as_json)
            return mc_ilm_import(words[3], as_json)
        except McError as err:
            # mc's fatal(): with --json an indented JSON object on stdout (never compacted: it
            # does not go through printMsg), else "mc: <ERROR> ..." on stderr; exit 1.
            if as_json:
                print(json.dumps({"status": "error", "error": {
                    "message": err.message, "cause": {"message": err.cause, "error": err.error},
                    "type": "fatal"}}, indent=1))
            else:
                print(f"mc: <ERROR> {err.line()}", file=sys.stderr)
            return 1
    print(MC_SUPPORTED, file=sys.stderr)
    return 1


def main() -> int:
    prog = os.path.basename(sys.argv[0])
    if prog == "mc":
        return mc_main(sys.argv[1:])
    if len(sys.argv) >= 2 and sys.argv[1] == "server":
        return server_main(sys.argv[2:])
    print("minio (test double): usage: minio server [--address ADDR] [--console-address ADDR] "
          "DIR", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
