"""langfuse_prompt_specs / langfuse_dataset_specs: what the role hands the content modules, from
inline entries and from files in the repository, and the refusals that name the entry to fix."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.langfuse_content import (
    langfuse_dataset_specs,
    langfuse_prompt_specs,
)


def test_inline_text_prompt_gets_defaults():
    [spec] = langfuse_prompt_specs([{"name": "greeting", "prompt": "Hi {{name}}"}], "/nowhere")
    assert spec == {"name": "greeting", "type": "text", "prompt": "Hi {{name}}", "config": {}, "labels": []}


def test_files_are_read_relative_to_the_base_dir(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "b.txt").write_text("Variant B\n")
    (tmp_path / "prompts" / "chat.yml").write_text(
        "- {role: system, content: Be brief}\n- {role: user, content: '{{q}}'}\n")
    specs = langfuse_prompt_specs([
        {"name": "greeting", "file": "prompts/b.txt", "labels": ["experiment-b"], "config": {"model": "m"},
         "tags": ["ab"], "commit_message": "variant B"},
        {"name": "support/chat", "type": "chat", "file": str(tmp_path / "prompts" / "chat.yml")},
    ], str(tmp_path))
    assert specs[0] == {"name": "greeting", "type": "text", "prompt": "Variant B\n", "config": {"model": "m"},
                        "labels": ["experiment-b"], "tags": ["ab"], "commit_message": "variant B"}
    assert specs[1]["prompt"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "{{q}}"}]


@pytest.mark.parametrize(("entry", "words"), [
    ({"prompt": "x"}, "langfuse_prompts[0]: name is required"),
    ({"name": "a", "prompt": "x", "file": "y"}, "exactly one of prompt and file"),
    ({"name": "a"}, "exactly one of prompt and file"),
    ({"name": "a", "prompt": "x", "type": "image"}, "type must be text or chat"),
    ({"name": "a", "prompt": "x", "labels": ["latest"]}, "'latest' is set by Langfuse"),
    ({"name": "a", "prompt": "x", "lables": ["production"]}, "unknown field(s) lables"),
    ({"name": "a", "type": "chat", "prompt": "not a list"}, "non-empty list of messages"),
    ({"name": "a", "type": "chat", "prompt": [{"role": "user"}]}, "message 0 must have"),
    ({"name": "a", "prompt": ""}, "non-empty string"),
    ({"name": "a", "prompt": "x", "config": ["no"]}, "config must be a dict"),
    ({"name": "a", "file": "missing.txt"}, "cannot read file"),
])
def test_prompt_refusals_name_the_entry_and_field(tmp_path, entry, words):
    with pytest.raises(AnsibleFilterError) as err:
        langfuse_prompt_specs([entry], str(tmp_path))
    assert words in str(err.value)


def test_dataset_items_inline_then_from_json_lines(tmp_path):
    (tmp_path / "items.jsonl").write_text('{"id": "b", "input": 2}\n\n{"id": "c", "input": 3, "expected_output": 6}\n')
    [spec] = langfuse_dataset_specs([{"name": "smoke", "description": "d", "metadata": {"o": 1},
                                      "items": [{"id": "a", "input": 1}], "items_file": "items.jsonl"}],
                                    str(tmp_path))
    assert spec == {"name": "smoke", "description": "d", "metadata": {"o": 1},
                    "items": [{"id": "a", "input": 1}, {"id": "b", "input": 2},
                              {"id": "c", "input": 3, "expected_output": 6}]}


def test_dataset_items_from_yaml(tmp_path):
    (tmp_path / "items.yml").write_text("- {id: a, input: {q: hi}, expected_output: hello, metadata: {t: 1}}\n")
    [spec] = langfuse_dataset_specs([{"name": "s", "items_file": "items.yml"}], str(tmp_path))
    assert spec["items"] == [{"id": "a", "input": {"q": "hi"}, "expected_output": "hello", "metadata": {"t": 1}}]


@pytest.mark.parametrize(("entry", "files", "words"), [
    ({"items": []}, {}, "name is required"),
    ({"name": "s", "items": [{"input": 1}]}, {}, "item 0 needs an id"),
    ({"name": "s", "items": [{"id": "a"}, {"id": "a"}]}, {}, "item id a appears twice"),
    ({"name": "s", "items": [{"id": "a", "expected": 1}]}, {}, "unknown field(s) expected"),
    ({"name": "s", "items_file": "i.jsonl"}, {"i.jsonl": '{"id": "a"}\nnot json\n'}, "line 2 is not JSON"),
    ({"name": "s", "items_file": "i.yml"}, {"i.yml": "id: a\n"}, "must hold a list of items"),
    ({"name": "s", "metadata": "x"}, {}, "metadata must be a dict"),
    ({"name": "s", "item": []}, {}, "unknown field(s) item"),
])
def test_dataset_refusals(tmp_path, entry, files, words):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(AnsibleFilterError) as err:
        langfuse_dataset_specs([entry], str(tmp_path))
    assert words in str(err.value)
    assert "langfuse_datasets[0]" in str(err.value)
