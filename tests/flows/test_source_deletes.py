"""CRM records voided or deleted after a sync reach K3Cloud per the mapping (issue 13, case 6), over HTTP."""

from __future__ import annotations

import shutil

import pytest
from mapping.crm_records import account

from .conftest import ROOT, run_dag
from .test_orders_flow import DAG_ID as ORDERS_DAG
from .test_orders_flow import FULL, k3_orders, line, order, outcomes_of, products, seed

CUSTOMERS_DAG = "fxiaoke_customers_to_k3cloud"


@pytest.fixture
def mappings(tmp_path, monkeypatch):
    """A copy of include/mappings the test may add options to (``SYNC_MAPPINGS_DIR``)."""
    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "include" / "mappings", target)
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(target))

    def set_option(file: str, **options: str) -> None:
        text = (ROOT / "include" / "mappings" / file).read_text(encoding="utf-8")
        (target / file).write_text(text + "".join(f"\n{key}: {value}\n" for key, value in options.items()),
                                   encoding="utf-8")

    return set_option


def hooks():
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    return FxiaokeHook(retry_wait_s=0), K3CloudHook(retry_wait_s=0)


def operations(k3) -> int:
    return sum(n for name, n in k3.stats()["calls"].items() if "ExcuteOperation" in name)


def rows_of(store, flow: str, source_id: str) -> list[dict]:
    from fxiaoke_k3cloud.flows.queries import run_records

    return [r for r in run_records(store, store.recent_runs(flow, limit=1)[0]["id"]) if r["source_id"] == source_id]


def test_voided_and_deleted_order_lines_leave_the_k3cloud_order_and_a_voided_order_is_cancelled_once(
        dagbag, sims, store, mappings):
    mappings("sales_orders.yaml", on_source_void="cancel")
    p = products(sims.fx)
    acc = account(41)
    edited, voided, audited = order(41, acc["_id"]), order(42, acc["_id"]), order(43, acc["_id"])
    kept, void_line, gone_line = (line(edited["_id"], n, p[f"MAT-000{n}"], quantity=str(n)) for n in (1, 2, 3))
    audited_lines = [line(audited["_id"], 1, p["MAT-0001"]), line(audited["_id"], 2, p["MAT-0002"])]
    seed(sims.fx, [acc], [edited, voided, audited],
         [kept, void_line, gone_line, line(voided["_id"], 1, p["MAT-0004"]), *audited_lines])
    assert run_dag(dagbag, ORDERS_DAG, FULL)[0].state == "success"
    before = {e["FMaterialId"]["FNumber"]: e["FEntryID"] for e in k3_orders(sims.k3)["SO000041"]["FSaleOrderEntry"]}
    assert sorted(before) == ["MAT-0001", "MAT-0002", "MAT-0003"]
    fx, k3 = hooks()
    k3.submit("SAL_SaleOrder", numbers=["SO000043"])
    k3.audit("SAL_SaleOrder", numbers=["SO000043"])
    fx.invalid_record("SalesOrderProductObj", void_line["_id"])
    fx.invalid_record("SalesOrderProductObj", gone_line["_id"])
    fx.delete_records("SalesOrderProductObj", [gone_line["_id"]])
    fx.invalid_record("SalesOrderObj", voided["_id"])
    fx.invalid_record("SalesOrderProductObj", audited_lines[1]["_id"])

    dr, states = run_dag(dagbag, ORDERS_DAG)  # an ordinary incremental run
    assert dr.state == "success", states
    orders = k3_orders(sims.k3)
    after = orders["SO000041"]["FSaleOrderEntry"]
    assert [(e["FMaterialId"]["FNumber"], float(e["FQty"])) for e in after] == [("MAT-0001", 1.0)]
    assert after[0]["FEntryID"] == before["MAT-0001"]  # the kept line is updated in place, not re-created
    assert orders["SO000042"]["FCancelStatus"] == "B"  # on_source_void: cancel (unaudited → Cancel)
    assert len(orders["SO000043"]["FSaleOrderEntry"]) == 2  # audited in K3Cloud: not overwritten
    outcomes = outcomes_of(store, "orders")
    assert outcomes == {edited["_id"]: "updated", voided["_id"]: "updated", audited["_id"]: "reported"}
    [conflict] = rows_of(store, "orders", audited["_id"])
    assert "audited" in conflict["reason"]

    ops = operations(sims.k3)
    run_dag(dagbag, ORDERS_DAG, FULL)  # everything read again: the cancel is not repeated
    assert operations(sims.k3) == ops
    assert outcomes_of(store, "orders")[voided["_id"]] == "unchanged"
    assert outcomes_of(store, "orders")[edited["_id"]] == "unchanged"


def test_a_customer_deleted_in_the_crm_is_found_hourly_forbidden_or_reported_once(dagbag, sims, store, mappings,
                                                                                   monkeypatch):
    from fxiaoke_k3cloud.flows import source_changes

    mappings("customers.yaml", on_source_delete="forbid")
    first, second, stays = account(44), account(45), account(46)
    sims.fx.seed({"objects": {"AccountObj": [first, second, stays]}})
    assert run_dag(dagbag, CUSTOMERS_DAG, {"full_resync": True})[0].state == "success"
    fx, _ = hooks()
    fx.invalid_record("AccountObj", first["_id"])
    fx.delete_records("AccountObj", [first["_id"]])
    ops = operations(sims.k3)

    run_dag(dagbag, CUSTOMERS_DAG)  # within the hour of the last presence check: not looked for yet
    assert rows_of(store, "customers", first["_id"]) == []

    monkeypatch.setattr(source_changes, "PRESENCE_EVERY_MS", 0)  # an hour later
    dr, states = run_dag(dagbag, CUSTOMERS_DAG)
    assert dr.state == "success", states
    status = {c["FNumber"]: c["FForbidStatus"] for c in sims.k3.records("BD_Customer")}
    assert status == {"CUST-000044": "B", "CUST-000045": "A", "CUST-000046": "A"}
    [row] = rows_of(store, "customers", first["_id"])
    assert row["outcome"] == "updated" and "deleted in the CRM" in row["reason"] and "forbidden" in row["reason"]
    assert operations(sims.k3) == ops + 1

    mappings("customers.yaml")  # back to the default: report
    fx.invalid_record("AccountObj", second["_id"])
    fx.delete_records("AccountObj", [second["_id"]])
    run_dag(dagbag, CUSTOMERS_DAG)
    [row] = rows_of(store, "customers", second["_id"])
    assert row["outcome"] == "reported" and "on_source_delete" in row["reason"]
    assert {c["FNumber"]: c["FForbidStatus"] for c in sims.k3.records("BD_Customer")} == status  # untouched
    assert rows_of(store, "customers", first["_id"]) == []  # handled once: neither forbidden nor reported again
    assert operations(sims.k3) == ops + 1
