"""Helpers shared by the audit-store tests (a module name no other test folder uses)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)


class FakeClock:
    """A clock tests move by hand (``AuditStore(clock=...)``)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
