#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: langfuse_llm_connection
short_description: Ensure a Langfuse project's LLM connection (playground, LLM-as-a-judge evaluators)
version_added: 0.1.0
description:
  - Ensures the LLM connection named O(provider) in the Langfuse project of the given API key, through
    Langfuse's public API (C(GET|PUT /api/public/llm-connections), Langfuse 4). Langfuse's playground and its
    LLM-as-a-judge evaluators call models through it.
  - Langfuse never returns a connection's key, only C(...) and its last four characters. The module sends the
    connection again (C(PUT) is an upsert by O(provider)) when any field differs, when those characters differ,
    or when the key differs from the one recorded in O(state_file) (a SHA-256 digest, never the key), so a
    rotated key always reaches Langfuse and an unchanged one changes nothing.
  - Langfuse refuses a base URL on an internal host (a container name, a private address) unless its
    environment allows that host (C(LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST)); the module then fails with
    Langfuse's reason.
  - Runs on the host that reaches Langfuse at O(url) (usually the Langfuse box itself).
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_url
  - llmops.devbox.langfuse_project_api
  - llmops.devbox.http_client
options:
  provider:
    description: Name of the connection in the project; Langfuse keeps one connection per name.
    type: str
    default: litellm
  adapter:
    description: API style Langfuse speaks to the connection with. A LiteLLM proxy speaks V(openai).
    type: str
    choices: [openai, anthropic, azure, bedrock, google-vertex-ai, google-ai-studio]
    default: openai
  base_url:
    description:
      - Base URL Langfuse's containers call, for example V(http://litellm-haproxy:4001/v1) (OpenAI style,
        with C(/v1)).
    type: str
    required: true
  api_key:
    description:
      - Key Langfuse sends to O(base_url). Give it or O(api_key_file).
    type: str
  api_key_file:
    description:
      - File on the managed host holding the key (the whole file, surrounding whitespace ignored), for example
        the proxy's dedicated key for Langfuse, V(/etc/litellm/connection_key).
    type: path
  custom_models:
    description: Model names offered through the connection (the proxy's C(model_name)s).
    type: list
    elements: str
    default: []
  with_default_models:
    description: Also offer Langfuse's built-in model list for the adapter.
    type: bool
    default: false
  state_file:
    description:
      - File on the managed host where the module keeps the SHA-256 digest of the key last sent (mode C(0600)),
        so a key rotated to one ending in the same four characters is still sent. Its directory must exist.
    type: path
notes:
  - Supports check mode (nothing is sent but C(GET)) and diff mode (the fields, never the key).
"""

EXAMPLES = r"""
- name: Let Langfuse's playground and evaluators call models through this box's proxy
  llmops.devbox.langfuse_llm_connection:
    url: http://127.0.0.1:3000
    public_key: "{{ langfuse_public_key }}"
    secret_key: "{{ langfuse_secret_key }}"
    base_url: http://litellm-haproxy:4001/v1
    api_key_file: /etc/litellm/connection_key
    custom_models: [claude-sonnet, claude-haiku]
    state_file: /etc/langfuse/llm-connection.sha256
  no_log: true
"""

RETURN = r"""
id:
  description: Id of the connection in Langfuse (null in check mode when it would be created).
  returned: success
  type: str
  sample: cm9x0k2a70001abcd
provider:
  description: Name of the connection.
  returned: always
  type: str
  sample: litellm
created:
  description: Whether the connection was (or in check mode would be) created.
  returned: success
  type: bool
  sample: false
updated_fields:
  description: What differed from Langfuse's connection (C(secretKey) when the key differed); empty when nothing.
  returned: success
  type: list
  elements: str
  sample: [baseURL, customModels]
"""

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._langfuse_api import (  # noqa: E402
    PROJECT_API_ARGS,
    LangfuseApi,
    LangfuseApiError,
)

PATH = "/api/public/llm-connections"
PAGE_LIMIT = 100


def display_key(key):
    """What Langfuse shows of a key: '...' and its last four characters (JSON credentials: before '"}')."""
    if key.endswith('"}'):
        return "..." + key[-6:-2]
    return "..." + key[-4:]


def digest(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def desired_body(p, key):
    return {
        "provider": p["provider"],
        "adapter": p["adapter"],
        "secretKey": key,
        "baseURL": p["base_url"],
        "customModels": list(p["custom_models"]),
        "withDefaultModels": p["with_default_models"],
    }


def differences(current, body, key, recorded_digest):
    """Field names in which Langfuse's connection differs from the body (secretKey: the key)."""
    fields = []
    for name in ("adapter", "baseURL", "customModels", "withDefaultModels"):
        if current.get(name) != body[name]:
            fields.append(name)
    if current.get("extraHeaderKeys"):
        fields.append("extraHeaders")
    if current.get("config"):
        fields.append("config")
    if current.get("displaySecretKey") != display_key(key) or (
            recorded_digest is not None and recorded_digest != digest(key)):
        fields.append("secretKey")
    return fields


def find(api, provider):
    """Langfuse's connection named provider, or None (every page of the list is read)."""
    page = 1
    while True:
        data = api.call("GET", PATH, query={"page": page, "limit": PAGE_LIMIT})
        for conn in data.get("data") or []:
            if conn.get("provider") == provider:
                return conn
        if page >= int((data.get("meta") or {}).get("totalPages") or 1):
            return None
        page += 1


def read_key(module):
    p = module.params
    if p["api_key"]:
        return p["api_key"]
    path = p["api_key_file"]
    try:
        with open(path, "r", encoding="utf-8") as handle:
            key = handle.read().strip()
    except OSError as exc:
        module.fail_json(msg=f"Cannot read the connection's key from {path}: {exc.strerror}. On a box of role "
                             f"litellm it is written by that role (litellm_langfuse_connection_enabled); "
                             f"otherwise give api_key.", provider=p["provider"])
    if not key:
        module.fail_json(msg=f"{path} is empty: it should hold the key Langfuse sends to the proxy.",
                         provider=p["provider"])
    return key


def read_digest(path):
    if not path:
        return None
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return ""


def write_digest(path, value):
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def public_view(conn):
    keys = ("provider", "adapter", "baseURL", "customModels", "withDefaultModels", "displaySecretKey")
    return {k: conn.get(k) for k in keys} if conn else {}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **PROJECT_API_ARGS,
            provider=dict(type="str", default="litellm"),
            adapter=dict(type="str", default="openai",
                         choices=["openai", "anthropic", "azure", "bedrock", "google-vertex-ai",
                                  "google-ai-studio"]),
            base_url=dict(type="str", required=True),
            api_key=dict(type="str", no_log=True),
            api_key_file=dict(type="path"),
            custom_models=dict(type="list", elements="str", default=[]),
            with_default_models=dict(type="bool", default=False),
            state_file=dict(type="path"),
        ),
        required_one_of=[("api_key", "api_key_file")],
        mutually_exclusive=[("api_key", "api_key_file")],
        supports_check_mode=True,
    )
    p = module.params
    key = read_key(module)
    try:
        api = LangfuseApi(p["url"], p["public_key"], p["secret_key"], timeout=p["request_timeout"],
                          validate_certs=p["validate_certs"])
        api.secrets.append(key)
        current = find(api, p["provider"])
    except LangfuseApiError as exc:
        module.fail_json(msg=str(exc), provider=p["provider"], status=exc.status)
    body = desired_body(p, key)
    recorded = read_digest(p["state_file"])
    if current is None:
        fields = ["provider"]
    else:
        fields = differences(current, body, key, recorded if recorded else None)
    state_stale = p["state_file"] is not None and recorded != digest(key)

    after = dict(public_view(current), **{k: v for k, v in body.items() if k != "secretKey"},
                 displaySecretKey=display_key(key))
    result = dict(provider=p["provider"], created=current is None, updated_fields=fields,
                  id=current.get("id") if current else None,
                  changed=bool(fields) or state_stale,
                  diff=dict(before=json.dumps(public_view(current), indent=2, sort_keys=True) + "\n",
                            after=json.dumps(after, indent=2, sort_keys=True) + "\n"))
    if module.check_mode:
        module.exit_json(**result)
    if fields:
        try:
            saved = api.call("PUT", PATH, json_body=body)
        except LangfuseApiError as exc:
            module.fail_json(msg=str(exc), provider=p["provider"], status=exc.status)
        result["id"] = saved.get("id")
    if state_stale:
        try:
            write_digest(p["state_file"], digest(key))
        except OSError as exc:
            module.fail_json(msg=f"The connection is saved in Langfuse, but its key digest could not be written to "
                                 f"{p['state_file']}: {exc.strerror}. Check that the directory exists and is "
                                 f"writable.", provider=p["provider"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
