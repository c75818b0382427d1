"""Every role documents every default: meta/argument_specs.yml (entry point `main`) against
defaults/main.yml, for each role under roles/ (roles without defaults are skipped)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


def _roles():
    found = sorted(p.parent.parent for p in ROLES.glob("*/defaults/main.yml"))
    return found or [pytest.param(None, marks=pytest.mark.skip(reason="no role under roles/ has defaults"))]


def _load(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def _spec_options(role: Path) -> dict:
    spec_file = role / "meta" / "argument_specs.yml"
    assert spec_file.is_file(), f"{role.name}: has defaults but no meta/argument_specs.yml"
    specs = _load(spec_file).get("argument_specs", {})
    assert "main" in specs, f"{role.name}: meta/argument_specs.yml has no `main` entry point"
    return specs["main"].get("options") or {}


@pytest.mark.parametrize("role", _roles(), ids=lambda r: getattr(r, "name", "none"))
def test_defaults_and_argument_specs_have_the_same_keys(role):
    defaults = set(_load(role / "defaults" / "main.yml"))
    options = set(_spec_options(role))
    undocumented, extra = sorted(defaults - options), sorted(options - defaults)
    assert not undocumented, f"{role.name}: defaults not documented in argument_specs: {undocumented}"
    assert not extra, f"{role.name}: argument_specs options without a default: {extra}"


@pytest.mark.parametrize("role", _roles(), ids=lambda r: getattr(r, "name", "none"))
def test_every_option_is_described_and_typed(role):
    defaults = _load(role / "defaults" / "main.yml")
    for name, option in _spec_options(role).items():
        assert option.get("description"), f"{role.name}: option {name} has no description"
        assert option.get("type"), f"{role.name}: option {name} has no type"
        if "choices" in option and name in defaults:
            assert defaults[name] in option["choices"], f"{role.name}: default of {name} is not one of its choices"
