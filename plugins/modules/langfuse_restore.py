#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: langfuse_restore
short_description: Restore a Langfuse backup taken by langfuse_backup into the stack on the box
version_added: 0.9.0
description:
  - Restores the data parts of O(backup_dir)/O(name) (see M(llmops.devbox.langfuse_backup)) into the
    Compose project the C(llmops.devbox.langfuse) role deployed on this box - the same box or a fresh one.
  - The secrets must be in place before (the role must run with the backup's C(/etc/langfuse), or the
    restored database cannot be read - C(ENCRYPTION_KEY) and C(SALT)); C(playbooks/restore.yml) does that first.
  - Every part is checked against the manifest (size and SHA-256) before anything is touched. Then
    langfuse-web and langfuse-worker are stopped, Postgres is restored (C(pg_restore --clean
    --single-transaction)), ClickHouse's tables are dropped and its C(RESTORE) run, MinIO's volume is
    replaced by the backup's C(/data), the LiteLLM Postgres is restored when the backup has it and the
    box runs that container, and the whole project is started again.
  - Waiting for health and proving the result is the caller's (C(playbooks/restore.yml)).
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_stack
options:
  backup_dir:
    description: Where the backup folder is on the box; its C(.clickhouse) subfolder is ClickHouse's C(/backups).
    type: path
    required: true
  name:
    description: The backup to restore (a folder under O(backup_dir) with a C(manifest.json)).
    type: str
    required: true
  clickhouse_mount:
    description: Where O(backup_dir)/.clickhouse is mounted in the clickhouse container.
    type: str
    default: /backups
  clickhouse_uid:
    description: The uid the ClickHouse server runs as (it reads the archive).
    type: int
    default: 101
  litellm_postgres_container:
    description: The LiteLLM Postgres container to restore into, when the backup has its dump; empty skips it.
    type: str
    default: ""
notes:
  - Check mode verifies the backup against its manifest and changes nothing.
  - Replaces the stack's data. Take a backup of the current state first if it may still be needed.
"""

EXAMPLES = r"""
- name: Restore Langfuse from a backup copied to the box
  llmops.devbox.langfuse_restore:
    project_dir: /opt/langfuse
    backup_dir: /var/backups/langfuse
    name: 20261201T203000Z
"""

RETURN = r"""
name:
  description: The backup restored.
  returned: always
  type: str
restored:
  description: The parts restored.
  returned: success
  type: list
  elements: str
skipped:
  description: Parts in the backup that were not restored, with the reason.
  returned: success
  type: list
  elements: str
seconds:
  description: Wall time of the restore (until the project was started again).
  returned: success
  type: float
manifest:
  description: The backup's manifest.
  returned: success
  type: dict
"""

import os  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._backup import read_manifest, verify  # noqa: E402
from ansible_collections.llmops.devbox.plugins.module_utils._stack import PROJECT_DIR_ARG, Stack, StackError, safe_name  # noqa: E402

WRITERS = ["langfuse-web", "langfuse-worker"]


def restore_clickhouse(stack, p, folder, manifest):
    database = safe_name(manifest.get("clickhouse_database") or "default", "clickhouse_database")
    staging = os.path.join(p["backup_dir"], ".clickhouse")
    os.makedirs(staging, exist_ok=True)
    os.chown(staging, p["clickhouse_uid"], p["clickhouse_uid"])
    os.chmod(staging, 0o700)
    archive = os.path.join(staging, p["name"] + ".restore.zip")
    shutil.copyfile(os.path.join(folder, "clickhouse.zip"), archive)
    os.chown(archive, p["clickhouse_uid"], p["clickhouse_uid"])
    os.chmod(archive, 0o600)
    try:
        # RESTORE refuses tables that hold data (mixing would duplicate rows): the backup replaces them.
        for table in stack.clickhouse(f"SHOW TABLES FROM {database}", "listing ClickHouse tables").split():
            stack.clickhouse(f"DROP TABLE IF EXISTS {database}.`{safe_name(table, 'table')}` SYNC",
                             f"dropping ClickHouse table {table}")
        stack.clickhouse(f"RESTORE DATABASE {database} FROM File('{os.path.basename(archive)}')",
                         "ClickHouse RESTORE")
    finally:
        os.remove(archive)


def restore_minio(stack):
    """The volume is replaced, not merged: objects deleted since the backup must not come back."""
    volume = stack.volume("minio", "/data")
    stack.compose("rm", "--stop", "--force", "minio")
    stack._check(["docker", "volume", "rm", volume], f"removing volume {volume}")
    stack.compose("create", "minio")
    return stack.container("minio")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=PROJECT_DIR_ARG,
            backup_dir=dict(type="path", required=True),
            name=dict(type="str", required=True),
            clickhouse_mount=dict(type="str", default="/backups"),
            clickhouse_uid=dict(type="int", default=101),
            litellm_postgres_container=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, name=p["name"])
    try:
        safe_name(p["name"], "name")
        folder = os.path.join(p["backup_dir"], p["name"])
        manifest = read_manifest(folder)
    except (StackError, ValueError, OSError) as exc:
        module.fail_json(msg=str(exc), **result)
    if manifest is None:
        module.fail_json(msg=f"{folder} has no manifest.json: the backup is incomplete (or not copied to "
                             "this box) and cannot be restored", **result)
    problems = verify(folder, manifest)
    if problems:
        module.fail_json(msg=f"Backup {p['name']} is damaged, nothing was touched: " + "; ".join(problems),
                         **result)
    names = [f["name"] for f in manifest["files"]]
    missing = [n for n in ("postgres.dump", "clickhouse.zip", "minio.tar") if n not in names]
    if missing:
        module.fail_json(msg=f"Backup {p['name']} lacks {', '.join(missing)}", **result)
    result.update(changed=True, manifest=manifest)
    if module.check_mode:
        module.exit_json(**result)

    started = time.monotonic()
    stack = Stack(p["project_dir"])
    restored, skipped = [], []
    try:
        stack.stop(WRITERS)
        stack.pg(stack.container("postgres"), "pg_restore",
                 "--clean --if-exists --no-owner --single-transaction --exit-on-error",
                 "pg_restore into the Langfuse Postgres", stdin_path=os.path.join(folder, "postgres.dump"))
        restored.append("postgres.dump")
        restore_clickhouse(stack, p, folder, manifest)
        restored.append("clickhouse.zip")
        container = restore_minio(stack)
        stack._check(["docker", "cp", "-", container + ":/"], "copying the MinIO data in",
                     stdin_path=os.path.join(folder, "minio.tar"))
        restored.append("minio.tar")
        if "litellm-postgres.dump" in names:
            if not p["litellm_postgres_container"]:
                skipped.append("litellm-postgres.dump: no LiteLLM Postgres container on this box (database "
                               "mode off or litellm not deployed); restore it after site.yml with this playbook")
            else:
                stack.pg(p["litellm_postgres_container"], "pg_restore",
                         "--clean --if-exists --no-owner --single-transaction --exit-on-error",
                         "pg_restore into the LiteLLM Postgres",
                         stdin_path=os.path.join(folder, "litellm-postgres.dump"))
                restored.append("litellm-postgres.dump")
        stack.compose("up", "--detach")
    except StackError as exc:
        module.fail_json(msg=f"Restore of {p['name']} failed after {', '.join(restored) or 'nothing'}: {exc}. "
                             "The stack may be partly restored: fix the cause and rerun the restore (every step "
                             "replaces what it restores).", restored=restored, **result)
    module.exit_json(restored=restored, skipped=skipped, seconds=round(time.monotonic() - started, 1), **result)


if __name__ == "__main__":
    main()
