"""llmops.devbox.file_set: one round trip for a role's directories, files, links and removals."""

from __future__ import annotations

import hashlib
import os
import stat

from ansible_collections.llmops.devbox.tests.unit.httpserver import run_module


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_creates_then_reruns_unchanged(tmp_path):
    args = {"directories": [{"path": str(tmp_path / "proj" / "config"), "mode": "0750"}],
            "files": [{"dest": str(tmp_path / "proj" / "config" / "a.yml"), "content": "a: 1\n", "mode": "0644"}],
            "secret_files": [{"dest": str(tmp_path / "proj" / "x.env"), "content": "KEY=sk-secret-1\n",
                              "mode": "0600"}],
            "links": [{"src": "/usr/bin/env", "dest": str(tmp_path / "proj" / "env")}]}
    rc, first = run_module("file_set", args)
    assert rc == 0 and first["changed"], first
    assert mode(tmp_path / "proj" / "config") == 0o750
    assert (tmp_path / "proj" / "config" / "a.yml").read_text() == "a: 1\n"
    assert mode(tmp_path / "proj" / "x.env") == 0o600
    assert os.readlink(tmp_path / "proj" / "env") == "/usr/bin/env"
    # The checksum is stat's (SHA-1 of the content); secret files first (other files' validations read them).
    assert [f["checksum"] for f in first["files"]] == [hashlib.sha1(b"KEY=sk-secret-1\n").hexdigest(),  # noqa: S324
                                                       hashlib.sha1(b"a: 1\n").hexdigest()]  # noqa: S324
    rc, second = run_module("file_set", args)
    assert rc == 0 and second["changed"] is False, second
    assert not any(e["changed"] for key in ("directories", "files", "links") for e in second[key])


def test_only_the_attributes_are_fixed_when_the_content_is_right(tmp_path):
    dest = tmp_path / "a.env"
    dest.write_text("A=1\n")
    dest.chmod(0o644)
    inode = dest.stat().st_ino
    rc, result = run_module("file_set", {"secret_files": [{"dest": str(dest), "content": "A=1\n", "mode": "0600"}]})
    assert rc == 0 and result["changed"]
    assert mode(dest) == 0o600 and dest.stat().st_ino == inode


def test_check_mode_reports_and_writes_nothing(tmp_path):
    args = {"directories": [{"path": str(tmp_path / "d"), "mode": "0700"}],
            "files": [{"dest": str(tmp_path / "f"), "content": "new\n", "mode": "0644"}],
            "absent": [str(tmp_path / "old")]}
    (tmp_path / "f").write_text("old\n")
    (tmp_path / "old").write_text("x")
    rc, result = run_module("file_set", args, check_mode=True)
    assert rc == 0 and result["changed"]
    assert not (tmp_path / "d").exists() and (tmp_path / "f").read_text() == "old\n" and (tmp_path / "old").exists()
    rc, result = run_module("file_set", args)
    assert rc == 0 and not (tmp_path / "old").exists() and result["absent"] == [{"path": str(tmp_path / "old"),
                                                                                   "changed": True}]


def test_a_failed_validation_keeps_the_old_file_and_says_why(tmp_path):
    dest = tmp_path / "compose.yml"
    dest.write_text("good\n")
    check = "sh -c 'grep -q good %s || { echo \"line 1: bad content\" >&2; exit 3; }'"
    rc, result = run_module("file_set", {"files": [{"dest": str(dest), "content": "bad\n", "mode": "0644",
                                                    "validate": check}]})
    assert rc == 1
    assert str(dest) in result["msg"] and "rc 3" in result["msg"] and "line 1: bad content" in result["msg"]
    assert dest.read_text() == "good\n"
    assert [p.name for p in tmp_path.iterdir()] == ["compose.yml"]  # no temporary file left behind
    rc, result = run_module("file_set", {"files": [{"dest": str(dest), "content": "good too\n", "mode": "0644",
                                                    "validate": check}]})
    assert rc == 0 and dest.read_text() == "good too\n"


def test_the_validation_sees_the_new_file_with_its_mode(tmp_path):
    dest = tmp_path / "x.env"
    rc, result = run_module("file_set", {"secret_files": [{"dest": str(dest), "content": "A=1\n", "mode": "0600",
                                                           "validate": "sh -c 'test $(stat -c %%a %s) = 600'"}]})
    assert rc == 0, result


def test_secrets_are_masked_and_not_diffed_files_are_diffed(tmp_path):
    (tmp_path / "cfg").write_text("old: 1\n")
    args = {"files": [{"dest": str(tmp_path / "cfg"), "content": "new: 2\n", "mode": "0644"}],
            "secret_files": [{"dest": str(tmp_path / "s.env"), "content": "KEY=sk-topsecret-42\n", "mode": "0600"}]}
    rc, result = run_module("file_set", args, diff=True)
    assert rc == 0
    assert result["diff"] == [{"before_header": str(tmp_path / "cfg"), "after_header": str(tmp_path / "cfg"),
                               "before": "old: 1\n", "after": "new: 2\n"}]
    assert "sk-topsecret-42" not in str(result)


def test_a_link_replaces_a_wrong_one_and_a_file(tmp_path):
    (tmp_path / "l1").symlink_to("/nowhere")
    (tmp_path / "l2").write_text("x")
    rc, result = run_module("file_set", {"links": [{"src": "/usr/bin/env", "dest": str(tmp_path / "l1")},
                                                   {"src": "/usr/bin/env", "dest": str(tmp_path / "l2")}]})
    assert rc == 0 and [e["changed"] for e in result["links"]] == [True, True]
    assert os.readlink(tmp_path / "l1") == os.readlink(tmp_path / "l2") == "/usr/bin/env"


def test_clear_errors(tmp_path):
    (tmp_path / "notadir").write_text("x")
    rc, result = run_module("file_set", {"directories": [{"path": str(tmp_path / "notadir"), "mode": "0755"}]})
    assert rc == 1 and "is not a directory" in result["msg"]
    rc, result = run_module("file_set", {"files": [{"dest": str(tmp_path / "f"), "content": "", "mode": "0644",
                                                    "owner": "no-such-user-llmops"}]})
    assert rc == 1 and "owner 'no-such-user-llmops' does not exist" in result["msg"]
    rc, result = run_module("file_set", {"files": [{"dest": str(tmp_path / "f"), "content": "", "mode": "rw"}]})
    assert rc == 1 and "is not an octal mode" in result["msg"]
    missing_dir = {"dest": str(tmp_path / "no" / "f"), "content": "", "mode": "0644"}
    rc, result = run_module("file_set", {"files": [missing_dir]})
    assert rc == 1 and "does not exist (list it in directories)" in result["msg"]
    rc, result = run_module("file_set", {"files": [{"dest": str(tmp_path / "g"), "content": "", "mode": 0o640}]})
    assert rc == 0 and mode(tmp_path / "g") == 0o640


def test_secret_files_are_in_place_before_a_file_whose_validation_reads_them(tmp_path):
    env = tmp_path / "x.env"
    rc, result = run_module("file_set", {
        "files": [{"dest": str(tmp_path / "compose.yml"), "content": "c\n", "mode": "0644",
                   "validate": f"test -s {env} -a -s %s"}],
        "secret_files": [{"dest": str(env), "content": "A=1\n", "mode": "0600"}]})
    assert rc == 0, result


def test_a_failed_validation_returns_its_lines(tmp_path):
    rc, result = run_module("file_set", {"files": [{"dest": str(tmp_path / "f"), "content": "x\n", "mode": "0644",
                                                    "validate": "sh -c 'echo one >&2; echo two >&2; exit 1' %s"}]})
    assert rc == 1 and result["validate_rc"] == 1 and result["validate_lines"] == ["one", "two"]
    assert "one | two" in result["msg"]
