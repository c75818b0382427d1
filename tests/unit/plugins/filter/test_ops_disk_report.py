"""ops_disk_report: status.yml's disk lines per Docker volume and the warning above the threshold."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.ops_status import ops_disk_report

GIB = 1024**3
SIZES = "langfuse_clickhouse_data\t3145728\nlangfuse_minio_data\t1048576\nbroken line\nlitellm_postgres\t2097152\n"


def disk(used_percent, size=100 * GIB):
    return {"mount": "/var/lib/docker", "size_bytes": size, "free_bytes": size - size * used_percent // 100}


def test_volumes_biggest_first_with_sizes_and_the_filesystem_line():
    report = ops_disk_report(SIZES, disk(50))
    assert [v["volume"] for v in report["volumes"]] == ["langfuse_clickhouse_data", "litellm_postgres",
                                                        "langfuse_minio_data"]
    assert report["lines"][0].split() == ["langfuse_clickhouse_data", "3.0", "MiB"]
    assert report["lines"][-1].startswith("/var/lib/docker: 50.0 % used of 100.0 GiB")
    assert report["warnings"] == []


@pytest.mark.parametrize(("used", "threshold", "warned"), [(80, 80, False), (81, 80, True), (60, 50, True)])
def test_warns_only_above_the_threshold_and_names_the_biggest_volumes(used, threshold, warned):
    report = ops_disk_report(SIZES, disk(used), warn_percent=threshold, host="central")
    assert bool(report["warnings"]) is warned
    if warned:
        assert report["warnings"][0].startswith(f"central: /var/lib/docker is {float(used)} % full")
        assert "langfuse_clickhouse_data 3 MiB" in report["warnings"][0]


def test_a_disk_that_could_not_be_measured_is_shown_as_unknown_not_warned():
    report = ops_disk_report("", {"mount": "/x", "size_bytes": None, "free_bytes": None})
    assert report["percent"] is None and report["warnings"] == [] and report["volumes"] == []
    assert "? % used" in report["lines"][-1]


def test_refuses_a_disk_that_is_not_a_probe_entry():
    with pytest.raises(AnsibleFilterError, match="box_probe disk entry"):
        ops_disk_report(SIZES, "100")
