"""The target's truth beats the id map (issue 13, cases 5, 6c and 7), over HTTP against both simulators.

Every test asserts what K3Cloud (the simulator) holds afterwards, not only the audit store.
"""

from __future__ import annotations

import shutil

from mapping.crm_records import account

from .conftest import run_dag
from .test_orders_flow import line, order, products, seed

CUSTOMERS = "fxiaoke_customers_to_k3cloud"
ORDERS = "fxiaoke_orders_to_k3cloud"
FULL = {"full_resync": True}


def customers(k3) -> dict[str, dict]:
    return {c["FNumber"]: c for c in k3.records("BD_Customer")}


def last_rows(store, flow: str = "customers") -> dict[str, dict]:
    """source id → its sync_record row of the flow's last run (the last row per record)."""
    from fxiaoke_k3cloud.flows.queries import run_records

    run = store.recent_runs(flow, limit=1)[0]
    return {r["source_id"]: r for r in run_records(store, run["id"])}


def crm_update(record_id: str, data: dict) -> None:
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    FxiaokeHook(retry_wait_s=0).update_record("AccountObj", record_id, data)


def delete_in_k3cloud(number: str) -> None:
    """What a person does in the K3Cloud client: un-audit, then delete the customer."""
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    hook = K3CloudHook(retry_wait_s=0)
    hook.unaudit("BD_Customer", numbers=[number])
    hook.delete("BD_Customer", numbers=[number])


def test_number_key_ignores_case_width_and_blanks():
    from fxiaoke_k3cloud.numbers import number_key

    assert number_key(" cust-000001 ") == number_key("CUST-000001") == number_key("ＣＵＳＴ－０００００１")
    assert number_key("so000001") == number_key("SO000001") != number_key("SO000002")
    assert number_key(None) == ""


def test_full_resync_after_k3cloud_lost_its_customers_recreates_them_all(dagbag, sims, store):
    accounts = [account(i) for i in range(1, 6)]
    seed(sims.fx, accounts)
    dr, states = run_dag(dagbag, CUSTOMERS, FULL)
    assert dr.state == "success", states
    sims.k3.reset()  # restored from an old backup / a new test account: the audit store still knows all 5
    assert customers(sims.k3) == {}

    dr, states = run_dag(dagbag, CUSTOMERS, FULL)
    assert dr.state == "success", states
    held = customers(sims.k3)
    assert sorted(held) == [f"CUST-{i:06d}" for i in range(1, 6)]
    assert all(c["FDocumentStatus"] == "C" for c in held.values())
    rows = last_rows(store)
    assert {r["outcome"] for r in rows.values()} == {"created"}
    assert all("no longer exists" in r["reason"] and "re-created" in r["reason"] for r in rows.values())
    ids = store.get_id_map("customer", [a["_id"] for a in accounts])
    assert {e.target_id for e in ids.values()} == {str(c["FCUSTID"]) for c in held.values()}


def test_a_customer_deleted_by_hand_is_recreated_on_its_next_update_or_reported(dagbag, sims, store, tmp_path,
                                                                                 monkeypatch):
    accounts = [account(i) for i in range(1, 4)]
    seed(sims.fx, accounts)
    run_dag(dagbag, CUSTOMERS, FULL)
    delete_in_k3cloud("CUST-000002")
    crm_update(accounts[1]["_id"], {"name": "改名后的客户二"})
    dr, states = run_dag(dagbag, CUSTOMERS, {"ids": [accounts[1]["_id"]]})
    assert dr.state == "success", states
    assert customers(sims.k3)["CUST-000002"]["FName"] == "改名后的客户二"
    row = last_rows(store)[accounts[1]["_id"]]
    assert row["outcome"] == "created" and "no longer exists" in row["reason"]

    # With on_target_missing: report the record is reported (red run), nothing is created.
    from fxiaoke_k3cloud.flows.specs import mappings_dir

    for f in mappings_dir().glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    text = (tmp_path / "customers.yaml").read_text(encoding="utf-8")
    (tmp_path / "customers.yaml").write_text(
        text.replace("  number: FNumber\n", "  number: FNumber\n  on_target_missing: report\n", 1), encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(tmp_path))
    delete_in_k3cloud("CUST-000003")
    crm_update(accounts[2]["_id"], {"name": "改名后的客户三"})
    dr, states = run_dag(dagbag, CUSTOMERS, {"ids": [accounts[2]["_id"]]})
    assert states["load_customers"] == "success", states
    assert "CUST-000003" not in customers(sims.k3)
    row = last_rows(store)[accounts[2]["_id"]]
    assert row["outcome"] == "reported" and "on_target_missing: report" in row["reason"]


def test_a_new_customer_whose_number_collides_with_a_synced_one_is_rejected_naming_both(dagbag, sims, store):
    synced = account(1)
    seed(sims.fx, [synced])
    run_dag(dagbag, CUSTOMERS, FULL)
    before = customers(sims.k3)["CUST-000001"]
    newcomer = account(50, name="另一家公司", field_fnfcA__c=" cust-000001 ")
    seed(sims.fx, [newcomer])
    dr, states = run_dag(dagbag, CUSTOMERS, {"ids": [newcomer["_id"]]})
    assert states["load_customers"] == "success" and dr.state == "failed"
    held = customers(sims.k3)
    assert list(held) == ["CUST-000001"] and held["CUST-000001"]["FName"] == before["FName"] == synced["name"]
    row = last_rows(store)[newcomer["_id"]]
    assert row["outcome"] == "rejected"
    assert synced["_id"] in row["reason"] and newcomer["_id"] in row["reason"] and "CUST-000001" in row["reason"]
    assert store.get_id_map("customer", [newcomer["_id"]]) == {}

    # The flow is not stuck: the next run writes the synced customer's edit; the newcomer stays rejected.
    crm_update(synced["_id"], {"name": "华创机械（改名）"})
    dr, states = run_dag(dagbag, CUSTOMERS, FULL)
    assert states["load_customers"] == "success", states
    assert customers(sims.k3)["CUST-000001"]["FName"] == "华创机械（改名）"
    assert len(sims.k3.records("BD_Customer")) == 1
    assert last_rows(store)[synced["_id"]]["outcome"] == "updated"


def test_width_twins_in_one_batch_one_lands_the_other_is_rejected_naming_both(dagbag, sims, store):
    first = account(2, field_fnfcA__c="CUST-000002")
    twin = account(3, field_fnfcA__c="ＣＵＳＴ-000002")  # full-width: the same number to K3Cloud
    seed(sims.fx, [first, twin])
    dr, states = run_dag(dagbag, CUSTOMERS, FULL)
    assert states["load_customers"] == "success" and dr.state == "failed"
    held = sims.k3.records("BD_Customer")
    assert [(c["FNumber"], c["FName"]) for c in held] == [("CUST-000002", first["name"])]
    row = last_rows(store)[twin["_id"]]
    assert row["outcome"] == "rejected" and first["_id"] in row["reason"] and twin["_id"] in row["reason"]
    assert "CUST-000002" in row["reason"] and "ＣＵＳＴ-000002" in row["reason"]


def test_order_case_twins_one_lands_the_other_is_rejected_naming_both(dagbag, sims, store):
    p = products(sims.fx)
    acc = account(1)
    lower = order(1, acc["_id"], name="so000001")
    upper = order(2, acc["_id"], name="SO000001")
    seed(sims.fx, [acc], [lower, upper], [line(lower["_id"], 1, p["MAT-0001"]), line(upper["_id"], 2, p["MAT-0002"])])
    dr, states = run_dag(dagbag, ORDERS, FULL)
    assert states["load_orders"] == "success" and dr.state == "failed"
    held = sims.k3.records("SAL_SaleOrder")
    assert len(held) == 1 and held[0]["FBillNo"].casefold() == "so000001"
    rows = last_rows(store, "orders")
    landed = [sid for sid, r in rows.items() if r["outcome"] == "created"]
    rejected = [r for r in rows.values() if r["outcome"] == "rejected"]
    assert len(landed) == 1 and len(rejected) == 1
    reason = rejected[0]["reason"]
    assert lower["_id"] in reason and upper["_id"] in reason and "so000001" in reason and "SO000001" in reason
    assert "another org" not in reason


def test_a_renumbered_customer_is_renumbered_in_k3cloud_and_its_orders_land(dagbag, sims, store):
    acc = account(1)
    seed(sims.fx, [acc])
    run_dag(dagbag, CUSTOMERS, FULL)
    k3_id = customers(sims.k3)["CUST-000001"]["FCUSTID"]
    crm_update(acc["_id"], {"field_fnfcA__c": "CUST-900001"})
    dr, states = run_dag(dagbag, CUSTOMERS, {"ids": [acc["_id"]]})
    assert dr.state == "success", states
    held = customers(sims.k3)
    assert list(held) == ["CUST-900001"] and held["CUST-900001"]["FCUSTID"] == k3_id  # same document, new number
    assert held["CUST-900001"]["FDocumentStatus"] == "C"
    assert store.get_id_map("customer", [acc["_id"]])[acc["_id"]].target_number == "CUST-900001"
    assert "renumbered" in last_rows(store)[acc["_id"]]["reason"]

    # A later order of the renumbered customer references the number K3Cloud has now; another account that
    # took the old number (synced first, as the order's customer) lands too: no IdMapConflictError.
    reuse = account(60, field_fnfcA__c="CUST-000001")
    p = products(sims.fx)
    o, o2 = order(7, acc["_id"]), order(8, reuse["_id"])
    seed(sims.fx, [reuse], [o, o2], [line(o["_id"], 1, p["MAT-0001"]), line(o2["_id"], 2, p["MAT-0002"])])
    dr, states = run_dag(dagbag, ORDERS, {"ids": [o["_id"], o2["_id"]]})
    assert dr.state == "success", states
    assert sorted(customers(sims.k3)) == ["CUST-000001", "CUST-900001"]
    so = {s["FBillNo"]: s for s in sims.k3.records("SAL_SaleOrder")}
    assert so["SO000007"]["FCustId"]["FNumber"] == "CUST-900001"
    assert so["SO000008"]["FCustId"]["FNumber"] == "CUST-000001"


def test_k3cloud_simulator_compares_numbers_without_regard_to_case_and_width(k3cloud):
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
    from fxiaoke_k3cloud.hooks.k3cloud_filter import F

    hook = K3CloudHook(retry_wait_s=0)
    model = {"FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"}, "FName": "客户甲",
             "FCustTypeId": {"FNumber": "KHLB001_SYS"}}
    rows = hook.batch_save("BD_Customer", [{**model, "FNumber": "abc-001"}])
    assert rows[0].ok
    again = hook.batch_save("BD_Customer", [{**model, "FNumber": "ＡＢＣ-001", "FName": "客户乙"}])
    assert not again[0].ok and "已经被使用" in again[0].errors[0].message
    for value in ("ABC-001", "ａｂｃ-001"):
        found = [r for page in hook.execute_bill_query("BD_Customer", ["FCUSTID", "FNumber"],
                                                       filter=F("FNumber") == value) for r in page]
        assert [r["FNumber"] for r in found] == ["abc-001"]
        found = [r for page in hook.execute_bill_query("BD_Customer", ["FNumber"], filter=F("FNumber").isin([value]))
                 for r in page]
        assert len(found) == 1


def test_an_id_map_collision_at_persist_time_becomes_that_records_outcome_not_an_error(store):
    """Another writer linked the number first: the run goes on; only the colliding record gets an outcome."""
    from datetime import datetime, timezone

    from fxiaoke_k3cloud.audit import IdMapEntry
    from fxiaoke_k3cloud.flows.load import LoadResult, persist
    from fxiaoke_k3cloud.flows.specs import flow_spec

    spec = flow_spec("customers")
    store.upsert_id_map("customer", [IdMapEntry(source_id="crm-a", target_id="101", target_number="SO000001")])
    run_pk = store.start_run("customers", "r1", "manual", datetime(2026, 1, 1, tzinfo=timezone.utc),
                             datetime(2026, 1, 2, tzinfo=timezone.utc))
    result = LoadResult(id_map=[IdMapEntry(source_id="crm-b", target_id="102", target_number=" so000001 "),
                                IdMapEntry(source_id="crm-c", target_id="103", target_number="SO000003")])
    counts = persist(spec, store, run_pk, result)
    assert counts["failed"] == 1
    links = store.get_id_map("customer", ["crm-a", "crm-b", "crm-c"])
    assert {k: v.target_number for k, v in links.items()} == {"crm-a": "SO000001", "crm-c": "SO000003"}
    [row] = [r for r in last_rows(store).values() if r["outcome"] == "failed"]
    assert row["source_id"] == "crm-b" and "crm-a" in row["reason"] and "SO000001" in row["reason"]
