"""Small helpers for the hook-vs-simulator tests (admin calls the shared SimulatorProcess lacks)."""

from __future__ import annotations

from typing import Any

TOKEN = "/cgi/corpAccessToken/get/V2"
QUERY = "/cgi/crm/v2/data/query"
GET = "/cgi/crm/v2/data/get"


def calls(sim, path: str) -> int:
    """API calls the simulator counted for one path."""
    return int(sim.stats()["calls"].get(path, 0))


def advance_clock(sim, seconds: float) -> Any:
    return sim._admin("POST", "clock", {"advance_s": seconds})


def messages(sim) -> Any:
    return sim._admin("GET", "messages")


def accounts(n: int, *, prefix: str = "ACC", **fields: Any) -> list[dict[str, Any]]:
    return [{"name": f"{prefix}-{i:05d}", **fields} for i in range(n)]


def seed_accounts(sim, n: int, **fields: Any) -> list[str]:
    return sim.seed({"objects": {"AccountObj": accounts(n, **fields)}})["ids"]["AccountObj"]


class FakeClock:
    """An injected clock: ``clock()`` is the time, ``clock.sleep(s)`` records the sleep and moves the time on."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
