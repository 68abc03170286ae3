"""Circuit breakers: open after repeated failures, skip the dependency, heal by a background trial."""

from __future__ import annotations

import threading

from voicecart.serving.engine import CircuitBreaker, Health, State


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Dependency:
    def __init__(self) -> None:
        self.up = False
        self.trials = 0
        self.done = threading.Event()

    def trial(self) -> None:
        self.trials += 1
        try:
            if not self.up:
                raise ConnectionError("still down")
        finally:
            self.done.set()


def wait_trial(dep: Dependency) -> None:
    assert dep.done.wait(5), "the trial did not run"
    dep.done.clear()


def test_breaker_opens_after_consecutive_failures_only():
    clock, dep = Clock(), Dependency()
    b = CircuitBreaker("store", dep.trial, failures=3, retry_s=2.0, clock=clock)
    b.failure("x")
    b.failure("x")
    b.success()  # a success in between resets the count
    b.failure("x")
    b.failure("x")
    assert b.state is State.closed and b.allow()
    b.failure("timeout")
    assert b.state is State.open and not b.allow() and dep.trials == 0


def test_an_open_breaker_runs_one_trial_per_retry_period_and_closes_when_it_succeeds():
    clock, dep = Clock(), Dependency()
    b = CircuitBreaker("store", dep.trial, failures=1, retry_s=2.0, clock=clock)
    b.failure("down")
    clock.t = 1.0
    assert not b.allow() and dep.trials == 0  # too early for a trial
    clock.t = 2.5
    assert not b.allow()  # requests never wait for the trial
    wait_trial(dep)
    assert b.state is State.open and dep.trials == 1 and b.last_error.startswith("ConnectionError")
    assert not b.allow() and dep.trials == 1  # the failed trial restarted the period
    dep.up = True
    clock.t = 5.0
    b.allow()
    wait_trial(dep)
    for _ in range(100):
        if b.state is State.closed:
            break
        threading.Event().wait(0.01)
    assert b.state is State.closed and b.allow() and dep.trials == 2


def test_health_reports_degraded_dependencies_without_calling_them():
    clock, dep = Clock(), Dependency()
    health = Health()
    health.add(CircuitBreaker("profiles", dep.trial, failures=1, clock=clock))
    health.add(CircuitBreaker("conversations", dep.trial, failures=1, clock=clock))
    assert health.degraded() == []
    health.breakers["profiles"].failure("OperationalError: no such table")
    clock.t = 0.5
    assert health.degraded() == ["profiles"]
    report = health.report()
    assert report["conversations"] == {"state": "closed"}
    assert report["profiles"]["state"] == "open" and "no such table" in report["profiles"]["error"]
    assert report["profiles"]["since_s"] == 0.5 and dep.trials == 0
