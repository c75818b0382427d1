# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""One definition of a Langfuse backup's layout, its completion marker and the retention rule, used
on the box (langfuse_backup, langfuse_restore) and on the controller (filter backup_retention).

A backup is a folder named by its UTC start time (20261201T203000Z sorts as it happened). It is
complete when manifest.json is in it: the manifest is written last, after every part, so a folder
without one is an interrupted backup and is never restored from."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time

MANIFEST = "manifest.json"
FORMAT = 1
# The parts, in the order they are taken; the optional ones are only there when that service is.
PARTS = {
    "postgres.dump": "Langfuse Postgres (pg_dump custom format)",
    "clickhouse.zip": "Langfuse ClickHouse database (its native BACKUP)",
    "minio.tar": "MinIO data, the langfuse bucket with its metadata (docker cp of /data)",
    "litellm-postgres.dump": "LiteLLM Postgres (pg_dump custom format; database mode)",
    "secrets.json.vault": "/etc/langfuse and /etc/litellm (Ansible Vault)",
}
_NAME = re.compile(r"\d{8}T\d{6}Z")


def new_name(now=None):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def is_backup_name(name):
    return bool(_NAME.fullmatch(str(name)))


def plan_retention(entries, keep, protect=()):
    """Which backups to remove. `entries`: [{"name": ..., "complete": bool}]. The `keep` newest complete
    backups stay (0 keeps all); an incomplete one goes once a newer complete one exists (it can never
    be restored from); names in `protect` (the one just taken) always stay. Folders whose name is not a
    backup name are never touched."""
    keep = int(keep)
    ours = sorted((e for e in entries if is_backup_name(e.get("name"))), key=lambda e: e["name"],
                  reverse=True)
    complete = [e["name"] for e in ours if e.get("complete")]
    newest = complete[0] if complete else None
    remove = []
    if keep > 0:
        remove += complete[keep:]
    remove += [e["name"] for e in ours if not e.get("complete") and newest and e["name"] < newest]
    return sorted(n for n in set(remove) if n not in set(protect))


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(folder, names):
    """[{name, bytes, sha256, what}] of these files in the folder."""
    return [{"name": n, "bytes": os.path.getsize(os.path.join(folder, n)),
             "sha256": sha256(os.path.join(folder, n)), "what": PARTS.get(n, n)} for n in names]


def write_manifest(folder, manifest):
    """Atomically: a reader sees no manifest or the whole one."""
    tmp = os.path.join(folder, "." + MANIFEST + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(dict(manifest, format=FORMAT), fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(tmp, os.path.join(folder, MANIFEST))


def read_manifest(folder):
    """The manifest, or None when the backup is incomplete; ValueError when it is not ours."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), list):
        raise ValueError(f"{path} is not a llmops.devbox backup manifest (format {FORMAT})")
    return data


def verify(folder, manifest):
    """Problems with the files the manifest lists (missing, other size or checksum); [] when sound."""
    problems = []
    for item in manifest["files"]:
        path = os.path.join(folder, item["name"])
        if not os.path.isfile(path):
            problems.append(f"{item['name']} is missing")
        elif os.path.getsize(path) != item["bytes"] or sha256(path) != item["sha256"]:
            problems.append(f"{item['name']} differs from the manifest (size or SHA-256)")
    return problems


def make_folder(backup_dir, name):
    """backup_dir/name, both created 0700 (root only: the dumps hold users and key hashes)."""
    folder = os.path.join(backup_dir, name)
    for path in (backup_dir, folder):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return folder


def finish(backup_dir, name, parts, manifest, keep):
    """Completes a backup: its parts made 0600, the manifest (with their sizes and SHA-256) written last, then
    retention. Returns (files, removed)."""
    folder = os.path.join(backup_dir, name)
    for part in parts:
        os.chmod(os.path.join(folder, part), 0o600)
    files = describe(folder, parts)
    write_manifest(folder, dict(manifest, files=files))
    removed = plan_retention(list_backups(backup_dir), keep, protect=[name])
    for old in removed:
        shutil.rmtree(os.path.join(backup_dir, old))
    return files, removed


def list_backups(backup_dir):
    """[{"name", "complete"}] of the backup folders in backup_dir."""
    if not os.path.isdir(backup_dir):
        return []
    out = []
    for name in sorted(os.listdir(backup_dir)):
        if is_backup_name(name) and os.path.isdir(os.path.join(backup_dir, name)):
            out.append({"name": name, "complete": os.path.exists(os.path.join(backup_dir, name, MANIFEST))})
    return out
