"""The K3Cloud → Fxiaoke deliveries flow: the extract, transform and load tasks of ``k3cloud_deliveries_to_fxiaoke``.

* **extract** (K3Cloud): audited delivery notices approved in the window, plus earlier failures and parked
  notices re-read by FID; notices already in the CRM that were un-audited or deleted are *reported*; the CRM
  order of every sale order number is resolved (order id map, else the order's ``FNetOrderBillNo``).
* **transform** (CRM reads): notices whose order the CRM never sent are *reported*; the rest are mapped with
  ``include/mappings/deliveries.yaml`` into delivery notes with lines.
* **load** (CRM writes): :class:`~fxiaoke_k3cloud.flows.deliveries_crm.DeliveryLoader`.

Data moves between tasks through the audit store's staging table; XCom carries the run key and counts.
The final ``report`` task is the shared ``steps.report``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from fxiaoke_k3cloud.flows import deliveries_k3 as k3
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_spec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.steps import _params, _run_meta, advance_watermark, close_abandoned, open_store, run_window
from fxiaoke_k3cloud.flows.window import Window

log = logging.getLogger(__name__)

FLOW = "deliveries"
ORDER_ENTITY = "order"  # written by the orders flow: CRM SalesOrderObj _id ⇄ K3 SAL_SaleOrder FID / FBillNo
CUSTOMER_ENTITY = "customer"  # written by the customers flow: CRM AccountObj _id ⇄ K3 BD_Customer FNumber
DELETED = "deleted"  # payload_hash of a delivery id-map entry whose notice was deleted in K3Cloud (reported once)
RECHECK = timedelta(days=30)  # notices synced this recently are checked for deletion on every run
ORDER_STATUS_MAP = "order_status_on_delivery"


def _outcome(spec: FlowSpec, source_id: str, name: str | None, outcome: str, reason: str, **extra: Any) -> Any:
    from fxiaoke_k3cloud.audit import RecordOutcome

    return RecordOutcome(flow=spec.name, entity=spec.entity, source_id=str(source_id), source_name=name,
                         outcome=outcome, reason=reason, **extra)


# --------------------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------------------
def extract(flow: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Stage the window's audited notices and their orders' CRM ids; report reversals of synced notices."""
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
    from fxiaoke_k3cloud.mapping import load_mapping

    spec = flow_spec(flow)
    params = _params(context)
    run_id, run_type, run_after = _run_meta(context)
    store = open_store()
    window = run_window(spec, store, params, context)
    run_pk = store.start_run(spec.name, run_id, run_type, window.start, window.end)
    close_abandoned(spec, store, context, run_pk)
    log.info("%s run %s: window %s → %s (%s)", spec.name, run_pk, window.start, window.end, window.source)
    keys = load_mapping(spec.mapping_path).source.fields or []
    with K3CloudHook() as hook:  # one K3Cloud session for the task, logged out when it ends (also on failure)
        return _extract(spec, store, params, window, run_pk, keys, hook)


def _extract(spec: Any, store: Any, params: Mapping[str, Any], window: Any, run_pk: int, keys: list[str],
             hook: Any) -> dict[str, Any]:
    from fxiaoke_k3cloud.flows.queries import failed_source_ids

    rows = k3.audited_in_window(hook, keys, window)
    seen = {str(r["FID"]) for r in rows}
    again = [*failed_source_ids(store, spec.name, spec.entity),
             *(p.source_id for p in store.list_parked(spec.entity, flow=spec.name))]
    retry = [fid for fid in dict.fromkeys(again) if fid not in seen]
    if retry:
        rows += k3.notices_by_ids(hook, keys, retry)
    dry_run = bool(params.get("dry_run"))
    reported = report_reversals(spec, store, hook, run_pk, window, exclude=seen, mark=not dry_run)
    numbers = {r["FOrderNo"] for r in rows if r.get("FOrderNo")}
    orders = resolve_order_numbers(store, hook, numbers)
    stage = Stage(store)
    stage.put(run_pk, "raw", rows, key="FID")
    stage.put(run_pk, "orders", [{"kind": "orders", "orders": orders}], key="kind")
    notices = len({str(r["FID"]) for r in rows})
    log.info("%s: %s audited notice(s) (%s re-read), %s reversal(s) reported, %s of %s order number(s) known",
             spec.name, notices, len(retry), reported, len(orders), len(numbers))
    return {"run_pk": run_pk, "window": window.as_xcom(), "extracted": notices + reported, "retried": len(retry),
            "reported": reported, "move_watermark": not dry_run, "dry_run": dry_run}


def resolve_order_numbers(store: Any, hook: Any, numbers: set[str]) -> dict[str, dict[str, str]]:
    """``{sale order number: {"crm_id", "via"}}`` from the orders flow's id map, else ``FNetOrderBillNo``."""
    known = store.get_id_map_by_numbers(ORDER_ENTITY, sorted(numbers))
    orders = {n: {"crm_id": e.source_id, "via": "order id map"} for n, e in known.items()}
    net = k3.net_order_ids(hook, sorted(numbers - set(orders)))
    orders.update({n: {"crm_id": crm_id, "via": "FNetOrderBillNo"} for n, crm_id in net.items()})
    return orders


def _recent_deliveries(store: Any, since: datetime) -> dict[str, tuple[str | None, str | None]]:
    """``{notice FID: (CRM note id, notice number)}`` synced since ``since`` and not already reported deleted."""
    import sqlalchemy as sa

    from fxiaoke_k3cloud.audit.schema import id_map

    query = sa.select(id_map.c.source_id, id_map.c.target_id, id_map.c.target_number).where(
        id_map.c.entity == flow_spec(FLOW).entity, id_map.c.synced_at >= since,
        sa.or_(id_map.c.payload_hash.is_(None), id_map.c.payload_hash != DELETED))
    with store.engine.connect() as conn:
        return {row.source_id: (row.target_id, row.target_number) for row in conn.execute(query)}


def report_reversals(spec: FlowSpec, store: Any, hook: Any, run_pk: int, window: Window, *,
                     exclude: set[str], mark: bool) -> int:
    """Report notices already in the CRM that were un-audited (in the window) or deleted; returns how many.

    A deleted notice is reported once: its id-map entry is marked so later runs do not report it again.
    """
    from fxiaoke_k3cloud.audit import IdMapEntry

    outcomes = []
    unaudited = [r for r in k3.unaudited_in_window(hook, window) if str(r["FID"]) not in exclude]
    synced = store.get_id_map(spec.entity, [str(r["FID"]) for r in unaudited])
    for row in unaudited:
        entry = synced.get(str(row["FID"]))
        if entry is None or entry.payload_hash == DELETED:
            continue  # never sent to the CRM: nothing there to correct
        outcomes.append(_outcome(
            spec, row["FID"], row.get("FBillNo"), "reported", target_id=entry.target_id,
            target_number=entry.target_number,
            reason=f"{row.get('FBillNo')}: un-audited in K3Cloud (FDocumentStatus={row.get('FDocumentStatus')!r}) "
                   f"after it reached the CRM as {entry.target_id}; check the CRM delivery note by hand "
                   "(it is updated again if the notice is re-audited)"))
    recent = _recent_deliveries(store, datetime.now(timezone.utc) - RECHECK)
    gone = sorted(set(recent) - k3.existing_ids(hook, recent)) if recent else []
    for fid in gone:
        note_id, number = recent[fid]
        outcomes.append(_outcome(
            spec, fid, number, "reported", target_id=note_id, target_number=number,
            reason=f"{number}: deleted in K3Cloud after it reached the CRM as {note_id}; void the CRM delivery "
                   "note by hand if the delivery is cancelled"))
    if gone and mark:
        store.upsert_id_map(spec.entity, [IdMapEntry(source_id=fid, target_id=recent[fid][0],
                                                     target_number=recent[fid][1], payload_hash=DELETED,
                                                     run=run_pk) for fid in gone])
    store.record_outcomes(run_pk, outcomes)
    return len(outcomes)


# --------------------------------------------------------------------------------------------------
# transform
# --------------------------------------------------------------------------------------------------
def transform(flow: str, extracted: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Map staged notices to CRM delivery notes; report notices whose order the CRM never sent."""
    from fxiaoke_k3cloud.flows.deliveries_map import map_notices
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    spec = flow_spec(flow)
    store = open_store()
    counts = map_notices(spec, store, FxiaokeHook(), extracted["run_pk"])
    return {**extracted, **counts}


# --------------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------------
def load(flow: str, transformed: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Write the delivery notes, update the orders, message the owners; then move the watermark."""
    from fxiaoke_k3cloud.flows.deliveries_crm import DeliveryLoader, NotePackage
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    spec = flow_spec(flow)
    store = open_store()
    run_id, _, _ = _run_meta(context)
    run_pk = transformed["run_pk"]
    packages = [NotePackage.from_stage(row) for row in Stage(store).get(run_pk, "package")]
    loader = DeliveryLoader(spec, FxiaokeHook(), store, run_pk)
    counts = dict(loader.run(packages, dry_run=bool(transformed.get("dry_run"))))
    log.info("%s: %s", spec.name, counts)
    advance_watermark(spec, store, transformed, run_id)
    return {**transformed, **counts}
