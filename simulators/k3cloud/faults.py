"""Fault profile (shared/specs/simulators.md) and call statistics of one simulator instance."""

from __future__ import annotations

import random
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from .. import service_time

KNOWN_KEYS = {"seed", "latency_ms", "error_rate", "timeout_rate", "timeout_delay_s", "session_loss_every",
              "rate_limit_per_20s", "lock_conflict_rate", "lock_conflict_record_rate", "error_status",
              "response_error_rate", "waf_angle_brackets",
              "per_record_ms", "per_row_ms", "max_in_flight"}  # the last three: ../service_time.py
RATE_WINDOW_S = 20.0


class FaultConfigError(ValueError):
    pass


@dataclass
class Faults:
    """The active profile plus the counters it needs (business-call number, per-service call times)."""

    profile: dict[str, Any] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    business_calls: int = 0
    recent: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def set(self, profile: dict[str, Any]) -> None:
        unknown = set(profile) - KNOWN_KEYS
        if unknown:
            raise FaultConfigError(f"unknown fault keys: {sorted(unknown)}; allowed: {sorted(KNOWN_KEYS)}")
        for key, value in profile.items():
            if key != "seed" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise FaultConfigError(f"fault {key!r} must be a non-negative number, got {value!r}")
        for key in ("error_rate", "timeout_rate", "lock_conflict_rate", "lock_conflict_record_rate", "response_error_rate"):
            if profile.get(key, 0) > 1:
                raise FaultConfigError(f"fault {key!r} is a share between 0 and 1")
        if "error_status" in profile and not 500 <= profile["error_status"] <= 599:
            raise FaultConfigError("fault 'error_status' must be an HTTP 5xx status")
        self.profile = dict(profile)
        self.rng = random.Random(profile.get("seed"))
        self.business_calls = 0
        self.recent.clear()

    def get(self, key: str, default: float = 0) -> float:
        return float(self.profile.get(key, default) or 0)

    def roll(self, key: str) -> bool:
        rate = self.get(key)
        return rate > 0 and self.rng.random() < rate

    def session_lost(self) -> bool:
        """Counts business calls; every Nth one loses its session."""
        self.business_calls += 1
        every = int(self.get("session_loss_every"))
        return every > 0 and self.business_calls % every == 0

    def rate_limited(self, service: str) -> bool:
        cap = int(self.get("rate_limit_per_20s"))
        if cap <= 0:
            return False
        now = time.monotonic()
        calls = self.recent[service]
        while calls and now - calls[0] > RATE_WINDOW_S:
            calls.popleft()
        if len(calls) >= cap:
            return True
        calls.append(now)
        return False


Stats = service_time.CallStats  # calls counted per Web API service
