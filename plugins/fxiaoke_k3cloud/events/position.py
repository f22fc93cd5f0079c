"""Where a watcher stands: the newest change it has rung the doorbell for, kept in the audit store.

No new table: a watcher's position is one row of the ``watermark`` table under ``watch:<name>`` —
``value_ms`` holds the change time (epoch ms) and ``run_id`` the tie-breaking record id as ``id:<id>`` —
and its last poll is a second row ``watch:<name>:polled`` (``value_ms`` = when, ``run_id`` = ``ok`` or the
error class), so the monitor can show when a watcher last polled and how far it has seen. Both rows only
move forward. A flow's own watermark (``deliveries``, ...) is never touched by a watcher.

Every method is synchronous (SQLAlchemy); triggers call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import total_ordering

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.audit.schema import watermark

PREFIX = "watch:"


@total_ordering
@dataclass(frozen=True)
class Position:
    """A change: its time (epoch ms) and the record id that breaks ties between changes in the same ms."""

    at_ms: int
    record_id: str = ""

    def _key(self) -> tuple[int, int, str]:
        # K3Cloud FIDs are integers: compare them as numbers ("10" after "9"); CRM ids as text.
        rid = self.record_id
        return (self.at_ms, int(rid) if rid.isdigit() else -1, rid)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Position):
            return NotImplemented
        return self._key() < other._key()

    def as_event(self) -> dict[str, object]:
        at = datetime.fromtimestamp(self.at_ms / 1000, tz=timezone.utc)
        return {"at_ms": self.at_ms, "at": at.isoformat(), "record_id": self.record_id}


class PositionStore:
    """Reads and moves the stored positions of watchers (one ``AuditStore``, shared by all of them)."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store

    @classmethod
    def from_airflow(cls, *, migrate: bool = True) -> PositionStore:
        store = AuditStore.from_airflow()
        if migrate:
            store.migrate()  # idempotent, under a lock: a watcher may start before any flow ran
        return cls(store)

    def get(self, name: str) -> Position | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(watermark.c.value_ms, watermark.c.run_id).where(watermark.c.flow == PREFIX + name)).first()
        if row is None:
            return None
        rid = str(row.run_id or "")
        return Position(int(row.value_ms), rid[3:] if rid.startswith("id:") else rid)

    def advance(self, name: str, position: Position) -> Position:
        """Store ``position`` if it is past the stored one; returns the position in force afterwards."""
        current = self.get(name)
        if current is not None and not current < position:
            return current
        self.store.set_watermark(PREFIX + name, position.at_ms, f"id:{position.record_id}"[:250], force=True)
        return position

    def polled(self, name: str, at_ms: int, status: str) -> None:
        """Record that the watcher polled at ``at_ms`` with ``status`` (``ok`` or an error class name)."""
        self.store.set_watermark(f"{PREFIX}{name}:polled", at_ms, status[:250])

    def last_poll(self, name: str) -> tuple[int, str] | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(watermark.c.value_ms, watermark.c.run_id).where(watermark.c.flow == f"{PREFIX}{name}:polled")
            ).first()
        return None if row is None else (int(row.value_ms), str(row.run_id or ""))
