"""llmops.devbox.secret_file through its real main() (a fresh Python process fed the way Ansible feeds
it), plus the shared writer (plugins/module_utils/_secret_file.py) watched in-process for the mode its
file is created with."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import threading
from contextlib import contextmanager

import pytest

from ansible_collections.llmops.devbox.plugins.module_utils import _secret_file
from ansible_collections.llmops.devbox.tests.unit.httpserver import run_module

MASK = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
STORED_A = "StoredValueA-0123456789abcdef"
STORED_B = "StoredValueB-0123456789abcdef"
OTHER = "SomethingElse-0123456789abcdef"
HINT = "Restore /etc/demo/secrets.json from the nightly backup, or remove the demo_db volume."


def secret_file(**args):
    check_mode = args.pop("check_mode", False)
    diff = args.pop("diff", False)
    return run_module("secret_file", args, check_mode=check_mode, diff=diff)


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "secrets.json"


def store(path, data):
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path.read_bytes()


def assert_no_value(result, *values):
    text = json.dumps(result)
    for value in values:
        assert value not in text, "a secret value is in the module's result"


# --- creating -------------------------------------------------------------------------------------

def test_creates_the_file_0600_with_every_name_generated(path):
    rc, result = secret_file(path=str(path), names=["password", "encryption_key", "master_key", "public_key"],
                             generators={"encryption_key": {"kind": "hex", "length": 64},
                                         "master_key": {"kind": "hex", "length": 64, "prefix": "sk-"},
                                         "public_key": {"kind": "uuid4", "prefix": "pk-lf-"}},
                             return_values=True)

    assert rc == 0, result
    assert result["changed"] is True
    assert result["created"] == ["password", "encryption_key", "master_key", "public_key"]
    assert result["generated"] == result["created"] and result["kept"] == [] and result["rotated"] == []
    values = result["values"]
    assert re.fullmatch("[A-Za-z0-9]{32}", values["password"])
    assert re.fullmatch("[0-9a-f]{64}", values["encryption_key"])
    assert re.fullmatch("sk-[0-9a-f]{64}", values["master_key"])
    uuid4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch("pk-lf-" + uuid4, values["public_key"])
    assert json.loads(path.read_text()) == values
    assert file_mode(path) == 0o600
    assert os.stat(path).st_uid == os.getuid()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left


def test_created_0600_even_under_the_loosest_umask(path):
    old = os.umask(0)  # the module process inherits it
    try:
        rc, result = secret_file(path=str(path), names=["a"])
    finally:
        os.umask(old)

    assert rc == 0, result
    assert file_mode(path) == 0o600


# --- the file is 0600 from its first byte (in-process, watching the shared writer) -----------------
# An audit hook lists the files of one directory with their permission bits at every audit event
# (each open, write-related os call, chmod, rename, unlink...), under umask 0, and os.open is wrapped
# to record the flags and mode each file is created with.
_watch = {"dir": None, "seen": None}
_in_hook = threading.local()


def _audit(event, args):
    directory = _watch["dir"]
    if directory is None or getattr(_in_hook, "active", False):
        return
    _in_hook.active = True  # os.scandir and stat raise audit events of their own
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    _watch["seen"].append((event, entry.name, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)))
    except OSError:
        pass
    finally:
        _in_hook.active = False


@contextmanager
def watch_modes(directory, umask=0):
    if not getattr(sys, "_llmops_secret_file_watch", False):
        sys.addaudithook(_audit)
        sys._llmops_secret_file_watch = True
    seen = []
    old_umask = os.umask(umask)
    _watch.update(dir=str(directory), seen=seen)
    try:
        yield seen
    finally:
        _watch.update(dir=None, seen=None)
        os.umask(old_umask)
    seen.extend(("after", p.name, file_mode(p)) for p in directory.iterdir() if p.is_file())


@pytest.fixture
def opened(monkeypatch):
    """(path, flags, mode) of every os.open the shared code makes."""
    calls = []
    real_open = os.open

    def recording_open(file, flags, mode=0o777, *args, **kwargs):
        calls.append((str(file), flags, mode))
        return real_open(file, flags, mode, *args, **kwargs)

    monkeypatch.setattr(_secret_file.os, "open", recording_open)
    return calls


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "replacing-a-file"])
def test_written_0600_from_the_first_byte(path, opened, existing):
    if existing:
        store(path, {"a": STORED_A})

    with watch_modes(path.parent) as seen:
        _secret_file.write_private(str(path), json.dumps({"a": OTHER}).encode())

    created = [(name, flags, mode) for name, flags, mode in opened if flags & os.O_CREAT]
    assert len(created) == 1, opened
    name, flags, mode = created[0]
    assert os.path.dirname(name) == str(path.parent) and name != str(path)  # a temporary file beside it
    assert mode == 0o600
    assert flags & os.O_EXCL and flags & os.O_NOFOLLOW  # a new file of its own, never through a link
    assert [event for event, _, _ in seen if event != "after"], "the audit hook saw nothing being written"
    readable = [(event, n, oct(m)) for event, n, m in seen if m & 0o077]
    assert not readable, f"the secret file was readable by others: {readable}"
    assert file_mode(path) == 0o600
    assert json.loads(path.read_text()) == {"a": OTHER}
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_fchmod_makes_it_0600_whatever_the_umask(path):
    with watch_modes(path.parent, umask=0o777):  # would leave it 0000 without the fchmod
        _secret_file.write_private(str(path), b"x")
    assert file_mode(path) == 0o600


def test_a_failed_write_leaves_no_temporary_file(path, monkeypatch):
    store(path, {"a": STORED_A})
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_secret_file.os, "replace", broken_replace)
    with pytest.raises(OSError):
        _secret_file.write_private(str(path), b'{"a": "new"}')
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


# --- keeping ---------------------------------------------------------------------------------------

def test_keeps_stored_values_and_generates_only_missing_names(path):
    store(path, {"a": STORED_A, "b": STORED_B, "not_asked_for": OTHER})

    rc, result = secret_file(path=str(path), names=["a", "b", "c"], return_values=True)

    assert rc == 0, result
    assert result["changed"] is True
    assert (result["created"], result["kept"], result["rotated"]) == (["c"], ["a", "b"], [])
    assert result["values"]["a"] == STORED_A and result["values"]["b"] == STORED_B
    assert re.fullmatch("[A-Za-z0-9]{32}", result["values"]["c"])
    stored = json.loads(path.read_text())
    assert stored == {"a": STORED_A, "b": STORED_B, "c": result["values"]["c"], "not_asked_for": OTHER}
    assert file_mode(path) == 0o600


def test_rerun_changes_nothing(path):
    rc, first = secret_file(path=str(path), names=["a", "b"], return_values=True)
    assert rc == 0, first
    before = path.read_bytes()
    inode, mtime = os.stat(path).st_ino, os.stat(path).st_mtime_ns

    rc, second = secret_file(path=str(path), names=["a", "b"], return_values=True)

    assert rc == 0, second
    assert second["changed"] is False
    assert (second["created"], second["kept"], second["rotated"]) == ([], ["a", "b"], [])
    assert second["values"] == first["values"]
    assert path.read_bytes() == before
    assert (os.stat(path).st_ino, os.stat(path).st_mtime_ns) == (inode, mtime)


def test_repairs_a_loosened_mode(path):
    store(path, {"a": STORED_A})
    path.chmod(0o644)

    rc, result = secret_file(path=str(path), names=["a"])

    assert rc == 0, result
    assert result["changed"] is True and result["created"] == []
    assert file_mode(path) == 0o600
    assert json.loads(path.read_text()) == {"a": STORED_A}


# --- supplied values and rotation -------------------------------------------------------------------

def test_supplied_value_is_stored_when_nothing_is(path):
    rc, result = secret_file(path=str(path), names=["a", "b"], supplied={"a": OTHER, "b": ""}, return_values=True)

    assert rc == 0, result
    assert result["created"] == ["a", "b"] and result["generated"] == ["b"]
    assert json.loads(path.read_text())["a"] == OTHER
    assert result["values"]["a"] == MASK  # Ansible masks no_log option values in results (documented)


def test_supplied_value_equal_to_the_stored_one_is_fine(path):
    before = store(path, {"a": STORED_A})

    rc, result = secret_file(path=str(path), names=["a"], supplied={"a": STORED_A})

    assert rc == 0, result
    assert result["changed"] is False and result["kept"] == ["a"]
    assert path.read_bytes() == before


def test_differing_supplied_value_is_refused_without_rotate(path):
    before = store(path, {"a": STORED_A, "b": STORED_B})

    rc, result = secret_file(path=str(path), names=["a", "b"], supplied={"a": OTHER},
                             rotate_hint="With this role: list it in demo_rotate_secrets.")

    assert rc == 1
    assert "The value supplied for a differs from the one stored in" in result["msg"]
    assert "rotate: [a]" in result["msg"]
    assert "rotation" in result["msg"] and "must change with it" in result["msg"]  # what rotation implies
    assert "demo_rotate_secrets" in result["msg"]
    assert_no_value(result, STORED_A, STORED_B, OTHER)
    assert path.read_bytes() == before


def test_differing_supplied_value_is_stored_with_rotate(path):
    store(path, {"a": STORED_A, "b": STORED_B})

    rc, result = secret_file(path=str(path), names=["a", "b"], supplied={"a": OTHER}, rotate=["a"],
                             return_values=True)

    assert rc == 0, result
    assert result["changed"] is True
    assert (result["rotated"], result["kept"], result["created"], result["generated"]) == (["a"], ["b"], [], [])
    assert result["previous_values"] == {"a": STORED_A}
    assert json.loads(path.read_text()) == {"a": OTHER, "b": STORED_B}
    assert file_mode(path) == 0o600

    rc, again = secret_file(path=str(path), names=["a", "b"], supplied={"a": OTHER}, rotate=["a"])
    assert rc == 0 and again["changed"] is False and again["rotated"] == []  # already that value


def test_rotate_without_a_supplied_value_generates_a_new_one(path):
    store(path, {"a": STORED_A, "b": STORED_B})

    rc, result = secret_file(path=str(path), names=["a", "b"], rotate=["a"],
                             generators={"a": {"kind": "hex", "length": 40}}, return_values=True)

    assert rc == 0, result
    assert result["rotated"] == ["a"] and result["generated"] == ["a"]
    stored = json.loads(path.read_text())
    assert stored["a"] != STORED_A and re.fullmatch("[0-9a-f]{40}", stored["a"])
    assert stored["b"] == STORED_B


# --- data that depends on the secrets ----------------------------------------------------------------

def test_missing_file_with_existing_data_is_refused_with_the_restore_hint(path):
    rc, result = secret_file(path=str(path), names=["salt", "db_password"], data_exists=True, restore_hint=HINT)

    assert rc == 1
    assert f"{path} does not exist, but data already depends on salt, db_password" in result["msg"]
    assert "Nothing was written and nothing was generated" in result["msg"]
    assert HINT in result["msg"]
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def test_missing_name_with_existing_data_is_refused_per_name(path):
    before = store(path, {"a": STORED_A})

    rc, result = secret_file(path=str(path), names=["a", "db_password", "session"],
                             data_exists={"db_password": True, "session": False}, restore_hint=HINT)

    assert rc == 1
    assert f"{path} has no value for db_password, but data already depends on db_password" in result["msg"]
    assert "session" not in result["msg"]
    assert_no_value(result, STORED_A)
    assert path.read_bytes() == before  # not even the harmless "session" was written

    rc, result = secret_file(path=str(path), names=["a", "session"], data_exists={"session": False})
    assert rc == 0 and result["created"] == ["session"]


def test_existing_data_accepts_a_supplied_value_for_a_missing_secret(path):
    rc, result = secret_file(path=str(path), names=["db_password"], data_exists=True,
                             supplied={"db_password": OTHER})

    assert rc == 0, result
    assert result["created"] == ["db_password"] and result["generated"] == []
    assert json.loads(path.read_text()) == {"db_password": OTHER}


def test_existing_data_allows_generating_a_name_listed_in_rotate(path):
    rc, result = secret_file(path=str(path), names=["db_password"], data_exists=True, rotate=["db_password"])

    assert rc == 0, result
    assert result["generated"] == ["db_password"]


# --- check mode, diff, values ------------------------------------------------------------------------

def test_check_mode_writes_nothing(path):
    rc, result = secret_file(path=str(path), names=["a", "b"], return_values=True, check_mode=True, diff=True)

    assert rc == 0, result
    assert result["changed"] is True
    assert result["created"] == ["a", "b"]
    assert result["values"] == {}  # nothing is made up in check mode
    assert not path.exists()
    assert list(path.parent.iterdir()) == []

    before = store(path, {"a": STORED_A})
    rc, result = secret_file(path=str(path), names=["a", "b"], supplied={"a": STORED_A}, return_values=True,
                             check_mode=True, diff=True)
    assert rc == 0, result
    assert result["changed"] is True and result["created"] == ["b"] and result["kept"] == ["a"]
    assert result["values"] == {"a": MASK}
    assert path.read_bytes() == before


def test_check_mode_reports_a_rotation_without_doing_it(path):
    before = store(path, {"a": STORED_A})

    rc, result = secret_file(path=str(path), names=["a"], rotate=["a"], check_mode=True)

    assert rc == 0, result
    assert result["changed"] is True and result["rotated"] == ["a"]
    assert path.read_bytes() == before


def test_check_mode_after_a_run_reports_no_change(path):
    secret_file(path=str(path), names=["a"])
    rc, result = secret_file(path=str(path), names=["a"], check_mode=True)
    assert rc == 0 and result["changed"] is False


def test_values_are_returned_only_when_asked(path):
    store(path, {"a": STORED_A})

    rc, result = secret_file(path=str(path), names=["a", "b"], diff=True)

    assert rc == 0, result
    assert "values" not in result and "previous_values" not in result
    generated = json.loads(path.read_text())["b"]
    assert_no_value(result, STORED_A, generated)


def test_diff_names_secrets_never_values(path):
    store(path, {"a": STORED_A, "b": STORED_B})

    rc, result = secret_file(path=str(path), names=["a", "b", "c"], supplied={"b": OTHER}, rotate=["b"],
                             diff=True)

    assert rc == 0, result
    assert result["diff"]["before"] == "a: (stored)\nb: (stored)\n"
    assert result["diff"]["after"] == "a: (stored)\nb: (rotated)\nc: (created)\n"
    generated = json.loads(path.read_text())["c"]
    assert_no_value(result["diff"], STORED_A, STORED_B, OTHER, generated)


# --- text format -----------------------------------------------------------------------------------

def test_text_format_keeps_one_secret_as_the_whole_file(tmp_path):
    key = tmp_path / "master_key"
    rc, result = secret_file(path=str(key), format="text", trailing_newline=False, names=["master_key"],
                             generators={"master_key": {"kind": "hex", "length": 64, "prefix": "sk-"}},
                             return_values=True)

    assert rc == 0, result
    assert re.fullmatch("sk-[0-9a-f]{64}", key.read_text())  # the key alone, no newline
    assert result["values"]["master_key"] == key.read_text()
    assert file_mode(key) == 0o600

    key.write_text(STORED_A + "\n")  # written by hand, with a newline: still the same key
    rc, result = secret_file(path=str(key), format="text", trailing_newline=False, names=["master_key"],
                             return_values=True)
    assert rc == 0 and result["changed"] is False
    assert result["values"]["master_key"] == STORED_A
    assert key.read_text() == STORED_A + "\n"


def test_text_format_takes_one_name(tmp_path):
    rc, result = secret_file(path=str(tmp_path / "k"), format="text", names=["a", "b"])
    assert rc == 1 and "exactly one" in result["msg"]


# --- files and options that need a decision -------------------------------------------------------------

@pytest.mark.parametrize("content", [
    '{"a": "' + STORED_A + '"',  # truncated JSON
    '["' + STORED_A + '"]',
    '{"a": 12345678901234567890}',
])
def test_unusable_file_fails_and_is_kept(path, content):
    path.write_text(content)

    rc, result = secret_file(path=str(path), names=["a"])

    assert rc == 1
    assert str(path) in result["msg"]
    assert_no_value(result, STORED_A)
    assert path.read_text() == content


def test_symlink_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text(STORED_A)
    link = tmp_path / "secrets.json"
    link.symlink_to(target)

    rc, result = secret_file(path=str(link), names=["a"], format="text")

    assert rc == 1
    assert "symbolic link" in result["msg"]
    assert_no_value(result, STORED_A)
    assert link.is_symlink() and target.read_text() == STORED_A


def test_missing_directory(tmp_path):
    path = tmp_path / "missing" / "secrets.json"
    rc, result = secret_file(path=str(path), names=["a"])
    assert rc == 1 and f"directory {path.parent} does not exist" in result["msg"]


@pytest.mark.parametrize("args, complaint", [
    ({"supplied": {"x": OTHER}}, "supplied names x, which are not in names"),
    ({"rotate": ["x"]}, "rotate names x, which are not in names"),
    ({"generators": {"a": {"kind": "base64"}}}, "generators.a.kind must be one of"),
    ({"generators": {"a": {"length": 8}}}, "generators.a.length must be between 16"),
    ({"data_exists": {"x": True}}, "data_exists names x"),
])
def test_bad_options_are_refused(path, args, complaint):
    rc, result = secret_file(path=str(path), names=["a"], **args)
    assert rc == 1
    assert complaint in result["msg"]
    assert not path.exists()


def test_directory_mode_creates_and_keeps_the_folder(tmp_path):
    path = tmp_path / "etc" / "demo" / "secrets.json"
    rc, result = secret_file(path=str(path), names=["a"], directory_mode="0700", check_mode=True)
    assert rc == 0 and result["changed"] and not path.parent.exists()
    rc, result = secret_file(path=str(path), names=["a"], directory_mode="0700")
    assert rc == 0 and result["changed"] and file_mode(path.parent) == 0o700 and file_mode(path) == 0o600
    rc, result = secret_file(path=str(path), names=["a"], directory_mode="0700")
    assert rc == 0 and result["changed"] is False
    path.parent.chmod(0o755)
    rc, result = secret_file(path=str(path), names=["a"], directory_mode="0700")
    assert rc == 0 and result["changed"] and file_mode(path.parent) == 0o700


def test_without_directory_mode_a_missing_folder_is_an_error(tmp_path):
    rc, result = secret_file(path=str(tmp_path / "none" / "secrets.json"), names=["a"])
    assert rc == 1 and "does not exist" in result["msg"]
