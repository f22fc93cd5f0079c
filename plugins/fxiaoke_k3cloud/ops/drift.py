"""The drift report in the audit store: one ``sync_drift_run`` per reconciliation, its ``sync_drift`` rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit.redact import safe_text
from fxiaoke_k3cloud.audit.schema import DRIFT_RUN_STATUSES, sync_drift, sync_drift_run
from fxiaoke_k3cloud.ops.reconcile import Drift

VALUE_LIMIT = 1000


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start_drift_run(store: Any, run_id: str, flows: Iterable[str], threshold: int | None) -> int:
    with store.engine.begin() as conn:
        result = conn.execute(sa.insert(sync_drift_run).values(
            run_id=run_id, flows=",".join(flows), status="running", started_at=_now(), threshold=threshold,
        ).returning(sync_drift_run.c.id))
        return int(result.scalar_one())


def write_drift(store: Any, drift_run: int, flow: str, drifts: Iterable[Drift]) -> int:
    """Replace ``flow``'s rows of the drift run (a retried task starts clean); returns rows written."""
    now = _now()
    rows = [{"drift_run": drift_run, "flow": d.flow, "kind": d.kind, "source_id": d.source_id,
             "target_number": d.target_number, "field": d.field,
             "crm_value": safe_text(d.crm_value, limit=VALUE_LIMIT), "erp_value": safe_text(d.erp_value, limit=VALUE_LIMIT),
             "detected_at": now} for d in drifts]
    with store.engine.begin() as conn:
        conn.execute(sa.delete(sync_drift).where(sync_drift.c.drift_run == drift_run, sync_drift.c.flow == flow))
        if rows:
            conn.execute(sa.insert(sync_drift), rows)
    return len(rows)


def drift_rows(store: Any, drift_run: int) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        query = sa.select(sync_drift).where(sync_drift.c.drift_run == drift_run).order_by(sync_drift.c.id)
        return [dict(r._mapping) for r in conn.execute(query)]


def record_drift_count(rows: Iterable[Mapping[str, Any]]) -> int:
    """Drift counted against the threshold: differing records (per-day amount totals are context, not records)."""
    return sum(1 for r in rows if r["source_id"] is not None or r["target_number"] is not None)


def finish_drift_run(store: Any, drift_run: int, status: str, drift_count: int, summary: Mapping[str, Any],
                     message: str | None) -> None:
    if status not in DRIFT_RUN_STATUSES or status == "running":
        raise ValueError(f"finish status must be one of {DRIFT_RUN_STATUSES[1:]}, got {status!r}")
    with store.engine.begin() as conn:
        conn.execute(sa.update(sync_drift_run).where(sync_drift_run.c.id == drift_run).values(
            status=status, finished_at=_now(), drift_count=drift_count,
            summary=json.loads(json.dumps(dict(summary), default=str)), message=safe_text(message)))


def get_drift_run(store: Any, drift_run: int) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(sync_drift_run).where(sync_drift_run.c.id == drift_run)).one_or_none()
        return dict(row._mapping) if row else None
