#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgres_backup
short_description: Dump the database of a Postgres container into a backup folder on the box
version_added: 0.9.0
description:
  - Runs C(pg_dump -Fc) inside the container, as its C(POSTGRES_USER) on C(POSTGRES_DB) with the password of
    its own environment (no secret passes through this module), into O(backup_dir)/<name>/O(file), writes
    C(manifest.json) last as the completion marker (size, SHA-256, labels) and removes backups beyond O(keep)
    by the rule M(llmops.devbox.langfuse_backup) uses.
  - The litellm role takes one before a new LiteLLM image starts on the database (its migrations change it);
    C(pg_restore --clean --if-exists -d <db>) in the container puts it back.
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  container:
    description: Name of the Postgres container (for example V(litellm-postgres)).
    type: str
    required: true
  backup_dir:
    description: Where backups are kept on the box; created C(0700) root.
    type: path
    required: true
  file:
    description: File name of the dump in the backup folder.
    type: str
    default: postgres.dump
  name:
    description: Name of the backup folder; default the UTC start time, C(YYYYmmddTHHMMSSZ).
    type: str
  keep:
    description: How many complete backups to keep, this one included; V(0) keeps all.
    type: int
    default: 7
  labels:
    description: Extra facts kept in the manifest (for example why the backup was taken).
    type: dict
    default: {}
notes:
  - Check mode reports the backup it would take and changes nothing.
"""

EXAMPLES = r"""
- name: Dump LiteLLM's database before a new image migrates it
  llmops.devbox.postgres_backup:
    container: litellm-postgres
    backup_dir: /var/backups/litellm
    file: litellm-postgres.dump
    labels:
      reason: upgrade
"""

RETURN = r"""
name:
  description: The backup's name (its folder under O(backup_dir)).
  returned: always
  type: str
path:
  description: The backup folder on the box.
  returned: always
  type: str
bytes:
  description: Size of the dump.
  returned: success
  type: int
seconds:
  description: Wall time of the dump.
  returned: success
  type: float
removed:
  description: Backups removed by retention.
  returned: success
  type: list
  elements: str
"""

import os  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._backup import finish, make_folder, new_name  # noqa: E402
from ansible_collections.llmops.devbox.plugins.module_utils._stack import Stack, StackError, safe_name  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            backup_dir=dict(type="path", required=True),
            file=dict(type="str", default="postgres.dump"),
            name=dict(type="str"),
            keep=dict(type="int", default=7),
            labels=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    started = time.time()
    try:
        name = safe_name(p["name"] or new_name(started), "name")
        safe_name(p["container"], "container")
        safe_name(p["file"], "file")
    except StackError as exc:
        module.fail_json(msg=str(exc))
    if p["keep"] < 0:
        module.fail_json(msg="keep must be 0 (keep all) or more")
    folder = os.path.join(p["backup_dir"], name)
    result = dict(changed=True, name=name, path=folder)
    if os.path.exists(folder):
        module.fail_json(msg=f"{folder} exists already: choose another name", **result)
    if module.check_mode:
        module.exit_json(**result)
    make_folder(p["backup_dir"], name)
    dump = os.path.join(folder, p["file"])
    try:
        # The project folder is not needed: the container is named.
        Stack("/").pg(p["container"], "pg_dump", "-Fc", f"dumping the database of {p['container']}",
                      stdout_path=dump)
    except StackError as exc:
        module.fail_json(msg=f"Backup {name} failed: {exc}. Check that {p['container']} runs (docker ps); the "
                             f"incomplete folder {folder} has no manifest.json and is removed by the next backup.",
                         **result)
    seconds = round(time.time() - started, 1)
    files, removed = finish(p["backup_dir"], name, [p["file"]],
                            dict(name=name, container=p["container"], seconds=seconds, labels=p["labels"],
                                 started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))), p["keep"])
    module.exit_json(bytes=files[0]["bytes"], seconds=seconds, removed=removed, **result)


if __name__ == "__main__":
    main()
