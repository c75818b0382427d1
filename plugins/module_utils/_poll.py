# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.
"""The one polling loop of the llmops.devbox modules, and its options (private: API may change).

- ``poll(attempt, timeout, interval)`` calls ``attempt`` until it returns a finished value or the
  deadline passes, sleeping ``interval`` seconds in between; returns a ``Polled``.
- ``poll_args(timeout, interval)``: argument spec of the options ``timeout`` and ``interval``
  (documented once in plugins/doc_fragments/poll.py); ``poll_args_problem(params)`` checks them.
- ``request_budget(limit, remaining)``: the timeout of one HTTP request made while polling.
"""

from __future__ import annotations

import time

__all__ = ["Polled", "poll", "poll_args", "poll_args_problem", "request_budget"]

MIN_REQUEST_SECONDS = 1.0


class Polled:
    """What poll() ended with: the last value attempt returned, whether that value is finished
    (done), how many attempts were made and the seconds elapsed since the first one started."""

    def __init__(self, value, done, attempts, elapsed):
        self.value = value
        self.done = done
        self.attempts = attempts
        self.elapsed = elapsed

    def __repr__(self):
        return (f"Polled(done={self.done}, attempts={self.attempts}, elapsed={self.elapsed:.3f}, "
                f"value={self.value!r})")


def _not_none(value):
    return value is not None


def poll(attempt, timeout, interval, done=None, clock=time.monotonic, sleep=time.sleep):
    """Call attempt(remaining) until done(value) is true or ``timeout`` seconds have passed.

    attempt: called with the seconds left before the deadline (0 on a last attempt that starts
        late); returns a value. The first attempt starts at once.
    done: whether a value is finished; default: any value but None. A finished value is returned
        at once, without sleeping.
    timeout: seconds from the first attempt to the deadline; 0 makes exactly one attempt.
    interval: seconds slept between two attempts (less when the deadline comes first), > 0.
    clock, sleep: time.monotonic and time.sleep, replaceable for tests.

    Returns Polled(value, done, attempts, elapsed) with the last value, finished or not. An
    exception raised by attempt stops the polling and propagates unchanged: return a value
    (such as the error) for "not yet", raise for "give up now".
    """
    if timeout < 0:
        raise ValueError(f"poll timeout must be >= 0, not {timeout}")
    if interval <= 0:
        raise ValueError(f"poll interval must be > 0, not {interval}")
    done = done or _not_none
    start = clock()
    deadline = start + timeout
    attempts = 0
    while True:
        attempts += 1
        value = attempt(max(0.0, deadline - clock()))
        if done(value):
            return Polled(value, True, attempts, clock() - start)
        remaining = deadline - clock()
        if remaining <= 0:
            return Polled(value, False, attempts, clock() - start)
        sleep(min(interval, remaining))


def request_budget(limit, remaining):
    """Seconds one HTTP request of an attempt may take: at most ``limit`` and the ``remaining``
    seconds before the deadline, so polling never runs far past it, but at least one second so
    a last attempt can still succeed."""
    return max(MIN_REQUEST_SECONDS, min(limit, remaining))


def poll_args(timeout, interval):
    """Argument spec of the options ``timeout`` (int) and ``interval`` (float) with the module's
    defaults (documented once in plugins/doc_fragments/poll.py; the module's DOCUMENTATION only
    gives the same defaults)."""
    return dict(
        timeout=dict(type="int", default=timeout),
        interval=dict(type="float", default=interval),
    )


def poll_args_problem(params):
    """A message when timeout, interval or (if the module has it) request_timeout is out of range,
    else None."""
    limits = [("timeout", params["timeout"] >= 0), ("interval", params["interval"] > 0)]
    if "request_timeout" in params:
        limits.append(("request_timeout", params["request_timeout"] > 0))
    if all(ok for name, ok in limits):
        return None
    got = ", ".join(f"{name}={params[name]}" for name, ok in limits)
    return f"timeout must be >= 0, {' and '.join(name for name, ok in limits[1:])} > 0 (got {got})"
