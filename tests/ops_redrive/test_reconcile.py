"""sync_reconcile end to end: a clean pair is clean; K3Cloud-side deletes and edits are found and repaired."""

from __future__ import annotations

from collections import Counter

from mapping.crm_records import account

from .conftest import run_dag
from .test_redrive import line, order

CUSTOMERS_DAG = "fxiaoke_customers_to_k3cloud"
ORDERS_DAG = "fxiaoke_orders_to_k3cloud"


def synced_world(dagbag, sims):
    """Three customers and two orders (customers 1 and 2), synced by the flows."""
    p = {x["product_code"]: x["_id"] for x in sims.fx.records("ProductObj")}
    accs = [account(i) for i in (1, 2, 3)]
    orders = [order(1, accs[0]["_id"]), order(2, accs[1]["_id"], order_amount="1000.00")]
    lines = [line(orders[0]["_id"], 1, p["MAT-0001"]),
             line(orders[1]["_id"], 1, p["MAT-0002"], quantity="4", sales_price="100.00"),
             line(orders[1]["_id"], 2, p["MAT-0003"], quantity="3", sales_price="200.00")]
    sims.fx.seed({"objects": {"AccountObj": accs, "SalesOrderObj": orders, "SalesOrderProductObj": lines}})
    for dag_id in (CUSTOMERS_DAG, ORDERS_DAG):
        dr, states = run_dag(dagbag, dag_id, {"full_resync": True})
        assert dr.state == "success", (dag_id, states)
    return accs, orders


def last_drift(store):
    import sqlalchemy as sa

    from fxiaoke_k3cloud.audit.schema import sync_drift_run
    from fxiaoke_k3cloud.ops.drift import drift_rows

    with store.engine.connect() as conn:
        run = dict(conn.execute(sa.select(sync_drift_run).order_by(sync_drift_run.c.id.desc()).limit(1)).one()._mapping)
    return run, drift_rows(store, run["id"])


def test_a_synced_pair_reconciles_clean(dagbag, sims, store):
    from fxiaoke_k3cloud.flows.specs import reconciled_flows

    synced_world(dagbag, sims)
    dr, states = run_dag(dagbag, "sync_reconcile", {"flows": reconciled_flows()})  # every flow, one task each
    assert dr.state == "success", states
    assert {f"compare_{flow}" for flow in reconciled_flows()} <= {t for t, s in states.items() if s == "success"}
    run, rows = last_drift(store)
    assert (run["status"], run["drift_count"], rows) == ("clean", 0, [])
    assert run["summary"]["customers"]["matched"] == 3 and run["summary"]["orders"]["matched"] == 2
    assert run["summary"]["deliveries"]["expected_in_crm"] == 0 == run["summary"]["receipts"]["missing_in_crm"]
    assert run["summary"]["orders"]["sampled"] == 2


def test_deleted_customer_and_changed_amount_are_found_and_one_redrive_repairs_them(dagbag, sims, store):
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
    from fxiaoke_k3cloud.hooks.k3cloud_filter import F

    accs, orders = synced_world(dagbag, sims)
    k3 = K3CloudHook(retry_wait_s=0)
    k3.unaudit("BD_Customer", numbers=["CUST-000003"])
    k3.delete("BD_Customer", numbers=["CUST-000003"])
    row = next(r for page in k3.execute_bill_query("SAL_SaleOrder", ["FID", "FSaleOrderEntry_FEntryID"],
                                                   F("FBillNo") == "SO000002") for r in page)
    k3.save("SAL_SaleOrder", {"FID": row["FID"], "FSaleOrderEntry": [{"FEntryID": row["FSaleOrderEntry_FEntryID"],
                                                                      "FQty": 9}]},
            NeedUpDateFields=["FSaleOrderEntry", "FQty"], IsDeleteEntry=False)

    dr, states = run_dag(dagbag, "sync_reconcile", {"threshold": 1})
    assert states["report"] == "failed" and dr.state == "failed"
    run, rows = last_drift(store)
    assert (run["status"], run["drift_count"]) == ("drift", 3), [(r["kind"], r["source_id"], r["field"], r["crm_value"], r["erp_value"]) for r in rows]
    found = {(r["flow"], r["kind"], r["source_id"], r["field"]): (r["crm_value"], r["erp_value"]) for r in rows}
    assert found[("customers", "missing_in_erp", accs[2]["_id"], None)] == (None, None)
    assert found[("orders", "amount_difference", orders[1]["_id"], "order_amount")] == ("1000.00", "1500.00")
    assert found[("orders", "field_difference", orders[1]["_id"], "FSaleOrderEntry[mat-0002].FQty")] == ("4", "9")
    day = next(k for k in found if k[3] and k[3].startswith("day:"))
    assert found[day] == ("1250.00", "1750.00")
    assert not any(k[1] == "extra_in_erp" for k in found)

    dr, states = run_dag(dagbag, "sync_redrive", {"from_drift_run": run["id"]})
    assert dr.state == "success", states
    customers = Counter(r["FNumber"] for r in sims.k3.records("BD_Customer"))
    assert customers == Counter({"CUST-000001": 1, "CUST-000002": 1, "CUST-000003": 1})  # re-created once
    so = {o["FBillNo"]: o for o in sims.k3.records("SAL_SaleOrder")}["SO000002"]
    assert sorted(float(e["FQty"]) for e in so["FSaleOrderEntry"]) == [3.0, 4.0]
    assert len(sims.k3.records("SAL_SaleOrder")) == 2

    dr, states = run_dag(dagbag, "sync_reconcile")
    assert dr.state == "success", states
    assert last_drift(store)[0]["status"] == "clean"
