# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""The one rule for "is this run an upgrade of Langfuse, and may it go ahead" (langfuse role preflight).

Upstream (langfuse/langfuse-docs, self-hosting/upgrade/upgrade-guides/upgrade-v3-to-v4; langfuse/langfuse
v4.0.0 migrations 20260723150000_drop_legacy_tracing_tables and ClickHouse 0044_drop_event_log, which drop
the v3 tables and assume the v3 background migrations completed on the latest v3 release):
- v3 -> v4 needs ClickHouse 25.12 or newer first, and the box on the latest v3 release with its background
  migrations done; the collection's v3 pin (langfuse_version_tags['3']) stands for that release.
- No way back from v4 to v3 is documented (v4's migrations drop v3's tables): that is a restore of a backup.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

CLICKHOUSE_FLOOR_V4 = (25, 12)


def _version(image):
    """(major, minor, patch...) of an image's tag; None when the tag is not a version."""
    ref = str(image or "").split("@", 1)[0]
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
    m = re.match(r"v?(\d+(?:\.\d+)*)", tag)
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def _text(version):
    return ".".join(map(str, version)) if version else "?"


def langfuse_upgrade(running_image, wanted_image, last_v3="", clickhouse_image=""):
    """{upgrade, first_install, from, to, refuse}: refuse is '' or why this jump may not happen now."""
    if not isinstance(wanted_image, str) or not wanted_image:
        raise AnsibleFilterError("langfuse_upgrade: the wanted image (langfuse_web_image) is required")
    plan = {"upgrade": False, "first_install": not running_image, "from": running_image or "",
            "to": wanted_image, "refuse": ""}
    if not running_image or running_image == wanted_image:
        return plan
    plan["upgrade"] = True
    old, new = _version(running_image), _version(wanted_image)
    if not old or not new:
        return plan  # a digest or custom tag: nothing upstream says applies; backup first still does
    if old[0] >= 4 and new[0] <= 3:
        plan["refuse"] = (f"Langfuse {_text(old)} runs here and {_text(new)} was asked for: upstream documents no "
                          "downgrade across major versions (v4's migrations drop v3's tables). Restore a backup "
                          "taken before the upgrade instead (playbooks/restore.yml).")
    elif old[0] == 3 and new[0] >= 4:
        floor = _version("x:" + str(last_v3)) if last_v3 else None
        ch = _version(clickhouse_image)
        if floor and old < floor:
            plan["refuse"] = (f"Langfuse {_text(old)} runs here: upstream's v3 -> v4 path starts from the latest v3 "
                              f"release with its background migrations done. Upgrade to {_text(floor)} first "
                              "(langfuse_version_line: '3'), let the background migrations finish (Langfuse's "
                              "upgrade guide, v3 to v4), then set langfuse_version_line: '4'.")
        elif ch and ch[:2] < CLICKHOUSE_FLOOR_V4:
            plan["refuse"] = (f"Langfuse v4 needs ClickHouse {_text(CLICKHOUSE_FLOOR_V4)} or newer and "
                              f"langfuse_clickhouse_image is {clickhouse_image}: upgrade ClickHouse first (upstream's "
                              "v3 to v4 guide), then Langfuse.")
    return plan


class FilterModule:
    def filters(self):
        return {"langfuse_upgrade": langfuse_upgrade}
