"""CRM order → K3Cloud sale order → audited delivery notice → CRM delivery note, through the three real DAGs, on a
tenant that requires a warehouse and order-line links on delivery notes (issue 14, point 12).

The order-line links come from the line id map the orders flow itself wrote (entity ``order_line``), not from
anything the test seeds.
"""

from __future__ import annotations

from mapping.crm_records import account

from .conftest import run_dag
from .test_orders_flow import DAG_ID as ORDERS_DAG
from .test_orders_flow import FULL, k3_orders, line, order, products, seed

DELIVERIES_DAG = "k3cloud_deliveries_to_fxiaoke"
NOTICE = "SAL_DELIVERYNOTICE"


def test_delivery_note_lines_link_the_crm_order_lines_the_orders_flow_recorded(dagbag, sims, store):
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    sims.fx._admin("POST", "config", {"required_fields": {
        "DeliveryNoteObj": ["delivery_warehouse_id"], "DeliveryNoteProductObj": ["sales_order_product_id"]}})
    p = products(sims.fx)
    acc = account(71)
    o = order(71, acc["_id"])
    crm_lines = [line(o["_id"], 1, p["MAT-0001"]), line(o["_id"], 2, p["MAT-0002"], quantity="5"),
                 line(o["_id"], 3, p["MAT-0001"], quantity="7")]  # the same product twice: only the id map knows
    seed(sims.fx, [acc], [o], crm_lines)
    assert run_dag(dagbag, ORDERS_DAG, FULL)[0].state == "success"
    mapped = store.get_id_map("order_line", [c["_id"] for c in crm_lines])
    assert len(mapped) == 3

    k3 = K3CloudHook(retry_wait_s=0)
    k3.submit("SAL_SaleOrder", numbers=["SO000071"])
    k3.audit("SAL_SaleOrder", numbers=["SO000071"])
    notice = k3.push("SAL_SaleOrder", NOTICE, "SaleOrder-DeliveryNotice", numbers=["SO000071"]).targets[0].number
    doc = next(d for d in sims.k3.records(NOTICE) if d["FBillNo"] == notice)
    k3.save(NOTICE, {"FID": doc["FID"], "FEntity": [{"FEntryID": r["FEntryID"], "FStockID": {"FNumber": "CK001"}}
                                                     for r in doc["FEntity"]]}, IsDeleteEntry=False)
    k3.submit(NOTICE, numbers=[notice])
    k3.audit(NOTICE, numbers=[notice])

    dr, states = run_dag(dagbag, DELIVERIES_DAG)
    assert dr.state == "success", states
    assert set(states) == {"extract_deliveries", "load_deliveries", "report"}  # transform runs inside load's task
    [note] = sims.fx.records("DeliveryNoteObj")
    warehouse = next(w for w in sims.fx.records("WarehouseObj") if w["number"] == "CK001")
    assert note["name"] == notice and note["sales_order_id"] == o["_id"]
    assert note["delivery_warehouse_id"] == warehouse["_id"]
    by_entry = {int(e.target_id): sid for sid, e in mapped.items()}
    k3_qty = {r["FEntryID"]: float(r["FQty"]) for r in k3_orders(sims.k3)["SO000071"]["FSaleOrderEntry"]}
    delivered = {d["sales_order_product_id"]: float(d["delivery_num"]) for d in sims.fx.records("DeliveryNoteProductObj")}
    assert delivered == {by_entry[entry]: qty for entry, qty in k3_qty.items()}
    assert delivered == {crm_lines[0]["_id"]: 2.0, crm_lines[1]["_id"]: 5.0, crm_lines[2]["_id"]: 7.0}
