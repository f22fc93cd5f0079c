"""The four tasks of a CRM → ERP flow (extract, transform, load, report), as called from the DAG files.

Each step opens the audit store, does its work and returns a small dict for XCom (ids, counts, window):
data moves between tasks through the audit store's staging table, never through XCom.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from airflow.sdk.exceptions import AirflowFailException

from fxiaoke_k3cloud.audit import RUN_COUNT_COLUMNS, AuditStore
from fxiaoke_k3cloud.errors import SyncError
from fxiaoke_k3cloud.flows.dependencies import sync_missing
from fxiaoke_k3cloud.flows.extract import extract_records, report_future_records
from fxiaoke_k3cloud.flows.liveness import airflow_run_state
from fxiaoke_k3cloud.flows.load import load_staged
from fxiaoke_k3cloud.flows.lookups import id_map_lookups
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.run_context import params as _params, run_meta as _run_meta
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_hook, flow_spec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.transform import transform_staged
from fxiaoke_k3cloud.flows.window import EPOCH, Window, resolve_window, to_ms
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

log = logging.getLogger(__name__)

OUTCOMES = ("created", "updated", "unchanged", "rejected", "failed", "parked", "reported", "skipped")


_MIGRATED: set[str] = set()


def open_store():
    """The audit store of the task's process, migrated once per process and database."""
    store = AuditStore.from_airflow()
    if store.url not in _MIGRATED:
        store.migrate()
        _MIGRATED.add(store.url)
    return store



def run_window(spec: FlowSpec, store: Any, params: Mapping[str, Any], context: Mapping[str, Any]) -> Window:
    """The run's window by the model of ``window.resolve_window`` (watermark-based unless a backfill)."""
    _, run_type, run_after = _run_meta(context)
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



# --------------------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------------------
def extract(flow: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Read the window's changed CRM records (plus earlier failures to retry) into the staging table."""
    spec = flow_spec(flow)
    params = _params(context)
    run_id, run_type, run_after = _run_meta(context)
    store = open_store()
    window = run_window(spec, store, params, context)
    run_pk = store.start_run(spec.name, run_id, run_type, window.start, window.end)
    close_abandoned(spec, store, context, run_pk)
    log.info("%s run %s: window %s → %s (%s)", spec.name, run_pk, window.start, window.end, window.source)
    hook = FxiaokeHook()
    stage = Stage(store)
    read = flow_hook(spec, "extract") or extract_records
    extracted, retried = read(spec, hook, store, stage, run_pk, window, ids=params["ids"])
    if not params["ids"]:
        report_future_records(spec, hook, store, run_pk, int(datetime.now(timezone.utc).timestamp() * 1000))
    log.info("%s: extracted %s records (%s earlier failures/parked retried), Fxiaoke calls: %s",
             spec.name, extracted, retried, hook.calls.as_dict())
    result = {
        "run_pk": run_pk,
        "window": window.as_xcom(),
        "extracted": extracted,
        "retried": retried,
        "move_watermark": not params["ids"] and not params.get("dry_run"),
        "dry_run": bool(params.get("dry_run")),
    }
    if _nothing_to_do(stage, run_pk, window):
        # The later steps would read an empty stage: move the watermark here and let the DAG skip them
        # (dag_factory), so an idle 15-minute run starts two task processes (extract, report), not four or five.
        advance_watermark(spec, store, result, run_id)
        result["nothing_to_do"] = True
        log.info("%s: nothing changed; the later steps are skipped", spec.name)
    return result


def _nothing_to_do(stage: Any, run_pk: int, window: Window) -> bool:
    """Nothing staged (no record, retry, deletion or void) and not a run that checks every target (full resync)."""
    return window.start > EPOCH and stage.is_empty(run_pk)


# --------------------------------------------------------------------------------------------------
# dependencies: what the run's lookups need first (the mapping's lookups.<name>.flow)
# --------------------------------------------------------------------------------------------------
def sync_dependencies(flow: str, extracted: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Sync the records of other flows that the run's records reference but K3Cloud does not have yet (same run).

    Which flows and records: the mapping's lookups resolved through a flow's id map (see :mod:`.lookups`).
    """
    spec = flow_spec(flow)
    store = open_store()
    if extracted.get("dry_run"):
        return {**extracted, "dependencies_synced": {}}
    run_id, _, _ = _run_meta(context)
    mapping = flow_mapping(spec)
    if not id_map_lookups(mapping):
        return {**extracted, "dependencies_synced": {}}
    read_lines = flow_hook(spec, "staged_lines")
    stage = Stage(store)
    fx, k3 = FxiaokeHook(), K3CloudHook()
    total: dict[str, dict[str, int]] = {}
    with k3:  # one K3Cloud session for the task, logged out when it ends (also on failure)
        for n, records in enumerate(stage.chunks(extracted["run_pk"], "raw", 2000)):
            lines = []
            if mapping.entries is not None:
                ids = [str(r["_id"]) for r in records]
                lines = read_lines(stage, extracted["run_pk"], ids) if read_lines else stage.by_source(
                    extracted["run_pk"], "lines", ids)
            synced = sync_missing(spec, store, fx, k3, records, lines,
                                  run_id=f"{run_id}" + (f":{n}" if n else ""),
                                  window=Window.from_xcom(extracted["window"]))
            for dep, counts in synced.items():
                for key, value in counts.items():
                    total.setdefault(dep, {})[key] = total.get(dep, {}).get(key, 0) + value
    return {**extracted, "dependencies_synced": total}


#: The step's former name (orders' DAG and older callers): the same generic step, for any flow.
sync_customers = sync_dependencies


# --------------------------------------------------------------------------------------------------
# transform
# --------------------------------------------------------------------------------------------------
def transform(flow: str, extracted: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Map staged CRM records into K3Cloud packages; reject invalid records with a reason (they are audited)."""
    spec = flow_spec(flow)
    store = open_store()
    counts = transform_staged(spec, store, extracted["run_pk"])
    return {**extracted, **counts}


# --------------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------------
def load(flow: str, transformed: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Write the packages to K3Cloud idempotently, audit every outcome, then move the watermark."""
    spec = flow_spec(flow)
    store = open_store()
    flow_mapping(spec)  # the target form's keys are known to the hook before the loader reads back by number
    run_id, _, _ = _run_meta(context)
    run_pk = transformed["run_pk"]
    with K3CloudHook() as k3:  # one K3Cloud session for the task, logged out when it ends (also on failure)
        counts = load_staged(spec, store, k3, run_pk, dry_run=transformed.get("dry_run", False),
                             void_action=str(_params(context).get("void_action") or "report"))
    advance_watermark(spec, store, transformed, run_id)
    return {**transformed, **counts}


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------
def report(flow: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Summarise the run from the audit store; fail (red) when any record was rejected or failed."""
    spec = flow_spec(flow)
    ti = context["ti"]
    extracted = ti.xcom_pull(task_ids=f"extract_{spec.name}")
    if not extracted:
        from fxiaoke_k3cloud.flows.run_notes import close_unextracted

        raise AirflowFailException(close_unextracted(spec.name, open_store(), _run_meta(context)[0]))
    loaded = ti.xcom_pull(task_ids=f"load_{spec.name}")
    store = open_store()
    run_pk = extracted["run_pk"]
    from fxiaoke_k3cloud.flows.run_notes import record_calls

    record_calls(store, spec.name, _run_meta(context)[0])  # this process's calls (a re-drive's: all its steps')
    summary = store.run_summary(run_pk)
    counts = {k: int(v) for k, v in summary["records"].items()}
    counts["extracted"] = int(extracted.get("extracted", 0))
    problems = counts.get("rejected", 0) + counts.get("failed", 0)
    escalated = _escalate_parked(spec, store, context)
    if loaded is None and extracted.get("nothing_to_do"):
        loaded = {}  # extract found nothing to do and the DAG skipped the later steps
    if loaded is None:
        # What stopped a stage (its own text, e.g. the configuration error and what to fix), left by run_notes.
        status, message = "failed", summary.get("message") or "load did not finish; records not written are retried by the next run"
    elif problems or escalated:
        parts = [f"{problems} record(s) rejected or failed"] if problems else []
        parts += [f"{len(escalated)} record(s) parked for too long: "
                  + "; ".join(f"{p.source_id}: {p.reason}" for p in escalated[:10])] if escalated else []
        status, message = "partial", ". ".join(parts)
    else:
        status, message = "success", None
    store.finish_run(run_pk, status, {k: counts.get(k, 0) for k in RUN_COUNT_COLUMNS}, message)
    Stage(store).clear(run_pk)
    _log_summary(spec, extracted, counts, summary.get("top_reasons") or [])
    if status != "success":
        raise AirflowFailException(
            f"{spec.name}: {message}. Every good record was written; see the table above and the audit store "
            f"(sync_record where run = {run_pk})."
        )
    return counts


def _escalate_parked(spec: FlowSpec, store: Any, context: Mapping[str, Any]) -> list:
    """Parked records older than the ``parked_escalate_hours`` param (default 24 h), now escalated."""
    hours = (context.get("params") or {}).get("parked_escalate_hours")
    hours = 24.0 if hours is None else float(hours)
    for item in store.escalate(spec.entity, older_than=timedelta(hours=hours)):
        log.warning("%s %s parked since %s, escalated: %s", spec.entity, item.source_id, item.first_parked_at,
                    item.reason)
    return store.list_parked(spec.entity, status="escalated")


def _log_summary(spec: FlowSpec, extracted: Mapping[str, Any], counts: Mapping[str, int], reasons: list) -> None:
    window = extracted.get("window", {})
    lines = [f"{spec.name} run {extracted['run_pk']}: window {window.get('start')} → {window.get('end')} ({window.get('source')})"]
    lines.append("  " + "  ".join(f"{k:>9}" for k in ("extracted", *OUTCOMES)))
    lines.append("  " + "  ".join(f"{counts.get(k, 0):>9}" for k in ("extracted", *OUTCOMES)))
    for item in reasons:
        lines.append(f"  {item['count']:>5} × {item['outcome']}: {item['reason']}")
    log.info("\n".join(lines))

