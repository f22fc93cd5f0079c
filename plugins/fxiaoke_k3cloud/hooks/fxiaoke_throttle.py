"""Client-side throttle and call budget for the Fxiaoke OpenAPI.

The gateway allows 100 calls per 20 s per interface path (spec §6.3: "Per interface: 100 calls / 20 s (each
path counted separately) → 30004") and sells calls by the 100 000. The throttle runs at that real limit, and
takes its margin as time rather than as calls: a call counts against its path's window a little longer than
20 s (``LOCAL_HOLD_S`` / ``SHARED_HOLD_S``). The client stamps a call when it sends it; the gateway counts
it when it arrives, so two calls stamped 20.0 s apart can arrive 19.9 s apart. Holding each stamp 0.5 s
more absorbs that transit jitter (and worker clock skew), and the slots a process takes from the shared
window in a batch may be spent up to ``LEASE_S`` after their time, so the shared window adds that too. At a
sustained rate this is 100 calls per 20.5 s (97.6 per 20 s) in one process and 100 per 21 s (95.2 per 20 s,
a 5 % margin) shared, with bursts of 100 allowed.

- With an audit store configured (``$SYNC_AUDIT_URL`` or the ``sync_audit`` connection: every Celery worker
  has it), the window of each (app, path) is shared by every task process of the deployment
  (:mod:`fxiaoke_k3cloud.audit.throttle`), taken a few slots per database transaction.
- Without one, or while the audit database does not answer, the window is the process's own, as before.

The counter lets a backfill run on a fixed call budget.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

from fxiaoke_k3cloud.hooks import call_ledger
from fxiaoke_k3cloud.audit.throttle import SharedCallWindow, deployment_call_window, forget_windows, window_key

log = logging.getLogger(__name__)

GATEWAY_LIMIT_PER_20S = 100  # the gateway's own per-path limit (§6.3)
DEFAULT_CALLS_PER_20S = GATEWAY_LIMIT_PER_20S  # the margin is in the hold times below, not in the count
WINDOW_S = 20.0
TRANSIT_GUARD_S = 0.5  # send-to-arrival jitter and clock skew between workers that the hold absorbs
LEASE_S = 0.5  # a slot from the shared window is used within this after its time, or given back
LOCAL_HOLD_S = WINDOW_S + TRANSIT_GUARD_S
SHARED_HOLD_S = WINDOW_S + LEASE_S + TRANSIT_GUARD_S
MAX_BATCH = 8  # slots per database transaction, at most (the batch grows while slots are all used)
STORE_RETRY_S = 30.0  # after the audit database failed, the process's own window serves for this long


class Throttle(Protocol):
    limit: int

    def acquire(self, key: str) -> float: ...


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


class DeploymentThrottle:
    """The per-path windows of one app, shared by the deployment's processes through the audit database.

    ``acquire(path)`` takes a slot granted earlier to this process if one is still good, else asks the shared
    window for a batch (one transaction for up to :data:`MAX_BATCH` calls); it sleeps until the slot's time.
    The batch grows while every slot of the last one was used and shrinks when some ran out unused, so a
    slow caller takes one slot at a time and a busy one amortises the transaction over several calls.

    :param window: the shared window; ``None`` → returns the local fallback's answer (no store configured).
    :param local: the process's own window: paths in ``local_paths``, and the fallback when the store fails.
    :param local_paths: paths never taken from the shared window. The token path: its call is made while the
        token row is locked, and it has its own, far lower, shared budget (``audit/tokens.py``).
    """

    def __init__(
        self,
        scope: str,
        limit: int,
        window: Callable[[], SharedCallWindow | None],
        local: SlidingWindowThrottle,
        *,
        local_paths: frozenset[str] = frozenset(),
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scope = scope
        self.limit = limit
        self._window = window
        self.local = local
        self.local_paths = local_paths
        self._wall = wall
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: dict[str, deque[float]] = {}
        self._expired: dict[str, list[float]] = {}
        self._batch: dict[str, int] = {}
        self._store_down_until = 0.0
        self.grants = 0  # database transactions made (the measure of the throttle's own cost)

    def acquire(self, key: str) -> float:
        """Take one slot for path ``key``; returns the seconds spent waiting."""
        if key in self.local_paths:
            return self.local.acquire(key)
        with self._lock:
            slot = self._next_slot(key)
        if slot is None:
            return self.local.acquire(key)
        wait = slot - self._wall()
        if wait > 0:
            self._sleep(wait)  # outside the lock: the next caller may already take the next slot
            return wait
        return 0.0

    def _next_slot(self, key: str) -> float | None:
        now = self._wall()
        slots = self._slots.setdefault(key, deque())
        expired = self._expired.setdefault(key, [])
        while slots and slots[0] + LEASE_S < now:
            expired.append(slots.popleft())
        if slots:
            return slots.popleft()
        window = self._shared_window(now)
        if window is None:
            return None
        last = self._batch.get(key)
        if last is None:
            batch = 1
        elif expired:  # slots ran out unused: ask for fewer
            batch = max(1, last // 2)
        else:  # every slot of the last grant was used: ask for more
            batch = min(MAX_BATCH, last * 2)
        try:
            granted = window.grant(window_key(self.scope, key), key, self.limit, batch, give_back=expired)
        except Exception as exc:  # noqa: BLE001 — the CRM stays reachable when the audit database is not
            log.warning("Shared Fxiaoke call window unavailable (%s); this process throttles on its own for %.0f s",
                        exc, STORE_RETRY_S)
            self._store_down_until = now + STORE_RETRY_S
            return None
        self.grants += 1
        self._batch[key] = batch
        expired.clear()
        slots.extend(granted[1:])
        return granted[0]

    def _shared_window(self, now: float) -> SharedCallWindow | None:
        if now < self._store_down_until:
            return None
        try:
            return self._window()
        except Exception as exc:  # noqa: BLE001 — as above
            log.warning("Audit store unavailable for the Fxiaoke call window (%s); throttling in this process", exc)
            self._store_down_until = now + STORE_RETRY_S
            return None

    def release(self) -> None:
        """Give every unused slot back to the shared window (at process exit: others may use them at once)."""
        with self._lock:
            pending = {key: [*slots, *self._expired.get(key, [])] for key, slots in self._slots.items()}
            self._slots.clear()
            self._expired.clear()
        pending = {key: unused for key, unused in pending.items() if unused}
        if not pending or self._wall() < self._store_down_until:
            return
        try:
            window = self._window()
            for key, unused in pending.items():
                if window is not None:
                    window.give_back(window_key(self.scope, key), key, unused)
        except Exception:  # noqa: BLE001 — at exit; the slots just age out of the window
            log.debug("Could not give unused Fxiaoke call slots back", exc_info=True)


def _deployment_window() -> SharedCallWindow | None:
    return deployment_call_window(hold_s=SHARED_HOLD_S, lease_s=LEASE_S)


_THROTTLES: dict[tuple[str, int], DeploymentThrottle] = {}
_THROTTLES_LOCK = threading.Lock()


def shared_throttle(scope: str, calls_per_20s: int, *, local_paths: frozenset[str] = frozenset()) -> DeploymentThrottle:
    """The throttle of one tenant/app ``scope`` at a given rate (one window per path inside), process-wide.

    Shared with the deployment's other processes when an audit store is configured, else this process's own.
    """
    with _THROTTLES_LOCK:
        key = (scope, calls_per_20s)
        if key not in _THROTTLES:
            local = SlidingWindowThrottle(calls_per_20s, LOCAL_HOLD_S)
            _THROTTLES[key] = DeploymentThrottle(scope, calls_per_20s, _deployment_window, local,
                                                 local_paths=local_paths)
        return _THROTTLES[key]


@atexit.register
def release_shared_throttles() -> None:
    """Give unused shared slots back (a task process ending with a batch half used)."""
    with _THROTTLES_LOCK:
        throttles = list(_THROTTLES.values())
    for throttle in throttles:
        throttle.release()


def clear_shared_throttles() -> None:
    """Forget every window of this process and the shared windows' engines (tests)."""
    with _THROTTLES_LOCK:
        _THROTTLES.clear()
    forget_windows()


@dataclass
class CallCounter:
    """API calls sent by one hook: total and per path (token calls included; they cost quota too).

    Thread-safe: a cursor query's pages are read by several threads of one hook at once.
    """

    total: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, path: str, *, budget: int | None = None) -> bool:
        """Count one call on ``path``; with a ``budget``, only if fewer than that many were counted (else False).

        Check and count are one step, so threads racing for the last call of a budget cannot both take it.
        """
        with self._lock:
            if budget is not None and self.total >= budget:
                return False
            self.total += 1
            self.by_path[path] += 1
        call_ledger.add("fxiaoke", path)
        return True

    def as_dict(self) -> dict[str, object]:
        with self._lock:
            return {"total": self.total, "by_path": dict(self.by_path)}
