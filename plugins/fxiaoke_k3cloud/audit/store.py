"""The audit store: runs, per-record outcomes and the reports read from them."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import engine as _engine
from fxiaoke_k3cloud.audit.models import RecordOutcome
from fxiaoke_k3cloud.audit.redact import excerpt, no_nul, safe_text
from fxiaoke_k3cloud.audit.schema import RECORD_OUTCOMES, RUN_COUNT_COLUMNS, RUN_STATUSES, sync_record, sync_run
from fxiaoke_k3cloud.audit.claims import ClaimMixin
from fxiaoke_k3cloud.audit.state import StateMixin

log = logging.getLogger(__name__)

#: Outcomes whose reasons the run summary lists (what a person has to look at).
_ATTENTION = ("rejected", "failed", "parked", "reported")


def _error_class_name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, type):
        return value.__qualname__
    if isinstance(value, BaseException):
        return type(value).__qualname__
    return str(value)[:200]


class AuditStore(ClaimMixin, StateMixin):
    """Audit trail and sync state of the flows, in our own database (Postgres; SQLite for a demo).

    One call is one transaction; batch methods take thousands of rows at once. Call ``migrate()``
    before first use (cheap when the schema is current).
    """

    @classmethod
    def from_airflow(cls, conn_id: str = _engine.DEFAULT_CONN_ID, **kwargs: Any) -> AuditStore:
        """Build the store from ``$SYNC_AUDIT_URL``, else Airflow connection ``conn_id``, else SQLite.

        The SQLite fallback is ``$AIRFLOW_HOME/sync_audit.db``. Logs which one is used (password hidden).
        """
        url, source = _engine.resolve_airflow_url(conn_id)
        log.info("Audit store: %s from %s", _engine.display_url(url), source)
        return cls(url, **kwargs)

    def migrate(self) -> None:
        """Bring the schema to the newest revision; idempotent and safe from several processes at once."""
        _engine.run_migrations(self.engine)

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None before ``migrate()``)."""
        return _engine.current_revision(self.engine)

    # ---------------------------------------------------------------- runs

    def start_run(
        self, flow: str, run_id: str, run_type: str, window_start: datetime, window_end: datetime
    ) -> int:
        """Open (or reopen) the run of ``flow`` for the Airflow run ``run_id``; returns its key.

        Keyed on (flow, Airflow run id): a task retry or a cleared task of the same Airflow run gets the
        same row back, reset to running with zeroed counters (its earlier ``sync_record`` rows stay;
        summaries count each record's last outcome). A manual re-run or a backfill of the same window is
        another Airflow run and gets its own row, so the data team sees every run; record-level
        idempotency comes from the id map, not from this table.
        """
        for name, value in (("window_start", window_start), ("window_end", window_end)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} {value!r} is naive: pass a timezone-aware datetime (UTC preferred)")
        if window_end < window_start:
            raise ValueError(f"window_end {window_end} is before window_start {window_start}")
        now = self._now()
        with self.engine.begin() as conn:
            ins = self._insert(conn, sync_run).values(
                flow=flow,
                run_id=run_id,
                run_type=run_type,
                window_start=window_start,
                window_end=window_end,
                status="running",
                started_at=now,
                heartbeat_at=now,
            )
            stmt = ins.on_conflict_do_update(
                index_elements=[sync_run.c.flow, sync_run.c.run_id],
                set_={
                    "window_start": ins.excluded.window_start,
                    "window_end": ins.excluded.window_end,
                    "run_type": ins.excluded.run_type,
                    "status": "running",
                    "started_at": ins.excluded.started_at,
                    "heartbeat_at": ins.excluded.heartbeat_at,
                    "finished_at": sa.null(),
                    "message": sa.null(),
                    "api_calls": sa.null(),
                    **{name: 0 for name in RUN_COUNT_COLUMNS},
                },
            ).returning(sync_run.c.id)
            return int(conn.execute(stmt).scalar_one())

    def finish_run(
        self,
        run_pk: int,
        status: str,
        counts: Mapping[str, int] | None = None,
        message: str | None = None,
        *,
        api_calls: Mapping[str, Any] | None = None,
    ) -> None:
        """Close a run with its final ``status`` and counters.

        :param counts: counters by outcome (keys from ``RUN_COUNT_COLUMNS``; absent keys keep their value).
            None derives them from the run's ``sync_record`` rows (final outcome per record).
        :param api_calls: calls made per API/endpoint, stored as JSON.
        """
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"finish status must be one of {RUN_STATUSES[1:]}, got {status!r}")
        if counts is not None:
            unknown = set(counts) - set(RUN_COUNT_COLUMNS)
            if unknown:
                raise ValueError(f"unknown count keys {sorted(unknown)}; allowed: {RUN_COUNT_COLUMNS}")
        with self.engine.begin() as conn:
            if counts is None:
                final = self._final_outcomes(conn, run_pk)
                counts = {k: v for k, v in final.items() if k in RUN_COUNT_COLUMNS}
            values: dict[str, Any] = {name: int(n) for name, n in counts.items()}
            values.update(status=status, finished_at=self._now(), message=safe_text(message))
            if api_calls is not None:
                # Call counts per endpoint: not redacted (endpoint names such as corpAccessToken/get
                # would be masked), only made JSON-safe.
                values["api_calls"] = json.loads(json.dumps(dict(api_calls), default=str))
            result = conn.execute(sa.update(sync_run).where(sync_run.c.id == run_pk).values(**values))
            if result.rowcount != 1:
                raise KeyError(f"no sync_run with id {run_pk}")

    def add_api_calls(self, flow: str, run_id: str, calls: Mapping[str, Mapping[str, Any]]) -> bool:
        """Add one task's API calls (``{system: {"total": n, "by_path": {path: n}}}``) to the run's ``api_calls``.

        Keyed on (flow, Airflow run id) like ``start_run``; False when the run has no row (its first task stopped
        before opening it). Totals and paths add up across the run's tasks.
        """
        if not calls:
            return False
        with self.engine.begin() as conn:
            where = sa.and_(sync_run.c.flow == flow, sync_run.c.run_id == run_id)
            row = conn.execute(sa.select(sync_run.c.id, sync_run.c.api_calls).where(where).with_for_update()).first()
            if row is None:
                return False
            merged: dict[str, Any] = dict(row.api_calls or {}) if isinstance(row.api_calls, dict) else {}
            for system, seen in calls.items():
                known = merged.get(system) if isinstance(merged.get(system), dict) else {}
                paths = dict(known.get("by_path") or {})
                for path, n in dict(seen.get("by_path") or {}).items():
                    paths[str(path)] = int(paths.get(str(path), 0)) + int(n)
                merged[str(system)] = {"total": int(known.get("total") or 0) + int(seen.get("total") or 0),
                                       "by_path": paths}
            conn.execute(sa.update(sync_run).where(sync_run.c.id == row.id).values(api_calls=merged))
        return True

    def note_run_message(self, flow: str, run_id: str, message: str) -> bool:
        """Keep what stopped one of the run's tasks on its (still open) row; the report step carries it on.

        False when the run has no open row. ``finish_run`` replaces the message with the run's own.
        """
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(sync_run)
                .where(sync_run.c.flow == flow, sync_run.c.run_id == run_id, sync_run.c.status == "running")
                .values(message=safe_text(message))
            )
        return result.rowcount == 1

    def run_pk_of(self, flow: str, run_id: str) -> int | None:
        """The key of the run of ``flow`` for the Airflow run ``run_id``, or None."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(sync_run.c.id).where(sync_run.c.flow == flow,
                                                                sync_run.c.run_id == run_id)).scalar_one_or_none()
        return None if found is None else int(found)

    # ---------------------------------------------------------------- records

    def record_outcomes(self, run_pk: int, rows: Sequence[RecordOutcome]) -> int:
        """Append one ``sync_record`` row per outcome, in one transaction; returns the number written.

        Requests and responses are redacted and truncated before they are stored; reasons are scrubbed.
        """
        if not rows:
            return 0
        now = self._now()
        values: list[dict[str, Any]] = []
        for r in rows:
            if r.outcome not in RECORD_OUTCOMES:
                raise ValueError(f"record {r.entity}/{r.source_id}: outcome {r.outcome!r} not in {RECORD_OUTCOMES}")
            if r.attempt < 1:
                raise ValueError(f"record {r.entity}/{r.source_id}: attempt must be >= 1, got {r.attempt}")
            values.append(
                {
                    "run": run_pk,
                    "flow": r.flow,
                    "entity": r.entity,
                    "source_id": no_nul(str(r.source_id)),
                    "source_name": safe_text(r.source_name, limit=500),
                    "target_id": None if r.target_id is None else no_nul(str(r.target_id)),
                    "target_number": None if r.target_number is None else no_nul(str(r.target_number)),
                    "outcome": r.outcome,
                    "reason": safe_text(r.reason),
                    "error_class": _error_class_name(r.error_class),
                    "attempt": r.attempt,
                    "payload_hash": r.payload_hash,
                    "request_excerpt": excerpt(r.request),
                    "response_excerpt": excerpt(r.response),
                    "created_at": now,
                }
            )
        with self.engine.begin() as conn:
            conn.execute(sa.insert(sync_record), values)
        return len(values)

    @staticmethod
    def _final_outcomes(conn: sa.Connection, run_pk: int) -> dict[str, int]:
        """Count of records by their *last* outcome in the run (a retried record counts once)."""
        last_ids = (
            sa.select(sa.func.max(sync_record.c.id))
            .where(sync_record.c.run == run_pk)
            .group_by(sync_record.c.entity, sync_record.c.source_id)
        )
        rows = conn.execute(
            sa.select(sync_record.c.outcome, sa.func.count())
            .where(sync_record.c.id.in_(last_ids))
            .group_by(sync_record.c.outcome)
        )
        return {outcome: int(n) for outcome, n in rows}

    # ---------------------------------------------------------------- reports

    def run_summary(self, run_pk: int) -> dict[str, Any]:
        """The run row plus what its records say: final outcome per record, by entity, top reasons.

        Keys: the ``sync_run`` columns, ``counts`` (the stored counters), ``records`` (final outcome →
        number of records), ``by_entity`` (entity → outcome → number), ``rows`` (sync_record rows incl.
        retries) and ``top_reasons`` (up to 20 of outcome, reason, count for rejected/failed/parked).
        """
        with self.engine.connect() as conn:
            run = conn.execute(sa.select(sync_run).where(sync_run.c.id == run_pk)).one_or_none()
            if run is None:
                raise KeyError(f"no sync_run with id {run_pk}")
            summary = dict(run._mapping)
            summary["counts"] = {name: summary[name] for name in RUN_COUNT_COLUMNS}
            summary["records"] = self._final_outcomes(conn, run_pk)
            by_entity: dict[str, dict[str, int]] = {}
            last_ids = (
                sa.select(sa.func.max(sync_record.c.id))
                .where(sync_record.c.run == run_pk)
                .group_by(sync_record.c.entity, sync_record.c.source_id)
            )
            for entity, outcome, n in conn.execute(
                sa.select(sync_record.c.entity, sync_record.c.outcome, sa.func.count())
                .where(sync_record.c.id.in_(last_ids))
                .group_by(sync_record.c.entity, sync_record.c.outcome)
            ):
                by_entity.setdefault(entity, {})[outcome] = int(n)
            summary["by_entity"] = by_entity
            summary["rows"] = int(
                conn.execute(sa.select(sa.func.count()).where(sync_record.c.run == run_pk)).scalar_one()
            )
            n = sa.func.count().label("n")
            summary["top_reasons"] = [
                {"outcome": outcome, "reason": reason, "count": int(count)}
                for outcome, reason, count in conn.execute(
                    sa.select(sync_record.c.outcome, sync_record.c.reason, n)
                    .where(sync_record.c.run == run_pk, sync_record.c.outcome.in_(_ATTENTION))
                    .group_by(sync_record.c.outcome, sync_record.c.reason)
                    .order_by(n.desc(), sync_record.c.outcome, sync_record.c.reason)
                    .limit(20)
                )
            ]
        return summary

    def recent_runs(self, flow: str, limit: int = 20) -> list[dict[str, Any]]:
        """The flow's latest runs, newest first, as dicts of the ``sync_run`` columns."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(sync_run)
                .where(sync_run.c.flow == flow)
                .order_by(sync_run.c.started_at.desc(), sync_run.c.id.desc())
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows]

    def record_history(
        self,
        source_id: str | None = None,
        target_number: str | None = None,
        *,
        flow: str | None = None,
        entity: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Every outcome recorded for a CRM id and/or a K3Cloud number, newest first.

        Each dict has the ``sync_record`` columns plus the run's ``run_id``, ``run_type``,
        ``window_start`` and ``window_end``.
        """
        if source_id is None and target_number is None:
            raise ValueError("record_history needs source_id or target_number")
        query = sa.select(
            sync_record,
            sync_run.c.run_id,
            sync_run.c.run_type,
            sync_run.c.window_start,
            sync_run.c.window_end,
        ).join(sync_run, sync_run.c.id == sync_record.c.run)
        if source_id is not None:
            query = query.where(sync_record.c.source_id == str(source_id))
        if target_number is not None:
            query = query.where(sync_record.c.target_number == str(target_number))
        if flow is not None:
            query = query.where(sync_record.c.flow == flow)
        if entity is not None:
            query = query.where(sync_record.c.entity == entity)
        query = query.order_by(sync_record.c.created_at.desc(), sync_record.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
