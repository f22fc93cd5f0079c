"""The polling doorbell every watcher shares: poll the newest change, ring when it passes the stored position.

A subclass says how to open its async client and how to read the newest change (one cheap call); this class
does the rest, identically for every source:

* the position (``events.position``) is read from the audit store when the trigger starts, so a triggerer
  restart, a new trigger instance or a second triggerer taking over continues where the last one stood;
* a watcher with no stored position yet (first deployment) rings once for the newest change it finds and
  stores it: whatever changed before its first poll is read by that run from the flow's watermark;
* an event is yielded **before** the position moves: a crash in between repeats a doorbell (harmless — the
  run reads from the flow's watermark), it never loses one;
* errors never end the trigger: they are logged with their class and message (which carry host and service,
  never a secret) and the next poll waits a jittered, growing delay (``events.pacing``);
* the last poll (time and ``ok`` / error class) is written at most every ``heartbeat_s`` for the monitor.

Everything that blocks (connection lookup, the audit store) runs in a worker thread; HTTP is ``httpx`` async.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from fxiaoke_k3cloud.events.pacing import Pacing
from fxiaoke_k3cloud.events.position import Position, PositionStore


class PollingWatcher(BaseEventTrigger, abc.ABC):
    """Base of the watchers. ``name`` keys the stored position (keep it stable across deployments)."""

    def __init__(self, *, name: str, pacing: dict[str, Any] | None = None, heartbeat_s: float = 30.0,
                 max_polls: int | None = None) -> None:
        super().__init__()
        self.name = name
        self.pacing = Pacing.from_kwargs(pacing)
        self.heartbeat_s = float(heartbeat_s)
        self.max_polls = max_polls  # tests and benchmarks stop after this many polls; None = forever
        self.polls = 0
        self._store: PositionStore | None = None

    # --- what a subclass provides ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Build the async client (may read the connection in a thread)."""

    @abc.abstractmethod
    async def newest(self) -> Position | None:
        """The newest change at the source (one call), or None when there is none in range."""

    async def close(self) -> None:
        """Release the client."""

    def extra_kwargs(self) -> dict[str, Any]:
        return {}

    def event_payload(self, position: Position) -> dict[str, Any]:
        return {"watcher": self.name, **position.as_event()}

    # --- the loop -------------------------------------------------------------------------------------------
    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {"name": self.name, "pacing": self.pacing.as_kwargs(), "heartbeat_s": self.heartbeat_s,
                  "max_polls": self.max_polls, **self.extra_kwargs()}
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def store(self) -> PositionStore:
        if self._store is None:
            self._store = await asyncio.to_thread(PositionStore.from_airflow)
        return self._store

    async def run(self) -> AsyncIterator[TriggerEvent]:
        errors, last_beat, position, opened = 0, 0.0, None, False
        try:
            while self.max_polls is None or self.polls < self.max_polls:
                self.polls += 1
                status = "ok"
                try:
                    store = await self.store()
                    if not opened:
                        await self.open()
                        opened = True
                    if position is None:
                        position = await asyncio.to_thread(store.get, self.name)
                    newest = await self.newest()
                    if position is None and newest is None:
                        position = await asyncio.to_thread(store.advance, self.name, Position(0, ""))
                        self.log.info("watcher %s: no stored position and no change in range; starting at 0", self.name)
                    elif newest is not None and (position is None or position < newest):
                        self.log.info("watcher %s: %s is past %s; ringing", self.name, newest, position)
                        yield TriggerEvent(self.event_payload(newest))
                        position = await asyncio.to_thread(store.advance, self.name, newest)
                    errors = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 — a watcher outlives every failure of its source
                    errors += 1
                    status = type(exc).__name__
                    self.log.warning("watcher %s: poll failed (%s: %s); error %s in a row", self.name, status, exc, errors)
                now = time.time()
                if self._store is not None and (status != "ok" or now - last_beat >= self.heartbeat_s):
                    try:
                        await asyncio.to_thread(self._store.polled, self.name, int(now * 1000), status)
                        last_beat = now
                    except Exception as exc:  # noqa: BLE001
                        self.log.warning("watcher %s: could not record the poll (%s)", self.name, type(exc).__name__)
                if self.max_polls is None or self.polls < self.max_polls:
                    await asyncio.sleep(self.pacing.delay(errors))
        finally:
            if opened:
                await self.close()
