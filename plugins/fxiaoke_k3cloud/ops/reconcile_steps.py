"""The tasks of the ``sync_reconcile`` DAG: open a drift run, compare each flow, report (and hand over to re-drive)."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Mapping

from fxiaoke_k3cloud.flows.specs import reconciled_flows

log = logging.getLogger(__name__)

RECONCILED_FLOWS = tuple(reconciled_flows())  # from the registry


def _store() -> Any:
    from fxiaoke_k3cloud.flows.steps import open_store

    return open_store()


def _run_id(context: Mapping[str, Any]) -> str:
    dag_run = context.get("dag_run")
    return getattr(dag_run, "run_id", None) or str(context.get("run_id") or "manual")


def open_drift_run(context: Mapping[str, Any]) -> dict[str, Any]:
    from fxiaoke_k3cloud.errors import ConfigError
    from fxiaoke_k3cloud.ops.drift import start_drift_run

    params = dict(context.get("params") or {})
    flows = [f for f in RECONCILED_FLOWS if f in (params.get("flows") or RECONCILED_FLOWS)]
    unknown = set(params.get("flows") or ()) - set(RECONCILED_FLOWS)
    if unknown or not flows:
        raise ConfigError(f"param 'flows'={params.get('flows')!r}: choose from {RECONCILED_FLOWS}")
    threshold = int(params.get("threshold") or 0)
    drift_run = start_drift_run(_store(), _run_id(context), flows, threshold)
    log.info("reconciliation %s of %s (threshold %s)", drift_run, ", ".join(flows), threshold)
    return {"drift_run": drift_run, "flows": flows, "threshold": threshold,
            "sample_size": int(params.get("sample_size") or 50)}


def compare(flow: str, opened: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    from fxiaoke_k3cloud.flows.specs import flow_spec
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
    from fxiaoke_k3cloud.ops.drift import write_drift
    from fxiaoke_k3cloud.ops import reconcile, reconcile_crm

    if flow not in opened["flows"]:
        return {"flow": flow, "skipped": True}
    store = _store()
    spec = flow_spec(flow)
    # By the flow's direction: the target is K3Cloud (CRM → K3Cloud) or the CRM (K3Cloud → CRM).
    compare_flow = reconcile_crm.reconcile_flow if spec.direction == "k3_to_crm" else reconcile.reconcile_flow
    with K3CloudHook() as k3:  # one K3Cloud session for the task, logged out at its end
        result = compare_flow(spec, store, FxiaokeHook(), k3, sample_size=int(opened["sample_size"]),
                              seed=f"{opened['drift_run']}")
    written = write_drift(store, int(opened["drift_run"]), flow, result.drifts)
    return {"flow": flow, "counts": result.counts, "drift_rows": written}


def report(context: Mapping[str, Any]) -> dict[str, Any]:
    """Close the drift run; fail when drift exceeds the threshold. Returns what ``sync_redrive`` needs."""
    from airflow.sdk.exceptions import AirflowFailException

    from fxiaoke_k3cloud.ops.drift import drift_rows, finish_drift_run, record_drift_count
    from fxiaoke_k3cloud.ops.queue import REPAIRABLE_DRIFT

    ti = context["ti"]
    opened = ti.xcom_pull(task_ids="open_drift_run")
    if not opened:
        raise AirflowFailException("open_drift_run did not finish; nothing was compared (see its log)")
    store = _store()
    drift_run = int(opened["drift_run"])
    compared = {f: ti.xcom_pull(task_ids=f"compare_{f}") for f in opened["flows"]}
    rows = drift_rows(store, drift_run)
    count = record_drift_count(rows)
    unfinished = sorted(f for f, out in compared.items() if not out)
    summary = {f: (out or {}).get("counts") for f, out in compared.items()}
    source_ids: dict[str, list[str]] = {}
    for row in rows:
        if row["source_id"] and row["kind"] in REPAIRABLE_DRIFT:
            source_ids.setdefault(row["flow"], [])
            if row["source_id"] not in source_ids[row["flow"]]:
                source_ids[row["flow"]].append(row["source_id"])
    threshold = int(opened["threshold"])
    if unfinished:
        status, message = "failed", f"comparison of {', '.join(unfinished)} did not finish"
    elif count > threshold:
        status, message = "drift", f"{count} drifted record(s), threshold {threshold}"
    else:
        status, message = "clean", f"{count} drifted record(s), within threshold {threshold}" if count else None
    finish_drift_run(store, drift_run, status, count, summary, message)
    kinds = Counter((r["flow"], r["kind"]) for r in rows)
    lines = [f"reconciliation {drift_run}: {status}" + (f" ({message})" if message else "")]
    for flow, counts in summary.items():
        lines.append(f"  {flow:<10} {counts}")
    for (flow, kind), n in sorted(kinds.items()):
        lines.append(f"  {n:>6} × {flow} {kind}")
    for row in rows[:30]:
        lines.append(f"    {row['flow']} {row['kind']} {row['source_id'] or '-'} {row['target_number'] or '-'} "
                     f"{row['field'] or ''} CRM={row['crm_value']!r} ERP={row['erp_value']!r}")
    if source_ids:
        lines.append(f"  repair: trigger sync_redrive with {{\"from_drift_run\": {drift_run}}}")
    log.info("\n".join(lines))
    out = {"drift_run": drift_run, "status": status, "drift_count": count, "source_ids": source_ids,
           "redrive_conf": {"from_drift_run": drift_run}}
    if status != "clean":
        raise AirflowFailException(
            f"reconciliation {drift_run}: {message}. See sync_drift where drift_run = {drift_run}; repair with "
            f"sync_redrive conf {{\"from_drift_run\": {drift_run}}}."
        )
    return out
