"""A step's run: the params (``ids`` normalised), the Airflow run's id, type and time, the audit store, the run's
window and the watermark move after a good load, and closing runs a vanished task left open.

The same for every flow of either direction (``flows.steps`` and both sides' adapters use it).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Mapping

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.errors import SyncError
from fxiaoke_k3cloud.flows.liveness import airflow_run_state
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.window import Window, resolve_window, to_ms

log = logging.getLogger(__name__)
_MIGRATED: set[str] = set()


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


def open_store() -> AuditStore:
    """The audit store of the task's process, migrated once per process and database."""
    store = AuditStore.from_airflow()
    if store.url not in _MIGRATED:
        store.migrate()
        _MIGRATED.add(store.url)
    return store


def run_window(spec: FlowSpec, store: Any, params: Mapping[str, Any], context: Mapping[str, Any]) -> Window:
    """The run's window by the model of ``window.resolve_window`` (watermark-based unless a backfill)."""
    _, run_type, run_after = run_meta(context)
    return resolve_window(
        params=params,
        data_interval_start=context.get("data_interval_start"),
        data_interval_end=context.get("data_interval_end"),
        run_after=run_after,
        watermark_ms=store.get_watermark(spec.name),
        lookback=spec.lookback,
        run_type=run_type,
        index_lag=spec.index_lag,
    )


def advance_watermark(spec: FlowSpec, store: Any, state: Mapping[str, Any], run_id: str) -> None:
    """After a successful load: move the flow's watermark to where the run's window allows (never back)."""
    if not state.get("move_watermark"):
        return
    if store.run_status(state["run_pk"]) == "abandoned":
        raise SyncError(f"{spec.name} run {state['run_pk']} was closed as abandoned by a later run while this task "
                        "was away (its staged rows are gone); the watermark stays, the next run reads the window again")
    window = Window.from_xcom(state["window"])
    if window.advance_to is None:
        log.info("%s: watermark left alone (%s window)", spec.name, window.source)
        return
    now = store.set_watermark(spec.name, to_ms(window.advance_to), run_id)
    log.info("%s: watermark at %s", spec.name, datetime.fromtimestamp(now / 1000, tz=timezone.utc))


def close_abandoned(spec: FlowSpec, store: Any, context: Mapping[str, Any], run_pk: int) -> None:
    """Close this flow's earlier runs whose Airflow runs are over (or gone) but whose rows say running."""
    for run in store.close_abandoned(spec.name, exclude=run_pk,
                                     is_alive=lambda run_id: airflow_run_state(spec.dag_id, run_id, context)):
        log.warning("%s: run %s (%s) was left running by a task that is gone; closed as abandoned: %s",
                    spec.name, run["id"], run["run_id"], run["message"])
