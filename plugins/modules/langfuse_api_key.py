#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: langfuse_api_key
short_description: Ensure a Langfuse project API key pair exists
version_added: 0.1.0
description:
  - Ensures one Langfuse project key pair (C(pk-lf-...) public key, C(sk-lf-...) secret key)
    exists and returns it, so later tasks can hand it to Langfuse and its clients.
  - O(mode=local) (the default, for Langfuse OSS) keeps the pair in a JSON key file on the
    managed host. The first run generates C(pk-lf-<uuid4>) / C(sk-lf-<uuid4>) and writes
    C({public_key, secret_key, note, created}) with mode C(0600); every later run returns the
    same pair. Langfuse learns the pair through C(LANGFUSE_INIT_PROJECT_PUBLIC_KEY) and
    C(LANGFUSE_INIT_PROJECT_SECRET_KEY), which it only reads when the public key is new, so to
    rotate a pair use a new public key.
  - O(mode=api) (Langfuse Enterprise / Cloud) registers the pair through
    C(GET|POST /api/public/projects/{projectId}/apiKeys). This needs an organisation-scoped
    API key and the C(admin-api) entitlement, which Langfuse OSS does not have. The pair comes
    from O(public_key)/O(secret_key) or from the key file at O(path) (generated there if
    missing), so a re-run finds it on the server and changes nothing.
  - The result contains the secret key. B(Set no_log on the task) that calls this module
    and on every task that uses RV(secret_key).
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_url
  - llmops.devbox.http_client
options:
  mode:
    description:
      - V(local) keeps the pair in the key file O(path) only.
      - V(api) also makes sure the pair is registered in project O(project_id) of the Langfuse
        server at O(url) (required then), using O(validate_certs) and O(request_timeout).
    type: str
    choices: [local, api]
    default: local
  path:
    description:
      - Key file on the managed host, for example V(/etc/langfuse/api-key.json).
      - Required with O(mode=local); with O(mode=api) either O(path) or both O(public_key)
        and O(secret_key) are required.
      - Its directory must exist. The file always has mode C(0600) and is owned by the user
        the module runs as (root with C(become)) unless O(owner) / O(group) say otherwise.
      - A file that exists but is not a valid key file makes the module fail; it is never
        silently replaced, because its keys may be in use.
    type: path
  public_key:
    description:
      - Public key to use instead of a generated one. Must start with C(pk-lf-).
      - When it and O(secret_key) differ from the key file, the file is rewritten.
    type: str
  secret_key:
    description:
      - Secret key to use instead of a generated one. Must start with C(sk-lf-) and be at least
        20 characters long. Required together with O(public_key).
      - Ansible masks every copy of a C(no_log) option in module results, so when you set this,
        RV(secret_key) reads C(VALUE_SPECIFIED_IN_NO_LOG_PARAMETER); keep using the value you
        passed.
    type: str
  note:
    description:
      - Note stored with the key (in the key file and, with O(mode=api), on the server).
    type: str
    default: managed by Ansible (llmops.devbox)
  url:
    required: false
  project_id:
    description:
      - Id of the Langfuse project the key belongs to. Required with O(mode=api).
    type: str
  organization_public_key:
    description:
      - Public key of an organisation-scoped Langfuse API key. Required with O(mode=api).
    type: str
  organization_secret_key:
    description:
      - Secret key of that organisation-scoped API key. Required with O(mode=api).
    type: str
  owner:
    description:
      - User that should own the key file (name or uid). Default is the user the module runs as.
    type: str
  group:
    description:
      - Group of the key file (name or gid). Default is that user's primary group.
    type: str
attributes:
  check_mode:
    support: full
    description:
      - Reports whether the key file would be written and the key created, and writes and
        posts nothing. A pair that would be generated is not returned (RV(public_key) and
        RV(secret_key) are empty).
  diff_mode:
    support: partial
    description:
      - Shows the public key before and after; never the secret key.
notes:
  - Failure messages never contain a secret key.
seealso:
  - name: Langfuse headless initialisation
    description: The C(LANGFUSE_INIT_*) variables that hand a key pair to a self-hosted Langfuse.
    link: https://langfuse.com/self-hosting/headless-initialization
"""

EXAMPLES = r"""
- name: Generate the project key pair once (Langfuse OSS)
  llmops.devbox.langfuse_api_key:
    path: /etc/langfuse/api-key.json
  register: __langfuse_api_key
  no_log: true

- name: Use a pair chosen by the user (rewrites the key file when it differs)
  llmops.devbox.langfuse_api_key:
    path: /etc/langfuse/api-key.json
    public_key: "{{ langfuse_project_public_key }}"
    secret_key: "{{ langfuse_project_secret_key }}"
  no_log: true

- name: Register the pair on a Langfuse Enterprise server
  llmops.devbox.langfuse_api_key:
    mode: api
    url: https://langfuse.example.internal
    project_id: my-project
    organization_public_key: "{{ vault_langfuse_org_public_key }}"
    organization_secret_key: "{{ vault_langfuse_org_secret_key }}"
    path: /etc/langfuse/api-key.json
    note: litellm proxy
  register: __langfuse_api_key
  no_log: true
"""

RETURN = r"""
public_key:
  description: The project public key (empty in check mode when it would be generated).
  returned: success
  type: str
  sample: pk-lf-1f0c7e43-2d5b-4f0e-9a41-3d2f2a6c9b10
secret_key:
  description:
    - The project secret key (empty in check mode when it would be generated).
    - Reads C(VALUE_SPECIFIED_IN_NO_LOG_PARAMETER) when it was passed as O(secret_key)
      (Ansible masks the values of no_log options in results).
    - Use C(no_log) on every task that handles it.
  returned: success
  type: str
  sample: sk-lf-6b2e9d0a-8c1f-4e7b-b5a3-0f9d8e7c6a51
path:
  description: The key file, when O(path) was given.
  returned: when O(path) is set
  type: str
  sample: /etc/langfuse/api-key.json
created:
  description: When the pair in the key file was written (UTC, ISO 8601).
  returned: when O(path) is set and the file exists (or was written)
  type: str
  sample: "2026-11-28T04:40:00Z"
api_key_id:
  description: Server-side id of the key.
  returned: with O(mode=api), when the server reports one
  type: str
  sample: cm3x0a1b2000008l4c3d5e6f7
"""

import json  # noqa: E402
import os  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from urllib.parse import quote  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.common.text.converters import to_native  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._http import (  # noqa: E402
    HttpError,
    http_args,
    redact,
    request,
)
from ansible_collections.llmops.devbox.plugins.module_utils._langfuse_api import url_args  # noqa: E402
from ansible_collections.llmops.devbox.plugins.module_utils._secret_file import (  # noqa: E402
    SecretFileError,
    generate,
    normalize_generator,
    read_private,
    write_private,
)

PUBLIC_PREFIX = "pk-lf-"
SECRET_PREFIX = "sk-lf-"  # noqa: S105 - a prefix, not a secret
SECRET_MIN_LEN = 20
BODY_LIMIT = 500


class KeyError_(Exception):
    """A key pair that cannot be used; the message names what is wrong, never the secret."""


def check_pair(public_key, secret_key):
    if not isinstance(public_key, str) or not public_key.startswith(PUBLIC_PREFIX) \
            or len(public_key) <= len(PUBLIC_PREFIX):
        raise KeyError_(f"the public key must be a string starting with {PUBLIC_PREFIX}")
    if not isinstance(secret_key, str) or not secret_key.startswith(SECRET_PREFIX):
        raise KeyError_(f"the secret key must be a string starting with {SECRET_PREFIX}")
    if len(secret_key) < SECRET_MIN_LEN:
        raise KeyError_(f"the secret key must be at least {SECRET_MIN_LEN} characters long")
    if any(c.isspace() or c in "'\"" for c in public_key + secret_key):
        # The pair ends up in compose env files, where these characters break it.
        raise KeyError_("the keys must not contain whitespace or quotes")


# The same generators as llmops.devbox.secret_file: pk-lf-<uuid4> / sk-lf-<uuid4>.
PUBLIC_GENERATOR = normalize_generator("public_key", {"kind": "uuid4", "prefix": PUBLIC_PREFIX})
SECRET_GENERATOR = normalize_generator("secret_key", {"kind": "uuid4", "prefix": SECRET_PREFIX})


def generate_pair():
    return generate(PUBLIC_GENERATOR), generate(SECRET_GENERATOR)


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class KeyFile:
    """The JSON key file on the managed host."""

    def __init__(self, module, path):
        self.module = module
        self.path = path
        self.data = None  # dict when the file exists and is valid

    def fail(self, why):
        self.module.fail_json(
            msg=f"Key file {self.path} {why}. Fix it, or remove it to have a new pair generated "
                f"(if Langfuse already uses the pair in it, the new pair must be a new public key).",
            path=self.path)

    def load(self):
        if not os.path.lexists(self.path):
            return None
        if os.path.isdir(self.path):
            self.fail("is a directory, not a key file")
        try:
            raw = read_private(self.path)  # never through a symlink
        except SecretFileError as exc:
            self.module.fail_json(msg=f"Key file {to_native(exc)}", path=self.path)
        if raw is None:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            self.fail("is not valid JSON")  # never echo its content: it holds a secret
        if not isinstance(data, dict) or not {"public_key", "secret_key"} <= set(data):
            self.fail("is not a key file: expected a JSON object with public_key and secret_key")
        try:
            check_pair(data["public_key"], data["secret_key"])
        except KeyError_ as exc:
            self.fail(f"holds an invalid key pair: {exc}")
        self.data = data
        return data

    def write(self, public_key, secret_key, note):
        directory = os.path.dirname(self.path) or "."
        if not os.path.isdir(directory):
            self.module.fail_json(msg=f"Cannot write key file {self.path}: directory {directory} does not "
                                      f"exist. Create it first (e.g. ansible.builtin.file, mode '0700').",
                                  path=self.path)
        content = {"public_key": public_key, "secret_key": secret_key, "note": note, "created": utc_now()}
        # Created 0600 from the first byte, then renamed over the old file, so the secret is never
        # readable by others, not even for a moment (shared with llmops.devbox.secret_file).
        data = (json.dumps(content, indent=2) + "\n").encode("utf-8")
        try:
            write_private(self.path, data)
        except OSError as exc:
            self.module.fail_json(msg=f"Cannot write key file {self.path}: {to_native(exc.strerror or exc)}",
                                  path=self.path)
        self.data = content
        return content


class Api:
    """The Langfuse public API for project API keys, authenticated with an organisation key."""

    def __init__(self, module, secrets):
        p = module.params
        self.module = module
        self.secrets = secrets
        self.base = p["url"].rstrip("/")
        self.endpoint = f"{self.base}/api/public/projects/{quote(p['project_id'], safe='')}/apiKeys"
        self.auth = (p["organization_public_key"], p["organization_secret_key"])
        self.kwargs = dict(timeout=p["request_timeout"], validate_certs=p["validate_certs"])

    def fail(self, msg, **kw):
        self.module.fail_json(msg=redact(msg, self.secrets), **kw)

    def call(self, method, json_body=None):
        try:
            return request(self.endpoint, method, json_body=json_body, basic_auth=self.auth, **self.kwargs)
        except HttpError as exc:
            self.fail(f"Could not reach Langfuse to manage project API keys: {exc}. Check that url "
                      f"({self.base}) is right and the server is up (llmops.devbox.langfuse_health).")

    def explain(self, resp, doing):
        """Fail with a message that says what to do about an unexpected answer."""
        org_pk = self.auth[0]
        body = redact(resp.text()[:BODY_LIMIT], self.secrets)
        if resp.status == 401:
            why = (f"Langfuse rejected the organisation key {org_pk} (HTTP 401). Check "
                   "organization_public_key / organization_secret_key: they must be a valid "
                   "organisation-scoped API key, not a project key.")
        elif resp.status == 403:
            why = ("Langfuse refused (HTTP 403): managing project API keys needs an "
                   "organisation-scoped API key and the admin-api entitlement (Langfuse Enterprise "
                   "or Cloud). Langfuse OSS lacks it: use mode=local and hand the pair to Langfuse "
                   "through LANGFUSE_INIT_PROJECT_PUBLIC_KEY / LANGFUSE_INIT_PROJECT_SECRET_KEY.")
        elif resp.status == 409:
            why = ("Langfuse says the public key already exists (HTTP 409) with another secret or "
                   "in another project. Pick a new public_key (or remove the key file to generate a "
                   "new pair).")
        elif resp.status == 404:
            why = (f"Langfuse answered HTTP 404: check project_id and url. Body: {body}")
        else:
            why = f"Langfuse answered HTTP {resp.status}: {body}"
        self.fail(f"{doing} for project {self.module.params['project_id']} at {self.base} failed. {why}",
                  status=resp.status)

    def find(self, public_key):
        resp = self.call("GET")
        if resp.status != 200:
            self.explain(resp, "Listing API keys")
        try:
            data = resp.json()
            keys = data["apiKeys"] if isinstance(data, dict) else data
            if not isinstance(keys, list):
                raise ValueError("no list of apiKeys")
        except (ValueError, KeyError, TypeError) as exc:
            self.fail(f"Listing API keys at {self.endpoint} gave an unexpected answer: {exc}")
        for key in keys:
            if isinstance(key, dict) and key.get("publicKey") == public_key:
                return key
        return None

    def create(self, public_key, secret_key, note):
        resp = self.call("POST", {"note": note, "publicKey": public_key, "secretKey": secret_key})
        if resp.status not in (200, 201):
            self.explain(resp, f"Creating API key {public_key}")
        try:
            data = resp.json()
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type="str", choices=["local", "api"], default="local"),
            path=dict(type="path"),
            public_key=dict(type="str"),
            secret_key=dict(type="str", no_log=True),
            note=dict(type="str", default="managed by Ansible (llmops.devbox)"),
            **url_args(required=False),
            project_id=dict(type="str"),
            organization_public_key=dict(type="str"),
            organization_secret_key=dict(type="str", no_log=True),
            **http_args(),
            owner=dict(type="str"),
            group=dict(type="str"),
        ),
        required_if=[
            ("mode", "local", ["path"]),
            ("mode", "api", ["url", "project_id", "organization_public_key", "organization_secret_key"]),
        ],
        required_together=[("public_key", "secret_key")],
        supports_check_mode=True,
    )
    p = module.params
    if p["mode"] == "api" and not p["path"] and not p["public_key"]:
        module.fail_json(msg="mode=api needs either path (a key file to keep the pair in) or both "
                             "public_key and secret_key, so that a re-run finds the same key")

    if p["public_key"]:
        try:
            check_pair(p["public_key"], p["secret_key"])
        except KeyError_ as exc:
            module.fail_json(msg=f"Invalid public_key/secret_key option: {exc}")

    changed = False
    result = {}
    keyfile = KeyFile(module, p["path"]) if p["path"] else None
    current = keyfile.load() if keyfile else None

    # Which pair do we want, and do we know its secret yet (not when generated in check mode)?
    if p["public_key"]:
        public_key, secret_key = p["public_key"], p["secret_key"]
    elif current:
        public_key, secret_key = current["public_key"], current["secret_key"]
    elif module.check_mode:
        public_key, secret_key = "", ""
    else:
        public_key, secret_key = generate_pair()

    before_pk = current["public_key"] if current else None
    if keyfile and (current is None or (current["public_key"], current["secret_key"]) != (public_key, secret_key)):
        changed = True
        # File first, server second: a failed POST is retried with the same pair on the next run.
        if not module.check_mode:
            current = keyfile.write(public_key, secret_key, p["note"])
    if keyfile:
        result["path"] = keyfile.path
        if current:
            result["created"] = current.get("created")
        if os.path.exists(keyfile.path):
            # A secret file: always 0600, whoever wrote it last.
            file_args = dict(path=keyfile.path, mode="0600", owner=p["owner"], group=p["group"],
                             secontext=[None, None, None], attributes=None)
            changed = module.set_fs_attributes_if_different(file_args, changed)

    if p["mode"] == "api":
        api = Api(module, [secret_key, p["organization_secret_key"]])
        existing = api.find(public_key) if public_key else None
        if existing:
            result["api_key_id"] = existing.get("id")
            shown = existing.get("displaySecretKey") or ""
            if secret_key and shown[-4:] and "..." in shown and not secret_key.endswith(shown[-4:]):
                module.warn(f"API key {public_key} exists in Langfuse with a different secret key than the "
                            "one managed here; clients using this secret will be rejected. Use a new "
                            "public key to rotate the pair.")
        else:
            changed = True
            if not module.check_mode:
                created = api.create(public_key, secret_key, p["note"])
                if created.get("id"):
                    result["api_key_id"] = created["id"]

    if module._diff:
        result["diff"] = dict(before={"public_key": before_pk},
                              after={"public_key": public_key or "(generated when not in check mode)"})
    module.exit_json(changed=changed, public_key=public_key, secret_key=secret_key, **result)


if __name__ == "__main__":
    main()
