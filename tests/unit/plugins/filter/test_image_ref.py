"""llmops.devbox.image_pin_problems / image_versions: exact tags only, digest pins welcome."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.devbox.plugins.filter.image_ref import (
    image_pin_problem,
    image_pin_problems,
    image_versions,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("ref", [
    "postgres:17.12", "redis:8.0.2", "langfuse/langfuse:4.2.0", "clickhouse/clickhouse-server:25.12",
    "minio/minio:RELEASE.2025-09-07T16-13-09Z", "ghcr.io/berriai/litellm-database:main-v1.108.7-stable",
    "llmops-test/postgres:17.12", "localhost:5000/team/app:1", "registry.example.com:443/a/b/c:v1_2",
    f"postgres:17.12@{DIGEST}", f"ghcr.io/berriai/litellm-database:main-v1.108.7-stable@{DIGEST}",
])
def test_pinned_references_are_accepted(ref):
    assert image_pin_problem(ref) == ""


@pytest.mark.parametrize("ref,words", [
    ("postgres", "has no tag"),
    ("ghcr.io/berriai/litellm-database", "has no tag"),
    ("localhost:5000/app", "has no tag"),
    (f"postgres@{DIGEST}", "a digest alone"),
    ("postgres:latest", "'latest'"),
    ("postgres:LATEST", "'latest'"),
    (f"postgres:latest@{DIGEST}", "'latest'"),
    ("postgres:17@sha256:abc", "sha256:<64"),
    (f"postgres:17@{DIGEST.upper()}", "sha256:<64"),
    ("postgres:17@md5:" + "0" * 32, "sha256:<64"),
    ("Postgres:17", "not an image reference"),
    ("postgres:17 ", "not an image reference"),
    ("postgres:17\n  privileged: true", "not an image reference"),
    ("postgres:$TAG", "not an image reference"),
    ("'postgres:17'", "not an image reference"),
    ("postgres:-17", "not an image reference"),
    ("", "empty"),
    (None, "empty"),
])
def test_unpinned_or_malformed_references_are_refused(ref, words):
    assert words in image_pin_problem(ref)


def test_problems_name_the_variable_and_value():
    assert image_pin_problems({"litellm_image": "x:latest", "litellm_postgres_image": "postgres:17.7"}) == [
        "litellm_image ('x:latest') uses the moving tag 'latest'"]
    long = "a" * 300
    assert image_pin_problems({"v": long}) == ["v ('(not shown)') has no tag"]
    assert image_pin_problems("x") == ["image_pin_problems needs a mapping of variable names to images"]


@pytest.mark.parametrize("ref,versions", [
    ("ghcr.io/berriai/litellm-database:main-v1.82.7-stable", ["1.82.7"]),
    ("ghcr.io/berriai/litellm:v1.82.8", ["1.82.8"]),
    ("litellm:1.82.7", ["1.82.7"]),
    (f"litellm:main-v1.82.8-nightly@{DIGEST}", ["1.82.8"]),
    ("litellm:1.82.70", ["1.82.70"]),  # never 1.82.7
    ("litellm:11.82.7", ["11.82.7"]),
    ("litellm:main-v1.108.7-stable", ["1.108.7"]),
    ("registry:5000/litellm-1.82.7/x:stable", []),
    ("litellm", []),
    (None, []),
])
def test_versions_in_the_tag(ref, versions):
    assert image_versions(ref) == versions
