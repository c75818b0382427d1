"""The LiteLLM test image ships the versions upstream's litellm-database image ships.

tests/contracts/litellm.yml (facts.image_build) pins LiteLLM, langfuse, prisma and OpenTelemetry to
what upstream's image holds; this asks the built test image (tests/test-images.yml: litellm_image)
which versions it actually installed. It does not build the image: run scripts/build-images.sh litellm.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = yaml.safe_load((ROOT / "tests" / "contracts" / "litellm.yml").read_text())
PINS = CONTRACT["facts"]["image_build"]["value"]["pins"]
IMAGE = yaml.safe_load((ROOT / "tests" / "test-images.yml").read_text())["litellm_image"]
VERSIONS = ("import importlib.metadata as m, json, sys\n"
            "print(json.dumps({name: m.version(name) for name in sys.argv[1:]}))")


def docker(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed() -> dict[str, str]:
    """{distribution: version} as importlib.metadata reports them inside the image."""
    assert docker("info").returncode == 0, "no Docker engine answers: run scripts/dockerd.sh start (or make setup)"
    if docker("image", "inspect", IMAGE).returncode != 0:
        pytest.fail(f"test image {IMAGE} is missing: run scripts/build-images.sh litellm")
    run = docker("run", "--rm", "--network", "none", "--entrypoint", "python3", IMAGE, "-c", VERSIONS, *PINS)
    assert run.returncode == 0, f"reading versions in {IMAGE} failed: {run.stderr[-2000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_image_is_the_pinned_litellm_release():
    assert IMAGE.rsplit(":", 1)[1] == PINS["litellm"], f"{IMAGE} is not tagged with LiteLLM {PINS['litellm']}"


@pytest.mark.parametrize("dist", ["langfuse", "litellm"])
def test_version_reported_by_python_in_the_image(dist):
    """The exact command a person would type to check one distribution by hand."""
    if docker("image", "inspect", IMAGE).returncode != 0:
        pytest.fail(f"test image {IMAGE} is missing: run scripts/build-images.sh litellm")
    run = docker("run", "--rm", "--entrypoint", "python3", IMAGE, "-c",
                 f"import importlib.metadata as m; print(m.version({dist!r}))")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == PINS[dist], f"{IMAGE} has {dist} {run.stdout.strip()}, the contract pins {PINS[dist]}"


@pytest.mark.parametrize("dist", sorted(PINS))
def test_image_ships_the_contracts_pin(installed, dist):
    assert installed[dist] == PINS[dist], f"{IMAGE} has {dist} {installed[dist]}, the contract pins {PINS[dist]}"
