"""The K3Cloud → Fxiaoke deliveries flow: its named hooks into the one pipeline (``flows.steps``, whose
``k3_to_crm`` adapters are in :mod:`.k3_pipeline`); the registry entry names this module (``FlowSpec.module``).

* **extract** (the K3Cloud source: audited delivery notices approved in the window, earlier failures and parked
  notices re-read by FID): ``normalise`` gives each line its sale order number; ``reversals`` *reports* notices
  already in the CRM that were un-audited or deleted; ``prepare`` resolves the CRM order of every sale order
  number (order id map, else the order's ``FNetOrderBillNo``).
* ``transform`` (CRM reads): notices whose order the CRM never sent are *reported*; the rest are mapped with
  ``include/mappings/deliveries.yaml`` into delivery notes with lines (:mod:`.deliveries_map`).
* ``load`` (CRM writes): :class:`~fxiaoke_k3cloud.flows.deliveries_crm.DeliveryLoader`.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from fxiaoke_k3cloud.flows import deliveries_k3 as k3
from fxiaoke_k3cloud.flows import k3_pipeline as pipeline
from fxiaoke_k3cloud.flows import k3_source
from fxiaoke_k3cloud.flows.deliveries_crm import DeliveryLoader, NotePackage
from fxiaoke_k3cloud.flows.deliveries_map import CUSTOMER_ENTITY, ORDER_STATUS_MAP, map_notices
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.window import Window

log = logging.getLogger(__name__)

__all__ = ["CUSTOMER_ENTITY", "ORDER_STATUS_MAP", "normalise", "prepare", "reversals", "transform", "load",
           "resolve_order_numbers"]


def resolve_order_numbers(store: Any, hook: Any, numbers: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{sale order number: {"crm_id", "via"}}`` (numbers compared as K3Cloud does: case and width ignored)."""
    return k3_source.resolve_order_numbers(store, hook, numbers)


# --------------------------------------------------------------------------------------------------
# the flow's hooks (see k3_pipeline)
# --------------------------------------------------------------------------------------------------
def normalise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return k3.normalise(rows)


def prepare(spec: FlowSpec, store: Any, hook: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    numbers = {r["FOrderNo"] for r in rows if r.get("FOrderNo")}
    orders = resolve_order_numbers(store, hook, numbers)
    log.info("%s: %s of %s order number(s) known", spec.name, len(orders), len(numbers))
    return {"orders": orders}


def reversals(spec: FlowSpec, store: Any, hook: Any, run_pk: int, window: Window, *, exclude: set[str],
              mark: bool) -> int:
    """Report notices already in the CRM that were un-audited (in the window) or deleted; returns how many.

    A deleted notice is reported once: its id-map entry is marked so later runs do not report it again.
    """
    outcomes = [pipeline.outcome(
        spec, row["FID"], row.get("FBillNo"), "reported", target_id=entry.target_id, target_number=entry.target_number,
        reason=f"{row.get('FBillNo')}: un-audited in K3Cloud (FDocumentStatus={row.get('FDocumentStatus')!r}) "
               f"after it reached the CRM as {entry.target_id}; check the CRM delivery note by hand "
               "(it is updated again if the notice is re-audited)")
        for row, entry in pipeline.unaudited_synced(spec, store, hook, window, exclude=exclude)]
    gone = pipeline.vanished(spec, store, hook)
    for fid, (note_id, number) in gone.items():
        outcomes.append(pipeline.outcome(
            spec, fid, number, "reported", target_id=note_id, target_number=number,
            reason=f"{number}: deleted in K3Cloud after it reached the CRM as {note_id}; void the CRM delivery "
                   "note by hand if the delivery is cancelled"))
    if mark:
        pipeline.mark_deleted(spec, store, run_pk, gone)
    store.record_outcomes(run_pk, outcomes)
    return len(outcomes)


def transform(spec: FlowSpec, store: Any, hook: Any, run_pk: int) -> dict[str, int]:
    return map_notices(spec, store, hook, run_pk)


def load(spec: FlowSpec, store: Any, hook: Any, run_pk: int, *, dry_run: bool) -> Mapping[str, int]:
    packages = [NotePackage.from_stage(row) for row in Stage(store).get(run_pk, "package")]
    return DeliveryLoader(spec, hook, store, run_pk).run(packages, dry_run=dry_run)
