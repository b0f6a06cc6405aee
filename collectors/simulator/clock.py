"""Clocks for the scenario engine: a manual one for tests and a scaled wall clock for demos."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

DEFAULT_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock(Protocol):
    """What the engine needs from a clock."""

    def now(self) -> datetime:
        """Scenario time (timezone-aware UTC)."""
        ...

    def wall(self) -> float:
        """Seconds on the clock that rate limits and token lifetimes are measured with."""
        ...


class ManualClock:
    """A clock that only moves when told to; tests advance it explicitly."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def wall(self) -> float:
        return self.now().timestamp()

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new time."""
        if delta < timedelta(0):
            raise ValueError("a clock never goes backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        """Jump forward to ``when``."""
        self.advance(when.astimezone(UTC) - self.now())


class ScaledClock:
    """Wall time running ``speed`` times faster from ``start`` (the demo's accelerated tenant)."""

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._origin = time.monotonic()
        self._offset = timedelta(0)

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._origin) * self.speed
        return self._start + timedelta(seconds=elapsed) + self._offset

    def wall(self) -> float:
        return time.monotonic()

    def advance(self, delta: timedelta) -> datetime:
        """Jump ahead by ``delta`` on top of the scaled flow of time."""
        self._offset += delta
        return self.now()
