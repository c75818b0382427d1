#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: secret_file
short_description: Generate secrets once, keep them in a root-only file, never replace them silently
version_added: 0.1.0
description:
  - Keeps named secrets (database passwords, encryption keys, API keys) in one file on the managed
    host. Missing ones are generated (or taken from O(supplied)) and written; stored ones are kept
    and returned on every later run.
  - A stored secret is never replaced behind your back. A value in O(supplied) that differs from
    the stored one makes the module fail (naming the secret, never the value) unless the name is
    in O(rotate). When data already depends on a secret (O(data_exists)) and the file, or that
    name in it, is missing, the module fails instead of generating a value the data would not
    accept, and says how to restore the file (O(restore_hint)).
  - The file is written with mode C(0600) from its first byte (a temporary file in the same
    directory, created 0600 whatever the umask, fsync-ed and renamed over the old one), so no
    other user can read it at any moment and no reader sees half a file.
  - The secret values are only returned with O(return_values=true). B(Set no_log on the task)
    then, and on every task that uses RV(values).
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  path:
    description:
      - The secret file, for example V(/etc/langfuse/secrets.json). Its directory must exist (or see
        O(directory_mode)).
      - It must be a regular file; a symbolic link is refused (it could make the module read and
        hand out another file).
      - A file that cannot be parsed (see O(format)) makes the module fail; it is never replaced.
    type: path
    required: true
  format:
    description:
      - V(json) keeps a JSON object of name to value. Keys in the file that are not in O(names)
        are kept as they are.
      - V(text) keeps one secret as the whole file (surrounding whitespace is ignored when read),
        for files that other tools read as they are; O(names) must then hold exactly one name.
    type: str
    choices: [json, text]
    default: json
  trailing_newline:
    description:
      - With O(format=text), end the file with a newline when writing it.
    type: bool
    default: true
  names:
    description:
      - The secrets to ensure. Each one ends up in the file.
    type: list
    elements: str
    required: true
  generators:
    description:
      - How to generate a missing secret, per name. Names without an entry get
        V(alnum) characters, 32 of them.
      - Each entry is a dict with C(kind) (V(alnum) letters and digits, V(hex) lower-case hex,
        V(urlsafe) letters, digits, C(-) and C(_), V(uuid4) a random UUID), C(length) (random
        characters without the prefix, 16 to 4096, default 32; ignored for V(uuid4)) and
        C(prefix) (put in front, for example V(sk-)).
      - Values are drawn from Python's C(secrets) module.
    type: dict
    default: {}
  supplied:
    description:
      - Values given by the user (for example from Ansible Vault), per name. Empty values count as
        not given.
      - A supplied value is stored when the name has no stored value yet. One equal to the stored
        value changes nothing. One that differs from the stored value fails the module unless the
        name is in O(rotate).
      - Ansible masks every copy of a no_log option value in module results, so a value taken from
        here reads C(VALUE_SPECIFIED_IN_NO_LOG_PARAMETER) in RV(values); keep using the value you
        passed.
    type: dict
    default: {}
  rotate:
    description:
      - Names whose stored value may be replaced, by the O(supplied) value when there is one, else
        by a freshly generated one. A name listed here gets a new generated value on B(every) run
        without a supplied value, so list it for the one run that rotates it.
      - Rotating is only safe when everything that uses the old value changes with it in the same
        run (for example C(ALTER USER) for a database password); the caller must do that.
      - A name listed here may also be generated while O(data_exists) says data depends on it.
    type: list
    elements: str
    default: []
  data_exists:
    description:
      - Whether data already depends on the secrets (for example the database volume exists), as
        one boolean for every name or a dict of name to boolean (names left out count as V(false)).
      - While it is true for a name that has no stored value (the file is missing, or lacks the
        name), the module fails without writing anything rather than generate a value the data
        would reject. A value in O(supplied) is stored then, as it is not generated.
    type: raw
    default: false
  restore_hint:
    description:
      - Added to the failure message when O(data_exists) stops the module, to say how to restore
        the file for this deployment, for example where the backup is and how to start over.
    type: str
    default: ""
  rotate_hint:
    description:
      - Added to the failure message when a supplied value differs from a stored one, to say how
        to ask for a rotation in the calling role and what can be rotated.
    type: str
    default: ""
  return_values:
    description:
      - Return the secret values in RV(values) (and RV(previous_values)). Set C(no_log) on the task.
    type: bool
    default: false
  owner:
    description:
      - User that should own the file (name or uid). Default is the owner the file already has, or
        the user the module runs as for a new file.
    type: str
  group:
    description:
      - Group of the file (name or gid). Default is the group the file already has, or the primary
        group of the user the module runs as for a new file.
    type: str
  mode:
    description:
      - Permissions of the file once written (the file is always created C(0600) and changed
        afterwards, if at all). Use a quoted octal string such as V('0600').
    type: raw
    default: "0600"
  directory_mode:
    description:
      - When set, the file's directory is created when missing (its parents too) and kept at this mode, with
        O(owner) and O(group) when given - one call instead of a separate M(ansible.builtin.file) task. Use a quoted
        octal string such as V('0700'). Unset, the directory must exist.
    type: raw
attributes:
  check_mode:
    support: full
    description:
      - Reports what would be created, kept and rotated and whether the file would change, and
        writes nothing. Values that would be generated are not made up, so they are not in
        RV(values).
  diff_mode:
    support: partial
    description:
      - Shows which names would be created, kept and rotated; never a value.
notes:
  - Failure messages and the diff never contain a secret value.
  - The module decides per name; it fails before writing anything when any name needs a decision
    (a differing supplied value, or a missing secret that data depends on).
seealso:
  - module: llmops.devbox.langfuse_api_key
"""

EXAMPLES = r"""
- name: Generate the stack's secrets once, keep them, refuse to replace them silently
  llmops.devbox.secret_file:
    path: /etc/myapp/secrets.json
    names: [db_password, encryption_key, api_key]
    generators:
      encryption_key: {kind: hex, length: 64}
      api_key: {kind: hex, length: 64, prefix: sk-}
    supplied: "{{ myapp_secrets }}"  # from Vault; empty values count as not given
    rotate: "{{ myapp_rotate_secrets }}"
    data_exists:
      db_password: "{{ 'myapp_db' in __volumes.stdout_lines }}"
      encryption_key: "{{ 'myapp_db' in __volumes.stdout_lines }}"
    restore_hint: >-
      Restore /etc/myapp/secrets.json from your backup, or, to start over, remove the myapp_db volume.
    owner: root
    group: root
    return_values: true
  register: __myapp_secrets
  no_log: true

- name: Use them (bracket access - result.values would be the dict method)
  ansible.builtin.set_fact:
    myapp_settled: "{{ __myapp_secrets['values'] | combine(myapp_secrets | dict2items
                       | rejectattr('value', 'equalto', '') | items2dict) }}"
  no_log: true

- name: A file that holds one key as it is (no newline), read by other tools
  llmops.devbox.secret_file:
    path: /etc/myapp/master_key
    format: text
    trailing_newline: false
    names: [master_key]
    generators:
      master_key: {kind: hex, length: 64, prefix: sk-}
"""

RETURN = r"""
path:
  description: The secret file.
  returned: always
  type: str
  sample: /etc/langfuse/secrets.json
created:
  description: Names that had no stored value and were added (generated, or taken from O(supplied)).
  returned: success
  type: list
  elements: str
  sample: [salt, encryption_key]
generated:
  description: Names whose new value was (or in check mode would be) generated.
  returned: success
  type: list
  elements: str
  sample: [salt, encryption_key]
kept:
  description: Names whose stored value stays.
  returned: success
  type: list
  elements: str
  sample: [postgres_password]
rotated:
  description: Names whose stored value was (or in check mode would be) replaced, see O(rotate).
  returned: success
  type: list
  elements: str
  sample: []
values:
  description:
    - Name to value, for every name in O(names) that has a value. Use C(result['values']) in
      templates (C(result.values) is the dict method).
    - A value taken from O(supplied) reads C(VALUE_SPECIFIED_IN_NO_LOG_PARAMETER).
    - In check mode a value that would be generated is left out.
  returned: when O(return_values=true)
  type: dict
  sample: {"postgres_password": "Zx8..."}
previous_values:
  description:
    - For each rotated name, the value it replaced (for example to put it back when the rest of
      the rotation fails).
  returned: when O(return_values=true)
  type: dict
  sample: {}
"""

import grp  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.common.text.converters import to_bytes, to_native  # noqa: E402
from ansible.module_utils.parsing.convert_bool import boolean  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._secret_file import (  # noqa: E402
    SecretFileError,
    normalize_generator,
    plan,
    read_private,
    write_private,
)


def _resolve(kind, value):
    """uid/gid for an owner/group option (name or number), or None."""
    if value in (None, ""):
        return None
    lookup = pwd.getpwnam if kind == "owner" else grp.getgrnam
    try:
        return int(value)
    except ValueError:
        pass
    try:
        entry = lookup(value)
    except KeyError:
        raise SecretFileError(f"{kind} {value} does not exist on this host") from None
    return entry.pw_uid if kind == "owner" else entry.gr_gid


def _data_exists(value, names):
    """data_exists as name -> bool."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise SecretFileError(f"data_exists names {', '.join(unknown)}, which are not in names")
        return {name: boolean(value.get(name, False), strict=False) for name in names}
    try:
        flag = boolean(value, strict=True)
    except TypeError:
        raise SecretFileError("data_exists must be a boolean or a dict of name to boolean") from None
    return {name: flag for name in names}


def _load(path, fmt, names):
    """The stored values (dict), or None when there is no file."""
    raw = read_private(path)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"{path} is not UTF-8 text. Fix it or restore it from a backup; it is never "
                              f"replaced, because the secrets in it may be in use.") from None
    if fmt == "text":
        value = text.strip()
        return {names[0]: value} if value else {}
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        # Never echo the content: it holds secrets.
        raise SecretFileError(f"{path} is not valid JSON. Fix it or restore it from a backup; it is never "
                              f"replaced, because the secrets in it may be in use.") from None
    if not isinstance(data, dict):
        raise SecretFileError(f"{path} is not a JSON object of name to secret. Fix it or restore it from a "
                              f"backup; it is never replaced, because the secrets in it may be in use.")
    bad = sorted(name for name in names if name in data and not isinstance(data[name], str))
    if bad:
        raise SecretFileError(f"{path} holds a value that is not a string for {', '.join(bad)}. Fix the file "
                              f"(the value must be a JSON string); it is never replaced on its own.")
    return data


def _check_options(p):
    names = p["names"]
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise SecretFileError("names must be a non-empty list of non-empty strings")
    if len(set(names)) != len(names):
        raise SecretFileError("names lists a name twice")
    if p["format"] == "text" and len(names) != 1:
        raise SecretFileError("format=text keeps exactly one secret: names must hold one name")
    for option in ("generators", "supplied"):
        unknown = sorted(set(p[option]) - set(names))
        if unknown:
            raise SecretFileError(f"{option} names {', '.join(unknown)}, which are not in names")
    unknown = sorted(set(p["rotate"]) - set(names))
    if unknown:
        raise SecretFileError(f"rotate names {', '.join(unknown)}, which are not in names")
    supplied = {}
    for name, value in p["supplied"].items():
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise SecretFileError(f"the value supplied for {name} must be a string")
        if p["format"] == "text" and value != value.strip():
            raise SecretFileError(f"the value supplied for {name} must not start or end with whitespace "
                                  f"(format=text ignores it when reading)")
        supplied[name] = value
    generators = {name: normalize_generator(name, p["generators"].get(name)) for name in names}
    return names, supplied, generators


def _diff(path, stored, result):
    def lines(entries):
        return "".join(f"{name}: {state}\n" for name, state in entries)

    before = [(name, "(stored)") for name in result.kept + result.rotated]
    after = ([(name, "(stored)") for name in result.kept]
             + [(name, "(rotated)") for name in result.rotated]
             + [(name, "(created)") for name in result.created])
    return dict(before_header=path, after_header=path,
                before=lines(sorted(before)) if stored is not None else "",
                after=lines(sorted(after)))


def _settle(module):
    """(names, stored values or None, Plan, uid, gid); SecretFileError when the caller must decide."""
    p = module.params
    path = p["path"]
    names, supplied, generators = _check_options(p)
    data_exists = _data_exists(p["data_exists"], names)
    uid, gid = _resolve("owner", p["owner"]), _resolve("group", p["group"])
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory) and not (p["directory_mode"] is not None and module.check_mode):
        raise SecretFileError(f"Cannot keep secrets in {path}: directory {directory} does not exist. Create "
                              f"it first (e.g. ansible.builtin.file, mode '0700').")
    stored = _load(path, p["format"], names)
    result = plan(stored, names, generators=generators, supplied=supplied, rotate=p["rotate"],
                  data_exists=data_exists, path=path, restore_hint=p["restore_hint"],
                  rotate_hint=p["rotate_hint"], make_values=not module.check_mode)
    return names, stored, result, uid, gid


def _directory(module):
    """Create the file's directory when missing and keep its mode and owner; True when it changed."""
    p = module.params
    directory = os.path.dirname(p["path"]) or "."
    file_args = dict(path=directory, mode=p["directory_mode"], owner=p["owner"], group=p["group"],
                     secontext=[None, None, None], attributes=None)
    if os.path.isdir(directory):
        return module.set_fs_attributes_if_different(file_args, False)
    if os.path.lexists(directory):
        module.fail_json(msg=f"Cannot keep secrets in {p['path']}: {directory} exists and is not a directory.",
                         path=p["path"])
    if not module.check_mode:
        try:
            os.makedirs(directory, mode=0o700)
        except OSError as exc:
            module.fail_json(msg=f"Cannot create {directory} for {p['path']}: {to_native(exc.strerror or exc)}",
                             path=p["path"])
        module.set_fs_attributes_if_different(file_args, True)
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            format=dict(type="str", choices=["json", "text"], default="json"),
            trailing_newline=dict(type="bool", default=True),
            names=dict(type="list", elements="str", required=True),
            generators=dict(type="dict", default={}),
            supplied=dict(type="dict", default={}, no_log=True),
            rotate=dict(type="list", elements="str", default=[]),
            data_exists=dict(type="raw", default=False),
            restore_hint=dict(type="str", default=""),
            rotate_hint=dict(type="str", default=""),
            return_values=dict(type="bool", default=False),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0600"),
            directory_mode=dict(type="raw"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = p["path"]
    directory_changed = _directory(module) if p["directory_mode"] is not None else False

    try:
        names, stored, result, uid, gid = _settle(module)
    except SecretFileError as exc:
        module.fail_json(msg=to_native(exc), path=path)
        raise  # not reached: fail_json exits

    changed = result.changes
    if changed and not module.check_mode:
        if p["format"] == "text":
            content = result.values[names[0]] + ("\n" if p["trailing_newline"] else "")
        else:
            merged = dict(stored or {})
            merged.update({name: result.values[name] for name in result.created + result.rotated})
            content = json.dumps(merged, indent=4, sort_keys=True) + "\n"
        keep_uid = keep_gid = None
        if stored is not None:  # a rewrite keeps the file's owner unless told otherwise
            st = os.lstat(path)
            keep_uid, keep_gid = st.st_uid, st.st_gid
        try:
            try:
                write_private(path, to_bytes(content, errors="surrogate_or_strict"),
                              uid=uid if uid is not None else keep_uid,
                              gid=gid if gid is not None else keep_gid)
            except PermissionError:
                if uid is not None or gid is not None:
                    raise
                # Not allowed to give the file its old owner back: it becomes ours (still 0600).
                write_private(path, to_bytes(content, errors="surrogate_or_strict"))
        except OSError as exc:
            module.fail_json(msg=f"Cannot write secret file {path}: {to_native(exc.strerror or exc)}", path=path)

    if os.path.exists(path):
        file_args = dict(path=path, mode=p["mode"], owner=p["owner"], group=p["group"],
                         secontext=[None, None, None], attributes=None)
        changed = module.set_fs_attributes_if_different(file_args, changed)

    changed = changed or directory_changed
    out = dict(changed=changed, path=path, created=result.created, generated=result.generated,
               kept=result.kept, rotated=result.rotated)
    if p["return_values"]:
        out["values"] = result.values
        out["previous_values"] = result.previous
    if module._diff:
        out["diff"] = _diff(path, stored, result)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
