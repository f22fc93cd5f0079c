"""Reconciliation of a K3Cloud → CRM flow: does the CRM hold a record for every audited K3Cloud document synced?

For one ``k3_to_crm`` flow of the registry (its form ``source_object``, CRM object ``target_form``, id map
``entity``) it reads the audited documents of the form (``ExecuteBillQuery``, header keys only), the flow's id map,
and the CRM records of the object (``_id``, ``name``, ``life_status``; voided rows included), and compares:

* ``missing_in_crm`` — an audited document the id map says reached the CRM whose CRM record is gone (deleted
  behind our back) or voided; ``sync_redrive`` with the drift run forgets the dead link and the flow writes the
  record again (once: its owner message, if any, is not sent twice);
* ``extra_in_crm`` — a live CRM record the id map links whose document is no longer audited (un-audited or
  deleted in K3Cloud and not voided in the CRM), or a second live CRM record named after a synced document's
  number (written twice). These are for a person: nothing is re-driven for them.

Documents never synced (reported, parked or rejected) are not expected in the CRM: the audit store tracks them.
No flow names: what is compared comes from the registry entry.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit.schema import id_map
from fxiaoke_k3cloud.flows import k3_source
from fxiaoke_k3cloud.flows.k3_pipeline import DELETED
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.ops.reconcile import Comparison, Drift

log = logging.getLogger(__name__)

VOID = "invalid"  # CRM life_status of a voided record


def audited_documents(k3_hook: Any, spec: FlowSpec) -> dict[str, str]:
    """``{FID: FBillNo}`` of every audited document of the flow's form."""
    rows = k3_source.rows(k3_hook, spec.source_object, ["FID", "FBillNo"], F("FDocumentStatus") == "C")
    return {str(r["FID"]): str(r.get("FBillNo") or "") for r in rows}


def synced(store: Any, entity: str) -> dict[str, tuple[str, str | None, str | None]]:
    """``{FID: (CRM id, number, payload hash)}`` of the id map's entries that name a CRM record."""
    query = sa.select(id_map.c.source_id, id_map.c.target_id, id_map.c.target_number, id_map.c.payload_hash).where(
        id_map.c.entity == entity, id_map.c.target_id.is_not(None))
    with store.engine.connect() as conn:
        return {r.source_id: (str(r.target_id), r.target_number, r.payload_hash) for r in conn.execute(query)}


def crm_records(fx_hook: Any, spec: FlowSpec) -> dict[str, dict[str, Any]]:
    """The flow's CRM records by ``_id`` (voided ones too, so a void is told apart from a deletion)."""
    return {str(r["_id"]): r for page in fx_hook.query_records(spec.target_form, fields=["_id", "name", "life_status"],
                                                               include_voided=True) for r in page}


def reconcile_flow(spec: FlowSpec, store: Any, fx_hook: Any, k3_hook: Any, *, sample_size: int = 0,
                   seed: str = "") -> Comparison:
    """Compare one K3Cloud → CRM flow's audited documents with the CRM; see the module docstring."""
    audited = audited_documents(k3_hook, spec)
    links = synced(store, spec.entity)
    crm = crm_records(fx_hook, spec)
    live = {cid: r for cid, r in crm.items() if r.get("life_status") != VOID}
    drifts: list[Drift] = []
    expected = {fid: link for fid, link in links.items() if fid in audited and link[2] != DELETED}
    for fid, (crm_id, number, _) in sorted(expected.items()):
        if crm_id not in live:
            state = "voided" if crm_id in crm else "absent"
            drifts.append(Drift(spec.name, "missing_in_crm", fid, number or audited[fid], spec.target_form,
                                f"{crm_id}: {state}", "audited"))
    linked = {crm_id: fid for fid, (crm_id, _, _) in links.items()}
    for crm_id, fid in sorted(linked.items()):
        if crm_id in live and fid not in audited:
            drifts.append(Drift(spec.name, "extra_in_crm", fid, links[fid][1], spec.target_form,
                                f"{crm_id}: live", "not audited (un-audited or deleted)"))
    numbers = {number: fid for fid, (_, number, _) in expected.items() if number}
    for crm_id, record in sorted(live.items()):
        fid = numbers.get(str(record.get("name") or ""))
        if fid is not None and crm_id != expected[fid][0]:
            drifts.append(Drift(spec.name, "extra_in_crm", fid, record.get("name"), spec.target_form,
                                f"{crm_id}: live, a second record", f"id map: {expected[fid][0]}"))
    missing = sum(d.kind == "missing_in_crm" for d in drifts)
    counts = {"erp_audited": len(audited), "expected_in_crm": len(expected), "crm_records": len(live),
              "matched": len(expected) - missing, "missing_in_crm": missing,
              "extra_in_crm": sum(d.kind == "extra_in_crm" for d in drifts)}
    log.info("%s reconciliation: %s", spec.name, counts)
    return Comparison(drifts, counts)
