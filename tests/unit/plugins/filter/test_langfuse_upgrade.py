"""langfuse_upgrade: which runs are upgrades, and which jumps upstream's v3 -> v4 guide refuses."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.langfuse_upgrade import langfuse_upgrade

W4 = "langfuse/langfuse:4.2.0"


def test_first_install_and_unchanged_run_are_no_upgrade():
    assert langfuse_upgrade("", W4) == {"upgrade": False, "first_install": True, "from": "", "to": W4, "refuse": ""}
    assert langfuse_upgrade(W4, W4)["upgrade"] is False


@pytest.mark.parametrize("running", ["langfuse/langfuse:4.1.0", "langfuse/langfuse:4.3.0", "other/langfuse:4.2.0",
                                     "langfuse/langfuse:4.2.0@sha256:" + "a" * 64, "langfuse/langfuse:custom"])
def test_other_image_is_an_upgrade_without_refusal(running):
    plan = langfuse_upgrade(running, W4, last_v3="3.225.0", clickhouse_image="clickhouse/clickhouse-server:25.12")
    assert plan["upgrade"] and plan["refuse"] == "" and plan["from"] == running


def test_v3_to_v4_from_the_latest_v3_with_clickhouse_25_12_goes_ahead():
    plan = langfuse_upgrade("langfuse/langfuse:3.225.0", W4, last_v3="3.225.0",
                            clickhouse_image="clickhouse/clickhouse-server:25.12")
    assert plan["upgrade"] and plan["refuse"] == ""


def test_v3_to_v4_from_an_older_v3_is_refused_with_the_step_first():
    plan = langfuse_upgrade("langfuse/langfuse:3.100.0", W4, last_v3="3.225.0")
    assert "Upgrade to 3.225.0 first" in plan["refuse"] and "langfuse_version_line: '3'" in plan["refuse"]


def test_v3_to_v4_with_an_old_clickhouse_is_refused():
    plan = langfuse_upgrade("langfuse/langfuse:3.225.0", W4, last_v3="3.225.0",
                            clickhouse_image="clickhouse/clickhouse-server:24.8")
    assert "ClickHouse 25.12 or newer" in plan["refuse"]


def test_v4_back_to_v3_is_refused_and_points_at_a_restore():
    plan = langfuse_upgrade(W4, "langfuse/langfuse:3.225.0", last_v3="3.225.0")
    assert "no downgrade across major versions" in plan["refuse"] and "restore.yml" in plan["refuse"]


def test_a_newer_major_going_back_to_v4_is_not_refused():
    # Only v4 -> v3 is documented as impossible; anything else backs up first and goes ahead.
    assert langfuse_upgrade("langfuse/langfuse:9.9.9", W4)["refuse"] == ""


def test_the_wanted_image_is_required():
    with pytest.raises(AnsibleFilterError, match="wanted image"):
        langfuse_upgrade(W4, "")
