#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: langfuse_dataset
short_description: Ensure a Langfuse dataset and the items listed exist with this content
version_added: 0.1.0
description:
  - Keeps a dataset of a Langfuse project and some of its items in step with a repository,
    through the Langfuse public API authenticated with a project key pair.
  - The dataset is created, or its description and metadata updated, through
    C(POST /api/public/v2/datasets) only when it is missing or O(description) / O(metadata) differ.
  - Each item of O(items) is read (C(GET /api/public/dataset-items/{id})) and written
    (C(POST /api/public/dataset-items), an upsert by id) only when it is missing or differs.
  - Items of the dataset that O(items) does not list are left alone; nothing is ever deleted.
  - Item ids are unique per project across datasets; an id that belongs to another dataset makes
    the module fail.
  - Values are compared the way Langfuse stores them; object key order does not matter, list
    order does, V(1.0) equals V(1) but V(true) does not equal V(1). Like Langfuse, a string
    value that is valid JSON counts as that JSON (the string V({"a":1}) is the object), an empty string
    as null, and control characters other than tab and newlines are dropped.
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_url
  - llmops.devbox.langfuse_project_api
  - llmops.devbox.http_client
options:
  name:
    description:
      - Name of the dataset. May contain C(/) (Langfuse shows such names as folders) but not at
        the start or end, nor C(//).
    type: str
    required: true
  description:
    description:
      - Description of the dataset. Left as it is when not given.
    type: str
  metadata:
    description:
      - Metadata of the dataset (a JSON object). Left as it is when not given.
    type: dict
  items:
    description:
      - Items that must exist in the dataset with this content. Other items are not touched.
      - A field left out (or null) of an item is not managed; Langfuse keeps the item's value, and
        a new item gets null there. An empty string sets the field to null.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description:
          - Id of the item, unique in the project (1 to 255 characters). Choose stable ids, for
            example V(refund-policy-001), so that a rerun finds the item.
        type: str
        required: true
      input:
        description:
          - Input of the item (any JSON value).
        type: raw
      expected_output:
        description:
          - Expected output of the item (any JSON value).
        type: raw
      metadata:
        description:
          - Metadata of the item (any JSON value).
        type: raw
      status:
        description:
          - V(ARCHIVED) hides the item from new experiment runs.
        type: str
        choices: [ACTIVE, ARCHIVED]
attributes:
  check_mode:
    support: full
    description:
      - Only reads (C(GET)) and reports which items would be created or updated.
  diff_mode:
    support: full
    description:
      - Shows the dataset's description and metadata, and every item that is (or would be)
        created or updated, before and after.
notes:
  - Reads every listed item (one C(GET) each).
  - Failure messages never contain the secret key.
seealso:
  - module: llmops.devbox.langfuse_prompt
  - name: Langfuse datasets
    description: Datasets, items and experiments in Langfuse.
    link: https://langfuse.com/docs/evaluation/dataset-runs/datasets
"""

EXAMPLES = r"""
- name: Regression questions for the support assistant
  llmops.devbox.langfuse_dataset:
    url: http://127.0.0.1:3000
    public_key: "{{ langfuse_project_public_key }}"
    secret_key: "{{ langfuse_project_secret_key }}"
    name: support/regression
    description: Questions the support assistant must keep answering right
    metadata:
      owner: support-team
    items:
      - id: refund-001
        input: {question: "How long do refunds take?"}
        expected_output: "Refunds reach your account within 5 working days."
      - id: refund-002
        input: {question: "Can I get a refund after 60 days?"}
        expected_output: "No, refunds are possible within 30 days."
        metadata: {topic: refunds}
  register: __dataset

- name: Items from a file in the repository
  llmops.devbox.langfuse_dataset:
    url: http://127.0.0.1:3000
    public_key: "{{ langfuse_project_public_key }}"
    secret_key: "{{ langfuse_project_secret_key }}"
    name: summaries
    items: "{{ lookup('ansible.builtin.file', 'datasets/summaries.json') | from_json }}"
"""

RETURN = r"""
name:
  description: The dataset name.
  returned: success
  type: str
  sample: support/regression
created:
  description: Whether the dataset was (or in check mode would be) created.
  returned: success
  type: bool
  sample: false
dataset_updated:
  description: Whether the description or metadata of an existing dataset were (or would be) updated.
  returned: success
  type: bool
  sample: false
items_created:
  description: Ids of the items that were (or would be) created, in the order of O(items).
  returned: success
  type: list
  elements: str
  sample: [refund-002]
items_updated:
  description: Ids of the items that were (or would be) updated, in the order of O(items).
  returned: success
  type: list
  elements: str
  sample: [refund-001]
items_unchanged:
  description: Number of items of O(items) that already had the wanted content.
  returned: success
  type: int
  sample: 12
summary:
  description: One line saying what happened, without secrets (for a play whose task is no_log).
  returned: success
  type: str
  sample: "support/regression: dataset unchanged; items 1 created, 1 updated, 12 unchanged"
"""

import json  # noqa: E402
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

ID_MAX = 255
# Langfuse removes these from every string of an item (Postgres text cannot hold some of them).
CONTROL_RE = re.compile("[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u009f]")
# item option -> field of the Langfuse item
FIELDS = (("input", "input"), ("expected_output", "expectedOutput"), ("metadata", "metadata"))


class DatasetError(Exception):
    """A wrong option value or a conflict; the message says what and why."""


def _no_constants(name):
    raise ValueError(name)  # JSON.parse knows no NaN/Infinity


def _sanitize(value):
    if isinstance(value, str):
        return CONTROL_RE.sub("", value)
    if isinstance(value, list):
        return [_sanitize(v) for v in value]
    if isinstance(value, dict):
        return {k: _sanitize(v) for k, v in value.items()}
    return value


def item_value(value):
    """value as Langfuse stores an item field: JSON strings parsed, '' as null, control chars dropped."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_no_constants)
        except ValueError:
            pass
    return canonical(_sanitize(value))


def wanted_items(items):
    seen = set()
    wanted = []
    for i, item in enumerate(items):
        item_id = item["id"]
        if not item_id or len(item_id) > ID_MAX:
            raise DatasetError(f"items[{i}]: id must be 1 to {ID_MAX} characters")
        if item_id in seen:
            raise DatasetError(f"items[{i}]: id {item_id!r} is listed twice")
        seen.add(item_id)
        fields, also, body = {}, {}, {"id": item_id}
        for opt, key in FIELDS:
            raw = item.get(opt)
            if raw is None:
                continue
            fields[key] = item_value(raw)
            # A stored value equal to the string as given also counts as equal (written by a client
            # that does not parse strings); an upsert would only turn it into the same JSON.
            also[key] = canonical(raw)
            # Sent as Langfuse reads it: strings (and '', which clears the field) as given, so Langfuse
            # parses and cleans them itself; other values already cleaned.
            body[key] = raw if raw == "" or isinstance(fields[key], str) else fields[key]
        if item.get("status") is not None:
            fields["status"] = body["status"] = item["status"]
        wanted.append((item_id, fields, also, body))
    return wanted


def differs(current, fields, also=None):
    also = also or {}
    return [key for key, value in fields.items()
            if not same_json(current.get(key), value)
            and not (key in also and same_json(current.get(key), also[key]))]


def ensure(module, api):
    p = module.params
    name = p["name"]
    wanted = wanted_items(p["items"] or [])
    write = not module.check_mode

    dataset_path = f"/api/public/v2/datasets/{segment(name)}"
    dataset = api.call("GET", dataset_path, missing_ok=True)
    created = dataset is None
    want_ds = {}
    if p["description"] is not None:
        want_ds["description"] = p["description"]
    if p["metadata"] is not None:
        want_ds["metadata"] = canonical(p["metadata"])
    current_ds = {} if created else {"description": dataset.get("description"),
                                     "metadata": canonical(dataset.get("metadata"))}
    ds_updated = not created and bool(differs(current_ds, want_ds))

    # Read every item first: a conflict fails the task before anything is written.
    plan = []
    for item_id, fields, also, body in wanted:
        current = api.call("GET", f"/api/public/dataset-items/{segment(item_id)}", missing_ok=True)
        if current is not None:
            owner = current.get("datasetName")
            if owner is not None and owner != name:
                raise DatasetError(f"dataset item id {item_id!r} already belongs to dataset {owner!r} in this "
                                   f"project; item ids are unique per project across datasets. Give the item in "
                                   f"dataset {name!r} another id (or move it in Langfuse yourself).")
            now = {key: canonical(current.get(key)) for key in ("input", "expectedOutput", "metadata", "status")}
            plan.append((item_id, fields, body, now, "update" if differs(now, fields, also) else None))
        else:
            plan.append((item_id, fields, body, None, "create"))

    if write and (created or ds_updated):
        body = {"name": name}
        body.update({k: p[k] for k in ("description", "metadata") if p[k] is not None})
        api.call("POST", "/api/public/v2/datasets", json_body=body)

    items_created, items_updated, unchanged = [], [], 0
    diff_before, diff_after = {}, {}
    for item_id, fields, body, now, action in plan:
        if action is None:
            unchanged += 1
            continue
        (items_created if action == "create" else items_updated).append(item_id)
        diff_before[item_id] = now or {}
        diff_after[item_id] = dict(now or {}, **fields)
        if write:
            answer = api.call("POST", "/api/public/dataset-items", json_body=dict(body, datasetName=name))
            if isinstance(answer, dict) and answer.get("datasetName") not in (None, name):
                raise DatasetError(f"Langfuse wrote item {item_id!r} to dataset {answer.get('datasetName')!r}, "
                                   f"not {name!r}")

    result = dict(changed=bool(created or ds_updated or items_created or items_updated), name=name,
                  created=created, dataset_updated=ds_updated, items_created=items_created,
                  items_updated=items_updated, items_unchanged=unchanged)
    state = "created" if created else ("updated" if ds_updated else "unchanged")
    would = "would be " if module.check_mode and (created or ds_updated) else ""
    result["summary"] = (f"{name}: dataset {would}{state}; items {len(items_created)} created, "
                         f"{len(items_updated)} updated, {unchanged} unchanged"
                         + (" (check mode)" if module.check_mode else ""))
    if module._diff:
        before = {"dataset": None if created else current_ds, "items": diff_before}
        after = {"dataset": dict(current_ds, **want_ds), "items": diff_after}
        result["diff"] = {"before": before, "after": after}
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **PROJECT_API_ARGS,
            name=dict(type="str", required=True),
            description=dict(type="str"),
            metadata=dict(type="dict"),
            items=dict(type="list", elements="dict", default=[], options=dict(
                id=dict(type="str", required=True),
                input=dict(type="raw"),
                expected_output=dict(type="raw"),
                metadata=dict(type="raw"),
                status=dict(type="str", choices=["ACTIVE", "ARCHIVED"]),
            )),
        ),
        supports_check_mode=True,
    )
    p = module.params
    name = p["name"]
    if not name or name != name.strip() or name.startswith("/") or name.endswith("/") or "//" in name:
        module.fail_json(msg=f"langfuse_dataset: dataset name {name!r} must not be empty, start or end with '/' "
                             "or a space, nor contain '//'", name=name)
    try:
        api = LangfuseApi(p["url"], p["public_key"], p["secret_key"], timeout=p["request_timeout"],
                          validate_certs=p["validate_certs"])
        result = ensure(module, api)
    except DatasetError as exc:
        module.fail_json(msg=f"langfuse_dataset {p['name']!r}: {exc}", name=p["name"])
    except LangfuseApiError as exc:
        module.fail_json(msg=f"Could not ensure Langfuse dataset {p['name']!r}: {exc}", name=p["name"],
                         status=exc.status)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
