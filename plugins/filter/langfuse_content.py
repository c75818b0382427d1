# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Turn langfuse_prompts / langfuse_datasets (inline or from files) into module arguments.

Runs on the controller, where the repository's files are: relative paths are taken from base_dir
(the inventory's directory). Every refusal names the entry and the field to fix.
"""

from __future__ import annotations

import json
import os

import yaml
from ansible.errors import AnsibleFilterError

PROMPT_KEYS = {"name", "type", "prompt", "file", "config", "labels", "tags", "commit_message"}
DATASET_KEYS = {"name", "description", "metadata", "items", "items_file"}
ITEM_KEYS = {"id", "input", "expected_output", "metadata"}


def _where(kind, index, entry):
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"{kind}[{index}]" + (f" ({name})" if name else "")


def _read(path, base_dir, where):
    full = path if os.path.isabs(path) else os.path.join(base_dir, path)
    try:
        with open(full, "r", encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise AnsibleFilterError(f"{where}: cannot read file {full}: {exc.strerror}") from None


def _strings(value, where, field):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AnsibleFilterError(f"{where}: {field} must be a list of non-empty strings")
    return list(value)


def _messages(value, where):
    if not isinstance(value, list) or not value:
        raise AnsibleFilterError(f"{where}: a chat prompt is a non-empty list of messages ({{role, content}})")
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise AnsibleFilterError(f"{where}: message {i} must have a string role and a string content")
    return value


def langfuse_prompt_specs(prompts, base_dir):
    if not isinstance(prompts, list):
        raise AnsibleFilterError("langfuse_prompts must be a list of prompts")
    specs = []
    for index, entry in enumerate(prompts):
        where = _where("langfuse_prompts", index, entry)
        if not isinstance(entry, dict):
            raise AnsibleFilterError(f"{where}: each prompt is a dict (name, type, prompt or file, ...)")
        unknown = sorted(set(entry) - PROMPT_KEYS)
        if unknown:
            raise AnsibleFilterError(f"{where}: unknown field(s) {', '.join(unknown)}; known: "
                                     f"{', '.join(sorted(PROMPT_KEYS))}")
        if not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise AnsibleFilterError(f"{where}: name is required")
        kind = entry.get("type", "text")
        if kind not in ("text", "chat"):
            raise AnsibleFilterError(f"{where}: type must be text or chat, not {kind!r}")
        if ("prompt" in entry) == ("file" in entry):
            raise AnsibleFilterError(f"{where}: give exactly one of prompt and file")
        if "file" in entry:
            text = _read(entry["file"], base_dir, where)
            if kind == "chat":
                try:
                    content = yaml.safe_load(text)
                except yaml.YAMLError as exc:
                    raise AnsibleFilterError(f"{where}: {entry['file']} is not YAML/JSON: {exc}") from None
            else:
                content = text
        else:
            content = entry["prompt"]
        if kind == "chat":
            content = _messages(content, where)
        elif not isinstance(content, str) or not content:
            raise AnsibleFilterError(f"{where}: a text prompt is a non-empty string")
        config = entry.get("config") or {}
        if not isinstance(config, dict):
            raise AnsibleFilterError(f"{where}: config must be a dict")
        labels = _strings(entry.get("labels"), where, "labels")
        if "latest" in labels:
            raise AnsibleFilterError(f"{where}: 'latest' is set by Langfuse on the newest version; "
                                     "use another label")
        spec = {"name": entry["name"], "type": kind, "prompt": content, "config": config, "labels": labels}
        if entry.get("tags") is not None:
            spec["tags"] = _strings(entry["tags"], where, "tags")
        if entry.get("commit_message"):
            spec["commit_message"] = str(entry["commit_message"])
        specs.append(spec)
    return specs


def _items_from_file(path, base_dir, where):
    text = _read(path, base_dir, where)
    if path.endswith((".jsonl", ".ndjson")):
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    raise AnsibleFilterError(f"{where}: {path} line {number} is not JSON: {exc}") from None
        return items
    try:
        items = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnsibleFilterError(f"{where}: {path} is not YAML: {exc}") from None
    if not isinstance(items, list):
        raise AnsibleFilterError(f"{where}: {path} must hold a list of items")
    return items


def langfuse_dataset_specs(datasets, base_dir):
    if not isinstance(datasets, list):
        raise AnsibleFilterError("langfuse_datasets must be a list of datasets")
    specs = []
    for index, entry in enumerate(datasets):
        where = _where("langfuse_datasets", index, entry)
        if not isinstance(entry, dict):
            raise AnsibleFilterError(f"{where}: each dataset is a dict (name, items or items_file, ...)")
        unknown = sorted(set(entry) - DATASET_KEYS)
        if unknown:
            raise AnsibleFilterError(f"{where}: unknown field(s) {', '.join(unknown)}; known: "
                                     f"{', '.join(sorted(DATASET_KEYS))}")
        if not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise AnsibleFilterError(f"{where}: name is required")
        items = list(entry.get("items") or [])
        if entry.get("items_file"):
            items += _items_from_file(entry["items_file"], base_dir, where)
        seen = set()
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise AnsibleFilterError(f"{where}: item {i} must be a dict with an id")
            unknown = sorted(set(item) - ITEM_KEYS)
            if unknown:
                raise AnsibleFilterError(f"{where}: item {i}: unknown field(s) {', '.join(unknown)}; known: "
                                         f"{', '.join(sorted(ITEM_KEYS))}")
            item_id = item.get("id")
            if not isinstance(item_id, str) or not item_id:
                raise AnsibleFilterError(f"{where}: item {i} needs an id (a string): items are kept by id")
            if item_id in seen:
                raise AnsibleFilterError(f"{where}: item id {item_id} appears twice")
            seen.add(item_id)
        metadata = entry.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise AnsibleFilterError(f"{where}: metadata must be a dict")
        spec = {"name": entry["name"], "items": items}
        if entry.get("description") is not None:
            spec["description"] = str(entry["description"])
        if metadata is not None:
            spec["metadata"] = metadata
        specs.append(spec)
    return specs


class FilterModule:
    def filters(self):
        return {
            "langfuse_prompt_specs": langfuse_prompt_specs,
            "langfuse_dataset_specs": langfuse_dataset_specs,
        }
