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
        with (target / file).open("a", encoding="utf-8") as fh:
            fh.writelines(f"\n{key}: {value}\n" for key, value in options.items())

    return set_option


@pytest.fixture
def hourly_check_every_run(monkeypatch):
    """Every run does the presence check (in production at most once an hour)."""
    from fxiaoke_k3cloud.flows import source_changes

    monkeypatch.setattr(source_changes, "PRESENCE_EVERY_MS", 0)


def hooks():
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    return FxiaokeHook(retry_wait_s=0), K3CloudHook(retry_wait_s=0)


def operations(k3) -> int:
    return sum(n for name, n in k3.stats()["calls"].items() if "ExcuteOperation" in name)


def rows_of(store, flow: str, source_id: str) -> list[dict]:
    from fxiaoke_k3cloud.flows.queries import run_records

    return [r for r in run_records(store, store.recent_runs(flow, limit=1)[0]["id"]) if r["source_id"] == source_id]


def test_a_voided_and_a_deleted_order_line_leave_the_k3cloud_order_and_kept_lines_keep_their_entry_ids(
        dagbag, sims, store):
    p = products(sims.fx)
    acc = account(41)
    o = order(41, acc["_id"])
    kept, voided, deleted = (line(o["_id"], n, p[f"MAT-000{n}"], quantity=str(n)) for n in (1, 2, 3))
    seed(sims.fx, [acc], [o], [kept, voided, deleted])
    assert run_dag(dagbag, ORDERS_DAG, FULL)[0].state == "success"
    before = {e["FMaterialId"]["FNumber"]: e["FEntryID"] for e in k3_orders(sims.k3)["SO000041"]["FSaleOrderEntry"]}
    assert sorted(before) == ["MAT-0001", "MAT-0002", "MAT-0003"]
    fx, _ = hooks()
    fx.invalid_record("SalesOrderProductObj", voided["_id"])
    fx.invalid_record("SalesOrderProductObj", deleted["_id"])
    fx.delete_records("SalesOrderProductObj", [deleted["_id"]])

    dr, states = run_dag(dagbag, ORDERS_DAG)  # an ordinary incremental run: the voided line's edit brings the order
    assert dr.state == "success", states
    after = k3_orders(sims.k3)["SO000041"]["FSaleOrderEntry"]
    assert [(e["FMaterialId"]["FNumber"], float(e["FQty"])) for e in after] == [("MAT-0001", 1.0)]
    assert after[0]["FEntryID"] == before["MAT-0001"]  # updated in place, not re-created
    assert outcomes_of(store, "orders")[o["_id"]] == "updated"


def test_a_line_voided_on_an_audited_k3cloud_order_is_a_reported_conflict(dagbag, sims, store):
    p = products(sims.fx)
    acc = account(42)
    o = order(42, acc["_id"])
    first, second = line(o["_id"], 1, p["MAT-0001"]), line(o["_id"], 2, p["MAT-0002"])
    seed(sims.fx, [acc], [o], [first, second])
    run_dag(dagbag, ORDERS_DAG, FULL)
    fx, k3 = hooks()
    k3.submit("SAL_SaleOrder", numbers=["SO000042"])
    k3.audit("SAL_SaleOrder", numbers=["SO000042"])
    fx.invalid_record("SalesOrderProductObj", second["_id"])
    run_dag(dagbag, ORDERS_DAG)
    assert len(k3_orders(sims.k3)["SO000042"]["FSaleOrderEntry"]) == 2  # not overwritten
    [row] = rows_of(store, "orders", o["_id"])
    assert row["outcome"] == "reported" and "audited" in row["reason"]


def test_a_customer_deleted_in_the_crm_is_forbidden_once_with_on_source_delete_forbid(
        dagbag, sims, store, mappings, hourly_check_every_run):
    mappings("customers.yaml", on_source_delete="forbid")
    gone, stays = account(43), account(44)
    sims.fx.seed({"objects": {"AccountObj": [gone, stays]}})
    assert run_dag(dagbag, CUSTOMERS_DAG, {"full_resync": True})[0].state == "success"
    fx, _ = hooks()
    fx.invalid_record("AccountObj", gone["_id"])
    fx.delete_records("AccountObj", [gone["_id"]])
    ops = operations(sims.k3)

    dr, states = run_dag(dagbag, CUSTOMERS_DAG)
    assert dr.state == "success", states
    status = {c["FNumber"]: c["FForbidStatus"] for c in sims.k3.records("BD_Customer")}
    assert status == {"CUST-000043": "B", "CUST-000044": "A"}
    [row] = rows_of(store, "customers", gone["_id"])
    assert row["outcome"] == "updated" and "deleted in the CRM" in row["reason"] and "forbidden" in row["reason"]
    assert operations(sims.k3) == ops + 1

    run_dag(dagbag, CUSTOMERS_DAG)  # the next check skips what was handled: no second Forbid, no outcome
    assert operations(sims.k3) == ops + 1
    assert rows_of(store, "customers", gone["_id"]) == []


def test_a_deleted_customer_is_reported_once_by_default_and_k3cloud_is_untouched(
        dagbag, sims, store, hourly_check_every_run):
    gone = account(45)
    sims.fx.seed({"objects": {"AccountObj": [gone]}})
    run_dag(dagbag, CUSTOMERS_DAG, {"full_resync": True})
    fx, _ = hooks()
    fx.invalid_record("AccountObj", gone["_id"])
    fx.delete_records("AccountObj", [gone["_id"]])
    ops = operations(sims.k3)

    run_dag(dagbag, CUSTOMERS_DAG)
    [row] = rows_of(store, "customers", gone["_id"])
    assert row["outcome"] == "reported" and "on_source_delete" in row["reason"]
    assert [c["FForbidStatus"] for c in sims.k3.records("BD_Customer")] == ["A"]
    assert operations(sims.k3) == ops
    run_dag(dagbag, CUSTOMERS_DAG)
    assert rows_of(store, "customers", gone["_id"]) == []


def test_the_presence_check_runs_at_most_hourly(dagbag, sims, store):
    gone = account(46)
    sims.fx.seed({"objects": {"AccountObj": [gone]}})
    run_dag(dagbag, CUSTOMERS_DAG, {"full_resync": True})  # the first run's check (empty id map) counts
    fx, _ = hooks()
    fx.invalid_record("AccountObj", gone["_id"])
    fx.delete_records("AccountObj", [gone["_id"]])
    run_dag(dagbag, CUSTOMERS_DAG)
    assert rows_of(store, "customers", gone["_id"]) == []  # within the hour: not looked for yet
    assert store.get_watermark("customers:presence") is not None


def test_an_order_voided_with_on_source_void_cancel_is_cancelled_in_k3cloud(dagbag, sims, store, mappings):
    mappings("sales_orders.yaml", on_source_void="cancel")
    p = products(sims.fx)
    acc = account(47)
    o = order(47, acc["_id"])
    seed(sims.fx, [acc], [o], [line(o["_id"], 1, p["MAT-0001"])])
    run_dag(dagbag, ORDERS_DAG, FULL)
    fx, _ = hooks()
    fx.invalid_record("SalesOrderObj", o["_id"])

    dr, states = run_dag(dagbag, ORDERS_DAG)
    assert dr.state == "success", states
    assert k3_orders(sims.k3)["SO000047"]["FCancelStatus"] == "B"
    assert outcomes_of(store, "orders")[o["_id"]] == "updated"
    ops = operations(sims.k3)
    run_dag(dagbag, ORDERS_DAG, FULL)  # read again: already done, no second Cancel
    assert operations(sims.k3) == ops
    assert outcomes_of(store, "orders")[o["_id"]] == "unchanged"
