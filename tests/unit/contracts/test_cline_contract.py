"""The code_server role's Cline preset against what Cline reads (tests/contracts/cline.yml): with the
role's defaults, the files the extension reads are written, at its paths, with its keys."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = yaml.safe_load((ROOT / "tests" / "contracts" / "cline.yml").read_text())
FACTS = CONTRACT["facts"]
ROLE = ROOT / "roles" / "code_server"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
FILES = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_code_server_cline_files"]


def written_by_default(name: str) -> dict:
    entry = next(f for f in FILES if f["path"].endswith("/" + name))
    enabled = entry["enabled"]
    if isinstance(enabled, str):  # "{{ code_server_cline_legacy_files | bool }}"
        enabled = DEFAULTS["code_server_cline_legacy_files"]
    assert enabled, f"{name} is not written with the role's defaults, but the extension reads it"
    return {**entry["soft"], **entry["force"]}


def test_files_the_extension_reads_are_written_under_its_data_dir():
    data_dir = FACTS["data_dir"]["value"]["path"]
    for key in ("global_state", "secrets"):
        path = FACTS["extension_settings_files"]["value"][key]
        assert path.startswith(data_dir + "/")
        written_by_default(path.rsplit("/", 1)[1])
    # The role's data dir is the same ~/.cline/data.
    assert yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_code_server_cline_data_dir"].endswith(
        "/.cline/data")


def test_litellm_provider_keys_are_the_extensions():
    keys = FACTS["litellm_provider_extension_keys"]["value"]
    state = written_by_default("globalState.json")
    for name in keys["provider_choice"]["keys"]:
        assert state[name] == keys["api_provider_id"]
    assert keys["base_url"]["key"] in state
    assert all(name in state for name in keys["model_id"]["keys"])
    assert keys["api_key"]["key"] in written_by_default("secrets.json")
