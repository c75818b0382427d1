"""module_utils/_backup.py: a backup's layout, its completion marker (manifest.json) and the retention rule."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from ansible_collections.llmops.devbox.plugins.module_utils import _backup
from ansible_collections.llmops.devbox.plugins.module_utils._backup import (
    FORMAT,
    MANIFEST,
    describe,
    is_backup_name,
    list_backups,
    new_name,
    plan_retention,
    read_manifest,
    verify,
    write_manifest,
)

A, B, C, D, E = ("20261201T010000Z", "20261202T010000Z", "20261203T010000Z", "20261204T010000Z",
                 "20261205T010000Z")


def entries(**state):
    """entries(A=True, B=False) -> [{"name": A, "complete": True}, ...] with the constants' values."""
    names = {"A": A, "B": B, "C": C, "D": D, "E": E}
    return [{"name": names.get(k, k), "complete": v} for k, v in state.items()]


# --- names -------------------------------------------------------------------------------------


def test_new_name_is_the_utc_start_time():
    assert new_name(0) == "19700101T000000Z"
    assert new_name(1796338800) == "20261203T230000Z"
    assert is_backup_name(new_name())


@pytest.mark.parametrize("name,ok", [
    (A, True), ("20261201T203000Z", True),
    ("20261201T203000", False), ("20261201T203000Z.bak", False), ("x20261201T203000Z", False),
    ("2026-12-01T20:30:00Z", False), (".clickhouse", False), ("latest", False), ("", False), (None, False),
    pytest.param("20261201T203000Z\n", False),
])
def test_is_backup_name(name, ok):
    assert is_backup_name(name) is ok


def test_names_sort_as_they_happened():
    assert sorted([new_name(2_000_000_000), new_name(1_000_000_000), new_name(1_500_000_000)]) == \
        [new_name(1_000_000_000), new_name(1_500_000_000), new_name(2_000_000_000)]


# --- retention ---------------------------------------------------------------------------------


def test_keep_n_newest_complete():
    assert plan_retention(entries(A=True, B=True, C=True, D=True, E=True), 3) == [A, B]
    assert plan_retention(entries(A=True, B=True, C=True, D=True, E=True), 1) == [A, B, C, D]


def test_order_of_the_entries_does_not_matter():
    assert plan_retention(entries(E=True, A=True, C=True, B=True, D=True), 2) == [A, B, C]


def test_fewer_than_keep_removes_nothing():
    assert plan_retention(entries(A=True, B=True), 7) == []
    assert plan_retention([], 7) == []


def test_keep_zero_keeps_every_complete_backup():
    assert plan_retention(entries(A=True, B=True, C=True, D=True, E=True), 0) == []


def test_keep_as_a_string_from_a_template():
    assert plan_retention(entries(A=True, B=True, C=True), "2") == [A]


def test_incomplete_older_than_newest_complete_goes_newer_stays():
    # B is older than the newest complete (D): it can never be restored from. E may be running now.
    assert plan_retention(entries(A=True, B=False, C=True, D=True, E=False), 7) == [B]


def test_incomplete_goes_even_when_keep_is_zero():
    assert plan_retention(entries(A=False, B=True, C=False), 0) == [A]


def test_incomplete_stay_while_no_backup_is_complete():
    assert plan_retention(entries(A=False, B=False, C=False), 1) == []


def test_incomplete_and_surplus_complete_together():
    assert plan_retention(entries(A=True, B=False, C=True, D=False, E=True), 2) == [A, B, D]


def test_protect_always_stays():
    assert plan_retention(entries(A=True, B=True, C=True), 1, protect=[A]) == [B]
    assert plan_retention(entries(A=False, B=True), 1, protect=(A,)) == []


def test_foreign_folder_names_are_never_touched():
    found = entries(A=True, B=True) + [{"name": "latest", "complete": True}, {"name": ".clickhouse", "complete": False},
                                       {"name": "20261201T010000Z.old", "complete": False},
                                       {"name": "zzz-manual", "complete": True}, {"name": None, "complete": True}]
    assert plan_retention(found, 1) == [A]


def test_result_is_sorted_and_unique():
    assert plan_retention(entries(E=True, D=True, C=True, B=False, A=True), 1) == [A, B, C, D]


# --- manifest ----------------------------------------------------------------------------------


def test_manifest_round_trip(tmp_path):
    manifest = {"name": A, "files": [{"name": "postgres.dump", "bytes": 3, "sha256": "x", "what": "y"}],
                "labels": {"host": "box"}}
    write_manifest(str(tmp_path), manifest)
    got = read_manifest(str(tmp_path))
    assert got == dict(manifest, format=FORMAT)
    assert "format" not in manifest, "the caller's dict is not changed"
    assert sorted(os.listdir(tmp_path)) == [MANIFEST], "no temporary file is left behind"
    assert stat.S_IMODE((tmp_path / MANIFEST).stat().st_mode) == 0o600
    assert (tmp_path / MANIFEST).read_text().endswith("}\n")


def test_manifest_is_written_to_a_temporary_file_then_renamed(tmp_path, monkeypatch):
    seen = []
    real_rename = os.rename

    def rename(src, dst):
        seen.append((os.path.basename(src), os.path.basename(dst), os.path.exists(dst),
                     json.loads(open(src, encoding="utf-8").read())["name"]))
        return real_rename(src, dst)

    monkeypatch.setattr(_backup.os, "rename", rename)
    write_manifest(str(tmp_path), {"name": A, "files": []})
    assert seen == [("." + MANIFEST + ".tmp", MANIFEST, False, A)]


def test_a_rewrite_replaces_the_manifest_whole(tmp_path):
    write_manifest(str(tmp_path), {"name": A, "files": [], "labels": {"a": "x" * 1000}})
    write_manifest(str(tmp_path), {"name": B, "files": []})
    assert read_manifest(str(tmp_path)) == {"name": B, "files": [], "format": FORMAT}


def test_manifest_mode_is_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        write_manifest(str(tmp_path), {"files": []})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / MANIFEST).stat().st_mode) == 0o600


def test_no_manifest_is_an_incomplete_backup(tmp_path):
    (tmp_path / "postgres.dump").write_bytes(b"x")
    assert read_manifest(str(tmp_path)) is None
    assert read_manifest(str(tmp_path / "absent")) is None


@pytest.mark.parametrize("doc", [
    {"format": 2, "files": []},
    {"files": []},
    {"format": "1", "files": []},
    {"format": 1},
    {"format": 1, "files": {}},
    [],
    "manifest",
])
def test_a_manifest_not_ours_is_refused(tmp_path, doc):
    (tmp_path / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not a llmops.devbox backup manifest"):
        read_manifest(str(tmp_path))


def test_a_manifest_that_is_not_json_is_refused(tmp_path):
    (tmp_path / MANIFEST).write_text("{half")
    with pytest.raises(ValueError):
        read_manifest(str(tmp_path))


# --- describe / verify -------------------------------------------------------------------------


def backup(tmp_path):
    (tmp_path / "postgres.dump").write_bytes(b"PGDMP" * 100)
    (tmp_path / "minio.tar").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"hello")
    files = describe(str(tmp_path), ["postgres.dump", "minio.tar", "notes.txt"])
    return {"files": files}


def test_describe(tmp_path):
    files = backup(tmp_path)["files"]
    assert files == [
        {"name": "postgres.dump", "bytes": 500,
         "sha256": hashlib.sha256(b"PGDMP" * 100).hexdigest(), "what": _backup.PARTS["postgres.dump"]},
        {"name": "minio.tar", "bytes": 0, "sha256": hashlib.sha256(b"").hexdigest(),
         "what": _backup.PARTS["minio.tar"]},
        {"name": "notes.txt", "bytes": 5,
         "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "what": "notes.txt"},
    ]


def test_sha256_of_a_file_larger_than_one_block(tmp_path):
    data = os.urandom((1 << 20) + 17)
    (tmp_path / "big").write_bytes(data)
    assert _backup.sha256(str(tmp_path / "big")) == hashlib.sha256(data).hexdigest()


def test_verify_a_sound_backup(tmp_path):
    assert verify(str(tmp_path), backup(tmp_path)) == []


def test_verify_a_missing_file(tmp_path):
    manifest = backup(tmp_path)
    (tmp_path / "minio.tar").unlink()
    assert verify(str(tmp_path), manifest) == ["minio.tar is missing"]


def test_verify_a_folder_where_a_file_was_is_missing(tmp_path):
    manifest = backup(tmp_path)
    (tmp_path / "minio.tar").unlink()
    (tmp_path / "minio.tar").mkdir()
    assert verify(str(tmp_path), manifest) == ["minio.tar is missing"]


def test_verify_a_changed_size(tmp_path):
    manifest = backup(tmp_path)
    with open(tmp_path / "postgres.dump", "ab") as fh:
        fh.write(b"!")
    assert verify(str(tmp_path), manifest) == ["postgres.dump differs from the manifest (size or SHA-256)"]


def test_verify_changed_content_of_the_same_size(tmp_path):
    manifest = backup(tmp_path)
    (tmp_path / "notes.txt").write_bytes(b"HELLO")
    assert verify(str(tmp_path), manifest) == ["notes.txt differs from the manifest (size or SHA-256)"]


def test_verify_reports_every_problem(tmp_path):
    manifest = backup(tmp_path)
    (tmp_path / "postgres.dump").unlink()
    (tmp_path / "notes.txt").write_bytes(b"HELLO")
    assert verify(str(tmp_path), manifest) == ["postgres.dump is missing",
                                               "notes.txt differs from the manifest (size or SHA-256)"]


def test_verify_ignores_files_the_manifest_does_not_list(tmp_path):
    manifest = backup(tmp_path)
    (tmp_path / "extra").write_bytes(b"x")
    assert verify(str(tmp_path), manifest) == []


# --- list_backups ------------------------------------------------------------------------------


def test_list_backups(tmp_path):
    for name in (C, A, B):
        (tmp_path / name).mkdir()
    (tmp_path / A / MANIFEST).write_text("{}")
    (tmp_path / C / MANIFEST).write_text("{}")
    (tmp_path / B / "postgres.dump").write_bytes(b"x")
    (tmp_path / ".clickhouse").mkdir()
    (tmp_path / "latest").mkdir()
    (tmp_path / "latest" / MANIFEST).write_text("{}")
    (tmp_path / D).write_text("a file, not a folder")
    assert list_backups(str(tmp_path)) == [{"name": A, "complete": True}, {"name": B, "complete": False},
                                           {"name": C, "complete": True}]


def test_list_backups_of_a_missing_folder(tmp_path):
    assert list_backups(str(tmp_path / "absent")) == []


def test_list_backups_then_retention(tmp_path):
    for name in (A, B, C, D):
        (tmp_path / name).mkdir()
    for name in (A, C, D):
        write_manifest(str(tmp_path / name), {"files": []})
    assert plan_retention(list_backups(str(tmp_path)), 2) == [A, B]
