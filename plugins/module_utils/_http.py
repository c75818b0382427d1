# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Small HTTP client shared by the llmops.devbox modules (private: API may change).

Built on ansible.module_utils.urls.open_url so modules need no third-party library.
Every HTTP status comes back as an HttpResponse (4xx/5xx are answers to act on, not
exceptions); only connection-level failures (refused, DNS, timeout, TLS) raise HttpError.
http_args() is the argument spec of the client's options, documented once in
plugins/doc_fragments/http_client.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from urllib.error import HTTPError, URLError

from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

__all__ = ["HttpError", "HttpResponse", "request", "basic_auth_header", "redact", "http_args"]

REDACTED = "********"


def http_args(request_timeout=10):
    """Argument spec of the options validate_certs and request_timeout (doc fragment
    llmops.devbox.http_client); request_timeout: the module's default, when it is not 10."""
    return dict(
        validate_certs=dict(type="bool", default=True),
        request_timeout=dict(type="float", default=request_timeout),
    )


class HttpError(Exception):
    """The request got no HTTP answer at all: refused, DNS failure, timeout, TLS error."""

    def __init__(self, url, reason, method="GET"):
        self.url = url
        self.reason = to_text(reason)
        self.method = method
        super().__init__(f"{method} {url} failed: {self.reason}")


class HttpResponse:
    """An HTTP answer of any status. Header names are lower-cased."""

    def __init__(self, status, body=b"", headers=None, url=None):
        self.status = int(status)
        self.body = body or b""
        self.headers = {str(k).lower(): v for k, v in (headers or {}).items()}
        self.url = url

    def __repr__(self):
        return f"HttpResponse(status={self.status}, url={self.url!r}, body={len(self.body)} bytes)"

    def text(self):
        return to_text(self.body, errors="surrogate_or_replace")

    def json(self):
        """Decoded JSON body; ValueError naming the URL and the start of the body otherwise."""
        text = self.text()
        try:
            return json.loads(text)
        except ValueError:
            where = f" from {self.url}" if self.url else ""
            raise ValueError(f"response{where} (HTTP {self.status}) is not JSON: {text[:200]!r}") from None


def _reason(exc):
    """A short human reason for a connection-level exception."""
    if isinstance(exc, URLError):
        if not isinstance(exc.reason, BaseException):
            return to_text(exc.reason)
        exc = exc.reason
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the service running and listening on that port?)"
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed: {to_text(exc.strerror or exc)}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {to_text(exc)}"
    if isinstance(exc, OSError) and exc.strerror:
        return to_text(exc.strerror)
    return to_text(exc) or type(exc).__name__


def _read(fp):
    return fp.read() if fp is not None else b""


def request(url, method="GET", *, json_body=None, data=None, headers=None,
            basic_auth=None, bearer=None, timeout=10, validate_certs=True):
    """Send one HTTP request and return HttpResponse for every status.

    json_body: serialised to JSON and sent with Content-Type application/json.
    data: raw bytes/str body (not together with json_body).
    basic_auth: (user, password) sent pre-emptively as an Authorization header.
    bearer: token sent as "Authorization: Bearer <token>".
    Raises HttpError when no HTTP answer arrives (refused, DNS, timeout, TLS).
    """
    if json_body is not None and data is not None:
        raise ValueError("request() takes json_body or data, not both")
    send_headers = {"Accept": "application/json"}
    if json_body is not None:
        data = json.dumps(json_body).encode("utf-8")
        send_headers["Content-Type"] = "application/json"
    elif data is not None:
        data = to_bytes(data)
    if basic_auth is not None:
        send_headers["Authorization"] = basic_auth_header(*basic_auth)
    if bearer is not None:
        send_headers["Authorization"] = f"Bearer {bearer}"
    send_headers.update(headers or {})

    try:
        resp = open_url(url, data=data, headers=send_headers, method=method, timeout=timeout,
                        validate_certs=validate_certs, follow_redirects="safe",
                        use_netrc=False, http_agent="llmops.devbox")
        try:
            return HttpResponse(resp.status, _read(resp), dict(resp.headers.items()), url=url)
        finally:
            resp.close()
    except HTTPError as exc:
        # 4xx/5xx: an answer, not a failure of the transport.
        try:
            body = _read(exc)
        except (OSError, http.client.HTTPException):
            body = b""
        hdrs = dict(exc.headers.items()) if exc.headers is not None else {}
        return HttpResponse(exc.code, body, hdrs, url=url)
    except (URLError, UrlsConnectionError, OSError, http.client.HTTPException, ValueError) as exc:
        # ValueError: open_url rejects malformed URLs (e.g. missing scheme) this way.
        raise HttpError(url, _reason(exc), method=method) from None


def basic_auth_header(user, password):
    """Value of an HTTP Basic Authorization header: "Basic base64(user:password)"."""
    raw = to_bytes(f"{to_native(user)}:{to_native(password)}")
    return "Basic " + to_native(base64.b64encode(raw))


def redact(text, secrets):
    """Replace every non-empty secret in text with ********, longest secret first."""
    text = to_text(text) if text is not None else ""
    for secret in sorted({to_text(s) for s in (secrets or ()) if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
