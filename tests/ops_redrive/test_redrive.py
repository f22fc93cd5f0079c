"""sync_redrive end to end: re-drive by id, the hourly queue with its quarantine cap, dry runs."""

from __future__ import annotations

from collections import Counter

from mapping.crm_records import BASE_MS, account

from .conftest import run_dag

CUSTOMERS_DAG = "fxiaoke_customers_to_k3cloud"
ORDERS_DAG = "fxiaoke_orders_to_k3cloud"
REP = "FSUID_0000000000000000000000000000A002"


def k3_numbers(k3, form: str = "BD_Customer", key: str = "FNumber") -> Counter:
    return Counter(r[key] for r in k3.records(form))


def latest(store, flow: str, source_id: str) -> dict:
    return store.record_history(source_id, flow=flow, limit=1)[0]


def order(i: int, account_id: str, **kw) -> dict:
    rec = {"_id": f"6600000000000000000{i:05d}", "name": f"SO{i:06d}", "account_id": account_id,
           "order_time": BASE_MS, "delivery_date": BASE_MS + 7 * 86_400_000, "order_amount": "250.00",
           "owner": [REP], "life_status": "normal", "remark": f"order {i}", "last_modified_time": BASE_MS + i}
    rec.update(kw)
    return rec


def line(order_id: str, n: int, product_id: str, **kw) -> dict:
    rec = {"_id": f"77{int(order_id[-5:]):016d}{n:06d}", "order_id": order_id, "product_id": product_id,
           "quantity": "2", "sales_price": "125.00", "subtotal": "250.00", "unit": "个",
           "last_modified_time": BASE_MS + n}
    rec.update(kw)
    return rec


def test_a_failed_customer_fixed_in_the_crm_is_redriven_by_id_and_lands_once(dagbag, sims, store):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    # K3Cloud refuses customer group KHFZ02 (forbidden there); account 3 uses it (CRM group 02), the others 01.
    K3CloudHook(retry_wait_s=0).execute_operation("BD_CUSTOMERGROUP", "Forbid", numbers=["KHFZ02"])
    bad = account(3, field_IdOci__c="02")
    sims.fx.seed({"objects": {"AccountObj": [account(1), account(5), bad]}})
    dr, states = run_dag(dagbag, CUSTOMERS_DAG, {"full_resync": True})
    assert states["load_customers"] == "success" and states["report"] == "failed"
    assert sorted(k3_numbers(sims.k3)) == ["CUST-000001", "CUST-000005"]
    assert latest(store, "customers", bad["_id"])["outcome"] == "failed"

    FxiaokeHook(retry_wait_s=0).update_record("AccountObj", bad["_id"], {"field_IdOci__c": "01"})
    dr, states = run_dag(dagbag, "sync_redrive", {"flow": "customers", "ids": [bad["_id"]]})
    assert dr.state == "success", states
    numbers = k3_numbers(sims.k3)
    assert numbers == Counter({"CUST-000001": 1, "CUST-000005": 1, "CUST-000003": 1})
    row = latest(store, "customers", bad["_id"])
    assert (row["outcome"], row["run_type"]) == ("created", "redrive")
    assert store.get_id_map("customer", [bad["_id"]])[bad["_id"]].target_number == "CUST-000003"

    # Again: the flows' own idempotency — nothing is written, no duplicate.
    saves = sims.k3.stats()["calls"].get("BatchSave", 0)
    dr, states = run_dag(dagbag, "sync_redrive", {"flow": "customers", "ids": [bad["_id"]]})
    assert dr.state == "success", states
    assert sims.k3.stats()["calls"].get("BatchSave", 0) == saves
    assert latest(store, "customers", bad["_id"])["outcome"] == "unchanged"
    assert k3_numbers(sims.k3)["CUST-000003"] == 1


def test_the_hourly_redrive_retries_parked_orders_and_quarantines_after_the_cap(dagbag, sims, store):
    p = {x["product_code"]: x["_id"] for x in sims.fx.records("ProductObj")}
    acc = account(5)
    o = order(5, acc["_id"])
    sims.fx.seed({"objects": {"AccountObj": [acc], "SalesOrderObj": [o],
                              "SalesOrderProductObj": [line(o["_id"], 1, p["MAT-0001"]),
                                                       line(o["_id"], 2, p["MAT-9999"])]}})
    dr, states = run_dag(dagbag, ORDERS_DAG, {"full_resync": True})
    assert dr.state == "success", states
    assert [x.source_id for x in store.list_parked("order")] == [o["_id"]]

    cap = 3
    for attempt in range(1, cap):  # the material never appears in K3Cloud
        dr, states = run_dag(dagbag, "sync_redrive", {"max_attempts": cap})
        assert dr.state == "success", (attempt, states)
        assert store.list_parked("order")[0].status == "parked"
        assert latest(store, "orders", o["_id"])["run_type"] == "redrive"
    dr, states = run_dag(dagbag, "sync_redrive", {"max_attempts": cap})
    assert states["redrive"] == "success" and states["report"] == "failed"
    assert store.list_parked("order", status="quarantined")[0].source_id == o["_id"]
    row = latest(store, "orders", o["_id"])
    assert (row["outcome"], row["error_class"]) == ("skipped", "Quarantined")
    assert f"after {cap} re-drive attempt(s)" in row["reason"]

    # Out of the loop: the next hourly run does not touch it and is green; K3Cloud never got the order.
    history = len(store.record_history(o["_id"], flow="orders"))
    dr, states = run_dag(dagbag, "sync_redrive", {"max_attempts": cap})
    assert dr.state == "success", states
    assert len(store.record_history(o["_id"], flow="orders")) == history
    assert sims.k3.records("SAL_SaleOrder") == []


def test_failed_customers_are_quarantined_with_a_skipped_marker_and_leave_the_flows_retry(dagbag, sims, store):
    from fxiaoke_k3cloud.flows.queries import failed_source_ids
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    K3CloudHook(retry_wait_s=0).execute_operation("BD_CUSTOMERGROUP", "Forbid", numbers=["KHFZ02"])
    bad = account(7, field_IdOci__c="02")
    sims.fx.seed({"objects": {"AccountObj": [bad]}})
    run_dag(dagbag, CUSTOMERS_DAG, {"full_resync": True})
    assert failed_source_ids(store, "customers", "customer") == [bad["_id"]]
    dr, states = run_dag(dagbag, "sync_redrive", {"flow": "customers", "max_attempts": 1})
    assert states["report"] == "failed"
    assert failed_source_ids(store, "customers", "customer") == []  # the 15-minute flow stops retrying it
    assert latest(store, "customers", bad["_id"])["error_class"] == "Quarantined"
    assert sims.k3.records("BD_Customer") == []


def test_dry_run_selects_and_maps_but_writes_nothing(dagbag, sims, store):
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    K3CloudHook(retry_wait_s=0).execute_operation("BD_CUSTOMERGROUP", "Forbid", numbers=["KHFZ02"])
    bad = account(9, field_IdOci__c="02")
    sims.fx.seed({"objects": {"AccountObj": [bad]}})
    run_dag(dagbag, CUSTOMERS_DAG, {"full_resync": True})
    K3CloudHook(retry_wait_s=0).execute_operation("BD_CUSTOMERGROUP", "Enable", numbers=["KHFZ02"])
    dr, states = run_dag(dagbag, "sync_redrive", {"flow": "customers", "dry_run": True, "max_attempts": 1})
    assert dr.state == "success", states
    assert sims.k3.records("BD_Customer") == []
    row = latest(store, "customers", bad["_id"])
    assert (row["outcome"], row["reason"]) == ("skipped", "dry run: would create")
    # The cause cleared (group enabled again): the hourly run now lands it.
    dr, states = run_dag(dagbag, "sync_redrive", {"flow": "customers"})
    assert dr.state == "success", states
    assert k3_numbers(sims.k3) == Counter({"CUST-000009": 1})
