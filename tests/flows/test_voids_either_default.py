"""The void policy does not depend on whether a tenant's default query returns voided rows (issue 14, point 14).

Both simulator defaults (``query_includes_invalid`` on and off), over HTTP through the real DAGs: a voided
customer is forbidden once (``on_source_void: forbid``) and never taken for a deleted one by the presence
check; a voided order is cancelled once (``on_source_void: cancel``).
"""

from __future__ import annotations

import pytest
from mapping.crm_records import account

from .conftest import run_dag
from .test_orders_flow import DAG_ID as ORDERS_DAG
from .test_orders_flow import FULL, k3_orders, line, order, outcomes_of, products, seed
from .test_source_deletes import CUSTOMERS_DAG, hooks, mappings, operations, rows_of  # noqa: F401 (fixture)

DEFAULTS = pytest.mark.parametrize("includes", [True, False], ids=["default-includes-voided",
                                                                   "default-excludes-voided"])


@DEFAULTS
def test_a_voided_customer_is_forbidden_once_and_not_reported_deleted(dagbag, sims, store, mappings, monkeypatch,
                                                                      includes):
    from fxiaoke_k3cloud.flows import source_changes

    mappings("customers.yaml", on_source_void="forbid", on_source_delete="report")
    sims.fx._admin("POST", "config", {"query_includes_invalid": includes})
    voided, kept = account(61), account(62)
    sims.fx.seed({"objects": {"AccountObj": [voided, kept]}})
    assert run_dag(dagbag, CUSTOMERS_DAG, {"full_resync": True})[0].state == "success"
    fx, _ = hooks()
    fx.invalid_record("AccountObj", voided["_id"])
    monkeypatch.setattr(source_changes, "PRESENCE_EVERY_MS", 0)  # the presence check runs on every run
    ops = operations(sims.k3)

    dr, states = run_dag(dagbag, CUSTOMERS_DAG)
    assert dr.state == "success", states
    status = {c["FNumber"]: c["FForbidStatus"] for c in sims.k3.records("BD_Customer")}
    assert status == {"CUST-000061": "B", "CUST-000062": "A"}
    rows = rows_of(store, "customers", voided["_id"])
    assert rows[-1]["outcome"] == "updated" and "voided in the CRM" in rows[-1]["reason"]  # after the transform's report
    assert not any("deleted" in (r["reason"] or "") for r in rows)
    assert operations(sims.k3) == ops + 1

    dr, _ = run_dag(dagbag, CUSTOMERS_DAG, {"full_resync": True})  # read again: not forbidden twice
    assert dr.state == "success" and operations(sims.k3) == ops + 1
    assert rows_of(store, "customers", voided["_id"])[-1]["outcome"] == "unchanged"


@DEFAULTS
def test_a_voided_order_is_cancelled_once(dagbag, sims, store, mappings, includes):
    mappings("sales_orders.yaml", on_source_void="cancel")
    sims.fx._admin("POST", "config", {"query_includes_invalid": includes})
    p = products(sims.fx)
    acc = account(63)
    voided, kept = order(63, acc["_id"]), order(64, acc["_id"])
    seed(sims.fx, [acc], [voided, kept], [line(voided["_id"], 1, p["MAT-0001"]), line(kept["_id"], 1, p["MAT-0002"])])
    assert run_dag(dagbag, ORDERS_DAG, FULL)[0].state == "success"
    fx, _ = hooks()
    fx.invalid_record("SalesOrderObj", voided["_id"])
    ops = operations(sims.k3)

    dr, states = run_dag(dagbag, ORDERS_DAG)
    assert dr.state == "success", states
    orders = k3_orders(sims.k3)
    assert orders["SO000063"]["FCancelStatus"] == "B" and orders["SO000064"]["FCancelStatus"] == "A"
    assert outcomes_of(store, "orders") == {voided["_id"]: "updated"}
    assert operations(sims.k3) == ops + 1
    run_dag(dagbag, ORDERS_DAG, FULL)
    assert operations(sims.k3) == ops + 1


@pytest.mark.parametrize("includes", [True, False],
                         ids=["default-includes-voided", "default-excludes-voided"])
def test_a_line_voided_in_the_crm_leaves_the_k3cloud_order(dagbag, sims, store, includes):
    sims.fx._admin("POST", "config", {"query_includes_invalid": includes})
    p = products(sims.fx)
    acc = account(65)
    o = order(65, acc["_id"])
    kept, voided = line(o["_id"], 1, p["MAT-0001"]), line(o["_id"], 2, p["MAT-0002"])
    seed(sims.fx, [acc], [o], [kept, voided])
    assert run_dag(dagbag, ORDERS_DAG, FULL)[0].state == "success"
    fx, _ = hooks()
    fx.invalid_record("SalesOrderProductObj", voided["_id"])

    dr, states = run_dag(dagbag, ORDERS_DAG)
    assert dr.state == "success", states
    entries = k3_orders(sims.k3)["SO000065"]["FSaleOrderEntry"]
    assert [e["FMaterialId"]["FNumber"] for e in entries] == ["MAT-0001"]
