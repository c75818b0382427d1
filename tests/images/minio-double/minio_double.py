#!/usr/bin/python3
"""MinIO server TEST DOUBLE (and a one-command `mc`) for offline tests of the llmops.devbox roles.

Not MinIO. It honours what the Langfuse compose stack touches: `minio server --address :9000
--console-address :9001 /data`, MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (refused when too short,
like MinIO), buckets as directories under the data path (so `mkdir -p /data/langfuse` makes a
bucket), path-style S3 with AWS Signature V4 checked against the root credentials (Authorization
header or presigned URL; aws-chunked bodies are decoded, chunk signatures are not checked),
ListBuckets, Head/Create/Delete bucket, ListObjects(V2), Put/Get/Head/Delete object, the health
endpoints /minio/health/{live,ready,cluster}, a placeholder console page, and `mc ready ALIAS`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.request
import uuid
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
            return self.bucket_op(method, bucket, query)
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

    def bucket_op(self, method: str, bucket: str, query: dict):
        st = self.store
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
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("API: %s  Console: %s", address, console)
    try:
        api.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def mc_main(args: list[str]) -> int:
    """`mc ready ALIAS`, as upstream's client does it (contract minio: health): poll the server's
    /minio/health/cluster until it answers 200, every 5 s, never giving up by itself (a health check
    using it fails by its timeout)."""
    if len(args) != 2 or args[0] != "ready":
        print("mc (test double): only `mc ready ALIAS` is supported", file=sys.stderr)
        return 1
    alias = args[1]
    url = os.environ.get(f"MC_HOST_{alias}") or ("http://localhost:9000" if alias == "local"
                                                  else "")
    if not url:
        print(f"mc: alias {alias} is not configured", file=sys.stderr)
        return 1
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    while True:
        try:
            with urllib.request.urlopen(base + "/minio/health/cluster", timeout=5) as resp:
                if resp.status == 200:
                    print(f"The cluster '{alias}' is ready")
                    return 0
        except OSError as exc:
            print(f"mc: the cluster '{alias}' is unreachable: {exc}", file=sys.stderr)
        time.sleep(5)


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
