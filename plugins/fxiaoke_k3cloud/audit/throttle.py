"""The Fxiaoke per-path call window, shared by every task process of a deployment (``sync_call_window``).

The gateway allows 100 calls per 20 s per interface path (spec §6.3). A window kept in each process lets N
task processes (Celery workers, tasks running side by side) send N × the limit and get 30004. So the
deployment keeps one row per (app, path) in the audit database: the times of the call slots granted in the
last window. A process asks for a few slots at a time under a row lock (``SELECT … FOR UPDATE`` on
PostgreSQL; on SQLite the engine's ``BEGIN IMMEDIATE``), the same way :mod:`fxiaoke_k3cloud.audit.tokens`
shares the token, so one database transaction pays for several API calls.

A slot is a time ``t`` (wall clock, epoch seconds): the process may send one call from ``t`` to
``t + lease_s`` and not later; a slot it did not use by then is given back with its next request. Slots
are kept ``hold_s`` (the 20 s window plus the lease plus an allowance for transit time and clock skew)
after their time, so however a process spends its slot within the lease, the gateway never sees more
than ``limit`` calls on a path in any 20 s. When the window is full the slot granted is in the future and
the process sleeps until then outside the lock: processes queue in slot order, without polling.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from fxiaoke_k3cloud.audit import engine as _engine
from fxiaoke_k3cloud.audit.schema import sync_call_window


def window_key(scope: str, path: str) -> str:
    """The row key of one (app, path): a digest, so the host and app id are not stored in clear."""
    return hashlib.sha256("\x1f".join((scope, path)).encode()).hexdigest()


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


class SharedCallWindow:
    """Slots of the per-path windows, granted from rows in the audit database.

    :param hold_s: how long a granted slot counts against the window (≥ the gateway's 20 s + the lease).
    :param lease_s: the slots of one grant all fall within this span of the first one.
    :param wall: wall clock (epoch seconds: slots are compared across processes and machines).
    """

    def __init__(self, engine: Engine, *, hold_s: float, lease_s: float,
                 wall: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.hold_s = hold_s
        self.lease_s = lease_s
        self._wall = wall

    def grant(self, key: str, path: str, limit: int, wanted: int, give_back: Iterable[float] = ()) -> list[float]:
        """Up to ``wanted`` slot times for ``key`` (at least one), in order; the first may be in the future.

        :param limit: calls allowed per window on this path (this process's setting).
        :param give_back: slots this process was granted earlier and will never use (their lease ran out, or
            the process is ending); they are taken off the window first.
        """
        with self.engine.begin() as conn:
            row = self._lock_row(conn, key, path)
            now = self._wall()
            granted: list[float] = sorted(json.loads(row.granted))
            for slot in give_back:
                try:
                    granted.remove(slot)
                except ValueError:  # already out of the window
                    pass
            granted = [t for t in granted if t > now - self.hold_s]
            slots: list[float] = []
            while len(slots) < max(1, wanted):
                slot = max(now, granted[-1]) if granted else now
                if len(granted) >= limit:
                    slot = max(slot, granted[-limit] + self.hold_s)
                if slots and slot > slots[0] + self.lease_s:
                    break  # the rest would be later: one grant is one moment, the others queue behind it
                granted.append(slot)
                slots.append(slot)
            conn.execute(
                sa.update(sync_call_window).where(sync_call_window.c.window_key == key)
                .values(granted=json.dumps(granted), updated_at=_utc(now))
            )
        return slots

    def give_back(self, key: str, path: str, slots: Iterable[float]) -> None:
        """Take unused slots off the window (a process that ends with slots left)."""
        unused = list(slots)
        if not unused:
            return
        with self.engine.begin() as conn:
            row = self._lock_row(conn, key, path)
            granted = json.loads(row.granted)
            for slot in unused:
                if slot in granted:
                    granted.remove(slot)
            conn.execute(sa.update(sync_call_window).where(sync_call_window.c.window_key == key)
                         .values(granted=json.dumps(granted), updated_at=_utc(self._wall())))

    def _lock_row(self, conn: Connection, key: str, path: str) -> Any:
        dialect = conn.dialect.name
        query = sa.select(sync_call_window.c.granted).where(sync_call_window.c.window_key == key)
        if dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).one_or_none()
        if row is not None:  # the common case: one statement to lock and read
            return row
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values = {"window_key": key, "path": path[:300], "granted": "[]", "updated_at": _utc(self._wall())}
        conn.execute(insert(sync_call_window).values(**values).on_conflict_do_nothing(index_elements=["window_key"]))
        return conn.execute(query).one()


_WINDOWS: dict[tuple[str, float, float], SharedCallWindow] = {}
_WINDOWS_LOCK = threading.Lock()


def deployment_call_window(*, hold_s: float, lease_s: float) -> SharedCallWindow | None:
    """The call window of this deployment's audit database, or None when no audit store is configured.

    The store is the one ``$SYNC_AUDIT_URL`` or the ``sync_audit`` connection names, as for the shared token.
    Migrated on first use, once per process.
    """
    found = _engine.configured_url()
    if found is None:
        return None
    url, _source = found
    with _WINDOWS_LOCK:
        key = (url, hold_s, lease_s)
        window = _WINDOWS.get(key)
        if window is None:
            engine = _engine.make_engine(url)
            _engine.run_migrations(engine)
            window = SharedCallWindow(engine, hold_s=hold_s, lease_s=lease_s)
            _WINDOWS[key] = window
        return window


def forget_windows() -> None:
    """Dispose of the cached engines (tests that switch audit databases)."""
    with _WINDOWS_LOCK:
        for window in _WINDOWS.values():
            window.engine.dispose()
        _WINDOWS.clear()
