"""The pure helpers of benchmarks/litellm_push.py (the benchmark itself runs by hand on a target)."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

import litellm_push  # noqa: E402


def test_docker_time_keeps_microseconds_and_zone():
    want = datetime.datetime(2025, 11, 30, 19, 6, 1, 123456, tzinfo=datetime.timezone.utc).timestamp()
    assert litellm_push.docker_time("2025-11-30T19:06:01.123456789Z") == pytest.approx(want)
    assert litellm_push.docker_time("2025-11-30T20:06:01.123456789+01:00") == pytest.approx(want)
    assert litellm_push.docker_time("2025-11-30T19:06:01Z") == pytest.approx(want - 0.123456)
    with pytest.raises(ValueError):
        litellm_push.docker_time("0001-01-01 00:00:00")


@pytest.mark.parametrize("image, bumped", [
    ("llmops-test/litellm:1.108.7", "llmops-test/litellm:1.108.7-bump"),
    ("llmops-test/litellm:1.108.7-bump", "llmops-test/litellm:1.108.7"),  # a rerun goes back
    ("registry:5000/team/litellm:v1", "registry:5000/team/litellm:v1-bump"),
    ("registry:5000/team/litellm", "registry:5000/team/litellm:latest-bump"),
])
def test_bump_tag(image, bumped):
    assert litellm_push.bump_tag(image) == bumped


def test_bump_tag_refuses_digests():
    with pytest.raises(ValueError, match="digest"):
        litellm_push.bump_tag("ghcr.io/berriai/litellm@sha256:" + "0" * 64)
