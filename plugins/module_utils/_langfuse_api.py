# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Langfuse public API calls with a project key, shared by the content modules (private: API may change).

url_args() and project_api_args() are the argument specs of the Langfuse options, documented once in
plugins/doc_fragments/langfuse_url.py and langfuse_project_api.py.

Every failure becomes LangfuseApiError whose message names the method, the path, the HTTP status
and the server's own message, says what to check, and never contains the secret key.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from ansible_collections.llmops.devbox.plugins.module_utils._http import (
    HttpError,
    http_args,
    redact,
    request,
)

__all__ = ["PROJECT_API_ARGS", "LangfuseApiError", "LangfuseApi", "canonical", "same_json", "segment",
           "project_api_args", "url_args"]


def url_args(required=True, default=None):
    """Argument spec of the option url, the Langfuse base URL (doc fragment llmops.devbox.langfuse_url)."""
    if default is not None:
        return dict(url=dict(type="str", default=default))
    return dict(url=dict(type="str", required=required))


def project_api_args(url_default=None, request_timeout=10):
    """Argument spec of the options of a module calling the Langfuse API with a project key pair:
    url, public_key, secret_key (doc fragments llmops.devbox.langfuse_url and
    llmops.devbox.langfuse_project_api), validate_certs and request_timeout, alias timeout
    (llmops.devbox.http_client). url_default: url is optional with this default instead of required."""
    spec = dict(
        url_args(required=url_default is None, default=url_default),
        public_key=dict(type="str", required=True),
        secret_key=dict(type="str", required=True, no_log=True),
        **http_args(request_timeout),
    )
    spec["request_timeout"]["aliases"] = ["timeout"]
    return spec


# What langfuse_llm_connection, langfuse_prompt and langfuse_dataset take.
PROJECT_API_ARGS = project_api_args()

BODY_LIMIT = 500


class LangfuseApiError(Exception):
    """A call failed; str() is the whole message for the user (secret already removed)."""

    def __init__(self, msg, status=None):
        super().__init__(msg)
        self.status = status


def segment(value):
    """One URL path segment: everything (also '/') percent-encoded."""
    return quote(str(value), safe="")


def canonical(value):
    """value as Langfuse stores and returns JSON (Postgres jsonb, read back by JavaScript).

    Object key order is not kept (jsonb), list order is; numbers that are whole come back as
    integers (JSON.parse gives 1 for 1.0); true stays distinct from 1. Unknown Python types are
    turned into JSON the way the request would send them.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return canonical(json.loads(json.dumps(value, default=str)))


def _key(value):
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def same_json(left, right):
    """True when Langfuse would store left and right as the same JSON value (type-exact)."""
    return _key(left) == _key(right)


def _server_message(resp, secrets):
    """The server's own explanation: {message, error} of a Langfuse error, else the body's start."""
    text = resp.text()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        msg = str(data["message"])
        detail = data.get("error")
        if isinstance(detail, list):  # zod issues: path and message of each
            parts = []
            for issue in detail[:5]:
                if isinstance(issue, dict):
                    where = ".".join(str(p) for p in issue.get("path") or [])
                    parts.append(f"{where}: {issue.get('message')}" if where else str(issue.get("message")))
            if parts:
                msg += " (" + "; ".join(parts) + ")"
        elif isinstance(detail, str) and detail and detail not in msg:
            msg += f" ({detail})"
        text = msg
    return redact(text.strip()[:BODY_LIMIT], secrets) or "(empty body)"


class LangfuseApi:
    """The Langfuse public API at url, authenticated with a project key pair (HTTP Basic)."""

    def __init__(self, url, public_key, secret_key, timeout=10, validate_certs=True):
        self.base = (url or "").rstrip("/")
        if not self.base.startswith(("http://", "https://")):
            raise LangfuseApiError(f"url must start with http:// or https://, got {self.base!r}")
        self.public_key = public_key
        self.auth = (public_key, secret_key)
        self.secrets = [secret_key]
        self.kwargs = dict(timeout=timeout, validate_certs=validate_certs)
        self.requests = []  # (method, path) of every call made, for reporting

    def call(self, method, path, query=None, json_body=None, ok=(200, 201), missing_ok=False):
        """Send one request; the decoded JSON answer, or None for 404 when missing_ok.

        path: already encoded (see segment()); query: dict of parameters.
        """
        target = path + ("?" + urlencode(query) if query else "")
        self.requests.append((method, target))
        try:
            resp = request(self.base + target, method, json_body=json_body, basic_auth=self.auth, **self.kwargs)
        except HttpError as exc:
            raise LangfuseApiError(redact(
                f"{method} {target} got no answer from Langfuse at {self.base}: {exc.reason}. Is Langfuse up "
                f"at {self.base} (llmops.devbox.langfuse_health) and is url right?", self.secrets)) from None
        if resp.status == 404 and missing_ok:
            return None
        if resp.status not in ok:
            raise LangfuseApiError(self._explain(method, target, resp), status=resp.status)
        if not resp.body.strip():
            return {}
        try:
            return resp.json()
        except ValueError as exc:
            raise LangfuseApiError(redact(f"{method} {target} at {self.base}: {exc}", self.secrets),
                                   status=resp.status) from None

    def _explain(self, method, target, resp):
        said = _server_message(resp, self.secrets)
        head = f"{method} {target} at {self.base} answered HTTP {resp.status}"
        if resp.status == 401:
            why = (f"wrong public/secret key for this Langfuse project (public key {self.public_key}); "
                   "use the project's pk-lf-/sk-lf- pair")
        elif resp.status == 403:
            why = ("the key may not do this: use a project API key (not an organisation key) with "
                   "write access to the project")
        elif resp.status == 404:
            why = "not found: check url and that this Langfuse version serves this API"
        elif resp.status == 429:
            why = "rate limited by Langfuse; retry later"
        elif resp.status >= 500:
            why = "Langfuse failed; see 'docker logs langfuse-web' on the Langfuse box"
        else:
            why = "Langfuse refused the request"
        return redact(f"{head}: {why}. Server said: {said}", self.secrets)
