"""llmops.devbox.litellm_slot_plan: which slot serves, where a push goes, and when one is due."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.devbox.plugins.filter.litellm_slots import litellm_slot_plan

T0, T1 = "2026-12-01T10:00:00.000000000Z", "2026-12-01T10:05:00.000000000Z"


def line(name, status="running", health="healthy", started=T0):
    return f"/{name} {status} {health} {started}"


def plan(lines, recorded="litellm-blue", live="s1", desired="s1"):
    return litellm_slot_plan(lines, recorded=recorded, live_stamp=live, desired_stamp=desired)


def test_nothing_to_do_when_the_recorded_slot_serves_the_desired_stamp():
    p = plan([line("litellm-blue"), line("litellm-green", "exited", "unhealthy")])
    assert p == {"serving": "litellm-blue", "target": "litellm-green", "strays": [], "push": False, "reasons": []}


def test_a_changed_stamp_pushes_to_the_other_slot():
    p = plan([line("litellm-green")], recorded="litellm-green", desired="s2")
    assert (p["serving"], p["target"], p["push"]) == ("litellm-green", "litellm-blue", True)
    assert p["reasons"] == ["the serving proxy runs an older config, environment or image"]


def test_first_deploy_starts_blue():
    p = plan([], recorded="", live="", desired="s1")
    assert (p["serving"], p["target"], p["push"]) == ("", "litellm-blue", True)
    assert "no proxy slot runs" in p["reasons"]


@pytest.mark.parametrize("recorded", ["", "garbage", "litellm-green"])
def test_a_lost_or_wrong_record_adopts_the_slot_that_runs_and_pushes(recorded):
    p = plan([line("litellm-blue"), line("litellm-green", "exited")], recorded=recorded)
    assert (p["serving"], p["target"], p["push"]) == ("litellm-blue", "litellm-green", True)
    assert "litellm-blue" in p["reasons"][0]


def test_both_running_keeps_the_older_one_and_replaces_the_stray():
    p = plan([line("litellm-blue", started=T1), line("litellm-green", started=T0)], recorded="")
    assert (p["serving"], p["target"], p["strays"]) == ("litellm-green", "litellm-blue", ["litellm-blue"])
    assert p["push"] and any("interrupted push" in r for r in p["reasons"])


def test_both_running_with_a_record_keeps_the_recorded_one():
    p = plan([line("litellm-blue", started=T1), line("litellm-green", started=T0)], recorded="litellm-blue")
    assert (p["serving"], p["strays"], p["push"]) == ("litellm-blue", ["litellm-green"], True)


def test_no_slot_running_reuses_the_recorded_slot_name_for_the_push():
    p = plan([line("litellm-green", "exited")], recorded="litellm-green")
    assert (p["serving"], p["target"], p["push"]) == ("", "litellm-green", True)


def test_a_lost_stamp_is_a_reason():
    p = plan([line("litellm-blue")], live="")
    assert p["push"] and p["reasons"] == ["no record of what the serving proxy runs with"]


def test_lines_without_health_and_junk_are_read():
    p = plan(["/litellm-blue running none " + T0, "", "Error: No such object: litellm-green"])
    assert p["serving"] == "litellm-blue" and not p["push"]
