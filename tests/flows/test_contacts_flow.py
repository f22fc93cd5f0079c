"""The contacts flow end to end: Fxiaoke ContactObj → K3Cloud BD_CommonContact, customer through the customers id map.

Added the new way (one YAML, one DAG file, a registry entry): these tests prove it behaves like the other flows —
create, update, idempotent, customers first, parked until the customer exists, voids/deletes, re-drive, reconcile.
"""

from __future__ import annotations

from mapping.crm_records import BASE_MS, account
from sync_state.flowrun import run_flow

from .conftest import run_dag

DAG_ID = "fxiaoke_contacts_to_k3cloud"
FULL = {"full_resync": True}


def contact(i: int, account_id: str, **overrides):
    rec = {"_id": f"66c{i:021x}", "name": f"联系人{i:03d}", "account_id": account_id, "account_id__r": f"客户{i}",
           "mobile1": f"138{i:08d}", "tel1": f"021-{66660000 + i}", "email": f"c{i}@example.com",
           "life_status": "normal", "last_modified_time": BASE_MS + 1000 + i, "owner": ["FSUID_0000000000000000000000000000A002"]}
    rec.update(overrides)
    return rec


def k3_contacts(k3) -> dict[str, dict]:
    return {r["FNumber"]: r for r in k3.records("BD_CommonContact")}


def number(rec) -> str:
    return rec["_id"].upper()


def last_run(store, flow="contacts"):
    return store.recent_runs(flow, limit=1)[0]


def outcomes(store, flow="contacts") -> dict[str, str]:
    from fxiaoke_k3cloud.flows.queries import run_records

    return {r["source_id"]: r["outcome"] for r in run_records(store, last_run(store, flow)["id"])}


def reasons(store, flow="contacts") -> dict[str, str]:
    from fxiaoke_k3cloud.flows.queries import run_records

    return {r["source_id"]: r["reason"] or "" for r in run_records(store, last_run(store, flow)["id"])}


def writes(k3) -> int:
    return sum(n for name, n in k3.stats()["calls"].items()
               if name.lower() in {"save", "batchsave", "submit", "audit", "unaudit"})


def fx_hook():
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    return FxiaokeHook(retry_wait_s=0)


def flow(name="contacts", n=[0], **params):  # noqa: B006 - a run counter shared by the module's tests
    n[0] += 1
    result = run_flow(name, run_id=f"test-{name}-{n[0]}", params=params)
    return result


def test_dag_creates_contacts_with_their_customer_synced_first_and_a_second_run_writes_nothing(dagbag, sims, store):
    accs = [account(i) for i in (1, 2)]
    people = [contact(1, accs[0]["_id"]), contact(2, accs[0]["_id"]), contact(3, accs[1]["_id"])]
    sims.fx.seed({"objects": {"AccountObj": accs, "ContactObj": people}})
    dr, states = run_dag(dagbag, DAG_ID, FULL)  # the customers flow never ran: its customers come first
    assert dr.state == "success", states
    assert set(states) == {"extract_contacts", "sync_customers", "transform_contacts", "load_contacts", "report"}
    customers = {r["FNumber"] for r in sims.k3.records("BD_Customer")}
    assert customers == {"CUST-000001", "CUST-000002"}
    assert store.recent_runs("customers", limit=1)[0]["run_type"] == "dependency"
    got = k3_contacts(sims.k3)
    assert set(got) == {number(p) for p in people}
    first = got[number(people[0])]
    assert first["FName"] == "联系人001" and first["FMobile"] == "13800000001" and first["FEmail"] == "c1@example.com"
    assert first["FCompanyType"] == "BD_Customer"
    assert first["FCompany"]["FNumber"] == first["FCustId"]["FNumber"] == "CUST-000001"
    assert got[number(people[2])]["FCustId"]["FNumber"] == "CUST-000002"
    assert first["FDocumentStatus"] == "C"
    assert set(outcomes(store).values()) == {"created"}

    before = writes(sims.k3)
    dr, _ = run_dag(dagbag, DAG_ID, FULL)
    assert dr.state == "success"
    assert writes(sims.k3) == before, "an unchanged contact must not be written again"
    assert set(outcomes(store).values()) == {"unchanged"}
    assert len(k3_contacts(sims.k3)) == 3


def test_crm_edit_updates_exactly_that_contact(sims, store):
    acc = account(5)
    people = [contact(i, acc["_id"]) for i in (1, 2, 3)]
    sims.fx.seed({"objects": {"AccountObj": [acc], "ContactObj": people}})
    assert flow(**FULL)["ok"]
    fx_hook().update_record("ContactObj", people[1]["_id"], {"mobile1": "13912345678", "email": "new@example.com"})
    result = flow()  # an incremental run: the watermark window holds the edit
    assert result["ok"], result
    assert outcomes(store) == {people[1]["_id"]: "updated"}
    got = k3_contacts(sims.k3)
    assert got[number(people[1])]["FMobile"] == "13912345678"
    assert got[number(people[1])]["FEmail"] == "new@example.com"
    assert got[number(people[0])]["FMobile"] == "13800000001"
    assert len(got) == 3


def test_contact_of_a_customer_in_approval_parks_and_lands_after_its_customer(sims, store):
    held = account(7, life_status="under_review")  # the customers flow holds it: no K3Cloud customer yet
    ok = account(8)
    waiting, fine = contact(1, held["_id"]), contact(2, ok["_id"])
    sims.fx.seed({"objects": {"AccountObj": [held, ok], "ContactObj": [waiting, fine]}})
    assert flow(**FULL)["ok"]  # parked is not a failure: the record waits
    assert outcomes(store) == {waiting["_id"]: "parked", fine["_id"]: "created"}
    assert "customer for account" in reasons(store)[waiting["_id"]]
    assert [p.source_id for p in store.list_parked("contact")] == [waiting["_id"]]
    assert set(k3_contacts(sims.k3)) == {number(fine)}

    sims.fx._admin("POST", "approve", {"object": "AccountObj", "ids": [held["_id"]]})  # approved in the CRM
    assert flow("customers")["ok"]
    assert "CUST-000007" in {r["FNumber"] for r in sims.k3.records("BD_Customer")}
    result = flow()  # the contact itself did not change: the parked record is read again by id
    assert result["ok"], result
    assert outcomes(store) == {waiting["_id"]: "created"}
    assert k3_contacts(sims.k3)[number(waiting)]["FCustId"]["FNumber"] == "CUST-000007"
    assert store.list_parked("contact") == []


def test_voided_and_deleted_contacts_are_reported_like_customers(sims, store, monkeypatch):
    from fxiaoke_k3cloud.flows import source_changes

    acc = account(9)
    voided, deleted, kept = (contact(i, acc["_id"]) for i in (1, 2, 3))
    sims.fx.seed({"objects": {"AccountObj": [acc], "ContactObj": [voided, deleted, kept]}})
    assert flow(**FULL)["ok"]
    fx = fx_hook()
    fx.invalid_record("ContactObj", voided["_id"])
    fx.invalid_record("ContactObj", deleted["_id"])
    fx.delete_records("ContactObj", [deleted["_id"]])
    monkeypatch.setattr(source_changes, "PRESENCE_EVERY_MS", 0)  # an hour later: the presence check is due
    assert flow(**FULL)["ok"]
    got = outcomes(store)
    assert got[voided["_id"]] == "reported" and got[deleted["_id"]] == "reported"
    why = reasons(store)
    assert "BD_CommonContact" in why[voided["_id"]] and "deleted in the CRM" in why[deleted["_id"]]
    # The mapping's policy is report (the customers' default): K3Cloud keeps both contacts, nothing is forbidden.
    assert all(r["FForbidStatus"] != "B" for r in sims.k3.records("BD_CommonContact"))
    assert len(k3_contacts(sims.k3)) == 3


def test_redrive_and_reconcile_cover_contacts_from_the_registry(sims, store):
    from fxiaoke_k3cloud.flows.specs import flow_spec
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
    from fxiaoke_k3cloud.ops.reconcile import reconcile_flow
    from fxiaoke_k3cloud.ops.redrive import REDRIVE_FLOWS, redrive_flow

    assert "contacts" in REDRIVE_FLOWS
    acc = account(11)
    people = [contact(i, acc["_id"]) for i in (1, 2)]
    sims.fx.seed({"objects": {"AccountObj": [acc], "ContactObj": people}})
    assert flow(**FULL)["ok"]
    spec = flow_spec("contacts")
    with K3CloudHook(retry_wait_s=0) as k3:
        clean = reconcile_flow(spec, store, fx_hook(), k3, sample_size=10, seed="t")
        assert clean.drifts == [] and clean.counts["matched"] == 2
        # Someone deletes a contact in K3Cloud (un-audit, then delete): reconcile finds it, one re-drive repairs it.
        gone = number(people[0])
        k3.unaudit("BD_CommonContact", numbers=[gone])
        k3.delete("BD_CommonContact", numbers=[gone])
        found = reconcile_flow(spec, store, fx_hook(), k3, sample_size=10, seed="t")
        assert [(d.kind, d.source_id) for d in found.drifts] == [("missing_in_erp", people[0]["_id"])]
        done = redrive_flow(store, k3, "contacts", [people[0]["_id"]], run_id="test-redrive")
        assert dict(done.outcomes) == {"created": 1}
        assert gone in k3_contacts(sims.k3)
        assert reconcile_flow(spec, store, fx_hook(), k3, sample_size=10, seed="t").drifts == []
