"""Is an Airflow DAG run still alive? Asked from inside a task through the Task SDK (no metadata DB access)."""

from __future__ import annotations

import logging
from typing import Any, Mapping

log = logging.getLogger(__name__)

ALIVE_STATES = ["queued", "running"]


def airflow_run_state(dag_id: str, run_id: str, context: Mapping[str, Any]) -> bool | None:
    """True when ``run_id`` of ``dag_id`` is queued or running in Airflow, False when it is over or unknown
    to Airflow, None when Airflow cannot be asked (not inside a task, or the call failed)."""
    ti = context.get("ti")
    get_count = getattr(ti, "get_dr_count", None)
    if get_count is None:
        return None
    try:
        return int(get_count(dag_id=dag_id, run_ids=[run_id], states=ALIVE_STATES)) > 0
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot tell"; the caller falls back to age
        log.info("cannot ask Airflow whether %s/%s is alive (%s: %s)", dag_id, run_id, type(exc).__name__, exc)
        return None
