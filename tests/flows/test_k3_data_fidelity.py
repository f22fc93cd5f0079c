"""The flows against what real K3Cloud tenants do with data (issue 14, K3Cloud points 2, 6, 7, 9), over HTTP:
base data a row per use org, IsVerifyBaseDataField off, a workflow bound to BD_Customer, empty entry lists."""

from __future__ import annotations

import json
import shutil

import pytest
from k3cloud_sim.k3sim_helpers import K3Http
from mapping.crm_records import account
from simproc import SimulatorProcess, k3cloud_conn

from .conftest import ROOT, run_dag
from .test_orders_flow import CUSTOMERS_DAG, DAG_ID, FULL, k3_orders, line, order, outcomes_of, products, seed


def k3_client(sim) -> K3Http:
    client = K3Http(sim.base_url)
    client.login()
    return client


def run_rows(store, flow: str) -> dict[str, dict]:
    from fxiaoke_k3cloud.flows.queries import run_records

    return {r["source_id"]: r for r in run_records(store, store.recent_runs(flow, limit=1)[0]["id"])}


def material_ids(k3: K3Http, *numbers: str) -> dict[tuple[str, str], int]:
    quoted = ",".join(f"'{n}'" for n in numbers)
    rows = k3.query("BD_MATERIAL", "FMATERIALID,FNumber,FUseOrgId.FNumber", f"FNumber IN ({quoted})")
    return {(number, org): pk for pk, number, org in rows}


# --- 2. base data a row per use org ----------------------------------------------------------------------------

def test_an_order_waits_for_a_material_forbidden_in_its_selling_org_not_for_one_forbidden_elsewhere(
        dagbag, sims, store):
    p = products(sims.fx)
    acc = account(61)
    here, elsewhere = order(61, acc["_id"]), order(62, acc["_id"])
    seed(sims.fx, [acc], [here, elsewhere], [line(here["_id"], 1, p["MAT-0001"]), line(elsewhere["_id"], 1, p["MAT-0002"])])
    k3 = k3_client(sims.k3)
    ids = material_ids(k3, "MAT-0001", "MAT-0002")
    # Both materials are allocated to 100 (the orders' FSaleOrgId) and 603; each is forbidden in one org only.
    for pk in (ids[("MAT-0001", "100")], ids[("MAT-0002", "603")]):
        assert k3.call("ExcuteOperation", "BD_MATERIAL", {"Ids": str(pk)}, opNumber="Forbid")["Result"][
            "ResponseStatus"]["IsSuccess"] is True
    dr, states = run_dag(dagbag, DAG_ID, FULL)
    assert dr.state == "success", states
    assert sorted(k3_orders(sims.k3)) == ["SO000062"]  # MAT-0002 is usable in 100
    assert outcomes_of(store, "orders") == {here["_id"]: "parked", elsewhere["_id"]: "created"}
    [parked] = store.list_parked("order")
    assert parked.source_id == here["_id"] and "MAT-0001" in parked.reason

    k3.call("ExcuteOperation", "BD_MATERIAL", {"Ids": str(ids[("MAT-0001", "100")])}, opNumber="Enable")
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success", states
    assert [e["FMaterialId"]["FNumber"] for e in k3_orders(sims.k3)["SO000061"]["FSaleOrderEntry"]] == ["MAT-0001"]
    assert store.list_parked("order") == []


def test_a_customer_found_by_number_is_linked_to_its_row_in_the_flows_org(dagbag, sims, store):
    acc = account(71)
    k3 = k3_client(sims.k3)
    # K3Cloud already has the customer (entered by hand in org 100) and it is allocated to 603: two rows.
    made = k3.save("BD_Customer", {"FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                                   "FNumber": "CUST-000071", "FName": "旧名称"}, IsAutoSubmitAndAudit=True)
    assert k3.call("Allocate", "BD_Customer", {"PkIds": str(made["Id"]), "TOrgIds": "603",
                                               "IsAutoSubmitAndAudit": True})["Result"]["ResponseStatus"]["IsSuccess"]
    assert len(k3.query("BD_Customer", "FCUSTID", "FNumber = 'CUST-000071'")) == 2
    seed(sims.fx, [acc])
    dr, states = run_dag(dagbag, CUSTOMERS_DAG, FULL)
    assert dr.state == "success", states
    assert outcomes_of(store, "customers") == {acc["_id"]: "updated"}  # duplicate number → linked and updated
    assert store.get_id_map("customer", [acc["_id"]])[acc["_id"]].target_id == str(made["Id"])  # org 100's row
    rows = k3.query("BD_Customer", "FCUSTID,FUseOrgId.FNumber,FName,FDocumentStatus", "FNumber = 'CUST-000071'",
                    OrderString="FUseOrgId.FNumber ASC")
    assert [(r[1], r[2], r[3]) for r in rows] == [("100", acc["name"], "C"), ("603", acc["name"], "C")]


# --- 6. a mapping without IsVerifyBaseDataField -------------------------------------------------------------------

@pytest.fixture
def unverified_customers(tmp_path, monkeypatch):
    """A copy of the shipped mappings whose customers.yaml does not ask K3Cloud to verify base data, and maps
    CRM group 01 to a group K3Cloud does not have (KHFZ99)."""
    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "include" / "mappings", target)
    text = (target / "customers.yaml").read_text(encoding="utf-8")
    assert "  IsVerifyBaseDataField: true" in text and '"01": KHFZ01' in text
    text = "\n".join(x for x in text.splitlines() if "IsVerifyBaseDataField" not in x).replace('"01": KHFZ01', '"01": KHFZ99')
    (target / "customers.yaml").write_text(text + "\n", encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(target))


def test_without_is_verify_base_data_field_a_reference_k3cloud_left_empty_is_reported_and_sent_again(
        dagbag, sims, store, unverified_customers):
    acc = account(81)  # odd: CRM group 01 → KHFZ99, which K3Cloud lacks
    seed(sims.fx, [acc])
    dr, states = run_dag(dagbag, CUSTOMERS_DAG, FULL)
    assert dr.state == "success", states
    [customer] = sims.k3.records("BD_Customer")
    assert customer["FNumber"] == "CUST-000081" and customer["FGroup"] is None  # the save succeeded without it
    row = run_rows(store, "customers")[acc["_id"]]
    assert row["outcome"] == "reported" and row["error_class"] == "ReferenceLeftEmpty"
    assert "FGroup.FNumber 'KHFZ99'" in row["reason"] and "CUST-000081" in row["reason"]
    entry = store.get_id_map("customer", [acc["_id"]])[acc["_id"]]
    assert entry.target_id == str(customer["FCUSTID"]) and entry.payload_hash is None  # linked, sent again

    sims.k3.seed({"forms": {"BD_CUSTOMERGROUP": [{"FNumber": "KHFZ99", "FName": "新分组"}]}})
    dr, states = run_dag(dagbag, CUSTOMERS_DAG, FULL)
    assert dr.state == "success", states
    assert sims.k3.records("BD_Customer")[0]["FGroup"] == {"FNumber": "KHFZ99"}
    assert outcomes_of(store, "customers") == {acc["_id"]: "updated"}
    assert len(sims.k3.records("BD_Customer")) == 1


# --- 7. a workflow bound to BD_Customer ----------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["submitted", "saved"])
def workflow_process(request):
    sim = SimulatorProcess("k3cloud", "--workflow-forms", json.dumps({"BD_Customer": request.param})).start()
    sim.state = {"submitted": "B", "saved": "A"}[request.param]
    yield sim
    sim.stop()


@pytest.fixture
def workflow_k3(workflow_process, fxiaoke, audit_url, monkeypatch):
    workflow_process.reset()
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(workflow_process))
    return workflow_process


def test_a_customer_a_workflow_leaves_unaudited_is_linked_once_and_its_orders_wait_for_the_approval(
        dagbag, workflow_k3, fxiaoke, store):
    p = products(fxiaoke)
    acc = account(91)
    o = order(91, acc["_id"])
    seed(fxiaoke, [acc], [o], [line(o["_id"], 1, p["MAT-0001"])])
    for _ in range(2):  # a second run creates no second customer and still waits
        dr, states = run_dag(dagbag, DAG_ID, FULL)
        assert dr.state == "success", states
        [customer] = workflow_k3.records("BD_Customer")
        assert customer["FNumber"] == "CUST-000091" and customer["FDocumentStatus"] == workflow_k3.state
        assert workflow_k3.records("SAL_SaleOrder") == []
        assert [x.source_id for x in store.list_parked("order")] == [o["_id"]]
    assert store.get_id_map("customer", [acc["_id"]])[acc["_id"]].target_id == str(customer["FCUSTID"])
    first = store.recent_runs("customers", limit=2)[-1]
    from fxiaoke_k3cloud.flows.queries import run_records

    [blocked] = [r for r in run_records(store, first["id"]) if r["source_id"] == acc["_id"]]
    assert blocked["outcome"] == "reported" and blocked["error_class"] == "AuditBlocked"
    assert f"status {workflow_k3.state}" in blocked["reason"] and "审批流" in blocked["reason"]

    k3 = k3_client(workflow_k3)  # a person approves it in K3Cloud
    if workflow_k3.state == "A":
        assert k3.call("Submit", "BD_Customer", {"Numbers": ["CUST-000091"]})["Result"]["ResponseStatus"]["IsSuccess"]
    approved = k3.call("WorkflowAudit", "BD_Customer", {"Numbers": ["CUST-000091"], "ApprovalType": 1})
    assert approved["Result"]["ResponseStatus"]["IsSuccess"] is True
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success", states
    [so] = workflow_k3.records("SAL_SaleOrder")
    assert so["FCustId"] == {"FNumber": "CUST-000091"} and so["FBillNo"] == "SO000091"
    assert store.list_parked("order") == []
    assert len(workflow_k3.records("BD_Customer")) == 1


# --- 9. entry rows after lines are voided -----------------------------------------------------------------------------

def test_voiding_one_line_then_all_lines_leaves_the_k3cloud_order_with_the_rows_that_are_right(dagbag, sims, store):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    p = products(sims.fx)
    acc = account(95)
    o = order(95, acc["_id"])
    first, second = line(o["_id"], 1, p["MAT-0001"]), line(o["_id"], 2, p["MAT-0002"], quantity="3")
    seed(sims.fx, [acc], [o], [first, second])
    assert run_dag(dagbag, DAG_ID, FULL)[0].state == "success"
    before = {e["FMaterialId"]["FNumber"]: e["FEntryID"] for e in k3_orders(sims.k3)["SO000095"]["FSaleOrderEntry"]}
    assert sorted(before) == ["MAT-0001", "MAT-0002"]
    fx = FxiaokeHook(retry_wait_s=0)

    fx.invalid_record("SalesOrderProductObj", second["_id"])
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success", states
    rows = k3_orders(sims.k3)["SO000095"]["FSaleOrderEntry"]
    assert [(e["FMaterialId"]["FNumber"], e["FEntryID"]) for e in rows] == [("MAT-0001", before["MAT-0001"])]
    assert outcomes_of(store, "orders") == {o["_id"]: "updated"}

    fx.invalid_record("SalesOrderProductObj", first["_id"])
    dr, states = run_dag(dagbag, DAG_ID)
    rows = k3_orders(sims.k3)["SO000095"]["FSaleOrderEntry"]
    assert [e["FMaterialId"]["FNumber"] for e in rows] == ["MAT-0001"]  # K3Cloud needs a line: left as it was
    row = run_rows(store, "orders")[o["_id"]]
    assert row["outcome"] == "rejected" and "at least 1 required" in row["reason"]


# --- 10. numbers compare as K3Cloud compares them ----------------------------------------------------------------------

def test_an_order_numbered_in_other_case_links_the_k3cloud_order_and_records_its_entry_ids(dagbag, sims, store):
    p = products(sims.fx)
    acc = account(98)
    o = order(98, acc["_id"], name="so000098")  # K3Cloud already has SO000098: the same number to SQL Server
    ln = line(o["_id"], 1, p["MAT-0003"])
    k3 = k3_client(sims.k3)
    assert k3.save("BD_Customer", {"FCreateOrgId": {"FNumber": "100"}, "FNumber": "CUST-000098", "FName": "x"},
                   IsAutoSubmitAndAudit=True)["ResponseStatus"]["IsSuccess"]
    made = k3.save("SAL_SaleOrder", {"FBillNo": "SO000098", "FDate": "2025-01-02", "FSaleOrgId": {"FNumber": "100"},
                                     "FCustId": {"FNumber": "CUST-000098"},
                                     "FSaleOrderEntry": [{"FMaterialId": {"FNumber": "MAT-0001"}, "FQty": 1}]})
    assert made["ResponseStatus"]["IsSuccess"], made
    seed(sims.fx, [acc], [o], [ln])
    dr, states = run_dag(dagbag, DAG_ID, FULL)
    assert dr.state == "success", states
    [so] = sims.k3.records("SAL_SaleOrder")  # linked and updated, not a second order
    assert so["FID"] == made["Id"] and [e["FMaterialId"]["FNumber"] for e in so["FSaleOrderEntry"]] == ["MAT-0003"]
    assert outcomes_of(store, "orders") == {o["_id"]: "updated"}
    assert store.get_id_map("order", [o["_id"]])[o["_id"]].target_id == str(made["Id"])
    lines = store.get_id_map("order_line", [ln["_id"]])
    assert lines[ln["_id"]].target_id == str(so["FSaleOrderEntry"][0]["FEntryID"])
