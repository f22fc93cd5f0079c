"""Sync state kept between runs: the id map, watermarks and parked records."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fxiaoke_k3cloud.audit._base import StoreBase, chunked, unique_strings
from fxiaoke_k3cloud.audit.models import IdMapConflictError, IdMapEntry, ParkedItem
from fxiaoke_k3cloud.audit.redact import safe_text
from fxiaoke_k3cloud.audit.schema import PARKED_STATUSES, id_map, parked, watermark
from fxiaoke_k3cloud.numbers import number_key

log = logging.getLogger(__name__)

#: Parked items a person has not taken out of the loop; ``release`` and ``escalate`` act on these.
_OPEN_PARKED = ("parked", "escalated")


def _id_map_entry(row: Any) -> IdMapEntry:
    return IdMapEntry(
        source_id=row.source_id,
        target_id=row.target_id,
        target_number=row.target_number,
        payload_hash=row.payload_hash,
        source_modified_ms=row.source_modified_ms,
        synced_at=row.synced_at,
        run=row.run,
    )


def _parked_item(row: Any) -> ParkedItem:
    return ParkedItem(
        entity=row.entity,
        source_id=row.source_id,
        flow=row.flow,
        reason=row.reason,
        missing=row.missing,
        first_parked_at=row.first_parked_at,
        last_tried_at=row.last_tried_at,
        attempts=row.attempts,
        released_at=row.released_at,
        status=row.status,
    )


def ms_to_datetime(value_ms: int) -> datetime:
    return datetime.fromtimestamp(value_ms / 1000, tz=timezone.utc)


class StateMixin(StoreBase):
    # ---------------------------------------------------------------- id map

    def get_id_map(self, entity: str, source_ids: Iterable[str]) -> dict[str, IdMapEntry]:
        """Known mappings of ``source_ids`` (CRM ids), keyed by source id; unknown ids are absent."""
        return self._read_id_map(entity, id_map.c.source_id, unique_strings(source_ids))

    def get_id_map_by_numbers(self, entity: str, numbers: Iterable[str]) -> dict[str, IdMapEntry]:
        """Known mappings of ``numbers`` (K3Cloud FNumber), keyed by target number."""
        found = self._read_id_map(entity, id_map.c.target_number, unique_strings(numbers))
        return {e.target_number: e for e in found.values() if e.target_number is not None}

    def get_id_map_by_number_keys(self, entity: str, numbers: Iterable[str]) -> dict[str, IdMapEntry]:
        """Known mappings whose number K3Cloud takes for one of ``numbers`` (case, width and blanks ignored),
        keyed by :func:`~fxiaoke_k3cloud.numbers.number_key`."""
        keys = unique_strings(number_key(n) for n in numbers)
        found = self._read_id_map(entity, id_map.c.number_key, keys)
        return {number_key(e.target_number): e for e in found.values() if e.target_number is not None}

    def _read_id_map(self, entity: str, column: sa.Column[Any], keys: Sequence[str]) -> dict[str, IdMapEntry]:
        out: dict[str, IdMapEntry] = {}
        with self.engine.connect() as conn:
            for part in chunked(keys):
                rows = conn.execute(sa.select(id_map).where(id_map.c.entity == entity, column.in_(part)))
                for row in rows:
                    out[row.source_id] = _id_map_entry(row)
        return out

    def upsert_id_map(self, entity: str, entries: Iterable[IdMapEntry]) -> int:
        """Insert or update mappings by (entity, source_id) in one transaction; returns rows written.

        Every field of an entry overwrites the stored one (an entry is the whole truth about the record
        after a successful write). Within one batch the last entry for a source id wins.

        :raises IdMapConflictError: a target number (compared as K3Cloud compares numbers) already belongs to
            another source id.
        """
        now = self._now()
        latest: dict[str, IdMapEntry] = {}
        for e in entries:
            latest[str(e.source_id)] = e
        if not latest:
            return 0
        values = [
            {
                "entity": entity,
                "source_id": sid,
                "target_id": None if e.target_id is None else str(e.target_id),
                "target_number": None if e.target_number is None else str(e.target_number),
                "number_key": number_key(e.target_number) or None,
                "payload_hash": e.payload_hash,
                "source_modified_ms": e.source_modified_ms,
                "synced_at": e.synced_at or now,
                "run": e.run,
            }
            for sid, e in latest.items()
        ]
        try:
            with self.engine.begin() as conn:
                ins = self._insert(conn, id_map)
                stmt = ins.on_conflict_do_update(
                    index_elements=[id_map.c.entity, id_map.c.source_id],
                    set_={
                        name: ins.excluded[name]
                        for name in ("target_id", "target_number", "number_key", "payload_hash", "source_modified_ms",
                                 "synced_at", "run")
                    },
                )
                conn.execute(stmt, values)
        except IntegrityError as exc:
            raise IdMapConflictError(
                f"id_map {entity!r}: a target number in this batch is already mapped to another source id "
                f"(unique entity + target_number). Find the duplicate with "
                f"get_id_map_by_numbers({entity!r}, [...]) and resolve it in the CRM or ERP."
            ) from exc
        return len(values)

    def forget_id_map(self, entity: str, source_ids: Iterable[str]) -> int:
        """Delete the mappings of ``source_ids``; returns how many rows went."""
        removed = 0
        with self.engine.begin() as conn:
            for part in chunked(unique_strings(source_ids)):
                removed += conn.execute(sa.delete(id_map).where(id_map.c.entity == entity,
                                                                id_map.c.source_id.in_(part))).rowcount
        return removed

    # ---------------------------------------------------------------- watermark

    def get_watermark(self, flow: str) -> int | None:
        """The flow's high-water mark in epoch milliseconds, or None before its first success."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(watermark.c.value_ms).where(watermark.c.flow == flow)).scalar_one_or_none()

    def set_watermark(self, flow: str, value_ms: int, run_id: str | None, *, force: bool = False) -> int:
        """Move the watermark forward to ``value_ms``; returns the value in force afterwards.

        A smaller value is ignored (logged) so an old backfill can never rewind an incremental flow;
        ``force=True`` sets it anyway (deliberate re-sync). The check is part of the upsert, so two
        concurrent writers cannot rewind it either.
        """
        if isinstance(value_ms, bool) or not isinstance(value_ms, int) or value_ms < 0:
            raise ValueError(f"watermark must be a non-negative int of epoch milliseconds, got {value_ms!r}")
        with self.engine.begin() as conn:
            ins = self._insert(conn, watermark).values(
                flow=flow, value_ms=value_ms, value_at=ms_to_datetime(value_ms), run_id=run_id, updated_at=self._now()
            )
            stmt = ins.on_conflict_do_update(
                index_elements=[watermark.c.flow],
                set_={k: ins.excluded[k] for k in ("value_ms", "value_at", "run_id", "updated_at")},
                where=None if force else watermark.c.value_ms <= ins.excluded.value_ms,
            )
            conn.execute(stmt)
            current = conn.execute(sa.select(watermark.c.value_ms).where(watermark.c.flow == flow)).scalar_one()
        if current != value_ms:
            log.warning(
                "Watermark of %s stays at %s: refusing to move it back to %s (use force=True to rewind)",
                flow, current, value_ms,
            )
        return current

    # ---------------------------------------------------------------- parked

    def park(self, entity: str, flow: str, items: Iterable[tuple[str, str | None, str | None]]) -> int:
        """Park records waiting for a dependency: ``items`` are ``(source_id, reason, missing)``.

        A record already parked (or escalated/quarantined) gets ``attempts + 1`` and a fresh
        ``last_tried_at``, keeping its status and ``first_parked_at``; a released record parked again
        starts a new episode (status parked, attempts 1). Returns the number of records written.
        """
        now = self._now()
        latest: dict[str, tuple[str | None, str | None]] = {}
        for source_id, reason, missing in items:
            latest[str(source_id)] = (reason, missing)
        if not latest:
            return 0
        values = [
            {
                "entity": entity,
                "source_id": sid,
                "flow": flow,
                "reason": safe_text(reason),
                "missing": safe_text(missing),
                "first_parked_at": now,
                "last_tried_at": now,
                "attempts": 1,
                "released_at": None,
                "status": "parked",
            }
            for sid, (reason, missing) in latest.items()
        ]
        with self.engine.begin() as conn:
            ins = self._insert(conn, parked)
            released = parked.c.status == "released"
            stmt = ins.on_conflict_do_update(
                index_elements=[parked.c.entity, parked.c.source_id],
                set_={
                    "flow": ins.excluded.flow,
                    "reason": ins.excluded.reason,
                    "missing": ins.excluded.missing,
                    "last_tried_at": ins.excluded.last_tried_at,
                    "attempts": sa.case((released, 1), else_=parked.c.attempts + 1),
                    "first_parked_at": sa.case((released, ins.excluded.first_parked_at), else_=parked.c.first_parked_at),
                    "released_at": sa.case((released, sa.null()), else_=parked.c.released_at),
                    "status": sa.case((released, "parked"), else_=parked.c.status),
                },
            )
            conn.execute(stmt, values)
        return len(values)

    def list_parked(self, entity: str, status: str | None = "parked", *, flow: str | None = None) -> list[ParkedItem]:
        """Parked records of ``entity`` in ``status`` (None: any status), oldest first."""
        if status is not None and status not in PARKED_STATUSES:
            raise ValueError(f"status must be one of {PARKED_STATUSES} or None, got {status!r}")
        query = sa.select(parked).where(parked.c.entity == entity)
        if status is not None:
            query = query.where(parked.c.status == status)
        if flow is not None:
            query = query.where(parked.c.flow == flow)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(parked.c.first_parked_at, parked.c.id))
            return [_parked_item(r) for r in rows]

    def release(self, entity: str, source_ids: Iterable[str]) -> int:
        """Mark parked/escalated records as released (their dependency landed); returns how many changed.

        Quarantined records stay put: a person took them out of the loop.
        """
        return self._set_parked_status(entity, unique_strings(source_ids), "released", _OPEN_PARKED)

    def quarantine(self, entity: str, source_ids: Iterable[str]) -> int:
        """Take records out of the automatic release loop (a person will look); returns how many changed."""
        return self._set_parked_status(entity, unique_strings(source_ids), "quarantined", _OPEN_PARKED)

    def _set_parked_status(self, entity: str, ids: Sequence[str], status: str, from_statuses: tuple[str, ...]) -> int:
        now = self._now()
        changes: dict[str, Any] = {"status": status}
        if status == "released":
            changes["released_at"] = now
        changed = 0
        with self.engine.begin() as conn:
            for part in chunked(ids):
                result = conn.execute(
                    sa.update(parked)
                    .where(parked.c.entity == entity, parked.c.source_id.in_(part), parked.c.status.in_(from_statuses))
                    .values(**changes)
                )
                changed += result.rowcount
        return changed

    def escalate(self, entity: str, older_than: timedelta) -> list[ParkedItem]:
        """Escalate records parked for longer than ``older_than``; returns the ones escalated now."""
        cutoff = self._now() - older_than
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.update(parked)
                .where(parked.c.entity == entity, parked.c.status == "parked", parked.c.first_parked_at <= cutoff)
                .values(status="escalated")
                .returning(*parked.c)
            ).all()
        return sorted((_parked_item(r) for r in rows), key=lambda p: (p.first_parked_at, p.source_id))
