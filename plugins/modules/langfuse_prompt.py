#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: langfuse_prompt
short_description: Ensure a Langfuse prompt version with this content carries these labels
version_added: 0.1.0
description:
  - Keeps one prompt of a Langfuse project in step with a repository, through the Langfuse public
    API authenticated with a project key pair.
  - Lists the versions of prompt O(name). The version whose type, O(prompt) and O(config) equal
    the wanted ones is B(the version). When there is none, a new version is created
    (C(POST /api/public/v2/prompts)) with O(labels). When there is one, each label of O(labels)
    it does not carry yet is added to it (C(PATCH /api/public/v2/prompts/{name}/versions/{version}));
    Langfuse then removes that label from the version that had it, because a label is on at most
    one version of a prompt.
  - So two tasks with the same O(name), different content and different labels keep an A/B pair,
    and going back to older content moves the label back to that content's existing version
    instead of creating a new one.
  - Labels this task does not name (set by people in the UI, for example) are left alone, except
    where Langfuse itself moves a label named here. Nothing is ever deleted. Langfuse puts the
    label C(latest) on every new version by itself.
  - Content is compared the way Langfuse stores JSON; object key order does not matter, list
    order does, V(1.0) equals V(1) but V(true) does not equal V(1).
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_url
  - llmops.devbox.langfuse_project_api
  - llmops.devbox.http_client
options:
  name:
    description:
      - Name of the prompt. May contain C(/) (Langfuse shows such names as folders) but not at
        the start or end, nor C(//); must not contain C(|) and must not be V(new).
    type: str
    required: true
  type:
    description:
      - Kind of prompt. Langfuse does not change the type of an existing prompt; a prompt of
        the other type makes the module fail.
    type: str
    choices: [text, chat]
    default: text
  prompt:
    description:
      - The content. A string for O(type=text).
      - For O(type=chat) a list of messages, each either C({role, content}) (both strings) or a
        placeholder C({type=placeholder, name}).
    type: raw
    required: true
  config:
    description:
      - Free-form JSON object stored with the version (model parameters and the like). Part of
        the content; another config means another version.
    type: dict
    default: {}
  labels:
    description:
      - Labels the version with this content must carry, for example V(production) or V(staging).
        Lower-case letters, digits, C(_), C(-) and C(.), at most 36 characters.
      - V(latest) is refused, because Langfuse always gives it to the newest version.
    type: list
    elements: str
    default: []
  tags:
    description:
      - Tags of the prompt. Langfuse keeps one set of tags for all versions of a prompt and sets
        it when a version is created, so they are sent only when a new version is created. When
        left out, a new version keeps the tags the prompt has.
    type: list
    elements: str
  commit_message:
    description:
      - Commit message stored with a new version. Not part of the content; sent only when a new
        version is created.
    type: str
attributes:
  check_mode:
    support: full
    description:
      - Only reads (C(GET)) and reports what would be created or moved.
  diff_mode:
    support: full
    description:
      - Before is the version the first of O(labels) is on now (else the version with this content,
        else the newest version); after is the version that will carry the content. Both show
        version number, labels, type, prompt and config.
notes:
  - Reads every version of the prompt (one C(GET) each) to find content and labels.
  - Failure messages never contain the secret key.
seealso:
  - module: llmops.devbox.langfuse_dataset
  - name: Langfuse prompt management
    description: Versions and labels of Langfuse prompts.
    link: https://langfuse.com/docs/prompt-management/features/prompt-version-control
"""

EXAMPLES = r"""
- name: Production system prompt from the repository
  llmops.devbox.langfuse_prompt:
    url: http://127.0.0.1:3000
    public_key: "{{ langfuse_project_public_key }}"
    secret_key: "{{ langfuse_project_secret_key }}"
    name: support/answer
    type: chat
    prompt:
      - role: system
        content: "You answer questions about {{ '{{product}}' }} politely and briefly."
      - type: placeholder
        name: history
    config:
      model: claude-sonnet
      temperature: 0.2
    labels: [production]
    commit_message: shorter answers

- name: A/B test - the candidate content carries the label "candidate"
  llmops.devbox.langfuse_prompt:
    url: http://127.0.0.1:3000
    public_key: "{{ langfuse_project_public_key }}"
    secret_key: "{{ langfuse_project_secret_key }}"
    name: summarise
    prompt: "Summarise in three bullet points: {{ '{{text}}' }}"
    labels: [candidate]
  register: __candidate

- name: Show which version carries the candidate
  ansible.builtin.debug:
    msg: "summarise v{{ __candidate.version }}: {{ __candidate.labels | join(', ') }}"
"""

RETURN = r"""
name:
  description: The prompt name.
  returned: success
  type: str
  sample: support/answer
version:
  description:
    - The version that carries the wanted content (and now O(labels)).
    - Null in check mode when that version would be created.
  returned: success
  type: int
  sample: 4
labels:
  description: Labels of that version afterwards (including ones set elsewhere, and C(latest)).
  returned: success
  type: list
  elements: str
  sample: [production, latest]
created:
  description: Whether a new version was (or in check mode would be) created.
  returned: success
  type: bool
  sample: false
moved_labels:
  description:
    - Labels of O(labels) that were (or would be) put on the version. C(from_version) is the
      version that carried the label before (null when none did); C(to_version) is null in check
      mode when the version would be created.
  returned: success
  type: list
  elements: dict
  sample: [{label: production, from_version: 3, to_version: 2}]
summary:
  description: One line saying what happened, without secrets (for a play whose task is no_log).
  returned: success
  type: str
  sample: "support/answer: production (from v3) put on v2"
"""

import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._langfuse_api import (  # noqa: E402
    PROJECT_API_ARGS,
    LangfuseApi,
    LangfuseApiError,
    canonical,
    same_json,
    segment,
)

LATEST = "latest"
LABEL_RE = re.compile(r"^[a-z0-9_\-.]+$")
LABEL_MAX = 36
PLACEHOLDER_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
PAGE_LIMIT = 100


class PromptError(Exception):
    """A wrong option value; the message says which and why."""


def check_options(p):
    """Validated (labels, prompt) or PromptError, before anything is sent."""
    name = p["name"]
    if not name or not name.strip():
        raise PromptError("name must not be empty")
    if "|" in name:
        raise PromptError(f"prompt name {name!r} must not contain '|' (Langfuse uses it for prompt references)")
    if name == "new":
        raise PromptError("prompt name must not be 'new' (reserved by Langfuse)")
    if name != name.strip() or name.startswith("/") or name.endswith("/") or "//" in name:
        raise PromptError(f"prompt name {name!r} must not start or end with '/' or a space, nor contain '//'")

    labels = []
    for label in p["labels"]:
        if label == LATEST:
            raise PromptError("label 'latest' cannot be set: Langfuse always gives it to the newest version "
                              "of a prompt by itself. Remove it from labels.")
        if not LABEL_RE.match(label or "") or len(label) > LABEL_MAX:
            raise PromptError(f"label {label!r} is not valid: Langfuse labels are 1 to {LABEL_MAX} lower-case "
                              "letters, digits, '_', '-' or '.'")
        if label not in labels:
            labels.append(label)

    prompt = p["prompt"]
    if p["type"] == "text":
        if not isinstance(prompt, str):
            raise PromptError("with type=text, prompt must be a string")
    else:
        if not isinstance(prompt, list) or not prompt:
            raise PromptError("with type=chat, prompt must be a non-empty list of messages {role, content}")
        messages = []
        for i, msg in enumerate(prompt):
            if not isinstance(msg, dict):
                raise PromptError(f"prompt[{i}] must be a mapping {{role, content}}")
            if msg.get("type") == "placeholder":
                if set(msg) != {"type", "name"} or not PLACEHOLDER_RE.match(str(msg.get("name") or "")):
                    raise PromptError(f"prompt[{i}]: a placeholder is exactly {{type: placeholder, name}} with a name "
                                      "that starts with a letter and has only letters, digits and '_'")
                messages.append({"type": "placeholder", "name": msg["name"]})
            else:
                # Langfuse drops other keys, so they could never compare equal: refuse them.
                if set(msg) != {"role", "content"} or not isinstance(msg["role"], str) \
                        or not isinstance(msg["content"], str):
                    raise PromptError(f"prompt[{i}] must have exactly the string keys role and content "
                                      f"(got keys {sorted(msg)})")
                messages.append({"role": msg["role"], "content": msg["content"]})
        prompt = messages
    return labels, prompt


class Prompts:
    """The prompt's versions as Langfuse has them."""

    def __init__(self, api, name):
        self.api = api
        self.name = name
        self.path = f"/api/public/v2/prompts/{segment(name)}"

    def version_numbers(self):
        data = self.api.call("GET", "/api/public/v2/prompts", query={"name": self.name, "limit": PAGE_LIMIT})
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise LangfuseApiError(f"GET /api/public/v2/prompts at {self.api.base} gave an unexpected answer "
                                   "(no data list)")
        numbers = set()
        for entry in entries:
            if isinstance(entry, dict) and entry.get("name") == self.name:
                numbers.update(int(v) for v in entry.get("versions") or [])
        return sorted(numbers)

    def get(self, version):
        data = self.api.call("GET", self.path, query={"version": version, "resolve": "false"}, missing_ok=True)
        if data is None:
            return None  # deleted between the list and this read
        if not isinstance(data, dict) or "prompt" not in data:
            raise LangfuseApiError(f"GET {self.path}?version={version} at {self.api.base} gave an unexpected answer")
        return {
            "version": int(data.get("version", version)),
            "type": data.get("type") or "text",
            "prompt": data.get("prompt"),
            "config": data.get("config") if data.get("config") is not None else {},
            "labels": list(data.get("labels") or []),
        }

    def all(self):
        versions = [self.get(v) for v in self.version_numbers()]
        return [v for v in versions if v is not None]

    def create(self, body):
        data = self.api.call("POST", "/api/public/v2/prompts", json_body=body)
        return data if isinstance(data, dict) else {}

    def add_labels(self, version, new_labels):
        path = f"{self.path}/versions/{segment(version)}"
        data = self.api.call("PATCH", path, json_body={"newLabels": new_labels})
        return data if isinstance(data, dict) else {}


def same_content(version, want):
    return (version["type"] == want["type"] and same_json(version["prompt"], want["prompt"])
            and same_json(version["config"], want["config"]))


def pick(matches, labels):
    """Of the versions with the wanted content: the one with most wanted labels, then the newest."""
    return max(matches, key=lambda v: (len(set(v["labels"]) & set(labels)), v["version"]))


def view(version):
    if version is None:
        return {}
    return {"version": version["version"], "labels": sorted(version["labels"]), "type": version["type"],
            "prompt": canonical(version["prompt"]), "config": canonical(version["config"])}


def summarise(name, version, created, labels, moved, check_mode):
    """One line for the play's output (results of these tasks are usually no_log)."""
    where = f"v{version}" if version else "a new version"
    would = "would be " if check_mode else ""
    if created:
        return f"{name}: {where} {would}created" + (f" with {', '.join(labels)}" if labels else "")
    if moved:
        what = ", ".join(f"{m['label']} (from v{m['from_version']})" if m["from_version"] else m["label"]
                         for m in moved)
        return f"{name}: {what} {would}put on {where}"
    return f"{name}: unchanged ({where}" + (f", {', '.join(labels)})" if labels else ")")


def ensure(module, api, labels, prompt):
    p = module.params
    want = {"type": p["type"], "prompt": prompt, "config": p["config"] or {}}
    prompts = Prompts(api, p["name"])
    versions = prompts.all()
    newest = max(versions, key=lambda v: v["version"]) if versions else None
    if newest and newest["type"] != want["type"]:
        raise PromptError(f"prompt {p['name']!r} exists in Langfuse as a {newest['type']} prompt; Langfuse cannot "
                          f"change the type of a prompt to {want['type']}. Use another name or type={newest['type']}.")

    holder = {}  # label -> version number carrying it now
    for v in versions:
        for label in v["labels"]:
            holder[label] = v["version"]

    matches = [v for v in versions if same_content(v, want)]
    target = pick(matches, labels) if matches else None
    if labels and labels[0] in holder:
        before = next(v for v in versions if v["version"] == holder[labels[0]])
    else:
        before = target or newest

    created = target is None
    target_number = target["version"] if target else None
    missing = [label for label in labels if target is None or label not in target["labels"]]
    moved = [{"label": label, "from_version": holder.get(label), "to_version": target_number} for label in missing]

    if created:
        after_labels = labels + [LATEST]
    else:
        after_labels = target["labels"] + [label for label in missing if label not in target["labels"]]
    after_version = target_number

    if not module.check_mode:
        if created:
            body = {"name": p["name"], "type": p["type"], "prompt": prompt, "config": want["config"],
                    "labels": labels}
            if p["tags"] is not None:
                body["tags"] = p["tags"]
            if p["commit_message"] is not None:
                body["commitMessage"] = p["commit_message"]
            answer = prompts.create(body)
            if answer.get("version") is None:
                raise LangfuseApiError(f"POST /api/public/v2/prompts at {api.base} created prompt {p['name']!r} but "
                                       "did not say which version")
            after_version = int(answer["version"])
            after_labels = list(answer.get("labels") or after_labels)
            for entry in moved:
                entry["to_version"] = after_version
        elif missing:
            # Langfuse adds newLabels to the version's labels (and takes them off the other versions);
            # the version's other labels are sent too, so they stay whatever the server does with the list.
            keep = [label for label in target["labels"] if label != LATEST]
            answer = prompts.add_labels(target_number, keep + [label for label in missing if label not in keep])
            after_labels = list(answer.get("labels") or after_labels)

    result = dict(changed=bool(created or missing), name=p["name"], version=after_version,
                  labels=after_labels, created=created, moved_labels=moved,
                  summary=summarise(p["name"], after_version, created, labels, moved, module.check_mode))
    if module._diff:
        after = {"version": after_version, "labels": sorted(after_labels), "type": want["type"],
                 "prompt": canonical(prompt), "config": canonical(want["config"])}
        result["diff"] = {"before": view(before), "after": after,
                          "before_header": f"{p['name']} v{before['version']}" if before else f"{p['name']} (absent)",
                          "after_header": f"{p['name']} v{after_version}" if after_version else
                                          f"{p['name']} (new version)"}
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **PROJECT_API_ARGS,
            name=dict(type="str", required=True),
            type=dict(type="str", choices=["text", "chat"], default="text"),
            prompt=dict(type="raw", required=True),
            config=dict(type="dict", default={}),
            labels=dict(type="list", elements="str", default=[]),
            tags=dict(type="list", elements="str"),
            commit_message=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        labels, prompt = check_options(p)
        api = LangfuseApi(p["url"], p["public_key"], p["secret_key"], timeout=p["request_timeout"],
                          validate_certs=p["validate_certs"])
        result = ensure(module, api, labels, prompt)
    except PromptError as exc:
        module.fail_json(msg=f"langfuse_prompt {p['name']!r}: {exc}", name=p["name"])
    except LangfuseApiError as exc:
        module.fail_json(msg=f"Could not ensure Langfuse prompt {p['name']!r}: {exc}", name=p["name"],
                         status=exc.status)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
