"""A service-time model both simulators share: time a real server spends per call, per record written, per row read.

The simulators answer in microseconds; a real K3Cloud server takes tens of milliseconds per call plus tens per saved
record (it validates, runs plug-ins and writes several tables per document), and a Fxiaoke tenant's gateway adds its
own. A benchmark against the bare simulators measures the client, not what a user will see, so the fault profile
can ask for:

* ``latency_ms`` — per call (already known to both simulators: network and fixed server cost);
* ``per_record_ms`` — per record a write saves (K3Cloud: each model of a Save/BatchSave and each number an
  Audit/Submit/Delete names; Fxiaoke: the one record of a create/update/invalid/delete);
* ``per_row_ms`` — per row a read returns (K3Cloud ExecuteBillQuery/BillQuery rows, View bills; Fxiaoke
  ``data/query`` rows);
* ``max_in_flight`` — K3Cloud only: requests in flight per user at once; the one beyond waits (real IIS queues
  requests of one session/user; see simulators/k3cloud/README.md "Service time").

The delay is served with ``asyncio.sleep`` after the work is done, so requests in flight overlap as they do on a
real server with several worker threads. The modelled seconds are added to the simulator's statistics
(``modelled_seconds``), so a benchmark can tell its bound from the same profile.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Callable

KEYS = ("per_record_ms", "per_row_ms", "max_in_flight")


def _count_list(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def k3_units(method: str, body: bytes) -> tuple[int, int]:
    """(records written, rows read) of one K3Cloud answer, from the answer alone (any of its shapes)."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return 0, 0
    if isinstance(data, list):  # ExecuteBillQuery / BillQuery: a list of rows (or one error row)
        rows = [r for r in data if not (isinstance(r, list) and r and isinstance(r[0], dict) and "Result" in r[0])]
        return 0, len(rows)
    if not isinstance(data, dict):
        return 0, 0
    result = data.get("Result") if isinstance(data.get("Result"), dict) else {}
    status = result.get("ResponseStatus") if isinstance(result.get("ResponseStatus"), dict) else {}
    written = _count_list(status.get("SuccessEntitys")) + _count_list(status.get("Errors"))
    if written:
        return written, 0
    if method == "view" and result.get("Result"):
        return 0, 1
    return 0, 0


def fx_units(path: str, payload: Any) -> tuple[int, int]:
    """(records written, rows read) of one Fxiaoke answer."""
    if not isinstance(payload, dict) or payload.get("errorCode") not in (0, None):
        return 0, 0
    if path.endswith(("/create", "/update", "/invalid", "/delete", "/recover", "/changeOwner")):
        return 1, 0
    data = payload.get("data")
    if isinstance(data, dict):
        rows = data.get("dataList")
        if isinstance(rows, list):
            return 0, len(rows)
    return 0, 0


def seconds(get: Callable[[str], float], written: int, read: int) -> float:
    """Modelled extra seconds for one answer under the profile ``get(key)``."""
    return (written * get("per_record_ms") + read * get("per_row_ms")) / 1000.0


@dataclass
class CallStats:
    """What ``/_sim/stats`` reports, for either simulator: calls per path or service, time, concurrency."""

    calls: dict[str, int] = field(default_factory=dict)
    service_seconds: float = 0.0
    modelled_seconds: float = 0.0  # the service-time model's per-record/per-row delays (``serve``)
    in_flight: int = 0  # API calls received and not answered yet (K3Cloud: also those queued by max_in_flight)
    max_in_flight_seen: int = 0  # the most of them at once since the last reset: what a client sent concurrently

    def enter(self) -> None:
        self.in_flight += 1
        self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1

    def count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def as_json(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "total": sum(self.calls.values()),
                "service_seconds": round(self.service_seconds, 6), "modelled_seconds": round(self.modelled_seconds, 6),
                "max_in_flight_seen": self.max_in_flight_seen}


class InFlight:
    """At most ``limit`` requests of one user served at once (``limit`` ≤ 0: no limit); the rest wait their turn."""

    def __init__(self) -> None:
        self._gates: dict[tuple[str, int], asyncio.Semaphore] = {}

    def gate(self, user: str, limit: int) -> asyncio.Semaphore | None:
        if limit <= 0:
            return None
        key = (user, limit)
        if key not in self._gates:
            self._gates[key] = asyncio.Semaphore(limit)
        return self._gates[key]


async def serve(get: Callable[[str], float], written: int, read: int, stats: Any) -> None:
    delay = seconds(get, written, read)
    if delay > 0:
        stats.modelled_seconds = getattr(stats, "modelled_seconds", 0.0) + delay
        await asyncio.sleep(delay)
