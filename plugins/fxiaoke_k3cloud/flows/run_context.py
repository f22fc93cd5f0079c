"""What a step reads of its Airflow run: the params (``ids`` normalised) and the run's id, type and time.

Shared by both pipelines (``flows.steps`` for CRM → K3Cloud, ``flows.k3_pipeline`` for K3Cloud → CRM).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping


def params(context: Mapping[str, Any]) -> dict[str, Any]:
    """The run's params with ``ids`` as a list of strings (a comma-separated string is split)."""
    out = dict(context.get("params") or {})
    ids = out.get("ids") or []
    if isinstance(ids, str):
        ids = [i.strip() for i in ids.split(",") if i.strip()]
    out["ids"] = [str(i) for i in ids]
    return out


def run_meta(context: Mapping[str, Any]) -> tuple[str, str, datetime]:
    """``(run_id, run_type, run_after)`` of the Airflow run (``manual`` and now when outside Airflow)."""
    dag_run = context.get("dag_run")
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id") or "manual"
    run_type = getattr(dag_run, "run_type", None) or "manual"
    run_type = str(getattr(run_type, "value", run_type))  # DagRunType.MANUAL → "manual"
    run_after = getattr(dag_run, "run_after", None) or datetime.now(timezone.utc)
    return run_id, run_type, run_after
