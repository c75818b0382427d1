"""llmops.devbox.box_lock through its real main() (a fresh Python process fed the way Ansible feeds it),
plus the takeover and release races driven in-process, where a barrier makes two runs read the same
abandoned lock before either acts on it."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_collections.llmops.devbox.plugins.modules import box_lock
from ansible_collections.llmops.devbox.tests.unit.httpserver import run_module

ALICE = "alice@laptop pid 4242, playbook litellm.yml"
BOB = "bob@desktop pid 99, playbook litellm.yml"
PURPOSE = "LiteLLM config push"


def lock_module(**args):
    check_mode = args.pop("check_mode", False)
    return run_module("box_lock", args, check_mode=check_mode)


def take(path, holder=ALICE, **args):
    args.setdefault("purpose", PURPOSE)
    return lock_module(path=str(path), holder=holder, **args)


def release(path, token, **args):
    return lock_module(path=str(path), state="released", token=token, **args)


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def warnings_text(result):
    # ansible-core 2.19 returns warnings as structured events; the text is inside.
    return json.dumps(result.get("warnings", []))


def write_lock(path, holder=BOB, age=60, expires_in=3600, token="0" * 32, purpose=PURPOSE):
    """A lock as another run would have written it, taken `age` s ago, expiring `expires_in` s from now."""
    now = int(time.time())
    lock = dict(holder=holder, purpose=purpose, token=token, since=box_lock._iso(now - age), since_epoch=now - age,
                expires_epoch=now + expires_in)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(lock))
    path.chmod(0o600)
    return lock


@pytest.fixture
def path(tmp_path):
    return tmp_path / "locks" / "litellm-config.lock"


def leftovers(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


# --- taking a free lock -----------------------------------------------------------------------------

def test_creates_the_lock_file_with_who_why_and_when(path):
    before = int(time.time())
    rc, result = take(path, expires_after=1800)

    assert rc == 0, result
    assert result["changed"] is True
    assert result["holder"] == ALICE
    assert len(result["token"]) == 32 and int(result["token"], 16) >= 0  # uuid4 hex
    assert result["took_over"] is None
    assert result["would_wait"] is False
    assert result["waited"] < 1
    stored = json.loads(path.read_text())
    assert stored == result["lock"]
    assert set(stored) == {"holder", "purpose", "token", "since", "since_epoch", "expires_epoch"}
    assert stored["holder"] == ALICE and stored["purpose"] == PURPOSE and stored["token"] == result["token"]
    assert before <= stored["since_epoch"] <= time.time()
    assert stored["expires_epoch"] == stored["since_epoch"] + 1800
    assert stored["since"] == result["since"] == box_lock._iso(stored["since_epoch"])
    assert stored["since"].endswith("Z")
    assert leftovers(path) == []


def test_lock_file_is_0600_and_parents_0755_whatever_the_umask(tmp_path):
    path = tmp_path / "a" / "b" / "box.lock"
    for umask in (0o000, 0o077):
        old = os.umask(umask)  # the module process inherits it
        try:
            rc, result = take(path)
        finally:
            os.umask(old)
        assert rc == 0, result
        assert file_mode(path) == 0o600
        assert file_mode(tmp_path / "a") == 0o755 and file_mode(tmp_path / "a" / "b") == 0o755
        path.unlink()
        (tmp_path / "a" / "b").rmdir()
        (tmp_path / "a").rmdir()


# --- another run holds it ---------------------------------------------------------------------------

def test_second_holder_fails_naming_the_first_and_the_path(path):
    rc, first = take(path, holder=ALICE)
    assert rc == 0, first
    content = path.read_bytes()

    rc, result = take(path, holder=BOB, purpose="something else")

    assert rc == 1, result
    msg = result["msg"]
    assert f"Cannot take the lock {path}" in msg
    assert ALICE in msg and PURPOSE in msg and first["since"] in msg
    assert BOB not in msg
    assert f"wait for it to finish and rerun, or if that run died, remove {path}" in msg
    assert result["holder"] == ALICE and result["lock"]["token"] == first["token"]
    assert path.read_bytes() == content  # untouched


def test_waits_up_to_wait_seconds_then_fails(path):
    write_lock(path, holder=ALICE)

    started = time.monotonic()
    rc, result = take(path, holder=BOB, wait=2)

    assert rc == 1, result
    assert 2 <= result["waited"] < 4
    assert time.monotonic() - started >= 2
    assert "waited 2" in result["msg"] and ALICE in result["msg"]


def test_wait_succeeds_when_the_holder_releases_in_time(path):
    rc, first = take(path, holder=ALICE)
    assert rc == 0, first

    def release_later():
        time.sleep(1)
        return release(path, first["token"])

    with ThreadPoolExecutor(1) as pool:
        releasing = pool.submit(release_later)
        rc, result = take(path, holder=BOB, wait=15)
        rc_release, released = releasing.result()

    assert rc_release == 0 and released["changed"] is True, released
    assert rc == 0, result
    assert result["changed"] is True and result["holder"] == BOB and result["took_over"] is None
    assert 0.5 <= result["waited"] < 10
    assert result["token"] != first["token"]
    assert json.loads(path.read_text())["holder"] == BOB
    assert not result.get("warnings")


# --- abandoned locks --------------------------------------------------------------------------------

def test_expired_lock_is_taken_over_with_a_warning_naming_the_old_holder(path):
    old = write_lock(path, holder=BOB, age=7200, expires_in=-3600)

    rc, result = take(path, holder=ALICE)

    assert rc == 0, result
    assert result["changed"] is True
    assert result["took_over"] == old
    assert result["holder"] == ALICE and result["token"] != old["token"]
    warning = warnings_text(result)
    assert "Took over the abandoned lock" in warning and BOB in warning and str(path) in warning
    stored = json.loads(path.read_text())
    assert stored["holder"] == ALICE and stored["token"] == result["token"]
    assert file_mode(path) == 0o600
    assert leftovers(path) == []  # the abandoned lock moved aside is gone


def test_expiry_is_the_one_its_holder_chose(path):
    """A lock taken 2 h ago with expires_after 3 h is not abandoned for a run that passes 1 h."""
    write_lock(path, holder=BOB, age=7200, expires_in=3600)

    rc, result = take(path, holder=ALICE, expires_after=3600)

    assert rc == 1, result
    assert BOB in result["msg"]


def test_lock_without_expiry_expires_after_the_callers_expires_after(path):
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"holder": BOB, "since_epoch": int(time.time()) - 120, "token": "t"}))

    rc, held = take(path, holder=ALICE, expires_after=600)
    assert rc == 1 and BOB in held["msg"], held

    rc, result = take(path, holder=ALICE, expires_after=60)
    assert rc == 0, result
    assert result["took_over"]["holder"] == BOB


# --- corrupt lock files -----------------------------------------------------------------------------

def test_corrupt_lock_file_is_held_by_unknown_since_its_mtime(path):
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    mtime = int(time.time()) - 30
    os.utime(path, (mtime, mtime))

    rc, result = take(path, holder=ALICE)

    assert rc == 1, result
    msg = result["msg"]
    assert "held by unknown since " + box_lock._iso(mtime) in msg
    assert "not a JSON lock" in msg
    assert f"remove {path}" in msg
    assert path.read_text() == "{not json"


def test_corrupt_lock_file_older_than_expires_after_is_taken_over(path):
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xfe garbage")
    mtime = int(time.time()) - 600
    os.utime(path, (mtime, mtime))

    rc, result = take(path, holder=ALICE, expires_after=300)

    assert rc == 0, result
    assert result["took_over"]["holder"] == "unknown"
    assert result["took_over"]["since"] == box_lock._iso(mtime)
    assert "unreadable" not in result["took_over"]
    assert "unknown" in warnings_text(result)
    assert json.loads(path.read_text())["holder"] == ALICE


def test_lock_path_that_is_not_a_file_fails_saying_what_to_do(path):
    path.mkdir(parents=True)

    rc, result = take(path)

    assert rc == 1, result
    assert f"The lock file {path} exists but is not a regular file" in result["msg"]
    assert "Remove it" in result["msg"]


# --- releasing --------------------------------------------------------------------------------------

def test_release_with_the_right_token_removes_the_lock(path):
    rc, held = take(path)
    assert rc == 0, held

    rc, result = release(path, held["token"])

    assert rc == 0, result
    assert result["changed"] is True
    assert result["lock"]["holder"] == ALICE
    assert not path.exists()
    assert leftovers(path) == []


def test_release_with_another_token_leaves_the_lock(path):
    rc, held = take(path)
    assert rc == 0, held
    content = path.read_bytes()

    for token in ("f" * 32, ""):
        rc, result = release(path, token)

        assert rc == 0, result
        assert result["changed"] is False
        assert path.read_bytes() == content
        assert result["lock"]["holder"] == ALICE
        assert "Left the lock" in warnings_text(result) and ALICE in warnings_text(result)


def test_release_of_a_corrupt_lock_leaves_it(path):
    path.parent.mkdir(parents=True)
    path.write_text("")

    rc, result = release(path, "f" * 32)

    assert rc == 0, result
    assert result["changed"] is False and path.read_text() == ""


def test_release_when_there_is_no_lock_is_ok_and_unchanged(path, tmp_path):
    rc, result = release(path, "f" * 32)  # not even the directory exists
    assert rc == 0, result
    assert result["changed"] is False and result["lock"] is None

    path.parent.mkdir()
    rc, result = release(path, "f" * 32)
    assert rc == 0, result
    assert result["changed"] is False and result["lock"] is None
    assert not result.get("warnings")


def test_release_needs_a_token(path):
    rc, result = lock_module(path=str(path), state="released")

    assert rc == 1
    assert "token" in result["msg"]


def test_taking_needs_a_holder_and_sane_numbers(path):
    rc, result = lock_module(path=str(path))
    assert rc == 1 and "holder" in result["msg"]

    rc, result = take(path, holder="  ")
    assert rc == 1 and "holder must name who takes the lock" in result["msg"]

    rc, result = take(path, wait=-1)
    assert rc == 1 and "wait must be >= 0" in result["msg"]

    rc, result = take(path, expires_after=0)
    assert rc == 1 and "expires_after >= 1" in result["msg"]
    assert not path.parent.exists()


def test_held_with_its_own_token_keeps_the_lock_unchanged(path):
    rc, held = take(path, wait=0)
    assert rc == 0, held
    content = path.read_bytes()

    rc, again = take(path, holder=ALICE, token=held["token"])

    assert rc == 0, again
    assert again["changed"] is False and again["token"] == held["token"]
    assert path.read_bytes() == content


# --- check mode -------------------------------------------------------------------------------------

def test_check_mode_creates_nothing(path):
    rc, result = take(path, check_mode=True)

    assert rc == 0, result
    assert result["changed"] is True
    assert result["would_wait"] is False
    assert result["lock"]["holder"] == ALICE
    assert not path.parent.exists()


def test_check_mode_reports_the_holder_instead_of_waiting_or_failing(path):
    write_lock(path, holder=BOB)
    content = path.read_bytes()

    started = time.monotonic()
    rc, result = take(path, holder=ALICE, wait=30, check_mode=True)

    assert rc == 0, result
    assert time.monotonic() - started < 15  # did not wait for the 30 s
    assert result["changed"] is False
    assert result["would_wait"] is True
    assert result["holder"] == BOB and result["lock"]["holder"] == BOB
    assert BOB in warnings_text(result)
    assert path.read_bytes() == content


def test_check_mode_reports_a_takeover_without_doing_it(path):
    old = write_lock(path, holder=BOB, age=7200, expires_in=-1)
    content = path.read_bytes()

    rc, result = take(path, holder=ALICE, check_mode=True)

    assert rc == 0, result
    assert result["changed"] is True and result["took_over"] == old
    assert path.read_bytes() == content and leftovers(path) == []


def test_check_mode_release_removes_nothing(path):
    rc, held = take(path)
    assert rc == 0, held

    rc, result = release(path, held["token"], check_mode=True)

    assert rc == 0, result
    assert result["changed"] is True
    assert path.exists()


# --- races: separate processes ----------------------------------------------------------------------

RACERS = 6


def race(path):
    barrier = threading.Barrier(RACERS)

    def one(n):
        barrier.wait()
        return take(path, holder=f"racer {n}")

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


@pytest.mark.parametrize("abandoned", [False, True], ids=["free", "abandoned"])
def test_processes_racing_for_the_lock_exactly_one_wins(path, abandoned):
    if abandoned:
        write_lock(path, holder=BOB, age=7200, expires_in=-1)

    results = race(path)

    winners = [result for rc, result in results if rc == 0]
    losers = [result for rc, result in results if rc != 0]
    assert len(winners) == 1, results
    winner = winners[0]
    assert json.loads(path.read_text())["token"] == winner["token"]
    if abandoned:
        assert winner["took_over"]["holder"] == BOB
    for loser in losers:
        assert winner["holder"] in loser["msg"], loser
    assert leftovers(path) == []


# --- races: in-process, two runs read the same abandoned lock before either acts ---------------------

@pytest.fixture
def same_moment(monkeypatch):
    """Make the first look at the lock of each listed thread meet at a barrier (or give up after 1.5 s,
    which is what happens when the directory guard keeps the other run out), then sleep its delay."""
    plan = {}  # thread name -> delay after the barrier
    barrier = threading.Barrier(2, timeout=1.5)
    seen = set()
    real_read = box_lock._read

    def read(p, expires_after):
        lock = real_read(p, expires_after)
        name = threading.current_thread().name
        if name in plan and name not in seen:
            seen.add(name)
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
            time.sleep(plan[name])
        return lock

    monkeypatch.setattr(box_lock, "_read", read)
    return plan


def run_threads(**targets):
    results = {}

    def wrap(name, target):
        try:
            results[name] = target()
        except box_lock.BoxLockError as exc:
            results[name] = exc

    threads = [threading.Thread(target=wrap, args=(name, target), name=name) for name, target in targets.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_takeovers_of_one_abandoned_lock_only_one_wins(path, same_moment):
    write_lock(path, holder=BOB, age=7200, expires_in=-1)
    same_moment.update(a=0.0, b=0.0)

    results = run_threads(a=lambda: box_lock.acquire(str(path), "run a"),
                          b=lambda: box_lock.acquire(str(path), "run b"))

    won = {name: r for name, r in results.items() if isinstance(r, dict)}
    lost = {name: r for name, r in results.items() if isinstance(r, box_lock.BoxLockError)}
    assert len(won) == 1 and len(lost) == 1, results
    (winner, result), = won.items()
    assert result["took_over"]["holder"] == BOB
    assert json.loads(path.read_text())["token"] == result["token"]
    assert f"run {winner}" in str(next(iter(lost.values())))
    assert leftovers(path) == []


def test_a_late_release_never_removes_the_lock_that_took_over(path, same_moment):
    """The abandoned run wakes up and releases while another run takes its lock over."""
    old = write_lock(path, holder=BOB, age=7200, expires_in=-1)
    same_moment.update(taker=0.0, releaser=0.3)

    results = run_threads(taker=lambda: box_lock.acquire(str(path), "run taker"),
                          releaser=lambda: box_lock.release(str(path), old["token"]))

    assert isinstance(results["taker"], dict), results
    assert isinstance(results["releaser"], dict), results
    assert json.loads(path.read_text())["token"] == results["taker"]["token"]


def test_two_runs_taking_a_free_lock_at_once_only_one_wins(path, same_moment):
    path.parent.mkdir(parents=True)
    same_moment.update(a=0.0, b=0.0)

    results = run_threads(a=lambda: box_lock.acquire(str(path), "run a"),
                          b=lambda: box_lock.acquire(str(path), "run b"))

    won = [r for r in results.values() if isinstance(r, dict)]
    assert len(won) == 1, results
    assert json.loads(path.read_text())["token"] == won[0]["token"]


def test_a_lock_that_appears_after_the_look_is_never_overwritten(path, monkeypatch):
    """A run that does not honour the directory guard creates the lock between our look and our create:
    the exclusive create must notice, and the run must wait for that holder like for any other."""
    path.parent.mkdir(parents=True)
    real_read = box_lock._read
    calls = []

    def read(p, expires_after):
        lock = real_read(p, expires_after)
        calls.append(lock)
        if len(calls) == 1:
            write_lock(path, holder=BOB, age=0)
        return lock

    monkeypatch.setattr(box_lock, "_read", read)

    with pytest.raises(box_lock.BoxLockError, match="held by " + BOB):
        box_lock.acquire(str(path), ALICE)

    assert json.loads(path.read_text())["holder"] == BOB
