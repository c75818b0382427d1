"""No compromised LiteLLM release anywhere: the test image and the integration tests' venv pin none of
the releases listed in the role's vars (_litellm_compromised_versions: 1.82.7 and 1.82.8, published with
a credential stealer, BerriAI/litellm#24512), and that list lives in one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[4]
ROLE = ROOT / "roles" / "litellm"
PINS = {
    "tests/images/litellm/Dockerfile": ROOT / "tests" / "images" / "litellm" / "Dockerfile",
    "tests/integration/requirements-litellm.txt": ROOT / "tests" / "integration" / "requirements-litellm.txt",
}


class _Loader(yaml.SafeLoader):
    """Reads role variable files (their !unsafe values are plain strings here)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def compromised() -> list[str]:
    return yaml.load((ROLE / "vars" / "main.yml").read_text(), Loader=_Loader)["_litellm_compromised_versions"]  # noqa: S506 - SafeLoader


def litellm_pins(text: str) -> list[str]:
    """Versions pinned with == for the litellm package (any extras), in a Dockerfile or requirements file."""
    found = []
    for candidate in re.findall(r"""(?<![\w.-])litellm(?:\[[^\]]*\])?\s*==\s*[^\s'"\\]+""", text, flags=re.I):
        req = Requirement(candidate.replace(" ", ""))
        if canonicalize_name(req.name) == "litellm":
            found += [spec.version for spec in req.specifier if spec.operator == "=="]
    return found


def test_the_list_names_the_two_releases():
    assert compromised() == ["1.82.7", "1.82.8"]


@pytest.mark.parametrize("where", sorted(PINS))
def test_the_pins_are_not_compromised(where):
    pins = litellm_pins(PINS[where].read_text())
    assert pins, f"{where}: no litellm==<version> pin found"
    assert not set(pins) & set(compromised()), f"{where} pins a compromised LiteLLM: {pins}"


def test_the_check_finds_a_compromised_pin():
    text = "RUN pip install 'litellm[proxy,extra_proxy]==1.82.8' 'langfuse==4.18.0'\nlitellm == 1.82.7 # x\n"
    assert litellm_pins(text) == ["1.82.8", "1.82.7"]
    assert set(litellm_pins(text)) <= set(compromised())
    assert litellm_pins("litellm-proxy-extras==1.82.7\nnot_litellm==1.82.8") == []


def test_the_versions_live_only_in_the_role_vars():
    """The preflight reads the list; no task, template or default spells a release out again."""
    for path in list((ROLE / "tasks").glob("*.yml")) + list((ROLE / "templates").glob("*")) + [
            ROLE / "defaults" / "main.yml"]:
        text = path.read_text()
        assert "1.82.7" not in text and "1.82.8" not in text, path
    assert "_litellm_compromised_versions" in (ROLE / "tasks" / "preflight.yml").read_text()
