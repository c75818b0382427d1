# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
name: litellm_slot_plan
short_description: Decide which LiteLLM blue/green slot serves and whether a push is due
version_added: 0.3.0
description:
  - Takes what the box says (the C(serving) file, the stamp of what the serving slot runs with, and
    C(docker inspect) lines of both slots) and returns one plan the role's push follows.
  - The serving slot is the recorded one when it runs; otherwise the slot that runs (the older one when
    both run, since it served before an interrupted push); otherwise none.
  - A push is due when the desired stamp differs from the live one, when no slot serves, when the
    record is missing or names a slot that does not run, or when a second slot runs beside the serving one.
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  _input:
    description:
      - Output lines of C(docker inspect) for both slots, each C(<name> <status> <health or none> <started at>).
    type: list
    elements: str
    required: true
  recorded:
    description: Content of the C(serving) file (a slot's container name), empty when missing.
    type: str
    required: true
  live_stamp:
    description: Stamp recorded by the last push that went live, empty when missing.
    type: str
    required: true
  desired_stamp:
    description: Stamp of the config, environment and image this run wants live.
    type: str
    required: true
  slots:
    description: Container names of the two slots, in order of preference for a first start.
    type: list
    elements: str
    default: [litellm-blue, litellm-green]
"""

EXAMPLES = r"""
plan: >-
  {{ __slots.stdout_lines
     | llmops.devbox.litellm_slot_plan(recorded='litellm-blue', live_stamp=old, desired_stamp=new) }}
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    serving: {description: Slot that serves now (empty when none), type: str}
    target: {description: Slot a push starts with the new config, type: str}
    strays: {description: Running slots other than the serving one (an interrupted push), type: list}
    push: {description: Whether a push is due, type: bool}
    reasons: {description: Why, one sentence each, type: list}
"""

SLOTS = ("litellm-blue", "litellm-green")


def _parse(lines):
    state = {}
    for line in lines or []:
        parts = str(line).split()
        if len(parts) < 2:
            continue
        name = parts[0].lstrip("/")
        health = parts[2] if len(parts) >= 4 else ""
        started = parts[-1] if len(parts) >= 3 else ""
        state[name] = {"status": parts[1], "health": health, "started": started}
    return state


def litellm_slot_plan(lines, recorded, live_stamp, desired_stamp, slots=SLOTS):
    slots = list(slots)
    state = _parse(lines)
    running = [s for s in slots if state.get(s, {}).get("status") == "running"]
    recorded = (recorded or "").strip()
    reasons = []
    if recorded in running:
        serving = recorded
    elif running:
        # The older start served before whatever started the other one (an interrupted push).
        serving = sorted(running, key=lambda s: state[s]["started"])[0]
        reasons.append(
            f"the serving slot was recorded as {recorded!r}, but {serving} is the one that runs"
            if recorded else f"no serving slot was recorded; {serving} runs and is taken as serving")
    else:
        serving = ""
        reasons.append("no proxy slot runs")
    strays = [s for s in running if s != serving]
    if strays:
        reasons.append(f"{', '.join(strays)} runs beside {serving} (an interrupted push)")
    if (live_stamp or "").strip() != (desired_stamp or "").strip():
        reasons.append("the serving proxy runs an older config, environment or image"
                       if (live_stamp or "").strip() else "no record of what the serving proxy runs with")
    target = next((s for s in slots if s != serving), slots[0]) if serving else (
        recorded if recorded in slots else slots[0])
    return {"serving": serving, "target": target, "strays": strays, "push": bool(reasons), "reasons": reasons}


class FilterModule:
    """Blue/green slot decisions for the litellm role."""

    def filters(self):
        return {"litellm_slot_plan": litellm_slot_plan}
