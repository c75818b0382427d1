#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_set
short_description: Put a role's directories, files and links in place in one round trip
version_added: 0.3.0
description:
  - Does what a row of M(ansible.builtin.file), M(ansible.builtin.copy) and M(ansible.builtin.template) tasks would
    do for one stage of a role, in one call to the box, so that an unchanged rerun costs one round trip instead of
    two per file. Entries are handled in this order - O(directories), O(secret_files), O(files) (each in the order
    given), O(links), O(absent) - and each reports whether it changed. Secret files come first because they are
    what other files' validations read (a Compose file's C(env_file)s).
  - A file is written only when its content differs, from a temporary file in the same directory that already has
    its mode and owner, is checked with its O(files[].validate) command when it has one, and is then renamed over
    the old one; a file whose content is right only gets its mode and owner set. A validation that fails leaves the
    old file as it was and fails the module, naming the file and quoting the last 20 lines of the command's output
    (also returned as C(validate_lines), with C(validate_rc)). A validator that may print what it read can put a
    secret in that output - set C(no_log) on such a task and report from C(validate_lines) what is safe to show.
  - O(secret_files) take the same options as O(files); their content is never shown (it is masked in every output)
    and never diffed, so the task needs no C(no_log).
  - Owners and groups are names or numeric ids.
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  directories:
    description: Directories to create (with missing parents) or keep, with their owner, group and mode.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      owner:
        description: Its owner (name or uid).
        type: str
        default: root
      group:
        description: Its group (name or gid).
        type: str
        default: root
      mode:
        description: Its permissions, in octal (V("0750"); quote it, or give the number itself).
        type: raw
        required: true
  files:
    description: Files with the content they must have; shown in a diff (C(--diff)) when they change.
    type: list
    elements: dict
    default: []
    suboptions: &file_options
      dest:
        description: The file. Its directory must exist (or be listed in O(directories)).
        type: path
        required: true
      content:
        description: The whole content, as text (a template is rendered with P(ansible.builtin.template#lookup)).
        type: str
        required: true
      owner:
        description: Its owner (name or uid).
        type: str
        default: root
      group:
        description: Its group (name or gid).
        type: str
        default: root
      mode:
        description: Its permissions, in octal (V("0644"); quote it, or give the number itself).
        type: raw
        required: true
      validate:
        description:
          - A command that must succeed on the new content before it replaces the file, with V(%s) where the path of
            the temporary file goes; run only when the content changes.
        type: str
  secret_files:
    description: Like O(files), for files that hold secrets - their content is masked in every output and not diffed.
    type: list
    elements: dict
    default: []
    suboptions: *file_options
  links:
    description: Symbolic links that must point at O(links[].src); whatever else is at O(links[].dest) is replaced.
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description: What the link points at.
        type: path
        required: true
      dest:
        description: The link.
        type: path
        required: true
  absent:
    description: Files (not directories) that must not exist.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    description: Reports what would change; writes nothing and runs no validation.
  diff_mode:
    support: full
    description: Shows the old and new content of each changed file of O(files) (never of O(secret_files)).
notes:
  - Not for big files - the content travels as a module argument.
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.file
"""

EXAMPLES = r"""
- name: Put the proxy's files in place
  llmops.devbox.file_set:
    directories:
      - {path: /opt/litellm, mode: "0750"}
      - {path: /opt/litellm/config, mode: "0755"}
    secret_files:
      - dest: /opt/litellm/litellm.env
        content: "{{ lookup('ansible.builtin.template', 'litellm.env.j2') }}"
        mode: "0600"
    files:
      - dest: /opt/litellm/compose.yml
        content: "{{ lookup('ansible.builtin.template', 'compose.yml.j2') }}"
        mode: "0644"
        validate: docker compose --project-directory /opt/litellm -f %s config --quiet
    links:
      - {src: /usr/bin/node-gyp, dest: /usr/local/bin/node-gyp}
    absent: [/opt/litellm/postgres.env]
  register: __files

- name: Use the checksum of the Compose file
  ansible.builtin.debug:
    msg: "{{ __files.files | selectattr('dest', 'equalto', '/opt/litellm/compose.yml') | map(attribute='checksum') }}"
"""

RETURN = r"""
directories:
  description: One entry per O(directories) entry, in the same order.
  returned: always
  type: list
  elements: dict
  sample: [{path: /opt/litellm, changed: false}]
files:
  description:
    - One entry per O(files) entry and then per O(secret_files) entry, in that order - C(dest), C(changed), and
      C(checksum), the SHA-1 of the content it has (or would have, in check mode), as M(ansible.builtin.stat) gives it.
  returned: always
  type: list
  elements: dict
  sample: [{dest: /opt/litellm/compose.yml, changed: false, checksum: 0b5e5b4a8c1f6e2b8d4f3c2a1e0d9c8b7a6f5e4d}]
links:
  description: One entry per O(links) entry, in the same order.
  returned: always
  type: list
  elements: dict
  sample: [{dest: /usr/local/bin/node-gyp, changed: false}]
absent:
  description: One entry per O(absent) entry, in the same order.
  returned: always
  type: list
  elements: dict
  sample: [{path: /opt/litellm/postgres.env, changed: true}]
"""

# Ansible requires the documentation blocks before any import, hence the E402 waivers.
import grp  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import stat  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

FILE_OPTIONS = {
    "dest": {"type": "path", "required": True},
    "content": {"type": "str", "required": True},
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
    "mode": {"type": "raw", "required": True},
    "validate": {"type": "str"},
}
SECRET_FILE_OPTIONS = dict(FILE_OPTIONS, content={"type": "str", "required": True, "no_log": True})


class Failure(Exception):
    """A problem to report with fail_json (with extra result keys)."""

    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.extra = extra


def uid_of(owner):
    if owner.isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise Failure(f"owner {owner!r} does not exist on this box") from None


def gid_of(group):
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise Failure(f"group {group!r} does not exist on this box") from None


def mode_of(mode, where):
    if isinstance(mode, int) and not isinstance(mode, bool):
        value = mode
    else:
        try:
            value = int(str(mode), 8)
        except ValueError:
            value = -1
    if not 0 <= value <= 0o7777:
        raise Failure(f"{where}: mode {mode!r} is not an octal mode such as 0644")
    return value


def fix_attributes(path, st, uid, gid, mode, check):
    """chown/chmod what differs (without following links); True when something did."""
    changed = False
    if (st.st_uid, st.st_gid) != (uid, gid):
        changed = True
        if not check:
            os.lchown(path, uid, gid)
    if stat.S_IMODE(st.st_mode) != mode:
        changed = True
        if not check:
            os.chmod(path, mode)
    return changed


def directory(entry, check):
    path = entry["path"]
    uid, gid = uid_of(entry["owner"]), gid_of(entry["group"])
    mode = mode_of(entry["mode"], path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not check:
            os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        return {"path": path, "changed": True}
    if not stat.S_ISDIR(st.st_mode):
        raise Failure(f"{path} exists and is not a directory: move it away, then rerun")
    return {"path": path, "changed": fix_attributes(path, st, uid, gid, mode, check)}


def read_bytes(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return st, None
    with open(path, "rb") as handle:
        return st, handle.read()


def write_file(module, entry, data, uid, gid, mode):
    dest = entry["dest"]
    folder = os.path.dirname(dest) or "."
    if not os.path.isdir(folder):
        raise Failure(f"{dest}: its directory {folder} does not exist (list it in directories)")
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".llmops-file-set-")
    try:
        # Mode and owner before the content: a secret is never readable by others, not even for a moment.
        os.fchmod(handle, mode)
        os.fchown(handle, uid, gid)
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view):]
        os.fsync(handle)
        os.close(handle)
        handle = None
        if entry.get("validate"):
            if "%s" not in entry["validate"]:
                raise Failure(f"{dest}: validate must contain %s (where the new file's path goes)")
            rc, out, err = module.run_command(entry["validate"] % tmp)
            if rc != 0:
                lines = [line for line in (err or out).strip().splitlines() if line.strip()][-20:]
                raise Failure(f"{dest}: the new content did not pass `{entry['validate']}` (rc {rc}), so the file "
                              f"was left as it was: {' | '.join(lines)}", dest=dest, validate_rc=rc,
                              validate_lines=lines)
        os.replace(tmp, dest)
        tmp = None
    finally:
        if handle is not None:
            os.close(handle)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def sha1(data):
    """The checksum M(ansible.builtin.stat) reports (SHA-1): a fingerprint for comparing, not for security."""
    return hashlib.sha1(data).hexdigest()  # noqa: S324


def put_file(module, entry, secret, check, diff):
    dest = entry["dest"]
    uid, gid = uid_of(entry["owner"]), gid_of(entry["group"])
    mode = mode_of(entry["mode"], dest)
    data = entry["content"].encode("utf-8")
    result = {"dest": dest, "changed": False, "checksum": sha1(data)}
    st, old = read_bytes(dest)
    if old == data:
        result["changed"] = fix_attributes(dest, st, uid, gid, mode, check)
        return result, None
    result["changed"] = True
    shown = None
    if diff and not secret:
        shown = {"before_header": dest, "after_header": dest,
                 "before": "" if old is None else old.decode("utf-8", "replace"), "after": entry["content"]}
    if not check:
        write_file(module, entry, data, uid, gid, mode)
    return result, shown


def link(entry, check):
    dest, src = entry["dest"], entry["src"]
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(dest) == src:
        return {"dest": dest, "changed": False}
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise Failure(f"{dest} is a directory, not a link to {src}: move it away, then rerun")
    if not check:
        tmp = os.path.join(os.path.dirname(dest), f".llmops-file-set-{os.getpid()}-{os.path.basename(dest)}")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(src, tmp)
        os.replace(tmp, dest)
    return {"dest": dest, "changed": True}


def absent(path, check):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"path": path, "changed": False}
    if stat.S_ISDIR(st.st_mode):
        raise Failure(f"{path} is a directory; absent removes files only")
    if not check:
        os.unlink(path)
    return {"path": path, "changed": True}


def apply(module):
    params, check, diff = module.params, module.check_mode, module._diff
    result = {"directories": [directory(entry, check) for entry in params["directories"]],
              "files": [], "links": [], "absent": []}
    diffs = []
    for entries, secret in ((params["secret_files"], True), (params["files"], False)):
        for entry in entries:
            outcome, shown = put_file(module, entry, secret, check, diff)
            result["files"].append(outcome)
            if shown:
                diffs.append(shown)
    result["links"] = [link(entry, check) for entry in params["links"]]
    result["absent"] = [absent(path, check) for path in params["absent"]]
    result["changed"] = any(item["changed"] for key in ("directories", "files", "links", "absent")
                            for item in result[key])
    if diffs:
        result["diff"] = diffs
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "directories": {"type": "list", "elements": "dict", "default": [], "options": {
                "path": {"type": "path", "required": True},
                "owner": {"type": "str", "default": "root"},
                "group": {"type": "str", "default": "root"},
                "mode": {"type": "raw", "required": True},
            }},
            "files": {"type": "list", "elements": "dict", "default": [], "options": FILE_OPTIONS},
            # The list itself is no secret (paths, modes); each entry's content is (SECRET_FILE_OPTIONS).
            "secret_files": {"type": "list", "elements": "dict", "default": [], "no_log": False,
                             "options": SECRET_FILE_OPTIONS},
            "links": {"type": "list", "elements": "dict", "default": [], "options": {
                "src": {"type": "path", "required": True},
                "dest": {"type": "path", "required": True},
            }},
            "absent": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    try:
        result = apply(module)
    except Failure as exc:
        module.fail_json(msg=str(exc), **exc.extra)
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or ''}: {exc.strerror or exc} (check the path and that the task runs "
                             "as a user who may write there)")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
