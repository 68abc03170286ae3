"""Dependency health: a circuit breaker per dependency, and the readiness report built from them.

A dependency (profile store, conversation Redis, Triton) that fails ``failures`` times in a row
is *open*: requests skip it at once and answer without it (less personal, and they say so). While
open, one trial call at a time runs in a background thread every ``retry_s`` (the half-open
state); it may reconnect first (a store whose connection died never heals by itself). Its success
closes the breaker. Requests never wait for a trial.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import Enum

from voicecart.serving import metrics

log = logging.getLogger("voicecart.serving.health")


class State(str, Enum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    """closed --(``failures`` in a row)--> open --(``retry_s``)--> half-open trial --> closed | open."""

    def __init__(self, name: str, trial: Callable[[], object], failures: int = 3, retry_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.trial = trial
        self.failures = failures
        self.retry_s = retry_s
        self.clock = clock
        self.state = State.closed
        self.consecutive = 0
        self.last_error: str | None = None
        self.opened_at: float | None = None
        self._lock = threading.Lock()
        metrics.set_breaker(name, self.state.value)

    def allow(self) -> bool:
        """May a request call the dependency now? When open and a trial is due, start one (in the background)."""
        if self.state is State.closed:
            return True
        start = False
        with self._lock:
            if self.state is State.open and self.clock() - (self.opened_at or 0.0) >= self.retry_s:
                self._set(State.half_open)
                start = True
        if start:
            threading.Thread(target=self._run_trial, name=f"{self.name}-trial", daemon=True).start()
        return False

    def success(self) -> None:
        if self.consecutive or self.state is not State.closed:
            with self._lock:
                self.consecutive = 0
                if self.state is not State.closed:
                    log.warning("%s recovered: breaker closed", self.name)
                    self._set(State.closed)

    def failure(self, error: str) -> None:
        with self._lock:
            self.consecutive += 1
            self.last_error = error
            if self.state is State.closed and self.consecutive >= self.failures:
                log.warning("%s failed %d times in a row (%s): breaker open, retrying every %.1fs",
                            self.name, self.consecutive, error, self.retry_s)
                self.opened_at = self.clock()
                self._set(State.open)

    def _run_trial(self) -> None:
        try:
            self.trial()
        except Exception as exc:  # noqa: BLE001 - still down: stay open, try again later
            with self._lock:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self.opened_at = self.clock()
                self._set(State.open)
            return
        self.success()

    def _set(self, state: State) -> None:
        self.state = state
        metrics.set_breaker(self.name, state.value)

    def report(self) -> dict:
        out: dict = {"state": self.state.value}
        if self.state is not State.closed:
            out["error"] = self.last_error
            opened = self.clock() if self.opened_at is None else self.opened_at
            out["since_s"] = round(self.clock() - opened, 3)
        return out


class Health:
    """The breakers of one server process, read by the readiness route (no dependency is called)."""

    def __init__(self) -> None:
        self.breakers: dict[str, CircuitBreaker] = {}

    def add(self, breaker: CircuitBreaker) -> CircuitBreaker:
        self.breakers[breaker.name] = breaker
        return breaker

    def degraded(self) -> list[str]:
        return sorted(name for name, b in self.breakers.items() if b.state is not State.closed)

    def report(self) -> dict:
        return {name: b.report() for name, b in sorted(self.breakers.items())}
