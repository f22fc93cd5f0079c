"""How often a watcher polls: a short interval in business hours, a longer one outside, jittered back-off on errors.

Pure functions over a clock and a random source, so the schedule is tested without waiting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

from fxiaoke_k3cloud.errors import ConfigError


def _parse_hours(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ConfigError(f"business_hours must look like '08:00-20:00', got {text!r}") from None
    return start, end


@dataclass(frozen=True)
class Pacing:
    """Poll every ``poll_s`` in business hours (``business_hours`` on ``business_days``, ISO weekdays 1=Mon,
    in ``timezone``), every ``off_hours_poll_s`` outside; after ``n`` errors in a row wait a random time in
    ``[poll, min(max_backoff_s, poll * 2**n)]`` (full jitter, so several watchers do not retry in step)."""

    poll_s: float = 5.0
    off_hours_poll_s: float = 60.0
    business_hours: str = "08:00-20:00"
    business_days: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    timezone: str = "Asia/Shanghai"
    max_backoff_s: float = 300.0

    def __post_init__(self) -> None:
        if self.poll_s <= 0 or self.off_hours_poll_s <= 0 or self.max_backoff_s <= 0:
            raise ConfigError("poll_s, off_hours_poll_s and max_backoff_s must be > 0 seconds")
        _parse_hours(self.business_hours)
        ZoneInfo(self.timezone)

    def in_business_hours(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        start, end = _parse_hours(self.business_hours)
        return local.isoweekday() in self.business_days and start <= local.time() < end

    def interval(self, now: datetime | None = None) -> float:
        now = now or datetime.now(timezone.utc)
        return self.poll_s if self.in_business_hours(now) else self.off_hours_poll_s

    def delay(self, errors_in_a_row: int, now: datetime | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next poll."""
        base = self.interval(now)
        if errors_in_a_row <= 0:
            return base
        ceiling = min(self.max_backoff_s, base * 2 ** min(errors_in_a_row, 16))
        return (rng or random).uniform(base, max(base, ceiling))

    def as_kwargs(self) -> dict[str, object]:
        return {"poll_s": self.poll_s, "off_hours_poll_s": self.off_hours_poll_s, "business_hours": self.business_hours,
                "business_days": list(self.business_days), "timezone": self.timezone, "max_backoff_s": self.max_backoff_s}

    @classmethod
    def from_kwargs(cls, value: dict[str, object] | None) -> Pacing:
        value = dict(value or {})
        if "business_days" in value:
            value["business_days"] = tuple(int(d) for d in value["business_days"])  # type: ignore[union-attr]
        return cls(**value)  # type: ignore[arg-type]
