"""Document states Z/A/B/C/D and the operation rules (k3cloud-webapi.md §3.6, §3.9, §5.7)."""

from __future__ import annotations

import pytest

from .k3sim_helpers import K3Http, customer_model, ok, order_model


def status_of(k3: K3Http, form: str, number: str) -> str:
    key = "FBillNo" if form.startswith("SAL_") else "FNumber"
    [[status]] = k3.query(form, "FDocumentStatus", f"{key} = '{number}'")
    return status


def op(k3: K3Http, name: str, form: str, **data) -> dict:
    return k3.call(name, form, data)["Result"]["ResponseStatus"]


@pytest.fixture
def order(k3: K3Http) -> str:
    ok(k3.save("BD_Customer", customer_model(), IsAutoSubmitAndAudit=True))
    return k3.save("SAL_SaleOrder", order_model())["Number"]


def test_full_lifecycle(k3: K3Http, order: str) -> None:
    assert status_of(k3, "SAL_SaleOrder", order) == "A"
    ok_status = op(k3, "Submit", "SAL_SaleOrder", Numbers=[order])
    assert ok_status["IsSuccess"] and ok_status["SuccessEntitys"][0]["Number"] == order
    assert status_of(k3, "SAL_SaleOrder", order) == "B"
    audit = op(k3, "Audit", "SAL_SaleOrder", Numbers=[order])
    assert audit["IsSuccess"] and "审核成功" in audit["SuccessMessages"][0]["Message"]
    [[status, approved]] = k3.query("SAL_SaleOrder", "FDocumentStatus,FApproveDate", f"FBillNo = '{order}'")
    assert status == "C" and approved
    assert op(k3, "UnAudit", "SAL_SaleOrder", Numbers=[order])["IsSuccess"]
    assert status_of(k3, "SAL_SaleOrder", order) == "D"
    assert op(k3, "Submit", "SAL_SaleOrder", Numbers=[order])["IsSuccess"]
    assert op(k3, "Audit", "SAL_SaleOrder", Numbers=[order])["IsSuccess"]
    assert status_of(k3, "SAL_SaleOrder", order) == "C"


def test_cannot_save_over_or_delete_an_audited_document(k3: K3Http, order: str) -> None:
    [[fid]] = k3.query("SAL_SaleOrder", "FID", f"FBillNo = '{order}'")
    op(k3, "Submit", "SAL_SaleOrder", Ids=str(fid))
    op(k3, "Audit", "SAL_SaleOrder", Ids=str(fid))
    save = k3.save("SAL_SaleOrder", {"FID": fid, "FNote": "改"})["ResponseStatus"]
    assert save["IsSuccess"] is False and "已经审核" in save["Errors"][0]["Message"] and save["MsgCode"] == 11
    draft = k3.call("Draft", "SAL_SaleOrder", {"Model": {"FID": fid, "FNote": "改"}})["Result"]["ResponseStatus"]
    assert draft["IsSuccess"] is False
    delete = op(k3, "Delete", "SAL_SaleOrder", Numbers=[order])
    assert delete["IsSuccess"] is False and delete["Errors"][0]["DIndex"] == 0
    again = op(k3, "Audit", "SAL_SaleOrder", Numbers=[order])
    assert again["IsSuccess"] is False and "单据已经审核" in again["Errors"][0]["Message"]


def test_submitted_document_rules(k3: K3Http, order: str) -> None:
    assert op(k3, "Audit", "SAL_SaleOrder", Numbers=[order])["IsSuccess"] is False  # A cannot be audited directly
    op(k3, "Submit", "SAL_SaleOrder", Numbers=[order])
    assert op(k3, "Submit", "SAL_SaleOrder", Numbers=[order])["IsSuccess"] is False
    assert op(k3, "UnAudit", "SAL_SaleOrder", Numbers=[order])["IsSuccess"] is False
    assert op(k3, "CancelAssign", "SAL_SaleOrder", Numbers=[order])["IsSuccess"] is True
    assert status_of(k3, "SAL_SaleOrder", order) == "A"


def test_delete_of_saved_document(k3: K3Http, order: str) -> None:
    assert op(k3, "Delete", "SAL_SaleOrder", Numbers=[order])["IsSuccess"]
    assert k3.query("SAL_SaleOrder", "FBillNo") == []


def test_ids_win_over_numbers_and_ids_must_be_a_string(k3: K3Http, order: str) -> None:
    [[fid]] = k3.query("SAL_SaleOrder", "FID", f"FBillNo = '{order}'")
    status = op(k3, "Submit", "SAL_SaleOrder", Ids=str(fid), Numbers=["NOPE"])
    assert status["IsSuccess"] and status["SuccessEntitys"] == [{"Id": fid, "Number": order, "DIndex": 0}]
    assert op(k3, "Submit", "SAL_SaleOrder", Ids=[fid])["MsgCode"] == 8


def test_missing_numbers_only_fail_when_nothing_exists(k3: K3Http, order: str) -> None:
    mixed = op(k3, "Submit", "SAL_SaleOrder", Numbers=[order, "XSDD999999"])
    assert mixed["IsSuccess"] is True and len(mixed["SuccessEntitys"]) == 1
    none = op(k3, "Submit", "SAL_SaleOrder", Numbers=["XSDD999999"])
    assert none["IsSuccess"] is False and "XSDD999999" in none["Errors"][0]["Message"]


def test_partial_operation_reports_each_document(k3: K3Http, order: str) -> None:
    other = k3.save("SAL_SaleOrder", order_model())["Number"]
    op(k3, "Submit", "SAL_SaleOrder", Numbers=[other])
    status = op(k3, "Audit", "SAL_SaleOrder", Numbers=[order, other])
    assert status["IsSuccess"] is False
    assert [e["DIndex"] for e in status["Errors"]] == [0] and [s["Number"] for s in status["SuccessEntitys"]] == [other]


def test_auto_submit_and_audit(k3: K3Http) -> None:
    result = k3.save("BD_Customer", customer_model("C0009"), IsAutoSubmitAndAudit="True")
    ok(result)
    assert status_of(k3, "BD_Customer", "C0009") == "C"


@pytest.mark.parametrize("opnumber, service", [("Forbid", "ExcuteOperation"), ("Forbid", "ExecuteOperation")])
def test_forbid_and_enable_base_data(k3: K3Http, opnumber: str, service: str) -> None:
    ok(k3.save("BD_Customer", customer_model("C0001"), IsAutoSubmitAndAudit=True))
    assert k3.call(service, "BD_Customer", {"Numbers": ["C0001"]}, opNumber=opnumber)["Result"]["ResponseStatus"]["IsSuccess"]
    assert k3.query("BD_Customer", "FForbidStatus", "FNumber = 'C0001'") == [["B"]]
    assert k3.call(service, "BD_Customer", {"Numbers": ["C0001"]}, opNumber="Enable")["Result"]["ResponseStatus"]["IsSuccess"]
    assert k3.query("BD_Customer", "FForbidStatus", "FNumber = 'C0001'") == [["A"]]


def test_close_and_cancel_bills(k3: K3Http, order: str) -> None:
    close = k3.call("ExcuteOperation", "SAL_SaleOrder", {"Numbers": [order]}, opNumber="CloseBill")["Result"]["ResponseStatus"]
    assert close["IsSuccess"] is False  # only audited orders can be closed
    op(k3, "Submit", "SAL_SaleOrder", Numbers=[order])
    op(k3, "Audit", "SAL_SaleOrder", Numbers=[order])
    for opnumber, expected in (("CloseBill", "B"), ("UnCloseBill", "A")):
        ok(k3.call("ExcuteOperation", "SAL_SaleOrder", {"Numbers": [order]}, opNumber=opnumber)["Result"])
        assert k3.query("SAL_SaleOrder", "FCloseStatus", f"FBillNo = '{order}'") == [[expected]]
    other = k3.save("SAL_SaleOrder", order_model())["Number"]
    ok(k3.call("ExecuteOperation", "SAL_SaleOrder", {"Numbers": [other]}, opNumber="Cancel")["Result"])
    assert k3.query("SAL_SaleOrder", "FCancelStatus", f"FBillNo = '{other}'") == [["B"]]
    unknown = k3.call("ExcuteOperation", "SAL_SaleOrder", {"Numbers": [other]}, opNumber="Frobnicate")
    assert unknown["Result"]["ResponseStatus"]["IsSuccess"] is False


def test_view_uses_orm_names(k3: K3Http, order: str) -> None:
    view = k3.call("View", "SAL_SaleOrder", {"Number": order})["Result"]
    ok(view)
    doc = view["Result"]
    assert doc["BillNo"] == order and doc["DocumentStatus"] == "A" and isinstance(doc["Id"], int)
    assert doc["CustId"]["Number"] == "C0001" and doc["CustId_Id"] == doc["CustId"]["Id"]
    assert doc["CustId"]["Name"] == [{"Key": 2052, "Value": "客户C0001"}]
    [line] = doc["SaleOrderEntry"]
    assert line["MaterialId"]["Number"] == "MAT-0001" and line["Qty"] == 5.0 and line["Seq"] == 1
    assert isinstance(doc["SaleOrderFinance"], list) and doc["SaleOrderFinance"][0]["SettleCurrId"]["Number"] == "PRE001"
    assert "FBillNo" not in doc
    by_id = k3.call("View", "SAL_SaleOrder", {"Id": doc["Id"]})["Result"]["Result"]
    assert by_id["BillNo"] == order
    assert k3.call("View", "SAL_SaleOrder", {"Number": "NOPE"})["Result"]["ResponseStatus"]["IsSuccess"] is False
