"""Static checks of the code_server role's task files: everything done in the user's home runs with
that user's rights (become_user), never as root, so a link the user planted there cannot make root
read, create or chown another file. main.yml includes the task files that work in the home with
`apply: {become: true, become_user: "{{ code_server_user }}"}`; no task in them switches back, and
no task elsewhere touches the home except preflight's read-only lstat (box_probe's paths).
The Molecule scenario (molecule/code_server/tests/test_user_rights.py) shows the same on a box.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[4] / "roles" / "code_server"
TASKS = ROLE / "tasks"
AS_USER = {"become": True, "become_user": "{{ code_server_user }}"}
# Role variables naming paths in the user's home (vars/main.yml), and the loop items derived from them.
HOME_TOKENS = ("_code_server_home", "_code_server_config_dir", "_code_server_config_file",
               "_code_server_password_file", "_code_server_data_dir", "_code_server_vsix_dir",
               "_code_server_cline_data_dir", "_code_server_cline_file", "_code_server_user_paths",
               "__code_server_vsix_copy")
# Modules that do nothing on the box, or only include other files.
NO_BOX_ACCESS = {"ansible.builtin.set_fact", "ansible.builtin.assert", "ansible.builtin.fail",
                 "ansible.builtin.meta", "ansible.builtin.debug", "ansible.builtin.include_tasks"}
TASK_KEYWORDS = {"name", "when", "loop", "loop_control", "register", "vars", "no_log", "notify", "become",
                 "become_user", "changed_when", "failed_when", "check_mode", "until", "retries", "delay",
                 "environment", "tags", "ignore_errors"}


def load(name: str) -> list[dict]:
    return yaml.safe_load((TASKS / name).read_text()) or []


def module_of(task: dict) -> str:
    (module,) = [k for k in task if k not in TASK_KEYWORDS]
    return module


def included(task: dict) -> str | None:
    args = task.get("ansible.builtin.include_tasks")
    if args is None:
        return None
    return args if isinstance(args, str) else args["file"]


def user_side_files() -> set[str]:
    """Files main.yml includes as the user, and the files those include."""
    files = {included(t) for t in load("main.yml") if included(t) and
             (t["ansible.builtin.include_tasks"] if isinstance(t["ansible.builtin.include_tasks"], dict)
              else {}).get("apply") == AS_USER}
    pending = list(files)
    while pending:
        for task in load(pending.pop()):
            name = included(task)
            if name and "{{" not in name and name not in files:
                files.add(name)
                pending.append(name)
    return files


def test_home_task_files_are_included_as_the_user():
    assert user_side_files() == {"configure.yml", "extensions.yml", "cline.yml"}


@pytest.mark.parametrize("name", ["configure.yml", "extensions.yml", "cline.yml"])
def test_no_task_in_them_switches_back(name):
    for task in load(name):
        if "become" in task:
            assert task["become"] is True, task["name"]
        if "become_user" in task:
            assert task["become_user"] == "{{ code_server_user }}", task["name"]


def root_side_files() -> list[str]:
    user = user_side_files()
    return sorted(p.name for p in TASKS.glob("*.yml") if p.name not in user)


@pytest.mark.parametrize("name", root_side_files())
def test_tasks_run_as_root_do_not_touch_the_home(name):
    for task in load(name):
        module = module_of(task)
        if module in NO_BOX_ACCESS:
            continue
        if task.get("become") is True and task.get("become_user") == "{{ code_server_user }}":
            continue  # this one task runs as the user
        text = yaml.safe_dump({k: v for k, v in task.items() if k != "name"})
        if not any(token in text for token in HOME_TOKENS):
            continue
        # Only preflight's lstat (box_probe's paths: metadata, links not followed, nothing read or written).
        assert module == "llmops.devbox.box_probe", f"{name}: {task['name']} works in the home as root"
        args = dict(task[module])
        assert args.pop("paths") == "{{ _code_server_user_paths }}", task["name"]
        rest = yaml.safe_dump({"args": args, "vars": task.get("vars", {})})
        assert not any(token in rest for token in HOME_TOKENS), f"{task['name']} reads a file in the home as root"


def test_handlers_do_not_touch_the_home():
    text = (ROLE / "handlers" / "main.yml").read_text()
    assert not any(token in text for token in HOME_TOKENS)


def test_acl_is_installed_before_anything_runs_as_the_user():
    """Ansible hands its temp files (copy, template) to an unprivileged become user with setfacl when
    it logs in as a third user: main.yml installs acl then, before the first include as the user."""
    main = load("main.yml")
    names = [module_of(t) if included(t) is None else included(t) for t in main]
    # ansible.builtin.package: apt on Debian and Ubuntu, dnf on Amazon Linux and the RHEL family.
    assert names.index("ansible.builtin.package") < names.index("configure.yml")
    package = main[names.index("ansible.builtin.package")]
    assert package["ansible.builtin.package"]["name"] == "acl"
