"""Push SaleOrder → DeliveryNotice → OutStock with link rows, source fields and SO write-back (§3.8, §5.4–5.5, §5.8)."""

from __future__ import annotations

import pytest

from .k3sim_helpers import K3Http, customer_model, ok, order_model


def audit(k3: K3Http, form: str, number: str) -> None:
    ok(k3.call("Submit", form, {"Numbers": [number]})["Result"])
    ok(k3.call("Audit", form, {"Numbers": [number]})["Result"])


def push(k3: K3Http, form: str, number: str, rule: str, **extra) -> dict:
    return k3.call("Push", form, {"Numbers": [number], "RuleId": rule, **extra})["Result"]


@pytest.fixture
def audited_order(k3: K3Http) -> str:
    ok(k3.save("BD_Customer", customer_model(), IsAutoSubmitAndAudit=True))
    number = k3.save("SAL_SaleOrder", order_model(lines=(("MAT-0001", 5), ("MAT-0002", 2))))["Number"]
    audit(k3, "SAL_SaleOrder", number)
    return number


def test_push_chain_links_and_write_back(k3: K3Http, audited_order: str) -> None:
    result = push(k3, "SAL_SaleOrder", audited_order, "SaleOrder-DeliveryNotice")
    ok(result)
    assert result["ConvertResponseStatus"]["IsSuccess"] is True
    notice = result["ResponseStatus"]["SuccessEntitys"][0]["Number"]
    assert notice == "FHTZD000001"
    rows = k3.query("SAL_DELIVERYNOTICE", "FBillNo,FDocumentStatus,FCustomerID.FNumber,FMaterialID.FNumber,FQty,FSrcType,"
                    "FSrcBillNo,FSOEntryId,FBillTypeID.FNumber", OrderString="FEntity_FEntryID")
    assert [r[:7] for r in rows] == [
        [notice, "A", "C0001", "MAT-0001", 5.0, "SAL_SaleOrder", audited_order],
        [notice, "A", "C0001", "MAT-0002", 2.0, "SAL_SaleOrder", audited_order]]
    assert rows[0][8] == "FHTZD01_SYS"
    so_entries = k3.query("SAL_SaleOrder", "FSaleOrderEntry_FEntryID", OrderString="FSaleOrderEntry_FEntryID")
    assert [r[7] for r in rows] == [e[0] for e in so_entries]
    [dn_record] = [r for r in k3_records(k3, "SAL_DELIVERYNOTICE")]
    link = dn_record["FEntity"][0]["FEntity_Link"][0]
    assert link["FEntity_Link_FRuleId"] == "SaleOrder-DeliveryNotice" and link["FEntity_Link_FSTableName"] == "T_SAL_ORDERENTRY"
    assert link["FEntity_Link_FSId"] == so_entries[0][0]

    again = push(k3, "SAL_SaleOrder", audited_order, "SaleOrder-DeliveryNotice")
    assert again["ResponseStatus"]["IsSuccess"] is False and "关联数量已达上限" in again["ResponseStatus"]["Errors"][0]["Message"]

    not_audited = push(k3, "SAL_DELIVERYNOTICE", notice, "DeliveryNotice-OutStock")
    assert not_audited["ConvertResponseStatus"]["IsSuccess"] is False
    audit(k3, "SAL_DELIVERYNOTICE", notice)
    out = push(k3, "SAL_DELIVERYNOTICE", notice, "DeliveryNotice-OutStock")
    ok(out)
    out_number = out["ResponseStatus"]["SuccessEntitys"][0]["Number"]
    assert out_number == "XSCKD000001"
    audit(k3, "SAL_OUTSTOCK", out_number)

    shipped = k3.query("SAL_OUTSTOCK", "FBillNo,FDocumentStatus,FRealQty,FSoorDerno,FSrcBillNo,FSrcType,FSOEntryId,"
                       "FCustomerID.FNumber,FApproveDate", "FDocumentStatus = 'C' AND FModifyDate >= '2000-01-01'",
                       OrderString="FID, FEntity_FEntryID")
    assert [r[:7] for r in shipped] == [
        [out_number, "C", 5.0, audited_order, notice, "SAL_DELIVERYNOTICE", so_entries[0][0]],
        [out_number, "C", 2.0, audited_order, notice, "SAL_DELIVERYNOTICE", so_entries[1][0]]]
    progress = k3.query("SAL_SaleOrder", "FQty,FDeliQty,FStockOutQty,FRemainOutQty", OrderString="FSaleOrderEntry_FEntryID")
    assert progress == [[5.0, 5.0, 5.0, 0.0], [2.0, 2.0, 2.0, 0.0]]
    assert k3.query("SAL_DELIVERYNOTICE", "FSUMOUTQTY", OrderString="FEntity_FEntryID") == [[5.0], [2.0]]

    # reversals: un-audit the out-stock gives the quantity back; the order cannot be un-audited while linked
    ok(k3.call("UnAudit", "SAL_OUTSTOCK", {"Numbers": [out_number]})["Result"])
    assert k3.query("SAL_SaleOrder", "FStockOutQty,FRemainOutQty", OrderString="FSaleOrderEntry_FEntryID") == [
        [0.0, 5.0], [0.0, 2.0]]
    assert k3.call("UnAudit", "SAL_SaleOrder", {"Numbers": [audited_order]})["Result"]["ResponseStatus"]["IsSuccess"] is False


def test_push_selected_entries_and_direct_outstock(k3: K3Http, audited_order: str) -> None:
    [[first], [second]] = k3.query("SAL_SaleOrder", "FSaleOrderEntry_FEntryID", OrderString="FSaleOrderEntry_FEntryID")
    result = push(k3, "SAL_SaleOrder", audited_order, "SaleOrder-OutStock", EntryIds=str(second))
    ok(result)
    assert k3.query("SAL_OUTSTOCK", "FMaterialID.FNumber,FRealQty,FSoorDerno,FSOEntryId,FSrcType") == [
        ["MAT-0002", 2.0, audited_order, second, "SAL_SaleOrder"]]
    default_rule = k3.call("Push", "SAL_SaleOrder", {"Numbers": [audited_order], "IsEnableDefaultRule": "true",
                                                      "TargetFormId": "SAL_OUTSTOCK"})["Result"]
    ok(default_rule)
    assert k3.query("SAL_OUTSTOCK", "FSOEntryId", "FSOEntryId = " + str(first)) == [[first]]


def test_deleting_a_target_frees_the_quantity(k3: K3Http, audited_order: str) -> None:
    notice = push(k3, "SAL_SaleOrder", audited_order, "SaleOrder-DeliveryNotice")["ResponseStatus"]["SuccessEntitys"][0]
    ok(k3.call("Delete", "SAL_DELIVERYNOTICE", {"Ids": str(notice["Id"])})["Result"])
    ok(push(k3, "SAL_SaleOrder", audited_order, "SaleOrder-DeliveryNotice"))


def test_unknown_rule_is_rejected(k3: K3Http, audited_order: str) -> None:
    result = push(k3, "SAL_SaleOrder", audited_order, "SaleOrder-Nowhere")
    assert result["ResponseStatus"]["IsSuccess"] is False and result["ResponseStatus"]["MsgCode"] == 8


def k3_records(k3: K3Http, form: str) -> list[dict]:
    import requests

    return requests.get(k3.base.replace("/k3cloud/", f"/_sim/records/{form}"), timeout=10).json()
