"""The orders flow end to end: Fxiaoke SalesOrderObj + lines → K3Cloud SAL_SaleOrder, through the real DAG."""

from __future__ import annotations

from mapping.crm_records import BASE_MS, account

from .conftest import run_dag

DAG_ID = "fxiaoke_orders_to_k3cloud"
CUSTOMERS_DAG = "fxiaoke_customers_to_k3cloud"
FULL = {"full_resync": True}
REP = "FSUID_0000000000000000000000000000A002"


def products(fx) -> dict[str, str]:
    """CRM product code → CRM product _id (base data of the simulator)."""
    return {p["product_code"]: p["_id"] for p in fx.records("ProductObj")}


def order(i: int, account_id: str, **kw) -> dict:
    rec = {"_id": f"6600000000000000000{i:05d}", "name": f"SO{i:06d}", "account_id": account_id,
           "order_time": BASE_MS, "delivery_date": BASE_MS + 7 * 86_400_000, "order_amount": "250.00",
           "owner": [REP], "life_status": "normal", "remark": f"order {i}", "last_modified_time": BASE_MS + i}
    rec.update(kw)
    return rec


def line(order_id: str, n: int, product_id: str, **kw) -> dict:
    rec = {"_id": f"77{int(order_id[-5:]):016d}{n:06d}", "order_id": order_id,
           "product_id": product_id, "quantity": "2", "sales_price": "125.00", "subtotal": "250.00", "unit": "个",
           "last_modified_time": BASE_MS + n}
    rec.update(kw)
    return rec


def seed(fx, accounts=(), orders=(), lines=()):
    fx.seed({"objects": {"AccountObj": list(accounts), "SalesOrderObj": list(orders),
                         "SalesOrderProductObj": list(lines)}})


def k3_orders(k3) -> dict[str, dict]:
    return {o["FBillNo"]: o for o in k3.records("SAL_SaleOrder")}


def outcomes_of(store, flow: str) -> dict[str, str]:
    """source id → final outcome in the flow's last run."""
    from fxiaoke_k3cloud.flows.queries import run_records

    run = store.recent_runs(flow, limit=1)[0]
    return {r["source_id"]: r["outcome"] for r in run_records(store, run["id"])}


def test_an_order_whose_customer_is_new_is_synced_with_its_customer_in_one_run(dagbag, sims, store):
    p = products(sims.fx)
    acc = account(1)
    o = order(1, acc["_id"])
    seed(sims.fx, [acc], [o], [line(o["_id"], 1, p["MAT-0001"]), line(o["_id"], 2, p["MAT-0002"], quantity="5")])
    dr, states = run_dag(dagbag, DAG_ID, FULL)
    assert dr.state == "success", states
    assert [c["FNumber"] for c in sims.k3.records("BD_Customer")] == ["CUST-000001"]
    so = k3_orders(sims.k3)["SO000001"]
    assert so["FCustId"]["FNumber"] == "CUST-000001" and so["FNetOrderBillNo"] == o["_id"]
    assert sorted((e["FMaterialId"]["FNumber"], float(e["FQty"])) for e in so["FSaleOrderEntry"]) == [
        ("MAT-0001", 2.0), ("MAT-0002", 5.0)]
    dependency = store.recent_runs("customers", limit=1)[0]
    assert dependency["run_type"] == "dependency" and dependency["status"] == "success"
    assert store.get_id_map("order", [o["_id"]])[o["_id"]].target_number == "SO000001"


def test_an_order_with_an_unknown_product_is_parked_then_released_when_the_material_lands(dagbag, sims, store):
    p = products(sims.fx)
    acc = account(2)
    o = order(2, acc["_id"])
    seed(sims.fx, [acc], [o], [line(o["_id"], 1, p["MAT-0001"]), line(o["_id"], 2, p["MAT-9999"])])
    dr, states = run_dag(dagbag, DAG_ID, FULL)
    assert dr.state == "success", states  # parked is not failed
    assert k3_orders(sims.k3) == {}
    parked = store.list_parked("order")
    assert [x.source_id for x in parked] == [o["_id"]] and "MAT-9999" in parked[0].reason

    sims.k3.seed({"forms": {"BD_MATERIAL": [{
        "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"}, "FNumber": "MAT-9999",
        "FName": "新物料", "SubHeadEntity": {"FBaseUnitId": {"FNumber": "Pcs"}}}]}})
    dr, states = run_dag(dagbag, DAG_ID)  # a plain scheduled-style run: parked orders are retried first
    assert dr.state == "success", states
    assert sorted(e["FMaterialId"]["FNumber"] for e in k3_orders(sims.k3)["SO000002"]["FSaleOrderEntry"]) == [
        "MAT-0001", "MAT-9999"]
    assert store.list_parked("order") == []
    assert store.list_parked("order", status="released")[0].source_id == o["_id"]


def test_rerunning_a_window_creates_nothing_new(dagbag, sims, store):
    p = products(sims.fx)
    accs = [account(i) for i in range(1, 4)]
    orders = [order(i, accs[i % 3]["_id"]) for i in range(1, 7)]
    lines = [line(o["_id"], 1, p["MAT-0003"]) for o in orders]
    seed(sims.fx, accs, orders, lines)
    for _ in range(3):
        dr, states = run_dag(dagbag, DAG_ID, FULL)
        assert dr.state == "success", states
    assert sorted(k3_orders(sims.k3)) == [f"SO{i:06d}" for i in range(1, 7)]
    assert len(sims.k3.records("BD_Customer")) == 3
    assert set(outcomes_of(store, "orders").values()) == {"unchanged"}


def test_a_line_only_edit_reaches_k3cloud(dagbag, sims, store):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    p = products(sims.fx)
    acc = account(3)
    o = order(3, acc["_id"], last_modified_time=BASE_MS)
    ln = line(o["_id"], 1, p["MAT-0004"], last_modified_time=BASE_MS)
    seed(sims.fx, [acc], [o], [ln])
    run_dag(dagbag, DAG_ID, FULL)
    FxiaokeHook(retry_wait_s=0).update_record("SalesOrderProductObj", ln["_id"], {"quantity": "9"})
    # The order itself moved only by our write-back (its echo, which the everyday window skips): the line brings it.
    from fxiaoke_k3cloud.flows.writeback import written_back

    moved = sims.fx.records("SalesOrderObj")[0]["last_modified_time"]
    assert moved == written_back(store, "order")[o["_id"]]["echo_ms"] > BASE_MS
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success", states
    entries = k3_orders(sims.k3)["SO000003"]["FSaleOrderEntry"]
    assert [float(e["FQty"]) for e in entries] == [9.0]
    assert outcomes_of(store, "orders") == {o["_id"]: "updated"}


def test_an_audited_k3cloud_order_is_reported_as_a_conflict_not_overwritten(dagbag, sims, store):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    p = products(sims.fx)
    acc = account(4)
    o = order(4, acc["_id"], remark="first")
    seed(sims.fx, [acc], [o], [line(o["_id"], 1, p["MAT-0005"])])
    run_dag(dagbag, DAG_ID, FULL)
    k3 = K3CloudHook(retry_wait_s=0)
    k3.submit("SAL_SaleOrder", numbers=["SO000004"])
    k3.audit("SAL_SaleOrder", numbers=["SO000004"])
    FxiaokeHook(retry_wait_s=0).update_record("SalesOrderObj", o["_id"], {"remark": "changed in the CRM"})
    dr, states = run_dag(dagbag, DAG_ID, FULL)
    assert dr.state == "success", states
    so = k3_orders(sims.k3)["SO000004"]
    assert so["FNote"] == "first" and so["FDocumentStatus"] == "C"
    from fxiaoke_k3cloud.flows.queries import run_records

    rows = run_records(store, store.recent_runs("orders", limit=1)[0]["id"])
    conflict = [r for r in rows if r["source_id"] == o["_id"]][-1]
    assert conflict["outcome"] == "reported" and "conflict" in conflict["reason"] and "SO000004" in conflict["reason"]


def test_a_crm_order_voided_after_it_reached_k3cloud_is_reported(dagbag, sims, store):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    p = products(sims.fx)
    acc = account(5)
    o = order(5, acc["_id"])
    seed(sims.fx, [acc], [o], [line(o["_id"], 1, p["MAT-0006"])])
    run_dag(dagbag, DAG_ID, FULL)
    FxiaokeHook(retry_wait_s=0).invalid_record("SalesOrderObj", o["_id"])
    dr, states = run_dag(dagbag, DAG_ID, FULL)
    assert dr.state == "success", states
    assert outcomes_of(store, "orders")[o["_id"]] == "reported"
    assert "SO000005" in k3_orders(sims.k3)


def test_an_order_parked_too_long_turns_the_report_red(dagbag, sims, store):
    p = products(sims.fx)
    acc = account(6)
    o = order(6, acc["_id"])
    seed(sims.fx, [acc], [o], [line(o["_id"], 1, p["MAT-9999"])])
    dr, states = run_dag(dagbag, DAG_ID, {**FULL, "parked_escalate_hours": 0})
    assert states["load_orders"] == "success" and states["report"] == "failed"
    run = store.recent_runs("orders", limit=1)[0]
    assert run["status"] == "partial" and "MAT-9999" in run["message"]


def test_void_action_close_voids_an_unaudited_and_closes_an_audited_k3cloud_order(dagbag, sims, store):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    p = products(sims.fx)
    acc = account(7)
    open_order, audited_order = order(7, acc["_id"]), order(8, acc["_id"])
    seed(sims.fx, [acc], [open_order, audited_order],
         [line(open_order["_id"], 1, p["MAT-0007"]), line(audited_order["_id"], 1, p["MAT-0008"])])
    run_dag(dagbag, DAG_ID, FULL)
    k3 = K3CloudHook(retry_wait_s=0)
    k3.submit("SAL_SaleOrder", numbers=["SO000008"])
    k3.audit("SAL_SaleOrder", numbers=["SO000008"])
    fx = FxiaokeHook(retry_wait_s=0)
    fx.invalid_record("SalesOrderObj", open_order["_id"])
    fx.invalid_record("SalesOrderObj", audited_order["_id"])
    dr, states = run_dag(dagbag, DAG_ID, {**FULL, "void_action": "close"})
    assert dr.state == "success", states
    orders = k3_orders(sims.k3)
    assert orders["SO000007"]["FCancelStatus"] == "B"  # unaudited: voided
    assert orders["SO000008"]["FCloseStatus"] == "B"  # audited: closed
    assert outcomes_of(store, "orders") == {open_order["_id"]: "updated", audited_order["_id"]: "updated"}
    dr, _ = run_dag(dagbag, DAG_ID, {**FULL, "void_action": "close"})  # again: nothing more to do
    assert set(outcomes_of(store, "orders").values()) == {"unchanged"}
