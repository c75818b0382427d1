# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""Backups on the controller (playbooks/backup.yml, restore.yml), by the same rules as on the box
(module_utils/_backup.py): which to remove, which to restore."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.module_utils._backup import MANIFEST, is_backup_name, plan_retention


def _entries(paths):
    """Backup folders from paths found under a host's folder: a folder, or a manifest.json in it."""
    if not isinstance(paths, (list, tuple)):
        raise AnsibleFilterError("langfuse_backups: pass a list of paths (find's files | map(attribute='path'))")
    found = {}
    for path in paths:
        path = str(path).rstrip("/")
        if os.path.basename(path) == MANIFEST:
            if is_backup_name(os.path.basename(os.path.dirname(path))):
                found[os.path.basename(os.path.dirname(path))] = True
        elif is_backup_name(os.path.basename(path)):
            found.setdefault(os.path.basename(path), False)
    return [{"name": n, "complete": c} for n, c in sorted(found.items())]


def langfuse_backup_retention(paths, keep, protect=()):
    """Names of the backups to remove so that `keep` complete ones stay (0 keeps all)."""
    return plan_retention(_entries(paths), keep, protect)


def langfuse_backup_pick(paths, name=""):
    """The backup to restore: `name` when given (it must be complete), else the newest complete one."""
    complete = [e["name"] for e in _entries(paths) if e["complete"]]
    if name:
        if name not in complete:
            raise AnsibleFilterError(f"no complete backup named {name!r} (complete: {', '.join(complete) or 'none'})")
        return name
    if not complete:
        raise AnsibleFilterError("no complete backup (a folder with manifest.json) was found: run playbooks/backup.yml "
                                 "first, or point langfuse_backup_controller_dir at where the backups are")
    return complete[-1]


def langfuse_backup_secrets(results):
    """{path: {"content": base64, "mode": "0600"}} from the results of a slurp loop over find's files."""
    if not isinstance(results, (list, tuple)):
        raise AnsibleFilterError("langfuse_backup_secrets: pass the results of the slurp loop")
    out = {}
    for result in results:
        item = result.get("item") or {}
        if "content" not in result or not item.get("path"):
            raise AnsibleFilterError("langfuse_backup_secrets: a secret file could not be read")
        out[item["path"]] = {"content": result["content"], "mode": str(item.get("mode") or "0600")}
    return out


def langfuse_restore_secrets(secrets, folders):
    """The backup's secret files as [{path, content, mode}], refusing any path outside `folders` (a backup
    must not write elsewhere on the box) and any mode wider than 0600."""
    if not isinstance(secrets, dict) or not secrets:
        raise AnsibleFilterError("the backup holds no secrets: it cannot be restored (ENCRYPTION_KEY and SALT "
                                 "are needed to read its data)")
    roots = [str(f).rstrip("/") + "/" for f in folders]
    out = []
    for path, entry in sorted(secrets.items()):
        norm = os.path.normpath(path)
        if norm != path or not any(norm.startswith(r) for r in roots):
            raise AnsibleFilterError(f"the backup's secret {path!r} is outside {', '.join(roots)}: refused")
        mode = int(str(entry.get("mode") or "0600"), 8)
        out.append({"path": path, "content": entry["content"], "mode": "0%o" % (mode & 0o600)})
    return out


class FilterModule:
    def filters(self):
        return {"langfuse_backup_retention": langfuse_backup_retention,
                "langfuse_backup_secrets": langfuse_backup_secrets,
                "langfuse_restore_secrets": langfuse_restore_secrets,
                "langfuse_backup_pick": langfuse_backup_pick}
