"""llmops.devbox.langfuse_backup_retention / _pick / _secrets and langfuse_restore_secrets: backups on the
controller, by the same rules as on the box."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.devbox.plugins.filter.langfuse_backups import (
    FilterModule,
    langfuse_backup_pick,
    langfuse_backup_retention,
    langfuse_backup_secrets,
    langfuse_restore_secrets,
)

HOST = "/home/me/inventory/backups/box1"
A, B, C, D = "20261201T010000Z", "20261202T010000Z", "20261203T010000Z", "20261204T010000Z"


def folder(name):
    return f"{HOST}/{name}"


def manifest(name):
    return f"{HOST}/{name}/manifest.json"


def test_filters_are_registered():
    assert FilterModule().filters() == {
        "langfuse_backup_retention": langfuse_backup_retention,
        "langfuse_backup_secrets": langfuse_backup_secrets,
        "langfuse_restore_secrets": langfuse_restore_secrets,
        "langfuse_backup_pick": langfuse_backup_pick,
    }


# --- retention ---------------------------------------------------------------------------------


def test_retention_from_folders_and_manifests():
    # What backup.yml's find returns: every backup folder, and manifest.json of the complete ones.
    paths = [folder(A), manifest(A), folder(B), folder(C), manifest(C), folder(D), manifest(D)]
    assert langfuse_backup_retention(paths, 2) == [A, B]
    assert langfuse_backup_retention(paths, 1) == [A, B, C]
    assert langfuse_backup_retention(paths, 0) == [B]


def test_retention_whatever_the_order_of_the_paths():
    paths = [manifest(D), folder(C), manifest(A), folder(A), folder(D), manifest(C), folder(B)]
    assert langfuse_backup_retention(paths, 2) == [A, B]


def test_retention_with_trailing_slashes_and_manifests_only():
    assert langfuse_backup_retention([folder(A) + "/", manifest(B), manifest(C)], 1) == [A, B]


def test_retention_protects_the_backup_just_taken():
    paths = [manifest(A), manifest(B), manifest(C)]
    assert langfuse_backup_retention(paths, 1, protect=[A]) == [B]


def test_retention_keeps_a_newer_incomplete_backup():
    assert langfuse_backup_retention([manifest(A), manifest(B), folder(C)], 2) == []


def test_retention_never_touches_foreign_folders():
    paths = [manifest(A), manifest(B), f"{HOST}/latest", f"{HOST}/latest/manifest.json", f"{HOST}/notes.txt",
             f"{HOST}/{A}.old"]
    assert langfuse_backup_retention(paths, 1) == [A]


@pytest.mark.parametrize("paths", ["/a/b", None, {"a": 1}])
def test_retention_wants_a_list(paths):
    with pytest.raises(AnsibleFilterError, match="pass a list of paths"):
        langfuse_backup_retention(paths, 1)


# --- pick --------------------------------------------------------------------------------------


def test_pick_the_newest_complete():
    assert langfuse_backup_pick([manifest(A), manifest(C), manifest(B), folder(D)]) == C


def test_pick_from_manifests_only_as_restore_yml_finds_them():
    assert langfuse_backup_pick([manifest(B), manifest(A)], "") == B


def test_pick_by_name():
    assert langfuse_backup_pick([manifest(A), manifest(B)], A) == A


def test_pick_an_unknown_name():
    with pytest.raises(AnsibleFilterError) as err:
        langfuse_backup_pick([manifest(A), manifest(B)], C)
    assert str(err.value) == f"no complete backup named {C!r} (complete: {A}, {B})"


def test_pick_an_incomplete_backup_by_name():
    with pytest.raises(AnsibleFilterError, match=f"no complete backup named '{D}' \\(complete: {A}\\)"):
        langfuse_backup_pick([manifest(A), folder(D)], D)


def test_pick_by_name_with_no_complete_backup():
    with pytest.raises(AnsibleFilterError, match=r"\(complete: none\)"):
        langfuse_backup_pick([folder(A)], A)


@pytest.mark.parametrize("paths", [[], [folder(A), folder(B)]])
def test_pick_with_no_complete_backup(paths):
    with pytest.raises(AnsibleFilterError, match="no complete backup .* was found: run playbooks/backup.yml"):
        langfuse_backup_pick(paths)


def test_pick_wants_a_list():
    with pytest.raises(AnsibleFilterError, match="pass a list of paths"):
        langfuse_backup_pick(manifest(A))


def test_pick_ignores_a_manifest_in_a_foreign_folder():
    # restore.yml finds manifest.json at depth 2 under the host folder: a copy kept as latest/ must not win
    # over the real backups (it sorts after every timestamp).
    assert langfuse_backup_pick([manifest(A), manifest(B), f"{HOST}/latest/manifest.json"]) == B


# --- secrets on the way in ---------------------------------------------------------------------


def slurped(path, content, mode="0600"):
    return {"item": {"path": path, "mode": mode}, "content": content, "encoding": "base64", "changed": False}


def test_backup_secrets():
    results = [slurped("/etc/langfuse/env", "RU5DUllQVElPTl9LRVk9eA=="),
               slurped("/etc/litellm/master.key", "c2stMQ==", mode="0400"),
               {"item": {"path": "/etc/langfuse/.hidden"}, "content": "eA=="}]
    assert langfuse_backup_secrets(results) == {
        "/etc/langfuse/env": {"content": "RU5DUllQVElPTl9LRVk9eA==", "mode": "0600"},
        "/etc/litellm/master.key": {"content": "c2stMQ==", "mode": "0400"},
        "/etc/langfuse/.hidden": {"content": "eA==", "mode": "0600"},
    }


def test_backup_secrets_of_no_files():
    assert langfuse_backup_secrets([]) == {}


@pytest.mark.parametrize("result", [
    {"item": {"path": "/etc/langfuse/env"}, "failed": True, "msg": "unreadable"},
    {"content": "eA=="},
    {"item": {}, "content": "eA=="},
    {"item": None, "content": "eA=="},
])
def test_backup_secrets_refuse_a_file_not_read(result):
    with pytest.raises(AnsibleFilterError, match="a secret file could not be read"):
        langfuse_backup_secrets([slurped("/etc/langfuse/env", "eA=="), result])


def test_backup_secrets_want_the_results_list():
    with pytest.raises(AnsibleFilterError, match="pass the results of the slurp loop"):
        langfuse_backup_secrets({"results": []})


# --- secrets on the way out --------------------------------------------------------------------

FOLDERS = ["/etc/langfuse", "/etc/litellm/"]


def test_restore_secrets():
    secrets = {"/etc/litellm/master.key": {"content": "c2stMQ==", "mode": "0400"},
               "/etc/langfuse/env": {"content": "eA==", "mode": "0600"},
               "/etc/langfuse/sub/file": {"content": "eQ=="}}
    assert langfuse_restore_secrets(secrets, FOLDERS) == [
        {"path": "/etc/langfuse/env", "content": "eA==", "mode": "0600"},
        {"path": "/etc/langfuse/sub/file", "content": "eQ==", "mode": "0600"},
        {"path": "/etc/litellm/master.key", "content": "c2stMQ==", "mode": "0400"},
    ]


@pytest.mark.parametrize("mode,capped", [("0644", "0600"), ("0777", "0600"), ("0755", "0600"), ("0600", "0600"),
                                         ("0640", "0600"), ("0400", "0400"), ("0444", "0400"), ("4755", "0600"),
                                         ("600", "0600"), ("", "0600"), (None, "0600")])
def test_restore_secrets_cap_the_mode(mode, capped):
    (entry,) = langfuse_restore_secrets({"/etc/langfuse/env": {"content": "eA==", "mode": mode}}, FOLDERS)
    assert entry["mode"] == capped


@pytest.mark.parametrize("path", [
    "/etc/shadow",
    "/root/.ssh/authorized_keys",
    "/etc/langfuse/../shadow",
    "/etc/langfuse/./env",
    "/etc/langfuse//env",
    "/etc/langfuse-evil/env",
    "/etc/langfuse",
    "etc/langfuse/env",
    "/etc/litellmx/key",
    "/etc/langfuse/sub/../../cron.d/x",
])
def test_restore_secrets_refuse_a_path_outside_the_folders(path):
    secrets = {"/etc/langfuse/env": {"content": "eA==", "mode": "0600"}, path: {"content": "eA==", "mode": "0600"}}
    with pytest.raises(AnsibleFilterError) as err:
        langfuse_restore_secrets(secrets, FOLDERS)
    assert str(err.value) == f"the backup's secret {path!r} is outside /etc/langfuse/, /etc/litellm/: refused"


@pytest.mark.parametrize("secrets", [{}, None, [], "eA=="])
def test_restore_secrets_refuse_an_empty_document(secrets):
    with pytest.raises(AnsibleFilterError, match="the backup holds no secrets: it cannot be restored"):
        langfuse_restore_secrets(secrets, FOLDERS)


def test_restore_secrets_with_no_folders_refuse_everything():
    with pytest.raises(AnsibleFilterError, match="is outside"):
        langfuse_restore_secrets({"/etc/langfuse/env": {"content": "eA=="}}, [])


def test_backup_then_restore_round_trip():
    results = [slurped("/etc/langfuse/env", "eA==", mode="0644"), slurped("/etc/litellm/key", "eQ==")]
    assert langfuse_restore_secrets(langfuse_backup_secrets(results), FOLDERS) == [
        {"path": "/etc/langfuse/env", "content": "eA==", "mode": "0600"},
        {"path": "/etc/litellm/key", "content": "eQ==", "mode": "0600"},
    ]
