"""Re-drive and reconciliation of the K3Cloud → CRM flows (deliveries, receipts), driven by the registry like the
CRM → K3Cloud ones: over HTTP against both simulators, the audit store on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from flows_deliveries.world import NOTICE, run_flow as run_deliveries
from fxiaoke_k3cloud.flows.specs import flow_spec
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.ops.drift import start_drift_run, write_drift
from fxiaoke_k3cloud.ops.queue import plan_redrive
from fxiaoke_k3cloud.ops.reconcile_crm import reconcile_flow
from fxiaoke_k3cloud.ops.redrive import REDRIVE_FLOWS, redrive_flow

from .world import RECEIPT, run_flow as run_receipts


def fid(world, form: str, number: str) -> str:
    return str(world.k3_doc(form, number)["FID"])


def history(world, flow: str, source_id: str) -> list[str]:
    return [h["outcome"] for h in reversed(world.store.record_history(source_id, flow=flow))]


def reconcile(world, flow: str):
    with K3CloudHook(retry_wait_s=0) as k3:
        return reconcile_flow(flow_spec(flow), world.store, world.fx, k3)


def redrive(world, flow: str, ids: list[str]):
    with K3CloudHook(retry_wait_s=0) as k3:
        return redrive_flow(world.store, k3, flow, ids, run_id=f"test-redrive-{flow}", fx_hook=world.fx)


def test_a_delivery_whose_crm_write_failed_is_redriven_from_the_queue_and_lands_once(world):
    assert {"deliveries", "receipts"} <= set(REDRIVE_FLOWS)
    number = world.audited_notice(world.order())
    notice = fid(world, NOTICE, number)
    world.fxsim._admin("POST", "config", {"required_fields": {"DeliveryNoteObj": ["express_order_id"]}})
    with pytest.raises(AirflowFailException):
        run_deliveries()  # the CRM refuses the note (a field the tenant requires): failed, nothing written
    assert history(world, "deliveries", notice) == ["failed"] and world.notes() == []

    world.fxsim._admin("POST", "config", {"required_fields": {}})  # the tenant relaxed the field
    creates = world.crm_calls("/data/create")
    plan = {i["flow"]: i["ids"] for i in plan_redrive(world.store, {"flow": "all"})}
    assert plan["deliveries"] == [notice]  # the queue holds the K3Cloud FID, like a CRM id for the other flows
    for _ in range(2):
        done = redrive(world, "deliveries", plan["deliveries"])
    assert dict(done.outcomes) == {"unchanged": 1}  # the second re-drive wrote nothing
    assert history(world, "deliveries", notice) == ["failed", "created", "unchanged"]
    assert [n["name"] for n in world.notes()] == [number] and len(world.messages()) == 1
    assert world.crm_calls("/data/create") == creates + 1  # the one note
    assert world.store.get_watermark("deliveries") is None  # a re-drive leaves the flow's window alone


def test_a_delivery_note_deleted_behind_our_back_is_found_and_one_redrive_writes_it_again(world):
    kept, lost = (world.audited_notice(world.order()) for _ in range(2))
    run_deliveries()
    clean = reconcile(world, "deliveries")
    assert clean.drifts == [] and clean.counts["matched"] == 2
    note = next(n for n in world.notes() if n["name"] == lost)
    world.fx.invalid_record("DeliveryNoteObj", note["_id"])
    world.fx.delete_records("DeliveryNoteObj", [note["_id"]])

    found = reconcile(world, "deliveries")
    assert [(d.kind, d.source_id, d.target_number) for d in found.drifts] == [
        ("missing_in_crm", fid(world, NOTICE, lost), lost)]
    drift_run = start_drift_run(world.store, "test", ["deliveries"], 0)
    write_drift(world.store, drift_run, "deliveries", found.drifts)
    (item,) = [i for i in plan_redrive(world.store, {"flow": "deliveries", "from_drift_run": drift_run})]
    done = redrive(world, "deliveries", item["ids"])
    assert done.forgotten == [fid(world, NOTICE, lost)] and dict(done.outcomes) == {"created": 1}
    assert sorted(n["name"] for n in world.notes()) == sorted([kept, lost])
    assert len(world.messages()) == 2  # the owner was told once per notice, not again for the re-written note
    assert reconcile(world, "deliveries").drifts == []

    world.k3.unaudit(NOTICE, numbers=[kept])  # reported by the flow; the CRM note stays: a person looks at it
    assert [(d.kind, d.target_number) for d in reconcile(world, "deliveries").drifts] == [("extra_in_crm", kept)]


def test_receipts_reconcile_clean_through_a_void_and_a_deleted_payment_is_redriven_once(world):
    paid, lost = (world.pushed_receipt(world.order()) for _ in range(2))
    voided = world.pushed_receipt(world.order())
    run_receipts()
    world.k3.unaudit(RECEIPT, numbers=[voided])
    run_receipts()  # the flow voids the un-audited bill's payment: no drift
    assert reconcile(world, "receipts").drifts == []
    payment = next(p for p in world.payments() if p["name"] == lost)
    world.fx.invalid_record("PaymentObj", payment["_id"])  # voided by hand in the CRM

    found = reconcile(world, "receipts")
    assert [(d.kind, d.target_number) for d in found.drifts] == [("missing_in_crm", lost)]
    for _ in range(2):
        done = redrive(world, "receipts", [fid(world, RECEIPT, lost)])
    assert dict(done.outcomes) == {"unchanged": 1}
    assert sorted(p["name"] for p in world.payments()) == sorted([paid, lost])
    assert reconcile(world, "receipts").drifts == []
