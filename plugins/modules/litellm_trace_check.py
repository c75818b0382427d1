#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: litellm_trace_check
short_description: Send a chat completion through a LiteLLM proxy and wait until Langfuse shows its trace
version_added: 0.1.0
description:
  - End-to-end check of an observed LLM proxy. Asks the LiteLLM proxy which models it serves
    (C(GET /v1/models)), sends one chat completion with a fresh trace id (a random UUID as 32 hex digits) in
    C(metadata.trace_id), then polls Langfuse until that trace's generation is visible or
    O(timeout) seconds have passed.
  - Langfuse v4 is read with C(GET /api/public/v2/observations?traceId=<id>), v3 with
    C(GET /api/public/traces/<id>). O(langfuse_api_version=auto) picks by the major version
    that C(GET /api/public/health) reports.
  - Each failure is distinct and carries a hint - proxy unreachable, proxy rejected the key, the
    completion failed (with the provider's error), Langfuse rejected the keys, trace not visible
    in time.
  - Never reports a change. It does send one real completion (a provider may bill it) and
    creates one trace in Langfuse.
  - Needs the proxy's Langfuse callback to be C(langfuse), which keeps the trace id a client
    sends; C(langfuse_otel) generates its own and the trace is never found by id.
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.http_client
  - llmops.devbox.poll
options:
  proxy_url:
    description:
      - Base URL of the LiteLLM proxy as seen from the host running the module.
    type: str
    default: http://127.0.0.1:4000
  master_key:
    description:
      - Key the proxy accepts (its master key or a virtual key), sent as a Bearer token.
    type: str
    required: true
  model:
    description:
      - Model name to ask for. Default - the first model C(/v1/models) lists.
    type: str
  prompt:
    description:
      - User message of the completion.
    type: str
    default: "Reply with the single word: pong"
  max_tokens:
    description:
      - C(max_tokens) of the completion, to keep the check cheap.
    type: int
    default: 16
  metadata:
    description:
      - Extra request metadata (shows up on the trace). C(trace_id) is always the module's own.
    type: dict
    default: {}
  langfuse_url:
    description:
      - Base URL of Langfuse as seen from the host running the module (not from the proxy container).
    type: str
    required: true
  langfuse_public_key:
    description:
      - Langfuse project public key (C(pk-lf-...)).
    type: str
    required: true
  langfuse_secret_key:
    description:
      - Langfuse project secret key (C(sk-lf-...)).
    type: str
    required: true
  langfuse_api_version:
    description:
      - Langfuse read API to use. V(auto) asks C(/api/public/health) for the server's version.
    type: str
    choices: [auto, "3", "4"]
    default: auto
  timeout:
    default: 60
  interval:
    default: 1
  request_timeout:
    description:
      - Seconds the chat completion request may take. Listing the models takes at most 15 seconds,
        each request of a Langfuse poll at most 10.
    default: 120
attributes:
  check_mode:
    support: full
    description: Nothing on the host changes, so the same check runs in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
notes:
  - Langfuse drops nothing silently here; a trace that never shows up almost always means the proxy cannot
    reach Langfuse from INSIDE its container (localhost there is the container itself), the proxy has other
    Langfuse keys than the ones given here, or the callback is C(langfuse_otel).
seealso:
  - module: llmops.devbox.langfuse_health
"""

EXAMPLES = r"""
- name: Check that a call through the proxy shows up in Langfuse
  llmops.devbox.litellm_trace_check:
    proxy_url: http://127.0.0.1:4000
    master_key: "{{ lookup('ansible.builtin.file', '/etc/litellm/master_key') }}"
    langfuse_url: http://127.0.0.1:3000
    langfuse_public_key: "{{ langfuse_public_key }}"
    langfuse_secret_key: "{{ langfuse_secret_key }}"
    timeout: 90
  register: __trace
  no_log: true

- name: Show what it cost
  ansible.builtin.debug:
    msg: >-
      trace {{ __trace.trace_id }} ({{ __trace.model }}, {{ __trace.usage.total_tokens }} tokens,
      cost {{ __trace.cost }}) visible after {{ __trace.seconds_until_visible }} s

- name: Against a Langfuse v3 server, a given model
  llmops.devbox.litellm_trace_check:
    master_key: "{{ litellm_key }}"
    model: claude-haiku
    metadata:
      trace_user_id: ops-check
    langfuse_url: https://langfuse.example.internal
    langfuse_public_key: pk-lf-...
    langfuse_secret_key: "{{ vault_langfuse_secret_key }}"
    langfuse_api_version: "3"
"""

RETURN = r"""
trace_id:
  description: Trace id sent in C(metadata.trace_id) (32 lowercase hex); look it up in Langfuse.
  returned: always
  type: str
  sample: 6f1c2b0d9a8e4c3f8b7a6e5d4c3b2a19
model:
  description: Model name asked for.
  returned: when the proxy listed its models
  type: str
  sample: claude-sonnet
provider_model:
  description: Model the proxy reported in the completion answer.
  returned: when the completion succeeded
  type: str
  sample: gpt-4o-mini
usage:
  description: Token usage the proxy reported (C(prompt_tokens), C(completion_tokens), C(total_tokens)).
  returned: when the completion succeeded
  type: dict
  sample: {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16}
cost:
  description:
    - Cost of the call in USD. Langfuse's cost of the generation when it has one, else the proxy's
      C(x-litellm-response-cost) header; null when neither knows.
  returned: success
  type: float
  sample: 0.0000033
seconds_until_visible:
  description: Seconds from the completion answer until Langfuse showed the generation.
  returned: success
  type: float
  sample: 1.84
completion_seconds:
  description: Seconds the completion request took.
  returned: when the completion succeeded
  type: float
  sample: 0.42
langfuse_api_version:
  description: Langfuse read API used (V(3) or V(4)).
  returned: when known
  type: str
  sample: "4"
langfuse_version:
  description: Version Langfuse's health endpoint reported (empty when not asked or not reported).
  returned: success
  type: str
  sample: 4.2.0
observation:
  description:
    - The generation as Langfuse shows it (id, type, model, level, usageDetails, costDetails, userId,
      sessionId, environment, tags; on Langfuse v3 the last four come from the trace).
  returned: success
  type: dict
user_id:
  description: The Langfuse user id of the trace; the litellm role's proxy sets the box owner.
  returned: success
  type: str
  sample: alice
environment:
  description: The Langfuse tracing environment of the generation; the litellm role's proxy sets the box name.
  returned: success
  type: str
  sample: devbox-1
tags:
  description:
    - The trace's tags; the litellm role's proxy adds C(box:<name>), C(owner:<owner>) and C(model_group:<model>).
  returned: success
  type: list
  elements: str
  sample: ["box:devbox-1", "owner:alice", "model_group:claude-sonnet"]
models:
  description: Model names the proxy serves (C(/v1/models)).
  returned: when the proxy listed its models
  type: list
  elements: str
  sample: [claude-sonnet, claude-haiku]
failure:
  description:
    - What failed, one of V(proxy_unreachable), V(proxy_key_rejected), V(model_not_served),
      V(completion_failed), V(langfuse_keys_rejected), V(trace_not_visible), V(bad_input).
  returned: failure
  type: str
  sample: trace_not_visible
hint:
  description: What to check for this failure.
  returned: failure
  type: str
last_error:
  description: Last Langfuse problem seen while polling (connection error or unexpected answer).
  returned: when the trace was not visible in time
  type: str
"""

# Ansible requires the documentation blocks before any import, hence the E402 waivers.
import time  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import quote, urlencode  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._http import (  # noqa: E402
    HttpError,
    http_args,
    redact,
    request,
)
from ansible_collections.llmops.devbox.plugins.module_utils._poll import (  # noqa: E402
    poll,
    poll_args,
    poll_args_problem,
    request_budget,
)

BODY_LIMIT = 600
LANGFUSE_REQUEST_TIMEOUT = 10.0  # seconds one request of a Langfuse poll may take
HINTS = {
    "proxy_unreachable": (
        "Is the proxy running and published at {proxy}? On the box: 'docker ps --filter name=litellm', "
        "'docker logs litellm-haproxy', 'docker logs litellm-blue' / 'litellm-green' (the role publishes "
        "it on 127.0.0.1 only: run this check on the box or through an SSH tunnel)."),
    "proxy_key_rejected": (
        "The proxy refused the key. Use its master key (the role keeps it in /etc/litellm/master_key) or a "
        "valid virtual key (virtual keys need the proxy's database mode)."),
    "model_not_served": "Ask for one of the models the proxy lists, or add the model to litellm_model_list.",
    "completion_failed": (
        "The proxy answered but the provider call failed: check the model's litellm_params (model id, region, "
        "api_base), the provider credentials (instance role / environment) and 'docker logs' of the serving "
        "proxy slot."),
    "langfuse_keys_rejected": (
        "Langfuse refused langfuse_public_key/langfuse_secret_key: use the project key pair (pk-lf-... / "
        "sk-lf-...) that the proxy also uses (LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY in its environment)."),
    "trace_not_visible": (
        "The completion worked but Langfuse never showed its trace. Check the Langfuse host AS SEEN FROM INSIDE "
        "the proxy container (LANGFUSE_HOST: the service name such as http://langfuse-web:3000 on a shared "
        "Docker network, or a central URL - never localhost/127.0.0.1, which is the container itself), that "
        "the proxy has the same Langfuse keys, that its callback is 'langfuse' (not 'langfuse_otel'), and "
        "the proxy's log for Langfuse export errors. Also check that {langfuse} is reachable from here."),
}


class CheckFailed(Exception):
    def __init__(self, failure, msg, **extra):
        super().__init__(msg)
        self.failure = failure
        self.msg = msg
        self.extra = extra


def _excerpt(resp, secrets):
    return redact(resp.text()[:BODY_LIMIT], secrets)


def _error_message(resp, secrets):
    """The provider/proxy error text of an error answer ({"error": {"message": ...}} or the body)."""
    try:
        data = resp.json()
    except ValueError:
        return _excerpt(resp, secrets)
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        err = err.get("message") or err.get("detail") or err
    return redact(str(err)[:BODY_LIMIT], secrets)


def _is_auth_error(resp):
    """A 400 that is LiteLLM refusing the key: without a database, any key but the master key gets
    400 no_db_connection (it cannot look virtual keys up), not 401."""
    try:
        err = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(err, dict) and (err.get("type") in ("auth_error", "no_db_connection")
                                      or str(err.get("message", "")).startswith("Authentication Error"))


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class TraceCheck:
    def __init__(self, params):
        self.p = params
        self.proxy = params["proxy_url"].rstrip("/")
        self.langfuse = params["langfuse_url"].rstrip("/")
        self.secrets = [params["master_key"], params["langfuse_secret_key"]]
        self.result = {"changed": False, "trace_id": uuid.uuid4().hex}
        self.api = None if params["langfuse_api_version"] == "auto" else params["langfuse_api_version"]
        self.langfuse_version = ""

    def fail(self, failure, msg, **extra):
        hint = HINTS.get(failure, "").format(proxy=self.proxy, langfuse=self.langfuse)
        raise CheckFailed(failure, redact(msg, self.secrets), hint=hint, **extra)

    # --- proxy -----------------------------------------------------------------------------------
    def _proxy(self, path, method="GET", json_body=None, timeout=15):
        url = self.proxy + path
        try:
            resp = request(url, method=method, json_body=json_body, bearer=self.p["master_key"],
                           timeout=timeout, validate_certs=self.p["validate_certs"])
        except HttpError as exc:
            self.fail("proxy_unreachable", f"The LiteLLM proxy did not answer: {exc}.")
        if resp.status in (401, 403) or (resp.status == 400 and _is_auth_error(resp)):
            self.fail("proxy_key_rejected",
                      f"The LiteLLM proxy at {self.proxy} rejected the key on {method} {path} "
                      f"(HTTP {resp.status}: {_error_message(resp, self.secrets)}).")
        return resp

    def list_models(self):
        resp = self._proxy("/v1/models")
        if resp.status != 200:
            self.fail("proxy_unreachable",
                      f"GET {self.proxy}/v1/models answered HTTP {resp.status}: {_excerpt(resp, self.secrets)}")
        try:
            models = [m["id"] for m in resp.json().get("data", [])]
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            self.fail("proxy_unreachable", f"GET {self.proxy}/v1/models answered something unexpected: {exc}")
        self.result["models"] = models
        model = self.p["model"] or (models[0] if models else None)
        if not model:
            self.fail("model_not_served", f"The LiteLLM proxy at {self.proxy} serves no model.")
        if model not in models:
            self.fail("model_not_served",
                      f"The LiteLLM proxy at {self.proxy} does not serve model {model!r}; it serves {models}.")
        self.result["model"] = model
        return model

    def complete(self, model):
        metadata = dict(self.p["metadata"] or {})
        metadata.setdefault("trace_name", "llmops.devbox trace check")
        metadata.setdefault("generation_name", "llmops.devbox trace check")
        metadata.setdefault("tags", ["llmops-devbox-trace-check"])
        metadata["trace_id"] = self.result["trace_id"]
        body = {"model": model, "max_tokens": self.p["max_tokens"], "metadata": metadata,
                "messages": [{"role": "user", "content": self.p["prompt"]}]}
        start = time.monotonic()
        resp = self._proxy("/v1/chat/completions", method="POST", json_body=body,
                           timeout=self.p["request_timeout"])
        self.result["completion_seconds"] = round(time.monotonic() - start, 3)
        if resp.status != 200:
            self.fail("completion_failed",
                      f"The chat completion for model {model!r} failed: the proxy answered HTTP {resp.status}: "
                      f"{_error_message(resp, self.secrets)}",
                      completion_status=resp.status)
        try:
            data = resp.json()
        except ValueError as exc:
            self.fail("completion_failed", f"The chat completion for model {model!r} answered no JSON: {exc}")
        usage = data.get("usage") or {}
        self.result["usage"] = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
        self.result["provider_model"] = data.get("model")
        self.result["proxy_cost"] = _float(resp.headers.get("x-litellm-response-cost"))

    # --- Langfuse --------------------------------------------------------------------------------
    def _langfuse(self, path, timeout):
        url = self.langfuse + path
        resp = request(url, basic_auth=(self.p["langfuse_public_key"], self.p["langfuse_secret_key"]),
                       timeout=timeout, validate_certs=self.p["validate_certs"])
        if resp.status in (401, 403):
            self.fail("langfuse_keys_rejected",
                      f"Langfuse at {self.langfuse} rejected the API keys (HTTP {resp.status} on GET {path}: "
                      f"{_excerpt(resp, self.secrets)}).")
        return resp

    def detect_api(self, timeout):
        resp = request(self.langfuse + "/api/public/health", timeout=timeout,
                       validate_certs=self.p["validate_certs"])
        if resp.status != 200:
            raise ValueError(f"GET /api/public/health answered HTTP {resp.status}: {_excerpt(resp, self.secrets)}")
        version = str(resp.json().get("version") or "")
        self.langfuse_version = version
        self.api = "3" if version.startswith("3.") else "4"

    def find_generation(self, timeout):
        """The trace's generation as Langfuse shows it, or None while it is not visible yet."""
        tid = self.result["trace_id"]
        if self.api == "3":
            resp = self._langfuse(f"/api/public/traces/{quote(tid)}", timeout)
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise ValueError(f"GET /api/public/traces/{tid} answered HTTP {resp.status}: "
                                 f"{_excerpt(resp, self.secrets)}")
            data = resp.json()
            observations = data.get("observations") or []
            if data.get("totalCost") is not None:
                self._trace_cost = _float(data.get("totalCost"))
            # v3 keeps who and where on the trace, not on its observations.
            self._trace_attribution = {k: data[k] for k in ("userId", "sessionId", "environment", "tags") if k in data}
        else:
            # basic: userId, sessionId, environment; trace_context: tags (v4 keeps them on every observation).
            query = urlencode({"traceId": tid, "fields": "core,basic,model,usage,trace_context"})
            resp = self._langfuse(f"/api/public/v2/observations?{query}", timeout)
            if resp.status != 200:
                raise ValueError(f"GET /api/public/v2/observations answered HTTP {resp.status}: "
                                 f"{_excerpt(resp, self.secrets)}")
            observations = resp.json().get("data") or []
        for obs in observations:
            if isinstance(obs, dict) and str(obs.get("type", "")).upper() == "GENERATION":
                return obs
        return None

    def look(self, remaining):
        """One Langfuse poll: the trace's generation, or what is still missing (a str)."""
        timeout = request_budget(LANGFUSE_REQUEST_TIMEOUT, remaining)
        try:
            if self.api is None:
                self.detect_api(timeout)
            obs = self.find_generation(timeout)
        except (HttpError, ValueError) as exc:
            return str(exc)
        return "the trace has no generation yet" if obs is None else obs

    def wait_visible(self):
        self._trace_cost = None
        self._trace_attribution = {}
        polled = poll(self.look, self.p["timeout"], self.p["interval"], done=lambda value: isinstance(value, dict))
        if polled.done:
            return polled.value, round(polled.elapsed, 3)
        self.fail("trace_not_visible",
                  f"The completion succeeded but Langfuse at {self.langfuse} did not show trace "
                  f"{self.result['trace_id']} within {self.p['timeout']} s ({polled.attempts} polls; "
                  f"last: {polled.value}).",
                  last_error=redact(polled.value, self.secrets))

    def run(self):
        model = self.list_models()
        self.complete(model)
        obs, seconds = self.wait_visible()
        cost_details = obs.get("costDetails") or {}
        cost = _float(cost_details.get("total"))
        for key in ("totalCost", "calculatedTotalCost"):
            if cost is None:
                cost = _float(obs.get(key))
        if cost is None:
            cost = self._trace_cost
        if cost is None:
            cost = self.result.get("proxy_cost")
        keep = ("id", "traceId", "type", "name", "model", "providedModelName", "level", "statusMessage",
                "usageDetails", "costDetails", "startTime", "endTime", "userId", "sessionId", "environment", "tags")
        observation = {**self._trace_attribution, **{k: obs[k] for k in keep if k in obs}}
        self.result.update(
            observation=observation,
            user_id=observation.get("userId"),
            environment=observation.get("environment"),
            tags=observation.get("tags") if isinstance(observation.get("tags"), list) else [],
            cost=cost,
            seconds_until_visible=seconds,
            langfuse_api_version=self.api,
            langfuse_version=self.langfuse_version,
        )
        return self.result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            proxy_url=dict(type="str", default="http://127.0.0.1:4000"),
            master_key=dict(type="str", required=True, no_log=True),
            model=dict(type="str"),
            prompt=dict(type="str", default="Reply with the single word: pong"),
            max_tokens=dict(type="int", default=16, no_log=False),
            metadata=dict(type="dict", default={}),
            langfuse_url=dict(type="str", required=True),
            langfuse_public_key=dict(type="str", required=True, no_log=False),
            langfuse_secret_key=dict(type="str", required=True, no_log=True),
            langfuse_api_version=dict(type="str", choices=["auto", "3", "4"], default="auto"),
            **poll_args(timeout=60, interval=1),
            **http_args(request_timeout=120),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name in ("proxy_url", "langfuse_url"):
        if not p[name].startswith(("http://", "https://")):
            module.fail_json(msg=f"{name} must start with http:// or https://, got {p[name]!r}.",
                             failure="bad_input", changed=False)
    problem = poll_args_problem(p)
    if problem:
        module.fail_json(msg=problem + ".", failure="bad_input", changed=False)
    check = TraceCheck(p)
    try:
        result = check.run()
    except CheckFailed as exc:
        out = dict(check.result)
        out.pop("proxy_cost", None)
        out.update(exc.extra)
        module.fail_json(msg=f"{exc.msg} Hint: {exc.extra.get('hint', '')}".strip(), failure=exc.failure, **out)
    result.pop("proxy_cost", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
