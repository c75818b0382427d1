"""vars/main.yml of every role holds constants and pure functions of the role's inputs (and facts),
never a value computed from a task's registered result (``__<role>_...``): such a value depends on
which tasks ran before it is read, which nothing in the file shows. Tasks set those with set_fact
right after the task that registers them."""

import re
from pathlib import Path

import pytest

ROLES = Path(__file__).resolve().parents[3] / "roles"
REGISTERED = re.compile(r"\b__[a-z0-9]+_[a-z0-9_]+")


@pytest.mark.parametrize("role", sorted(p.name for p in ROLES.iterdir() if (p / "vars" / "main.yml").exists()))
def test_vars_main_reads_no_registered_result(role):
    text = (ROLES / role / "vars" / "main.yml").read_text()
    found = sorted({m.group(0) for m in REGISTERED.finditer(text)})
    assert not found, f"roles/{role}/vars/main.yml reads registered results {found}: set them in the tasks"
