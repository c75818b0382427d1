"""The MinIO double's Signature V4 check, against the worked examples of the S3 API reference
(credentials AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 24 May 2013)."""

from datetime import datetime, timezone

import pytest

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
