"""收款单 AR_RECEIVEBILL: pushed from a sale order (amount left to receive, source link) or saved by hand,
audited and un-audited; the order cannot be un-audited while a receipt links to it."""

from __future__ import annotations

from .k3sim_helpers import K3Http, ok
from .test_k3sim_push import audit, audited_order, push  # noqa: F401 - audited_order is a fixture

FORM = "AR_RECEIVEBILL"
KEYS = ("FBillNo,FDocumentStatus,FCONTACTUNIT.FNumber,FPAYUNIT.FNumber,FCURRENCYID.FNumber,FSETTLEORGID.FNumber,"
        "FBillTypeID.FNumber,FRECAMOUNTFOR,FRECEIVEBILLENTRY_FEntryID,FSETTLETYPEID.FNumber,FPURPOSEID.FNumber,"
        "FRECAMOUNTFOR_E,FSALEORDERNO")


def test_push_from_a_sale_order_takes_what_is_left_to_receive(k3: K3Http, audited_order: str) -> None:
    result = push(k3, "SAL_SaleOrder", audited_order, "", TargetFormId=FORM, IsEnableDefaultRule=True)
    ok(result)
    number = result["ResponseStatus"]["SuccessEntitys"][0]["Number"]
    assert number.startswith("SKD")
    rows = k3.query(FORM, KEYS)
    assert [r[:8] for r in rows] == [[number, "A", "C0001", "C0001", "PRE001", "603", "SKDLX01_SYS", 700.0]]
    assert [r[9:] for r in rows] == [["JSFS04_SYS", "SFKYT01_SYS", 700.0, audited_order]]
    src = k3.query(FORM, "FSRCBILLTYPEID,FSRCBILLNO,FREALRECAMOUNT,FAFTTAXTOTALAMOUNT")
    assert src == [["SAL_SaleOrder", audited_order, 700.0, 700.0]]

    # pay part of it: the next push offers only the rest
    ok(k3.save(FORM, {"FID": k3.query(FORM, "FID")[0][0], "FRECEIVEBILLENTRY": [
        {"FEntryID": rows[0][8], "FRECAMOUNTFOR_E": 300}]}, IsDeleteEntry=False))
    assert k3.query(FORM, "FRECAMOUNTFOR,FRECAMOUNTFOR_E") == [[300.0, 300.0]]
    src_row = k3.query(FORM, "FID,FRECEIVEBILLSRCENTRY_FEntryID")[0]
    ok(k3.save(FORM, {"FID": src_row[0], "FRECEIVEBILLSRCENTRY": [
        {"FEntryID": src_row[1], "FREALRECAMOUNT": 300,
         "FRECEIVEBILLSRCENTRY_Link": [{"FRECEIVEBILLSRCENTRY_Link_FSTableName": "T_SAL_ORDERPLAN",
                                        "FRECEIVEBILLSRCENTRY_Link_FSBillId": k3.query("SAL_SaleOrder", "FID")[0][0],
                                        "FRECEIVEBILLSRCENTRY_Link_FREALRECAMOUNT": 300}]}]}, IsDeleteEntry=False))
    second = push(k3, "SAL_SaleOrder", audited_order, "SaleOrder-ReceiveBill", TargetFormId=FORM)
    ok(second)
    assert sorted(r[0] for r in k3.query(FORM, "FRECAMOUNTFOR")) == [300.0, 400.0]
    third = push(k3, "SAL_SaleOrder", audited_order, "SaleOrder-ReceiveBill", TargetFormId=FORM)
    assert third["ConvertResponseStatus"]["IsSuccess"] is False or third["ResponseStatus"]["IsSuccess"] is False


def test_receipt_by_hand_audit_unaudit_and_the_order_stays_linked(k3: K3Http, audited_order: str) -> None:
    model = {"FDATE": "2026-01-05", "FCONTACTUNIT": {"FNumber": "C0001"}, "FPAYUNIT": {"FNumber": "C0001"},
             "FSETTLEORGID": {"FNumber": "603"}, "FRECEIVEBILLENTRY": [
                 {"FSETTLETYPEID": {"FNumber": "JSFS01_SYS"}, "FPURPOSEID": {"FNumber": "SFKYT01_SYS"},
                  "FRECAMOUNTFOR_E": 120.5, "FSALEORDERNO": audited_order},
                 {"FSETTLETYPEID": {"FNumber": "JSFS04_SYS"}, "FPURPOSEID": {"FNumber": "SFKYT02_SYS"},
                  "FRECAMOUNTFOR_E": 79.5}]}
    number = k3.save(FORM, model)["Number"]
    assert k3.query(FORM, "FRECAMOUNTFOR,FCONTACTUNITTYPE", OrderString="FID") == [[200.0, "BD_Customer"]]  # header keys: one row per bill
    audit(k3, FORM, number)
    assert k3.query(FORM, "FDocumentStatus,FApproveDate")[0][0] == "C"
    assert k3.query(FORM, "FApproveDate")[0][0]
    ok(k3.call("UnAudit", FORM, {"Numbers": [number]})["Result"])
    assert k3.query(FORM, "FDocumentStatus,FApproveDate")[0] == ["D", None]

    missing = dict(model, FRECEIVEBILLENTRY=[{"FRECAMOUNTFOR_E": 1}])
    refused = k3.save(FORM, missing)
    assert refused["ResponseStatus"]["IsSuccess"] is False
    assert "结算方式" in str(refused["ResponseStatus"]["Errors"])

    pushed = push(k3, "SAL_SaleOrder", audited_order, "SaleOrder-ReceiveBill", TargetFormId=FORM)
    ok(pushed)
    refused = k3.call("UnAudit", "SAL_SaleOrder", {"Numbers": [audited_order]})["Result"]
    assert refused["ResponseStatus"]["IsSuccess"] is False
