#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: minio_lifecycle
short_description: Keep one expiry rule on a prefix of a bucket in the Langfuse stack's MinIO
version_added: 0.9.0
description:
  - Ensures the bucket's lifecycle configuration holds exactly one rule with ID O(rule_id) that expires
    objects under O(prefix) after O(days) days, and leaves every other rule as it is.
  - Uses the C(mc) client of the minio container (C(mc ilm rule export) / C(import)), with the
    container's own root credentials from its environment; no secret passes through this module.
    C(mc ilm rule add) is not used - it appends a new rule with a random ID on every run.
  - Langfuse re-reads raw ingestion events from the event-upload prefix only to retry failed jobs or to
    replay; its docs advise an expiry there (30 days on Langfuse Cloud) and advise against one on media.
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_stack
options:
  bucket:
    description: The bucket.
    type: str
    default: langfuse
  prefix:
    description: The object prefix the rule applies to; must end with C(/) and may not be empty (a rule
      on the whole bucket would expire media too).
    type: str
    required: true
  days:
    description: Days after which objects under O(prefix) expire; V(0) removes the rule.
    type: int
    required: true
  rule_id:
    description: ID of the rule this module owns.
    type: str
    default: llmops-expire-events
notes:
  - Check mode reports whether the rule would change.
"""

EXAMPLES = r"""
- name: Expire Langfuse's raw ingestion events after 30 days
  llmops.devbox.minio_lifecycle:
    project_dir: /opt/langfuse
    prefix: events/
    days: 30
"""

RETURN = r"""
rules:
  description: The bucket's lifecycle rules after the run (ID, Status, Filter, Expiration).
  returned: success
  type: list
  elements: dict
"""

import json  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._stack import PROJECT_DIR_ARG, Stack, StackError, safe_name  # noqa: E402


def _prefix(rule):
    return ((rule.get("Filter") or {}).get("Prefix") or rule.get("Prefix") or "")


def _days(rule):
    return int(((rule.get("Expiration") or {}).get("Days")) or 0)


def desired_rules(current, rule_id, prefix, days):
    """The rules to import, or None when `current` already is what is wanted."""
    others = [r for r in current if r.get("ID") != rule_id]
    mine = [r for r in current if r.get("ID") == rule_id]
    want = {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, "Expiration": {"Days": days}}
    if days <= 0:
        return None if not mine else others
    if len(mine) == 1 and mine[0].get("Status") == "Enabled" and _prefix(mine[0]) == prefix \
            and _days(mine[0]) == days:
        return None
    return others + [want]


def parse_export(rc, out):
    """Rules from `mc --json ilm rule export`; [] when the bucket has no lifecycle configuration. mc prints
    results on one line but fatal errors as indented JSON over several."""
    text = (out or "").strip()
    doc = {}
    for candidate in (text, text.splitlines()[-1] if text else ""):
        try:
            doc = json.loads(candidate)
            break
        except ValueError:
            continue
    if rc == 0 and isinstance(doc, dict) and doc.get("status") == "success":
        return list((doc.get("config") or {}).get("Rules") or [])
    cause = json.dumps(doc.get("error") or {} if isinstance(doc, dict) else {}).lower()
    if any(s in cause for s in ("lifecycle configuration not set", "nosuchlifecycleconfiguration",
                                "lifecycle configuration does not exist")):
        return []
    raise StackError(f"mc ilm rule export failed (exit {rc}): {text[-400:]}")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=PROJECT_DIR_ARG,
            bucket=dict(type="str", default="langfuse"),
            prefix=dict(type="str", required=True),
            days=dict(type="int", required=True),
            rule_id=dict(type="str", default="llmops-expire-events"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["prefix"].endswith("/") or p["prefix"] == "/":
        module.fail_json(msg=f"prefix {p['prefix']!r} must be a folder such as events/ (never the whole "
                             "bucket: media would expire too)")
    try:
        bucket = safe_name(p["bucket"], "bucket")
        stack = Stack(p["project_dir"])
        rc, out, err = stack.mc(f"ilm rule export local/{bucket}", "reading the lifecycle")
        current = parse_export(rc, out or err)
        rules = desired_rules(current, p["rule_id"], p["prefix"], p["days"])
        if rules is not None and not module.check_mode:
            if rules:
                rc, out, err = stack.mc(f"ilm rule import local/{bucket}", "writing the lifecycle",
                                        data=json.dumps({"Rules": rules}))
            else:
                rc, out, err = stack.mc(f"ilm rule rm --id {safe_name(p['rule_id'], 'rule_id')} local/{bucket}",
                                        "removing the rule")
            if rc != 0:
                raise StackError(f"mc ilm failed (exit {rc}): {(out or err).strip()[-400:]}")
    except StackError as exc:
        module.fail_json(msg=f"MinIO lifecycle of bucket {p['bucket']}: {exc}. Check that the minio container "
                             f"of {p['project_dir']} runs (docker compose ps).")
    module.exit_json(changed=rules is not None, rules=current if rules is None else rules)


if __name__ == "__main__":
    main()
