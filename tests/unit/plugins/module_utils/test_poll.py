"""plugins/module_utils/_poll.py: the polling loop on a fake clock (no real sleeping), once on a real one."""

from __future__ import annotations

import time

import pytest

from ansible_collections.llmops.devbox.plugins.module_utils._poll import (
    poll,
    poll_args,
    poll_args_problem,
    request_budget,
)


class FakeTime:
    """A monotonic clock that only moves when slept on, or when an attempt says it took time."""

    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0, "poll slept a non-positive time"
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake():
    return FakeTime()


def run(fake, attempt, timeout, interval, **kw):
    return poll(attempt, timeout, interval, clock=fake.clock, sleep=fake.sleep, **kw)


class Script:
    """An attempt that returns the scripted values in turn (the last one repeats), taking `cost`
    seconds of the fake clock each time, and records the remaining time it was given."""

    def __init__(self, fake, values, cost=0.0):
        self.fake = fake
        self.values = list(values)
        self.cost = cost
        self.remaining = []

    def __call__(self, remaining):
        self.remaining.append(remaining)
        self.fake.now += self.cost
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


# --- success --------------------------------------------------------------------------------------

def test_first_success_returns_at_once_without_sleeping(fake):
    attempt = Script(fake, ["ready"])

    polled = run(fake, attempt, timeout=60, interval=5)

    assert polled.done is True and polled.value == "ready"
    assert polled.attempts == 1 and polled.elapsed == 0
    assert fake.sleeps == []
    assert attempt.remaining == [60]


def test_polls_every_interval_until_done(fake):
    attempt = Script(fake, [None, None, None, {"status": "OK"}])

    polled = run(fake, attempt, timeout=60, interval=2.5)

    assert polled.done is True and polled.value == {"status": "OK"}
    assert polled.attempts == 4
    assert fake.sleeps == [2.5, 2.5, 2.5]
    assert polled.elapsed == pytest.approx(7.5)
    assert attempt.remaining == pytest.approx([60, 57.5, 55, 52.5])


def test_done_decides_what_is_finished(fake):
    errors = [ValueError("not yet 1"), ValueError("not yet 2")]
    attempt = Script(fake, errors + ["healthy"])

    polled = run(fake, attempt, timeout=10, interval=1, done=lambda value: not isinstance(value, Exception))

    assert polled.done is True and polled.value == "healthy" and polled.attempts == 3


def test_falsy_values_other_than_none_are_finished_by_default(fake):
    polled = run(fake, Script(fake, [None, 0]), timeout=10, interval=1)

    assert polled.done is True and polled.value == 0 and polled.attempts == 2


# --- deadline -------------------------------------------------------------------------------------

def test_deadline_returns_the_last_value_not_done(fake):
    attempt = Script(fake, ["starting", "still starting"])

    polled = run(fake, attempt, timeout=10, interval=3, done=lambda value: value == "ready")

    assert polled.done is False
    assert polled.value == "still starting"
    # t = 0, 3, 6, 9, then a last one at 10 after sleeping only the 1 s left.
    assert polled.attempts == 5
    assert fake.sleeps == [3, 3, 3, 1]
    assert polled.elapsed == pytest.approx(10)


def test_never_sleeps_past_the_deadline(fake):
    run(fake, Script(fake, [None], cost=0.4), timeout=5, interval=2)

    assert fake.now - 100.0 <= 5 + 0.4  # at most one attempt's own time after the deadline
    assert all(s <= 2 for s in fake.sleeps)


def test_slow_attempts_count_against_the_deadline(fake):
    attempt = Script(fake, [None], cost=4)

    polled = run(fake, attempt, timeout=10, interval=1)

    # 0-4, sleep 1, 5-9, sleep 1, 10-14: the deadline passed during the third attempt.
    assert polled.done is False and polled.attempts == 3
    assert fake.sleeps == [1, 1]
    assert polled.elapsed == pytest.approx(14)
    assert attempt.remaining == pytest.approx([10, 5, 0])  # never negative


def test_timeout_zero_makes_exactly_one_attempt(fake):
    attempt = Script(fake, [None])

    polled = run(fake, attempt, timeout=0, interval=1)

    assert polled.done is False and polled.attempts == 1 and polled.value is None
    assert fake.sleeps == []
    assert attempt.remaining == [0]


def test_timeout_zero_success(fake):
    polled = run(fake, Script(fake, ["ok"]), timeout=0, interval=1)

    assert polled.done is True and polled.attempts == 1


# --- exceptions -----------------------------------------------------------------------------------

class Boom(Exception):
    pass


def test_an_exception_stops_polling_and_propagates_unchanged(fake):
    calls = []

    def attempt(remaining):
        calls.append(remaining)
        if len(calls) == 3:
            raise Boom("keys rejected")
        return None

    with pytest.raises(Boom, match="keys rejected"):
        run(fake, attempt, timeout=60, interval=1)

    assert len(calls) == 3
    assert fake.sleeps == [1, 1]  # no sleep after the exception


def test_an_exception_in_done_propagates(fake):
    def done(value):
        raise Boom("bad predicate")

    with pytest.raises(Boom):
        run(fake, Script(fake, ["x"]), timeout=1, interval=1, done=done)


@pytest.mark.parametrize("timeout, interval", [(-1, 1), (10, 0), (10, -0.5)])
def test_bad_timeout_or_interval_is_refused_before_any_attempt(fake, timeout, interval):
    attempt = Script(fake, ["x"])

    with pytest.raises(ValueError):
        run(fake, attempt, timeout=timeout, interval=interval)

    assert attempt.remaining == []


# --- real clock -----------------------------------------------------------------------------------

def test_real_clock_and_sleep_by_default():
    started = time.monotonic()

    polled = poll(lambda remaining: None, 0.3, 0.1)

    took = time.monotonic() - started
    assert polled.done is False
    assert 0.3 <= polled.elapsed <= took < 2
    assert 2 <= polled.attempts <= 5


# --- helpers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("limit, remaining, expected", [(10, 300, 10), (10, 4.5, 4.5), (10, 0.2, 1.0), (10, 0, 1.0),
                                                        (0.5, 30, 1.0)])
def test_request_budget(limit, remaining, expected):
    assert request_budget(limit, remaining) == expected


def test_poll_args_carry_the_module_defaults():
    assert poll_args(timeout=300, interval=3) == {"timeout": {"type": "int", "default": 300},
                                                  "interval": {"type": "float", "default": 3}}


@pytest.mark.parametrize("params, problem", [
    ({"timeout": 0, "interval": 1}, None),
    ({"timeout": 0, "interval": 1, "request_timeout": 10}, None),
    ({"timeout": -1, "interval": 1}, "timeout must be >= 0, interval > 0 (got timeout=-1, interval=1)"),
    ({"timeout": 5, "interval": 0, "request_timeout": 10},
     "timeout must be >= 0, interval and request_timeout > 0 (got timeout=5, interval=0, request_timeout=10)"),
    ({"timeout": 5, "interval": 1, "request_timeout": 0}, "request_timeout=0"),
])
def test_poll_args_problem(params, problem):
    got = poll_args_problem(params)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got
