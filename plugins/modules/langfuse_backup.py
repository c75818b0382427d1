#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: langfuse_backup
short_description: Take a consistent backup of a Langfuse Compose stack on the box
version_added: 0.9.0
description:
  - Backs up the Compose project the C(llmops.devbox.langfuse) role deploys, all parts together, into
    O(backup_dir)/<name>/ on the box, then removes backups beyond O(keep).
  - The parts are Postgres (C(pg_dump) custom format, in the postgres container), ClickHouse (its native
    C(BACKUP DATABASE ... TO File()), written through the folder the role mounts at C(/backups)), the
    MinIO data (C(docker cp) of C(/data), the C(langfuse) bucket with its metadata), and optionally
    the LiteLLM Postgres (O(litellm_postgres_container)) and an already encrypted secrets file
    (O(secrets_vault)).
  - With O(quiesce) (default) langfuse-web and langfuse-worker are stopped while the parts are taken, so
    Postgres, ClickHouse and the objects belong to the same moment (a restore of parts from different
    moments can leave Langfuse's migrations or references inconsistent), and started again afterwards,
    also when a step fails. Ingestion pauses for that time; SDKs retry.
  - C(manifest.json) is written last and is the completion marker; it lists every part with size and
    SHA-256. A folder without it is an interrupted backup, never restored from and removed by the next
    retention pass.
  - Secrets are read inside the containers from their own environment; none is passed to or returned
    by this module.
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_stack
options:
  backup_dir:
    description:
      - Where backups are kept on the box (C(langfuse_backup_dir)); created C(0700) root.
      - Its C(.clickhouse) subfolder must be mounted at O(clickhouse_mount) in the clickhouse container
        (the role does), owned by ClickHouse's uid 101.
    type: path
    required: true
  name:
    description: Name of the backup folder; default the UTC start time, C(YYYYmmddTHHMMSSZ).
    type: str
  keep:
    description:
      - How many complete backups to keep on the box, this one included; older ones are removed after
        this one completed. V(0) keeps all.
    type: int
    default: 7
  quiesce:
    description: Stop langfuse-web and langfuse-worker while the parts are taken (see description).
    type: bool
    default: true
  clickhouse_database:
    description: The ClickHouse database Langfuse uses.
    type: str
    default: default
  clickhouse_mount:
    description: Where O(backup_dir)/.clickhouse is mounted in the clickhouse container (an C(allowed_path)).
    type: str
    default: /backups
  clickhouse_uid:
    description: The uid the ClickHouse server runs as (it writes the backup archive).
    type: int
    default: 101
  litellm_postgres_container:
    description: Name of the LiteLLM Postgres container to dump too (database mode); empty for none.
    type: str
    default: ""
  secrets_vault:
    description:
      - Text written as C(secrets.json.vault) into the backup before the manifest - the secrets, already
        encrypted with Ansible Vault on the controller. Plain text is refused.
    type: str
    default: ""
  labels:
    description: Extra facts kept in the manifest (for example the id of a trace to read back after a restore).
    type: dict
    default: {}
notes:
  - Check mode reports what would be taken and changes nothing.
"""

EXAMPLES = r"""
- name: Back up Langfuse
  llmops.devbox.langfuse_backup:
    project_dir: /opt/langfuse
    backup_dir: /var/backups/langfuse
    keep: 7
    litellm_postgres_container: litellm-postgres
  register: backup
"""

RETURN = r"""
name:
  description: The backup's name (its folder under O(backup_dir)).
  returned: always
  type: str
  sample: 20261201T203000Z
path:
  description: The backup folder on the box.
  returned: always
  type: str
files:
  description: The parts taken, as in the manifest.
  returned: success
  type: list
  elements: dict
  contains:
    name: {description: File name in the backup folder., type: str}
    bytes: {description: Size., type: int}
    sha256: {description: SHA-256 of the file., type: str}
    what: {description: What the part holds., type: str}
bytes:
  description: Total size of the parts.
  returned: success
  type: int
seconds:
  description: Wall time of the backup, quiesced part included.
  returned: success
  type: float
quiesced_seconds:
  description: How long langfuse-web and langfuse-worker were stopped.
  returned: success
  type: float
removed:
  description: Backups removed by retention on the box.
  returned: success
  type: list
  elements: str
manifest:
  description: The manifest written (completion marker).
  returned: success
  type: dict
"""

import os  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._backup import (  # noqa: E402
    MANIFEST,
    finish,
    make_folder,
    new_name,
)
from ansible_collections.llmops.devbox.plugins.module_utils._stack import PROJECT_DIR_ARG, Stack, StackError, safe_name  # noqa: E402

WRITERS = ["langfuse-web", "langfuse-worker"]


def take(stack, params, folder, name):
    """Every part into `folder`; returns (file names, quiesced seconds)."""
    staging = os.path.join(params["backup_dir"], ".clickhouse")
    parts = []
    stopped = stack.running(WRITERS) if params["quiesce"] else []
    quiet_start = time.monotonic()
    try:
        stack.stop(stopped)
        stack.pg(stack.container("postgres"), "pg_dump", "-Fc", "dumping the Langfuse Postgres",
                 stdout_path=os.path.join(folder, "postgres.dump"))
        parts.append("postgres.dump")

        archive = name + ".zip"
        stack.clickhouse(f"BACKUP DATABASE {params['clickhouse_database']} TO File('{archive}')",
                         "ClickHouse BACKUP (is backup_dir/.clickhouse mounted at "
                         f"{params['clickhouse_mount']} and allowed in its config.d?)")
        src = os.path.join(staging, archive)
        if not os.path.isfile(src):
            raise StackError(f"ClickHouse reported its backup done but {src} is not there: check that "
                             f"{staging} is what the clickhouse container mounts at {params['clickhouse_mount']}")
        dest = os.path.join(folder, "clickhouse.zip")
        shutil.move(src, dest)
        os.chown(dest, 0, 0)
        os.chmod(dest, 0o600)
        parts.append("clickhouse.zip")

        stack._check(["docker", "cp", stack.container("minio") + ":/data", "-"], "copying MinIO's /data",
                     stdout_path=os.path.join(folder, "minio.tar"))
        parts.append("minio.tar")

        if params["litellm_postgres_container"]:
            stack.pg(params["litellm_postgres_container"], "pg_dump", "-Fc", "dumping the LiteLLM Postgres",
                     stdout_path=os.path.join(folder, "litellm-postgres.dump"))
            parts.append("litellm-postgres.dump")
    finally:
        quiesced = time.monotonic() - quiet_start
        stack.start(stopped)
    return parts, quiesced


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=PROJECT_DIR_ARG,
            backup_dir=dict(type="path", required=True),
            name=dict(type="str"),
            keep=dict(type="int", default=7),
            quiesce=dict(type="bool", default=True),
            clickhouse_database=dict(type="str", default="default"),
            clickhouse_mount=dict(type="str", default="/backups"),
            clickhouse_uid=dict(type="int", default=101),
            litellm_postgres_container=dict(type="str", default=""),
            secrets_vault=dict(type="str", default="", no_log=True),
            labels=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    started = time.time()
    try:
        name = safe_name(p["name"] or new_name(started), "name")
        safe_name(p["clickhouse_database"], "clickhouse_database")
        if p["litellm_postgres_container"]:
            safe_name(p["litellm_postgres_container"], "litellm_postgres_container")
    except StackError as exc:
        module.fail_json(msg=str(exc))
    if p["keep"] < 0:
        module.fail_json(msg="keep must be 0 (keep all) or more")
    if p["secrets_vault"] and not p["secrets_vault"].startswith("$ANSIBLE_VAULT;"):
        module.fail_json(msg="secrets_vault must be Ansible Vault text ($ANSIBLE_VAULT;...): secrets are "
                             "never written to a backup in the clear")
    folder = os.path.join(p["backup_dir"], name)
    result = dict(changed=True, name=name, path=folder)
    if os.path.exists(folder):
        module.fail_json(msg=f"{folder} exists already: choose another name", **result)
    if module.check_mode:
        module.exit_json(**result)

    stack = Stack(p["project_dir"])
    staging = os.path.join(p["backup_dir"], ".clickhouse")
    make_folder(p["backup_dir"], name)
    os.makedirs(staging, exist_ok=True)
    os.chown(staging, p["clickhouse_uid"], p["clickhouse_uid"])
    os.chmod(staging, 0o700)
    try:
        images = {s: stack.image(s) for s in ("langfuse-web", "langfuse-worker", "postgres", "clickhouse", "minio")}
        parts, quiesced = take(stack, p, folder, name)
    except StackError as exc:
        module.fail_json(msg=f"Backup {name} failed: {exc}. Nothing was removed; the incomplete folder "
                             f"{folder} has no {MANIFEST} and is never restored from.", **result)
    if p["secrets_vault"]:
        path = os.path.join(folder, "secrets.json.vault")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(p["secrets_vault"])
        parts.append("secrets.json.vault")
    manifest = dict(format=1, name=name, started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                    seconds=round(time.time() - started, 1), quiesced_seconds=round(quiesced, 1),
                    images=images, labels=p["labels"], clickhouse_database=p["clickhouse_database"])
    files, removed = finish(p["backup_dir"], name, parts, manifest, p["keep"])
    manifest["files"] = files
    module.exit_json(files=files, bytes=sum(f["bytes"] for f in files), seconds=manifest["seconds"],
                     quiesced_seconds=manifest["quiesced_seconds"], removed=removed, manifest=manifest,
                     **result)


if __name__ == "__main__":
    main()
