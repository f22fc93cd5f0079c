"""The one pipeline of every flow, both directions: the tasks extract → transform → load → report.

Each step opens the audit store, does its work and returns a small dict for XCom (ids, counts, window): data
moves between tasks through the audit store's staging table, never through XCom. What is the same for every
flow is done here once — the run row and its window (``run_context``: watermark-based unless a backfill or
``ids``), closing runs a vanished task left open, the watermark move after a good load, the report. The work
of a step goes to the adapters of the flow's ``FlowSpec.direction``:

=============  =========================================  =========================================
direction      source adapter (extract)                   target adapter (transform, load)
=============  =========================================  =========================================
``crm_to_k3``  :class:`.crm_pipeline.FxiaokeSource`       :class:`.crm_pipeline.K3CloudTarget`
``k3_to_crm``  :class:`.k3_pipeline.K3CloudSource`        :class:`.k3_pipeline.FxiaokeTarget`
=============  =========================================  =========================================

Per-flow code is only in the flow's module (``FlowSpec.module``), as named hooks the adapters call; nothing
here names a flow. Two more steps a registry entry may list: ``sync_dependencies`` (the records of other flows
the run's lookups need first) and the write-back (``flows.writeback``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Mapping

from airflow.sdk.exceptions import AirflowFailException

from fxiaoke_k3cloud.audit import RUN_COUNT_COLUMNS
from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.flows.crm_pipeline import FxiaokeSource, K3CloudTarget
from fxiaoke_k3cloud.flows.dependencies import sync_missing
from fxiaoke_k3cloud.flows.k3_pipeline import FxiaokeTarget, K3CloudSource
from fxiaoke_k3cloud.flows.lookups import id_map_lookups
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.run_context import (  # noqa: F401 - open_store & co. re-exported (ops, DAG factory)
    advance_watermark,
    close_abandoned,
    open_store,
    params as _params,
    run_meta as _run_meta,
    run_window,
)
from fxiaoke_k3cloud.flows.run_notes import close_unextracted, record_calls
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_hook, flow_spec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.window import Window
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

log = logging.getLogger(__name__)

OUTCOMES = ("created", "updated", "unchanged", "rejected", "failed", "parked", "reported", "skipped")

#: The adapters of each ``FlowSpec.direction``: (source, target).
ADAPTERS: dict[str, tuple[Any, Any]] = {
    "crm_to_k3": (FxiaokeSource(), K3CloudTarget()),
    "k3_to_crm": (K3CloudSource(), FxiaokeTarget()),
}


def adapters(spec: FlowSpec) -> tuple[Any, Any]:
    """(source adapter, target adapter) of the flow's direction."""
    try:
        return ADAPTERS[spec.direction]
    except KeyError:
        raise ConfigError(f"flow {spec.name!r}: unknown direction {spec.direction!r}; "
                          f"known: {', '.join(sorted(ADAPTERS))}") from None


# --------------------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------------------
def extract(flow: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Open the run and its window; the source adapter stages what the run syncs (with ``ids``: only those)."""
    spec = flow_spec(flow)
    source, _ = adapters(spec)
    params = _params(context)
    run_id, run_type, _ = _run_meta(context)
    store = open_store()
    window = run_window(spec, store, params, context)
    run_pk = store.start_run(spec.name, run_id, run_type, window.start, window.end)
    close_abandoned(spec, store, context, run_pk)
    log.info("%s run %s: window %s → %s (%s)", spec.name, run_pk, window.start, window.end, window.source)
    dry_run = bool(params.get("dry_run"))
    result = {"run_pk": run_pk, "window": window.as_xcom(), "move_watermark": not params["ids"] and not dry_run,
              "dry_run": dry_run, **source.extract(spec, store, run_pk, window, params)}
    if result.get("nothing_to_do"):
        # The DAG skips the later steps (dag_factory), so an idle run starts two task processes (extract, report)
        # instead of four or five: the watermark moves here.
        advance_watermark(spec, store, result, run_id)
        log.info("%s: nothing changed; the later steps are skipped", spec.name)
    return result


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
    """Map the staged records into the target's packages; records not passed on get an outcome with a reason."""
    spec = flow_spec(flow)
    _, target = adapters(spec)
    counts = target.transform(spec, open_store(), extracted["run_pk"])
    log.info("%s: %s", spec.name, counts)
    return {**extracted, **counts}


# --------------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------------
def load(flow: str, transformed: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Write the packages to the target idempotently, audit every outcome, then move the watermark."""
    spec = flow_spec(flow)
    _, target = adapters(spec)
    store = open_store()
    run_id, _, _ = _run_meta(context)
    counts = target.load(spec, store, transformed["run_pk"], dry_run=bool(transformed.get("dry_run")),
                         params=_params(context))
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
        raise AirflowFailException(close_unextracted(spec.name, open_store(), _run_meta(context)[0]))
    loaded = ti.xcom_pull(task_ids=f"load_{spec.name}")
    store = open_store()
    run_pk = extracted["run_pk"]
    record_calls(store, spec.name, _run_meta(context)[0])  # this process's calls (a re-drive's: all its steps')
    summary = store.run_summary(run_pk)
    counts = {k: int(v) for k, v in summary["records"].items()}
    counts["extracted"] = int(extracted.get("extracted", 0))
    if extracted.get("read_on_in_load"):  # the load read the rest of a big window (flows/stream.py), maybe twice
        counts["extracted"] = Stage(store).count(run_pk, "raw")
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

