"""llmops.devbox.cline_settings: what role code_server writes into Cline's settings files."""

import hashlib

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.cline_settings import cline_settings

SPEC = {
    "marker": ["providers", "litellm"],
    "key_path": ["providers", "litellm", "settings", "apiKey"],
    "soft": {"lastUsedProvider": "litellm"},
    "force": {"providers": {"litellm": {"settings": {"apiKey": "sk-new", "baseUrl": "http://localhost:4000"}}}},
}


def sha(value):
    return hashlib.sha256(value.encode()).hexdigest()


def held(key, base="http://localhost:4000", provider="litellm"):
    return {"lastUsedProvider": provider,
            "providers": {"litellm": {"settings": {"apiKey": key, "baseUrl": base}},
                          "anthropic": {"settings": {"apiKey": "theirs"}}}}


def test_an_empty_file_gets_the_preset():
    doc = cline_settings({}, SPEC, key="sk-new")
    assert doc == {"lastUsedProvider": "litellm", **SPEC["force"]}


def test_a_rotated_key_that_this_role_handed_out_is_replaced_and_nothing_else():
    old = held("sk-old", base="http://proxy.example:4000", provider="anthropic")
    doc = cline_settings(old, SPEC, key="sk-new", handed_sha256=sha("sk-old"))
    assert doc["providers"]["litellm"]["settings"] == {"apiKey": "sk-new", "baseUrl": "http://proxy.example:4000"}
    assert doc["lastUsedProvider"] == "anthropic"
    assert doc["providers"]["anthropic"] == old["providers"]["anthropic"]


def test_a_key_the_user_set_themselves_is_kept():
    old = held("sk-users-own")
    assert cline_settings(old, SPEC, key="sk-new", handed_sha256=sha("sk-old")) == old


def test_without_a_record_of_the_handed_key_nothing_is_replaced():
    old = held("sk-old")
    assert cline_settings(old, SPEC, key="sk-new", handed_sha256="") == old


def test_the_record_may_carry_a_newline_and_upper_case():
    doc = cline_settings(held("sk-old"), SPEC, key="sk-new", handed_sha256=sha("sk-old").upper() + "\n")
    assert doc["providers"]["litellm"]["settings"]["apiKey"] == "sk-new"


def test_an_unchanged_key_changes_nothing():
    old = held("sk-new")
    assert cline_settings(old, SPEC, key="sk-new", handed_sha256=sha("sk-new")) == old


def test_overwrite_applies_the_whole_preset_and_soft_keys():
    doc = cline_settings(held("sk-users-own", provider="anthropic"), SPEC, overwrite=True, key="sk-new")
    assert doc["lastUsedProvider"] == "litellm"
    assert doc["providers"]["litellm"]["settings"]["apiKey"] == "sk-new"
    assert doc["providers"]["anthropic"] == {"settings": {"apiKey": "theirs"}}


def test_soft_keys_only_fill_gaps():
    doc = cline_settings({"lastUsedProvider": "anthropic"}, SPEC, key="sk-new")
    assert doc["lastUsedProvider"] == "anthropic"


def test_preset_off_only_enforces():
    spec = dict(SPEC, preset=False, enforce={"telemetrySetting": "disabled"})
    doc = cline_settings({"a": 1}, spec, key="sk-new", handed_sha256=sha("x"))
    assert doc == {"a": 1, "telemetrySetting": "disabled"}


def test_enforced_keys_win_over_what_the_file_holds():
    spec = dict(SPEC, enforce={"telemetrySetting": "disabled"})
    doc = cline_settings(dict(held("sk-new"), telemetrySetting="enabled"), spec, key="sk-new")
    assert doc["telemetrySetting"] == "disabled"


def test_legacy_flat_key_path():
    spec = {"marker": ["liteLlmApiKey"], "key_path": ["liteLlmApiKey"], "force": {"liteLlmApiKey": "sk-new"}}
    assert cline_settings({"liteLlmApiKey": "sk-old"}, spec, key="sk-new", handed_sha256=sha("sk-old")) == {
        "liteLlmApiKey": "sk-new"}


def test_the_input_is_not_modified():
    old = held("sk-old")
    cline_settings(old, SPEC, key="sk-new", handed_sha256=sha("sk-old"))
    assert old == held("sk-old")


@pytest.mark.parametrize("current, spec", [(["not", "a", "dict"], SPEC), ({}, {"soft": {}})])
def test_bad_input_is_refused(current, spec):
    with pytest.raises(AnsibleFilterError):
        cline_settings(current, spec)
