"""The LiteLLM test image and the integration tests' LiteLLM venv install what upstream's image does.

tests/contracts/litellm.yml (facts.image_build) records the extras upstream's litellm-database image
installs LiteLLM with and the versions it ships of the packages the roles and tests depend on
(langfuse, prisma, OpenTelemetry). tests/images/litellm/Dockerfile and
tests/integration/requirements-litellm.txt must install exactly those: litellm with the same extras,
every listed package pinned with == to the contract's version, and no other package. No Docker.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT / "tests" / "contracts" / "litellm.yml"
DOCKERFILE = ROOT / "tests" / "images" / "litellm" / "Dockerfile"
REQUIREMENTS = ROOT / "tests" / "integration" / "requirements-litellm.txt"
# pip options that take a value (their value is not a requirement).
PIP_VALUE_OPTIONS = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-t", "--target",
                     "--cache-dir", "--cert", "--root", "--prefix", "--python-version", "--platform"}


def image_build() -> dict:
    return yaml.safe_load(CONTRACT.read_text())["facts"]["image_build"]["value"]


def dockerfile_requirements(text: str) -> list[str]:
    """The requirement arguments of every `pip install` in the Dockerfile's RUN instructions."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        instruction = line.strip()
        if not instruction.upper().startswith("RUN "):
            continue
        for command in re.split(r"&&|\|\||;", instruction[4:]):
            words = shlex.split(command)
            for i, word in enumerate(words[:-1]):
                is_pip = word.rsplit("/", 1)[-1] in ("pip", "pip3") or (word == "pip" and words[i - 1] == "-m")
                if not (is_pip and words[i + 1] == "install"):
                    continue
                args = iter(words[i + 2:])
                for arg in args:
                    if arg in ("-r", "--requirement", "-c", "--constraint"):
                        found.append(f"<{arg} {next(args, '')}: pins must be written in the Dockerfile>")
                    elif arg in PIP_VALUE_OPTIONS:
                        next(args, None)
                    elif not arg.startswith("-"):
                        found.append(arg)
    return found


def requirements_file(text: str) -> list[str]:
    lines = (line.split(" #")[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def pin_problems(where: str, requirements: list[str], build: dict) -> list[str]:
    """What differs between the requirements one file installs and the contract's pins and extras."""
    pins = {canonicalize_name(name): version for name, version in build["pins"].items()}
    problems, seen = [], set()
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            problems.append(f"{where}: cannot read {text!r} as a requirement")
            continue
        name = canonicalize_name(req.name)
        seen.add(name)
        if name not in pins:
            problems.append(f"{where}: installs {req.name}, which the contract does not pin")
            continue
        if str(req.specifier) != f"=={pins[name]}" or req.url:
            problems.append(f"{where}: {text!r} is not {req.name}=={pins[name]} (the contract's pin)")
        if name == "litellm" and set(req.extras) != set(build["extras"]):
            problems.append(f"{where}: litellm extras {sorted(req.extras)} are not upstream's "
                            f"{sorted(build['extras'])}")
    problems += [f"{where}: does not install {name}=={version}"
                 for name, version in sorted(pins.items()) if name not in seen]
    return problems


INSTALLERS = {
    "tests/images/litellm/Dockerfile": lambda: dockerfile_requirements(DOCKERFILE.read_text()),
    "tests/integration/requirements-litellm.txt": lambda: requirements_file(REQUIREMENTS.read_text()),
}


def test_contract_records_upstreams_extras_and_pins():
    contract = yaml.safe_load(CONTRACT.read_text())
    build = contract["facts"]["image_build"]["value"]
    assert {"proxy", "proxy-runtime", "extra_proxy"} <= set(build["extras"]), build["extras"]
    pins = {canonicalize_name(n) for n in build["pins"]}
    assert {"litellm", "langfuse", "prisma", "opentelemetry-api", "opentelemetry-sdk"} <= pins, pins
    for name, version in build["pins"].items():
        assert re.fullmatch(r"\d+(\.\d+)+([ab]\d+|\.post\d+)?", str(version)), f"{name}: {version!r} is not a version"
    # The pinned LiteLLM is the release the contract was read at and the one the role deploys.
    assert build["pins"]["litellm"] in contract["upstream"]["ref"]
    assert build["pins"]["litellm"] in contract["image"]["tag"]
    # Every pin says how it was read from upstream.
    assert set(build["pin_basis"]) == set(build["pins"]), build["pin_basis"]


@pytest.mark.parametrize("where", sorted(INSTALLERS))
def test_installs_exactly_the_contracts_pins(where):
    requirements = INSTALLERS[where]()
    assert requirements, f"{where}: no pip requirement found"
    assert pin_problems(where, requirements, image_build()) == []


# --- the check can fail -----------------------------------------------------------------------

def test_a_range_a_missing_pin_or_other_extras_are_caught():
    build = image_build()
    drifted = ["litellm[proxy]==" + build["pins"]["litellm"], "langfuse>=4.7,<5", "prisma", "httpx==0.28.1"]
    problems = pin_problems("drifted", drifted, build)
    assert any("litellm extras" in p for p in problems), problems
    assert any("'langfuse>=4.7,<5'" in p for p in problems), problems
    assert any("'prisma'" in p for p in problems), problems
    assert any("installs httpx" in p for p in problems), problems
    assert any("does not install opentelemetry-sdk==" in p for p in problems), problems


def test_dockerfile_reading_finds_pins_across_continuation_lines():
    text = ("RUN python3 -m venv /v \\\n && PIP_CERT=/ca /v/bin/pip install --no-cache-dir \\\n"
            "      'a[x,y]==1.0' \\\n      'b==2' --index-url https://example.invalid/simple \\\n"
            " && /v/bin/a --help\nRUN python3 -m pip install c==3\nRUN pip install -r req.txt\n")
    found = dockerfile_requirements(text)
    assert found[:3] == ["a[x,y]==1.0", "b==2", "c==3"], found
    assert "pins must be written in the Dockerfile" in found[3], found
