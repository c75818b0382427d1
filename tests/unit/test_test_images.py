"""The one list of test images (tests/test-images.yml): a test namespace only, every image variable
of the roles covered, a recipe for each, and the doubles' versions matching the tags they carry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LISTED = yaml.safe_load((ROOT / "tests" / "test-images.yml").read_text())


def role_image_variables() -> set[str]:
    names = set()
    for defaults in (ROOT / "roles").glob("*/defaults/main.yml"):
        names |= {k for k in (yaml.safe_load(defaults.read_text()) or {}) if k.endswith("_image")}
    return names


def test_every_image_is_in_the_test_namespace():
    assert LISTED and all(str(v).startswith("llmops-test/") for v in LISTED.values()), LISTED


def test_every_role_image_variable_is_set_from_the_list():
    assert role_image_variables() <= set(LISTED), role_image_variables() - set(LISTED)


@pytest.mark.parametrize("image", sorted(set(LISTED.values())))
def test_each_image_has_a_recipe(image):
    recipe = re.match(r"llmops-test/([a-z0-9-]+):", image).group(1)
    recipe_file = ROOT / "tests" / "images" / recipe / "Dockerfile"
    assert recipe_file.is_file(), f"{image}: no tests/images/{recipe}/Dockerfile"


@pytest.mark.parametrize("recipe", ["langfuse-web-double", "langfuse-worker-double"])
def test_double_reports_the_version_of_its_tag(recipe):
    tag = next(v for v in LISTED.values() if v.startswith(f"llmops-test/{recipe}:")).split(":", 1)[1]
    dockerfile = (ROOT / "tests" / "images" / recipe / "Dockerfile").read_text()
    assert f"LANGFUSE_DOUBLE_VERSION={tag}" in dockerfile
