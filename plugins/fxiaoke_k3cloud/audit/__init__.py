"""Audit store of the sync flows: runs, per-record outcomes, id map, watermarks, parked records.

Usage from a task::

    store = AuditStore.from_airflow()          # $SYNC_AUDIT_URL, conn "sync_audit", or SQLite
    store.migrate()
    run_pk = store.start_run("customers", run_id, run_type, window_start, window_end)
    store.record_outcomes(run_pk, outcomes)
    store.finish_run(run_pk, "success", counts)

Tables are described for the data team in this package's README.md.
"""

from __future__ import annotations

from fxiaoke_k3cloud.audit.models import IdMapConflictError, IdMapEntry, ParkedItem, RecordOutcome
from fxiaoke_k3cloud.audit.redact import redact
from fxiaoke_k3cloud.audit.schema import PARKED_STATUSES, RECORD_OUTCOMES, RUN_COUNT_COLUMNS, RUN_STATUSES
from fxiaoke_k3cloud.audit.store import AuditStore

__all__ = [
    "PARKED_STATUSES",
    "RECORD_OUTCOMES",
    "RUN_COUNT_COLUMNS",
    "RUN_STATUSES",
    "AuditStore",
    "IdMapConflictError",
    "IdMapEntry",
    "ParkedItem",
    "RecordOutcome",
    "redact",
]
