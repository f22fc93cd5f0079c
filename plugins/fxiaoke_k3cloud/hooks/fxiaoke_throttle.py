"""Client-side throttle and call budget for the Fxiaoke OpenAPI.

The gateway allows 100 calls per 20 s per interface path (spec §6.3) and sells calls by the 100 000.
The throttle keeps a process-wide sliding window per (scope, path) a little below the limit, so parallel
tasks in one worker share it; the counter lets a backfill run on a fixed call budget.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable

from fxiaoke_k3cloud.hooks import call_ledger

DEFAULT_CALLS_PER_20S = 80
WINDOW_S = 20.0


class SlidingWindowThrottle:
    """At most ``limit`` acquisitions per key in any ``window_s`` seconds; ``acquire`` sleeps until allowed."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("throttle limit must be >= 1")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._stamps: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> float:
        """Take one slot for ``key``; returns the seconds spent waiting."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                stamps = self._stamps.setdefault(key, deque())
                while stamps and stamps[0] <= now - self.window_s:
                    stamps.popleft()
                if len(stamps) < self.limit:
                    stamps.append(now)
                    return waited
                wait = stamps[0] + self.window_s - now
            # Sleep outside the lock so other paths are not held up by this one.
            self._sleep(wait)
            waited += wait


_THROTTLES: dict[tuple[str, int], SlidingWindowThrottle] = {}
_THROTTLES_LOCK = threading.Lock()


def shared_throttle(scope: str, calls_per_20s: int) -> SlidingWindowThrottle:
    """The process-wide throttle for one tenant/app ``scope`` at a given rate (one window per path inside)."""
    with _THROTTLES_LOCK:
        key = (scope, calls_per_20s)
        if key not in _THROTTLES:
            _THROTTLES[key] = SlidingWindowThrottle(calls_per_20s, WINDOW_S)
        return _THROTTLES[key]


def clear_shared_throttles() -> None:
    """Forget every window (tests)."""
    with _THROTTLES_LOCK:
        _THROTTLES.clear()


@dataclass
class CallCounter:
    """API calls sent by one hook: total and per path (token calls included; they cost quota too)."""

    total: int = 0
    by_path: Counter[str] = field(default_factory=Counter)

    def add(self, path: str) -> None:
        self.total += 1
        self.by_path[path] += 1
        call_ledger.add("fxiaoke", path)

    def as_dict(self) -> dict[str, object]:
        return {"total": self.total, "by_path": dict(self.by_path)}
