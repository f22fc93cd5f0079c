"""What real K3Cloud tenants do with data that the simulator once did not (issue 14, K3Cloud points 2, 6, 7, 9, 10):
allocated base data is a row per use org; IsVerifyBaseDataField defaults to false; a bound workflow stops
IsAutoSubmitAndAudit; IsDeleteEntry with ``[]`` keeps the rows; numbers compare without regard to case."""

from __future__ import annotations

import json

import pytest
from simproc import SimulatorProcess

from .k3sim_helpers import K3Http, customer_model, ok, order_model


def rows(k3: K3Http, form: str, keys: str, flt: str = "") -> list[list]:
    order = "FUseOrgId.FNumber ASC, FNumber ASC" if form.startswith("BD_") else "FID ASC"
    result = k3.query(form, keys, flt, OrderString=order)
    assert isinstance(result, list) and all(isinstance(r, list) for r in result), result
    return result


# --- 2. allocated base data: a row per use org -------------------------------------------------------------

def test_an_allocated_material_is_a_row_per_use_org_with_its_own_forbid_state(k3: K3Http) -> None:
    keys = "FMATERIALID,FNumber,FUseOrgId.FNumber,FDocumentStatus,FForbidStatus"
    before = rows(k3, "BD_MATERIAL", keys, "FNumber = 'MAT-0001'")
    assert [(r[1], r[2], r[3], r[4]) for r in before] == [("MAT-0001", "100", "C", "A"), ("MAT-0001", "603", "C", "A")]
    assert before[0][0] != before[1][0]  # each use org's row has its own internal id
    copy_603 = before[1][0]
    ok(k3.call("ExcuteOperation", "BD_MATERIAL", {"Ids": str(copy_603)}, opNumber="Forbid")["Result"])
    after = rows(k3, "BD_MATERIAL", "FUseOrgId.FNumber,FForbidStatus", "FNumber = 'MAT-0001'")
    assert after == [["100", "A"], ["603", "B"]]
    # An order of org 603 cannot use it; one of org 100 can (its row there is enabled).
    ok(k3.save("BD_Customer", customer_model("C0001", org="100"), IsAutoSubmitAndAudit=True))
    ok(k3.save("BD_Customer", customer_model("C0603", org="603"), IsAutoSubmitAndAudit=True))
    refused = k3.save("SAL_SaleOrder", order_model(customer="C0603", org="603"), IsVerifyBaseDataField=True)
    [error] = refused["ResponseStatus"]["Errors"]
    assert error["FieldName"] == "FMaterialId" and "已禁用" in error["Message"]
    ok(k3.save("SAL_SaleOrder", order_model(customer="C0001", org="100"), IsVerifyBaseDataField=True))


def test_allocate_adds_a_row_per_org_and_cancel_allocate_removes_it(k3: K3Http) -> None:
    cust = k3.save("BD_Customer", customer_model("C0100", org="100"), IsAutoSubmitAndAudit=True)
    ok(k3.call("Allocate", "BD_Customer", {"PkIds": str(cust["Id"]), "TOrgIds": "603"})["Result"])
    found = rows(k3, "BD_Customer", "FCUSTID,FNumber,FUseOrgId.FNumber,FCreateOrgId.FNumber,FDocumentStatus",
                 "FNumber = 'C0100'")
    assert [r[1:] for r in found] == [["C0100", "100", "100", "C"], ["C0100", "603", "100", "A"]]
    assert found[0][0] == cust["Id"] and found[1][0] != cust["Id"]
    # Not audited in 603 (allocated without IsAutoSubmitAndAudit): an order there cannot use it yet.
    status = k3.save("SAL_SaleOrder", order_model("C0100"), IsVerifyBaseDataField=True)["ResponseStatus"]
    assert status["IsSuccess"] is False and "未审核" in status["Errors"][0]["Message"]
    # Filtering on the use org, as public clients do, gives one row per number.
    assert rows(k3, "BD_Customer", "FCUSTID", "FNumber = 'C0100' AND FUseOrgId.FNumber = '100'") == [[cust["Id"]]]
    ok(k3.call("CancelAllocate", "BD_Customer", {"PkIds": str(cust["Id"]), "TOrgIds": "603"})["Result"])
    assert rows(k3, "BD_Customer", "FUseOrgId.FNumber", "FNumber = 'C0100'") == [["100"]]


def test_only_audited_base_data_can_be_allocated(k3: K3Http) -> None:
    cust = k3.save("BD_Customer", customer_model("C0200", org="100"))  # saved, not audited
    status = k3.call("Allocate", "BD_Customer", {"PkIds": str(cust["Id"]), "TOrgIds": "603"})["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False and "未审核" in status["Errors"][0]["Message"]


def test_a_master_change_reaches_its_copies_but_not_their_state(k3: K3Http) -> None:
    cust = k3.save("BD_Customer", customer_model("C0300", org="100"), IsAutoSubmitAndAudit=True)
    ok(k3.call("Allocate", "BD_Customer", {"PkIds": str(cust["Id"]), "TOrgIds": "603",
                                           "IsAutoSubmitAndAudit": True})["Result"])
    ok(k3.call("UnAudit", "BD_Customer", {"Ids": str(cust["Id"])})["Result"])
    ok(k3.save("BD_Customer", {"FCUSTID": cust["Id"], "FName": "改名"}, NeedUpDateFields=["FName"]))
    found = rows(k3, "BD_Customer", "FUseOrgId.FNumber,FName,FDocumentStatus", "FNumber = 'C0300'")
    assert found == [["100", "改名", "D"], ["603", "改名", "C"]]  # the master is being re-audited; the copy stays
    # The copy is not a duplicate of its master, and a second master with the number still is.
    dup = k3.save("BD_Customer", customer_model("c0300", org="603"))["ResponseStatus"]
    assert dup["MsgCode"] == 11 and dup["Errors"][0]["FieldName"] == "FNumber"


# --- 6. IsVerifyBaseDataField defaults to false --------------------------------------------------------------

def test_without_is_verify_base_data_field_an_unknown_reference_is_left_empty(k3: K3Http) -> None:
    model = customer_model("C0400", org="100", FCustTypeId={"FNumber": "KHLB999"}, FGroup={"FNumber": "KHFZ01"})
    result = k3.save("BD_Customer", model)
    ok(result)
    [record] = [r for r in rows(k3, "BD_Customer", "FNumber,FCustTypeId.FNumber,FGroup.FNumber", "FNumber = 'C0400'")]
    assert record == ["C0400", None, "KHFZ01"]
    strict = k3.save("BD_Customer", {**model, "FNumber": "C0401"}, IsVerifyBaseDataField=True)["ResponseStatus"]
    assert strict["IsSuccess"] is False and strict["Errors"][0]["FieldName"] == "FCustTypeId"
    assert "不存在" in strict["Errors"][0]["Message"]


def test_without_is_verify_base_data_field_an_unresolved_required_reference_is_missing(k3: K3Http) -> None:
    status = k3.save("SAL_SaleOrder", order_model(customer="NO-SUCH", org="100"))["ResponseStatus"]
    assert status["IsSuccess"] is False
    assert status["Errors"] == [{"FieldName": "FCustId", "Message": "字段“客户”是必填项", "DIndex": 0}]


# --- 9. IsDeleteEntry with an empty list -----------------------------------------------------------------------

def test_is_delete_entry_with_an_empty_list_keeps_the_rows_and_a_blank_row_clears_them(k3: K3Http) -> None:
    contact = [{"FNAME1": "王经理", "FMOBILE": "13900000001"}]
    cust = k3.save("BD_Customer", customer_model("C0500", org="100", FT_BD_CUSTCONTACT=contact))
    keys = "FNumber,FT_BD_CUSTCONTACT_FENTRYID"
    assert len(rows(k3, "BD_Customer", keys + ",FMOBILE", "FNumber = 'C0500' AND FMOBILE IS NOT NULL")) == 1
    ok(k3.save("BD_Customer", {"FCUSTID": cust["Id"], "FT_BD_CUSTCONTACT": []}, IsDeleteEntry=True))
    assert len(rows(k3, "BD_Customer", keys + ",FMOBILE", "FNumber = 'C0500' AND FMOBILE IS NOT NULL")) == 1
    ok(k3.save("BD_Customer", {"FCUSTID": cust["Id"], "FT_BD_CUSTCONTACT": [{}]}, IsDeleteEntry=True))
    assert rows(k3, "BD_Customer", keys, "FNumber = 'C0500'") == [["C0500", None]]


def test_a_sale_order_update_with_no_rows_keeps_its_lines_and_a_blank_row_is_refused(k3: K3Http) -> None:
    ok(k3.save("BD_Customer", customer_model("C0001", org="100"), IsAutoSubmitAndAudit=True))
    so = k3.save("SAL_SaleOrder", order_model("C0001", org="100", lines=(("MAT-0001", 1), ("MAT-0002", 2))))
    ok(k3.save("SAL_SaleOrder", {"FID": so["Id"], "FSaleOrderEntry": []}, IsDeleteEntry=True))
    lines = rows(k3, "SAL_SaleOrder", "FMaterialId.FNumber", f"FID = {so['Id']}")
    assert sorted(r[0] for r in lines) == ["MAT-0001", "MAT-0002"]
    status = k3.save("SAL_SaleOrder", {"FID": so["Id"], "FSaleOrderEntry": [{}]}, IsDeleteEntry=True)["ResponseStatus"]
    assert status["IsSuccess"] is False and "至少要录入一行分录" in status["Errors"][0]["Message"]


# --- 10. numbers are case-insensitive ----------------------------------------------------------------------------

def test_numbers_compare_without_regard_to_case_everywhere(k3: K3Http) -> None:
    ok(k3.save("BD_Customer", customer_model("C0001", org="100"), IsAutoSubmitAndAudit=True))
    so = k3.save("SAL_SaleOrder", order_model("c0001", org="100", FBillNo="SO000001"))  # reference by lower case
    ok(so)
    view = k3.call("View", "SAL_SaleOrder", {"Number": "so000001"})["Result"]
    assert view["ResponseStatus"]["IsSuccess"] is True and view["Result"]["BillNo"] == "SO000001"
    assert rows(k3, "SAL_SaleOrder", "FBillNo", "FBillNo = 'so000001'") == [["SO000001"]]
    assert rows(k3, "SAL_SaleOrder", "FBillNo", "FBillNo IN ('So000001')") == [["SO000001"]]
    dup = k3.save("SAL_SaleOrder", order_model("C0001", org="100", FBillNo="so000001"))["ResponseStatus"]
    assert dup["MsgCode"] == 11 and dup["Errors"][0]["FieldName"] == "FBillNo"
    ok(k3.call("Submit", "SAL_SaleOrder", {"Numbers": ["so000001"]})["Result"])
    assert rows(k3, "SAL_SaleOrder", "FDocumentStatus", "FBillNo = 'SO000001'") == [["B"]]


# --- 7. a workflow bound to the form stops IsAutoSubmitAndAudit ---------------------------------------------------

@pytest.fixture(scope="module")
def workflow_sim():
    sim = SimulatorProcess("k3cloud", "--workflow-forms", json.dumps({"BD_Customer": "submitted",
                                                                      "BD_MATERIAL": "saved"})).start()
    yield sim
    sim.stop()


@pytest.fixture
def wk3(workflow_sim) -> K3Http:
    workflow_sim.reset()
    client = K3Http(workflow_sim.base_url)
    client.login()
    return client


def test_auto_audit_on_a_workflow_form_saves_and_submits_then_fails_naming_the_document(wk3: K3Http) -> None:
    result = wk3.save("BD_Customer", customer_model("C0001", org="100"), IsAutoSubmitAndAudit=True)
    status = result["ResponseStatus"]
    assert status["IsSuccess"] is False and status["ErrorCode"] == 500 and status["MsgCode"] == 11
    assert status["SuccessEntitys"] == [{"Id": result["Id"], "Number": "C0001", "DIndex": 0}]
    assert "审批流" in status["Errors"][0]["Message"] and "C0001" in status["Errors"][0]["Message"]
    assert rows(wk3, "BD_Customer", "FCUSTID,FDocumentStatus", "FNumber = 'C0001'") == [[result["Id"], "B"]]
    # A direct Audit is refused while the workflow runs (IsVerifyProcInst, default true) …
    refused = wk3.call("Audit", "BD_Customer", {"Numbers": ["C0001"]})["Result"]["ResponseStatus"]
    assert refused["IsSuccess"] is False and "审批流" in refused["Errors"][0]["Message"]
    # … the workflow's approval audits it.
    ok(wk3.call("WorkflowAudit", "BD_Customer", {"Numbers": ["C0001"], "ApprovalType": 1, "UserName": "apiuser"})["Result"])
    assert rows(wk3, "BD_Customer", "FDocumentStatus", "FNumber = 'C0001'") == [["C"]]


def test_batch_save_on_a_workflow_form_lists_the_saved_rows_as_successes_and_errors(wk3: K3Http) -> None:
    models = [{"FCreateOrgId": {"FNumber": "100"}, "FNumber": f"WL-{n}", "FName": f"物料{n}",
               "SubHeadEntity": {"FBaseUnitId": {"FNumber": "Pcs"}}} for n in (1, 2)]
    models.append({"FCreateOrgId": {"FNumber": "100"}, "FNumber": "WL-3"})  # no name: refused
    status = wk3.call("BatchSave", "BD_MATERIAL", {"Model": models, "IsAutoSubmitAndAudit": True})["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False
    assert [(s["Number"], s["DIndex"]) for s in status["SuccessEntitys"]] == [("WL-1", 0), ("WL-2", 1)]
    assert sorted(e["DIndex"] for e in status["Errors"]) == [0, 1, 2]
    assert rows(wk3, "BD_MATERIAL", "FNumber,FDocumentStatus", "FNumber LIKE 'WL-%'") == [["WL-1", "A"], ["WL-2", "A"]]


def test_without_auto_audit_a_workflow_form_saves_normally(wk3: K3Http) -> None:
    ok(wk3.save("BD_Customer", customer_model("C0002", org="100")))
    assert rows(wk3, "BD_Customer", "FDocumentStatus", "FNumber = 'C0002'") == [["A"]]


def test_a_document_references_the_row_of_its_own_org_in_queries_and_view(k3: K3Http) -> None:
    ids = {org: pk for pk, org in k3.query("BD_MATERIAL", "FMATERIALID,FUseOrgId.FNumber", "FNumber = 'MAT-0001'")}
    ok(k3.save("BD_Customer", customer_model("C0603", org="603"), IsAutoSubmitAndAudit=True))
    so = k3.save("SAL_SaleOrder", {**order_model("C0603", org="603")})
    ok(so)
    assert k3.query("SAL_SaleOrder", "FMaterialId", f"FID = {so['Id']}") == [[ids["603"]]]
    view = k3.call("View", "SAL_SaleOrder", {"Id": str(so["Id"])})["Result"]["Result"]
    assert view["SaleOrderEntry"][0]["MaterialId_Id"] == ids["603"] and ids["603"] != ids["100"]
