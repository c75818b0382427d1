#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: box_lock
short_description: Take or release a lock file that serialises long operations on a box
version_added: 0.1.0
description:
  - Keeps one operation at a time on a box (for example a LiteLLM config push), so that two
    operators who run it at once cannot both proceed. The lock is a small JSON file on the
    managed host that names who holds it, why, and since when.
  - O(state=held) creates the file atomically (C(O_CREAT|O_EXCL), mode C(0600)), creating missing
    parent directories with mode C(0755). When another run holds it, the module polls once a
    second for up to O(wait) seconds and then fails, naming the holder, the purpose, since when
    and the lock file.
  - A lock older than its expiry (O(expires_after) of the run that took it) counts as abandoned,
    for example by a run killed with Ctrl-C, and is taken over with a warning that names the old
    holder.
  - O(state=released) removes the file only when its token is O(token), so a run never releases
    someone else's lock (for example one that took over this run's expired lock).
  - Release the lock in the C(always) section of a C(block), with the RV(token) the C(held) task
    returned.
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  path:
    description:
      - The lock file, for example V(/var/lib/llmops/litellm-config.lock). Missing parent
        directories are created (mode C(0755)).
      - It must be a regular file when it exists; anything else makes the module fail.
    type: path
    required: true
  state:
    description:
      - V(held) takes the lock (waiting up to O(wait) seconds for another holder to release it).
      - V(released) removes the lock when its token is O(token); otherwise it leaves it with a
        warning. A missing lock file is fine (nothing to release).
    type: str
    choices: [held, released]
    default: held
  holder:
    description:
      - Who takes the lock, as people should read it in the message of the run that has to wait,
        for example V(alice@laptop pid 4242, playbook litellm.yml).
      - Required with O(state=held).
    type: str
  purpose:
    description:
      - What the holder is doing, for example V(LiteLLM config push).
    type: str
    default: ""
  wait:
    description:
      - Seconds to wait for another holder to release the lock before failing. V(0) tries once.
    type: int
    default: 0
  expires_after:
    description:
      - Seconds after which the lock this task takes counts as abandoned and may be taken over by
        another run. Written into the lock file (as C(expires_epoch)), so the expiry of a lock is
        the one its holder chose, whatever later runs pass.
      - A lock file that cannot be read as a lock (corrupt or unreadable) counts as held by
        V(unknown) since its modification time, and as abandoned this many seconds after it.
      - Choose it well above the longest run of the operation.
    type: int
    default: 3600
  token:
    description:
      - The id of a lock, as returned in RV(token) by the O(state=held) task. Not a secret.
      - With O(state=released) (required there), the lock file is removed only when it holds this
        token.
      - With O(state=held), a lock file that already holds this token is this run's own lock; it is
        kept (not changed, not waited for, even when expired). A new lock gets this token; without
        it, a new lock gets a random one (uuid4 hex).
    type: str
attributes:
  check_mode:
    support: full
    description:
      - Creates and removes nothing and never waits. O(state=held) reports whether it would take
        the lock (C(changed)), take over an abandoned one (RV(took_over)) or have to wait for
        another holder (RV(would_wait), with a warning naming the holder) instead of failing.
  diff_mode:
    support: none
    description: Not supported.
notes:
  - C(changed) is V(true) when the lock file was created (O(state=held)) or removed
    (O(state=released)), so every run that takes and releases a lock reports two changes. Set
    C(changed_when=false) on both tasks when that is noise.
  - Reading, creating, taking over and removing the lock file happen while holding an exclusive
    C(flock) on the lock file's directory, for a moment each, so two runs that take over the same
    abandoned lock at once cannot both win, and a release never removes a lock that another run
    has just taken over. Keep the lock file on a local file system.
  - The lock is advisory; only runs that take it through this module are kept apart.
seealso:
  - module: ansible.builtin.wait_for
"""

EXAMPLES = r"""
- name: Push the LiteLLM config, one operator at a time
  block:
    - name: Take the box's config lock
      llmops.devbox.box_lock:
        path: /var/lib/llmops/litellm-config.lock
        holder: "{{ lookup('env', 'USER') }}@{{ lookup('pipe', 'hostname') }}, playbook litellm.yml"
        purpose: LiteLLM config push
        wait: 120
        expires_after: 1800
      register: __litellm_lock
      changed_when: false

    - name: Push the config
      ansible.builtin.template:
        src: config.yaml.j2
        dest: /opt/litellm/config.yaml
        mode: "0640"
  always:
    - name: Release the box's config lock (only if it is still ours)
      llmops.devbox.box_lock:
        path: /var/lib/llmops/litellm-config.lock
        state: released
        token: "{{ __litellm_lock.token | default('') }}"
      changed_when: false
"""

RETURN = r"""
path:
  description: The lock file.
  returned: always
  type: str
  sample: /var/lib/llmops/litellm-config.lock
token:
  description:
    - The id of the lock this task holds; pass it to the O(state=released) task.
    - In check mode, the token the lock would get.
  returned: when O(state=held), unless the module fails
  type: str
  sample: 3f2b8c0e9d7a4f51b6c2a1e0d9f8c7b6
holder:
  description:
    - Who holds the lock after this task, that is O(holder).
    - In check mode with RV(would_wait), and on failure because another run holds the lock, that
      run's holder.
  returned: when O(state=held)
  type: str
  sample: alice@laptop pid 4242, playbook litellm.yml
since:
  description: When the lock that RV(holder) holds was taken, UTC ISO 8601.
  returned: when O(state=held)
  type: str
  sample: "2025-06-01T09:30:00Z"
waited:
  description: Seconds spent waiting for another holder to release the lock (also on failure).
  returned: when O(state=held)
  type: float
  sample: 12.03
took_over:
  description:
    - The content of the abandoned lock this task took over (or in check mode would take over),
      null when it took none.
    - A lock file that could not be read shows C(holder) V(unknown).
  returned: when O(state=held)
  type: dict
  sample:
    holder: bob@desktop pid 99, playbook litellm.yml
    purpose: LiteLLM config push
    token: 0c1d2e3f405162738495a6b7c8d9e0f1
    since: "2025-06-01T07:00:00Z"
    since_epoch: 1748761200
    expires_epoch: 1748764800
would_wait:
  description:
    - Check mode only; V(true) when another run holds the lock, so a real run would wait up to
      O(wait) seconds for it and fail if it were still held.
  returned: when O(state=held)
  type: bool
  sample: false
lock:
  description:
    - O(state=held), the content of the lock file this task holds (in check mode, would hold; with
      RV(would_wait), or on failure because another run holds it, that run's lock).
    - O(state=released), the content of the lock file found (removed, or left because its token
      differs), null when there was none.
    - Keys C(holder), C(purpose), C(token), C(since) (UTC ISO 8601), C(since_epoch) and
      C(expires_epoch) (seconds since the epoch).
  returned: always
  type: dict
  sample:
    holder: alice@laptop pid 4242, playbook litellm.yml
    purpose: LiteLLM config push
    token: 3f2b8c0e9d7a4f51b6c2a1e0d9f8c7b6
    since: "2025-06-01T09:30:00Z"
    since_epoch: 1748770200
    expires_epoch: 1748772000
"""

# Ansible requires the documentation blocks before any import, hence the E402 waivers.
import errno  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import stat  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.common.text.converters import to_bytes, to_native  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._poll import poll  # noqa: E402

POLL = 1.0  # seconds between two looks at a lock held by another run
GUARD_TIMEOUT = 60.0  # seconds to get the directory flock (held for a moment by each run)
GUARD_POLL = 0.02  # seconds between two tries to get it
UNKNOWN = "unknown"


class BoxLockError(Exception):
    """The module fails with this message (and the result fields in .result)."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = result


def _iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _why(error):
    return to_native(getattr(error, "strerror", None) or error)


def _make_dirs(directory):
    """Create directory and missing parents, each 0755 whatever the umask."""
    missing = []
    current = directory
    while current and not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for new in reversed(missing):
        try:
            os.mkdir(new, 0o755)
        except FileExistsError:
            if not os.path.isdir(new):
                raise BoxLockError(f"Cannot create the lock directory {directory}: {new} exists and is not a "
                                   f"directory. Choose another lock path or remove {new}.") from None
            continue
        except OSError as exc:
            raise BoxLockError(f"Cannot create the lock directory {new}: {_why(exc)}. Check that the user the "
                               f"module runs as (become?) may write to {os.path.dirname(new)}.") from None
        os.chmod(new, 0o755)  # noqa: S103 - a lock directory anyone may read, as documented


@contextmanager
def _guard(directory):
    """An exclusive flock on the lock's directory, for the moment a run reads and changes the lock."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        raise BoxLockError(f"Cannot open the lock directory {directory}: {_why(exc)}. Check that it exists "
                           f"and that the user the module runs as may read it.") from None

    def try_flock(remaining):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise BoxLockError(f"Cannot flock the lock directory {directory}: {_why(exc)}. Keep the "
                                   f"lock file on a local file system that supports flock.") from None
            return None
        return True

    try:
        if not poll(try_flock, GUARD_TIMEOUT, GUARD_POLL).done:
            raise BoxLockError(f"Another run kept an exclusive flock on {directory} for over "
                               f"{GUARD_TIMEOUT:.0f}s (box_lock holds it for a moment only). Check "
                               f"with 'fuser -v {directory}' or 'lsof {directory}' for a stuck "
                               f"process.")
        yield
    finally:
        os.close(fd)  # also drops the flock


def _read(path, expires_after):
    """The lock at path as a dict (with 'holder', 'since', 'expires_epoch'...), or None when absent.

    A file that is not a lock (unreadable, not JSON, missing fields) is held by 'unknown' since its
    mtime and abandoned expires_after seconds later; such a dict has 'unreadable' set to the reason.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BoxLockError(f"Cannot look at the lock file {path}: {_why(exc)}. Check the permissions of its "
                           f"directory.") from None
    if not stat.S_ISREG(st.st_mode):
        raise BoxLockError(f"The lock file {path} exists but is not a regular file. Remove it (or choose "
                           f"another path) and rerun.")
    reason = None
    data = None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(65536)
    except FileNotFoundError:
        return None
    except OSError as exc:
        reason = f"cannot read it: {_why(exc)}"
    else:
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            reason = "not a JSON lock"
    if data is not None:
        if not isinstance(data, dict):
            reason = "not a JSON object"
        elif not isinstance(data.get("holder"), str) or not _is_number(data.get("since_epoch")):
            reason = "holder or since_epoch missing"
    if reason is not None:
        return dict(holder=UNKNOWN, purpose="", token=None, since=_iso(st.st_mtime), since_epoch=int(st.st_mtime),
                    expires_epoch=int(st.st_mtime) + expires_after, unreadable=reason)
    lock = dict(data)
    lock.setdefault("purpose", "")
    if not _is_number(lock.get("expires_epoch")):
        lock["expires_epoch"] = int(lock["since_epoch"]) + expires_after
    if not isinstance(lock.get("since"), str):
        lock["since"] = _iso(lock["since_epoch"])
    return lock


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(lock):
    text = lock["holder"]
    if lock.get("purpose"):
        text += f" ({lock['purpose']})"
    text += f" since {lock['since']}"
    if lock.get("unreadable"):
        text += f" (the lock file is {lock['unreadable']}; since is its modification time)"
    return text


def _new_lock(holder, purpose, token, expires_after):
    now = int(time.time())
    return dict(holder=holder, purpose=purpose, token=token, since=_iso(now), since_epoch=now,
                expires_epoch=now + expires_after)


def _create(path, lock):
    """Create path with the lock in it, 0600; False when it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise BoxLockError(f"Cannot create the lock file {path}: {_why(exc)}. Check that the user the module "
                           f"runs as (become?) may write to {os.path.dirname(path) or '.'}.") from None
    try:
        os.fchmod(fd, 0o600)  # exactly 0600 whatever the umask
        content = to_bytes(json.dumps(lock, indent=2, sort_keys=True) + "\n", errors="surrogate_or_strict")
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass
        raise BoxLockError(f"Cannot write the lock file {path}: {_why(exc)}. Check the free space and "
                           f"permissions of {os.path.dirname(path) or '.'}.") from None
    os.close(fd)
    return True


def _take_over(path, stale, expires_after):
    """Move the abandoned lock aside and remove it. Called under the directory guard, with stale just read."""
    aside = f"{path}.abandoned-{uuid.uuid4().hex}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # released meanwhile by a run that does not honour the guard: just create
    except OSError as exc:
        raise BoxLockError(f"Cannot take over the abandoned lock {path} (held by {_describe(stale)}): "
                           f"{_why(exc)}. Check the permissions of {os.path.dirname(path) or '.'}, or remove "
                           f"{path} by hand if that run is dead.") from None
    moved = _read(aside, expires_after)
    if moved is not None and moved.get("token") != stale.get("token") and not moved.get("unreadable"):
        # Someone outside the guard replaced it meanwhile: that lock is not abandoned; put it back.
        try:
            os.link(aside, path)
        except OSError:
            pass
    try:
        os.unlink(aside)
    except OSError:
        pass


def _public(lock):
    return None if lock is None else {k: v for k, v in lock.items() if k != "unreadable"}


def acquire(path, holder, purpose="", token=None, wait=0, expires_after=3600, check_mode=False,
            sleep=time.sleep, warn=None):
    """Take the lock at path; the module's result (warnings go to warn). BoxLockError to fail."""
    warn = warn or (lambda msg: None)
    token = token or uuid.uuid4().hex
    directory = os.path.dirname(path) or "."
    result = dict(path=path, would_wait=False, took_over=None)

    if check_mode:
        current = _read(path, expires_after) if os.path.isdir(directory) else None
        lock = _new_lock(holder, purpose, token, expires_after)
        if current is None:
            return dict(result, changed=True, token=token, holder=holder, since=lock["since"], waited=0.0, lock=lock)
        if current.get("token") == token:
            return dict(result, changed=False, token=token, holder=current["holder"], since=current["since"],
                        waited=0.0, lock=_public(current))
        if current["expires_epoch"] <= time.time():
            warn(f"Check mode: would take over the abandoned lock {path}, held by {_describe(current)} and "
                 f"expired at {_iso(current['expires_epoch'])}.")
            return dict(result, changed=True, token=token, holder=holder, since=lock["since"], waited=0.0,
                        lock=lock, took_over=_public(current))
        warn(f"Check mode: {path} is held by {_describe(current)}; a real run would wait up to {wait}s for it "
             f"and fail if it is still held.")
        return dict(result, changed=False, would_wait=True, token=token, holder=current["holder"],
                    since=current["since"], waited=0.0, lock=_public(current))

    _make_dirs(directory)
    seen = {}

    def attempt(remaining):
        """The result once this run holds the lock, None while another run holds it."""
        with _guard(directory):
            while True:  # looks again at once when a run outside the guard created the lock meanwhile
                current = seen["current"] = _read(path, expires_after)
                took_over = None
                if current is not None and current.get("token") == token:
                    return dict(result, changed=False, token=token, holder=current["holder"],
                                since=current["since"], lock=_public(current))
                if current is not None and current["expires_epoch"] <= time.time():
                    _take_over(path, current, expires_after)
                    took_over = current
                if current is not None and took_over is None:
                    return None
                lock = _new_lock(holder, purpose, token, expires_after)
                if _create(path, lock):
                    if took_over is not None:
                        warn(f"Took over the abandoned lock {path} from {_describe(took_over)}, which expired "
                             f"at {_iso(took_over['expires_epoch'])}: that run probably died (for example "
                             f"Ctrl-C). Check that it is not still running.")
                    return dict(result, changed=True, token=token, holder=holder, since=lock["since"],
                                lock=lock, took_over=_public(took_over))

    polled = poll(attempt, wait, POLL, sleep=sleep)
    waited = round(polled.elapsed, 2)
    if polled.done:
        return dict(polled.value, waited=waited)
    current = seen["current"]
    raise BoxLockError(
        f"Cannot take the lock {path}: it is held by {_describe(current)}"
        f" (waited {waited}s, wait={wait}); it counts as abandoned after {_iso(current['expires_epoch'])}. "
        f"Another run is working on this box: wait for it to finish and rerun, or if that run died, remove "
        f"{path}.", waited=waited, lock=_public(current), holder=current["holder"], since=current["since"])


def release(path, token, check_mode=False, warn=None):
    """Remove the lock at path when it holds token; the module's result. BoxLockError to fail."""
    warn = warn or (lambda msg: None)
    directory = os.path.dirname(path) or "."
    result = dict(path=path)
    if not os.path.isdir(directory):
        return dict(result, changed=False, lock=None)
    if check_mode:
        current = _read(path, 0)
        if current is not None and token and current.get("token") == token:
            return dict(result, changed=True, lock=_public(current))
    else:
        with _guard(directory):
            current = _read(path, 0)
            if current is not None and token and current.get("token") == token:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise BoxLockError(f"Cannot remove the lock file {path}: {_why(exc)}. Check that the user "
                                       f"the module runs as (become?) may write to {directory}.") from None
                return dict(result, changed=True, lock=_public(current))
    if current is not None:
        warn(f"Left the lock {path} in place: it is held by {_describe(current)} with another token, not by "
             f"this run (was this run's lock taken over after it expired?).")
    return dict(result, changed=False, lock=_public(current))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["held", "released"], default="held"),
            holder=dict(type="str"),
            purpose=dict(type="str", default=""),
            wait=dict(type="int", default=0),
            expires_after=dict(type="int", default=3600),
            token=dict(type="str", no_log=False),
        ),
        required_if=[("state", "held", ("holder",)), ("state", "released", ("token",))],
        supports_check_mode=True,
    )
    p = module.params
    path = p["path"]
    if p["state"] == "held" and not (p["holder"] or "").strip():
        module.fail_json(msg="holder must name who takes the lock (for example 'alice@laptop, playbook "
                             "litellm.yml'); it is shown to every run that has to wait.", path=path)
    if p["wait"] < 0 or p["expires_after"] < 1:
        module.fail_json(msg=f"wait must be >= 0 and expires_after >= 1 (got wait={p['wait']}, "
                             f"expires_after={p['expires_after']})", path=path)
    try:
        if p["state"] == "held":
            out = acquire(path, p["holder"], purpose=p["purpose"] or "", token=p["token"], wait=p["wait"],
                          expires_after=p["expires_after"], check_mode=module.check_mode, warn=module.warn)
        else:
            out = release(path, p["token"], check_mode=module.check_mode, warn=module.warn)
    except BoxLockError as exc:
        module.fail_json(msg=to_native(exc), path=path, **exc.result)
        raise  # not reached: fail_json exits
    module.exit_json(**out)


if __name__ == "__main__":
    main()
