"""Save / BatchSave / Draft validation like the real server (k3cloud-webapi.md §3.3–3.5, §5, §6)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from .k3sim_helpers import K3Http, customer_model, ok, order_model

# A real BD_Customer package from the field (copy of shared/specs/bd_customer_package_from_field.json).
PACKAGE = Path(__file__).with_name("data") / "bd_customer_package_from_field.json"
FILL = {"field_fnfcA__c": "C-FIELD-01", "name": "上海某某科技有限公司", "field_n5V1I__c": "KHLB001_SYS",
        "field_IdOci__c": "KHFZ01", "field_zW12m__c": "王经理", "field_G45nC__c": "13900000001"}


def field_package() -> dict:
    text = PACKAGE.read_text(encoding="utf-8")
    for key, value in FILL.items():
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text
    return json.loads(text)


def test_field_package_saves_with_real_values(k3: K3Http) -> None:
    body = field_package()
    result = k3.post("Save", body).json()["Result"]
    ok(result)
    assert result["Number"] == "C-FIELD-01"
    [record] = [r for r in k3_records(k3, "BD_Customer") if r["FNumber"] == "C-FIELD-01"]
    assert record["FCustTypeId"] == {"FNumber": "KHLB001_SYS"} and record["FGroup"] == {"FNumber": "KHFZ01"}
    assert record["FUseOrgId"] == {"FNumber": "603"} and record["FDocumentStatus"] == "A"
    assert record["FIsTrade"] is True and record["FIsGroup"] is False  # string booleans became booleans
    assert record["FPROVINCIAL"] is None  # {"FNumber": ""} means "no value"
    assert [c["FMOBILE"] for c in record["FT_BD_CUSTCONTACT"]] == ["13900000001"]
    assert record["FT_BD_CUSTBANK"] == []  # the blank template row is not an entry


def test_field_package_with_unknown_customer_type_names_the_field(k3: K3Http) -> None:
    body = field_package()
    body["data"]["Model"]["FCustTypeId"] = {"FNumber": "KHLB999"}
    body["data"]["IsVerifyBaseDataField"] = True  # real servers check references only when asked
    status = k3.post("Save", body).json()["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False and status["MsgCode"] == 11
    assert status["Errors"][0]["FieldName"] == "FCustTypeId" and "客户类别" in status["Errors"][0]["Message"]


def k3_records(k3: K3Http, form: str) -> list[dict]:
    import requests

    return requests.get(k3.base.replace("/k3cloud/", f"/_sim/records/{form}"), timeout=10).json()


def test_duplicate_number_message(k3: K3Http) -> None:
    ok(k3.save("BD_Customer", customer_model("C0001")))
    status = k3.save("BD_Customer", customer_model("c0001"))["ResponseStatus"]
    assert status["MsgCode"] == 11
    assert status["Errors"] == [{"FieldName": "FNumber", "Message": "违反字段唯一性要求：编码唯一。[c0001]在当前系统中已经被使用。",
                                 "DIndex": 0}]


def test_duplicate_bill_number_names_fbillno(k3: K3Http) -> None:
    ok(k3.save("BD_Customer", customer_model(), IsAutoSubmitAndAudit=True))
    ok(k3.save("SAL_SaleOrder", order_model(FBillNo="SO-1")))
    status = k3.save("SAL_SaleOrder", order_model(FBillNo="SO-1"))["ResponseStatus"]
    assert status["Errors"][0]["FieldName"] == "FBillNo" and "[SO-1]" in status["Errors"][0]["Message"]


def test_auto_numbering_per_form(k3: K3Http) -> None:
    first = k3.save("BD_Customer", {**customer_model(), "FNumber": ""}, IsAutoSubmitAndAudit="true")
    second = k3.save("BD_Customer", {k: v for k, v in customer_model().items() if k != "FNumber"}, IsAutoSubmitAndAudit=True)
    assert (first["Number"], second["Number"]) == ("CUST0001", "CUST0002")
    first_order = k3.save("BD_Customer", customer_model("C0001"), IsAutoSubmitAndAudit=True)
    ok(first_order)
    assert k3.save("SAL_SaleOrder", order_model())["Number"] == "XSDD000001"
    assert k3.save("SAL_SaleOrder", order_model())["Number"] == "XSDD000002"


@pytest.mark.parametrize("model, field, message", [
    ({"FCreateOrgId": {"FNumber": "603"}, "FName": ""}, "FName", "字段“客户名称”是必填项"),
    ({"FName": "x"}, "FCreateOrgId", "字段“创建组织”是必填项"),
])
def test_required_fields(k3: K3Http, model: dict, field: str, message: str) -> None:
    status = k3.save("BD_Customer", model)["ResponseStatus"]
    assert {"FieldName": field, "Message": message, "DIndex": 0} in status["Errors"]
    assert status["MsgCode"] == 11


def test_entry_required_field_message(k3: K3Http) -> None:
    ok(k3.save("BD_Customer", customer_model(), IsAutoSubmitAndAudit=True))
    model = order_model()
    model["FSaleOrderEntry"].append({"FQty": 3})
    errors = k3.save("SAL_SaleOrder", model)["ResponseStatus"]["Errors"]
    assert errors == [{"FieldName": "FMaterialId", "Message": "单据体实体【订单明细】第【2】行分录，【物料编码】字段必录", "DIndex": 0}]


@pytest.mark.parametrize("case", ["missing", "not_audited", "forbidden", "other_org", "lookup_by_name_ok"])
def test_reference_resolution(k3: K3Http, case: str) -> None:
    ok(k3.save("BD_Customer", customer_model("C0001"), IsAutoSubmitAndAudit=True))
    customer = "C0001"
    if case == "missing":
        customer = "C9999"
    elif case == "not_audited":
        ok(k3.save("BD_Customer", customer_model("C0002")))
        customer = "C0002"
    elif case == "forbidden":
        ok(k3.call("ExcuteOperation", "BD_Customer", {"Numbers": ["C0001"]}, opNumber="Forbid")["Result"])
    elif case == "other_org":
        ok(k3.save("BD_Customer", customer_model("C0100", org="100"), IsAutoSubmitAndAudit=True))
        customer = "C0100"
    model = order_model(customer)
    if case == "lookup_by_name_ok":
        model["FCustId"] = {"FNAME": "客户C0001"}
    result = k3.save("SAL_SaleOrder", model, IsVerifyBaseDataField=True)
    if case == "lookup_by_name_ok":
        ok(result)
        return
    status = result["ResponseStatus"]
    assert status["IsSuccess"] is False and status["MsgCode"] == 11
    assert status["Errors"][0]["FieldName"] == "FCustId"
    expected = {"missing": "不存在", "not_audited": "未审核", "forbidden": "已禁用", "other_org": "未分配到组织“603”"}[case]
    assert "客户" in status["Errors"][0]["Message"] and expected in status["Errors"][0]["Message"]


def test_allocate_makes_base_data_usable_in_another_org(k3: K3Http) -> None:
    cust = k3.save("BD_Customer", customer_model("C0100", org="100"), IsAutoSubmitAndAudit=True)
    assert k3.save("SAL_SaleOrder", order_model("C0100"))["ResponseStatus"]["IsSuccess"] is False
    ok(k3.call("Allocate", "BD_Customer", {"PkIds": str(cust["Id"]), "TOrgIds": "603",
                                           "IsAutoSubmitAndAudit": True})["Result"])
    ok(k3.save("SAL_SaleOrder", order_model("C0100")))


def test_unknown_field_key(k3: K3Http) -> None:
    status = k3.save("BD_Customer", customer_model(FNoSuchField="x"))["ResponseStatus"]
    assert status["MsgCode"] == 9
    assert status["Errors"][0]["FieldName"] == "FNoSuchField" and "实体" in status["Errors"][0]["Message"]
    assert "不存在此属性" in status["Errors"][0]["Message"]


def test_custom_fields_are_stored_and_queryable(k3: K3Http) -> None:
    ok(k3.save("BD_Customer", customer_model(F_CRM_ID="crm-1"), IsAutoSubmitAndAudit=True))
    ok(k3.save("SAL_SaleOrder", order_model(FNetOrderBillNo="CRM-SO-1", F_ORA_CRMID="crm-so-1")))
    rows = k3.query("SAL_SaleOrder", "FBillNo,FNetOrderBillNo,F_ORA_CRMID", "FNetOrderBillNo = 'CRM-SO-1'")
    assert rows == [["XSDD000001", "CRM-SO-1", "crm-so-1"]]
    assert k3.query("BD_Customer", "FNumber,F_CRM_ID", "F_CRM_ID = 'crm-1'") == [["C0001", "crm-1"]]


def test_update_of_missing_id_is_an_error(k3: K3Http) -> None:
    status = k3.save("BD_Customer", customer_model(FCUSTID=999999))["ResponseStatus"]
    assert status["IsSuccess"] is False and status["Errors"][0]["FieldName"] == "FCUSTID"


def test_need_update_fields_only_touches_listed_keys(k3: K3Http) -> None:
    saved = k3.save("BD_Customer", customer_model(FTEL="021-1", FADDRESS="旧地址"))
    update = {"FCUSTID": saved["Id"], "FTEL": "021-2", "FADDRESS": "新地址", "FName": "新名字"}
    ok(k3.save("BD_Customer", update, NeedUpDateFields=["FTEL"]))
    rows = k3.query("BD_Customer", "FTEL,FADDRESS,FName", f"FCUSTID = {saved['Id']}")
    assert rows == [["021-2", "旧地址", "客户C0001"]]


def test_is_delete_entry_controls_missing_rows(k3: K3Http) -> None:
    ok(k3.save("BD_Customer", customer_model(), IsAutoSubmitAndAudit=True))
    saved = k3.save("SAL_SaleOrder", order_model(lines=(("MAT-0001", 1), ("MAT-0002", 2))),
                    NeedReturnFields=["FSaleOrderEntry.FEntryID"])
    first_id = saved["NeedReturnData"][0]["FSaleOrderEntry"][0]["FEntryID"]
    keep = {"FID": saved["Id"], "FSaleOrderEntry": [{"FEntryID": first_id, "FQty": 7}]}
    ok(k3.save("SAL_SaleOrder", keep, IsDeleteEntry="false"))
    assert k3.query("SAL_SaleOrder", "FMaterialId.FNumber,FQty", OrderString="FSaleOrderEntry_FEntryID") == [
        ["MAT-0001", 7.0], ["MAT-0002", 2.0]]
    ok(k3.save("SAL_SaleOrder", keep))  # IsDeleteEntry defaults to true
    assert k3.query("SAL_SaleOrder", "FMaterialId.FNumber,FQty") == [["MAT-0001", 7.0]]


def test_need_return_fields(k3: K3Http) -> None:
    ok(k3.save("BD_Customer", customer_model(), IsAutoSubmitAndAudit=True))
    result = k3.save("SAL_SaleOrder", order_model(lines=(("MAT-0003", 1),)),
                     NeedReturnFields=["FBillNo", "FID", "FCustId", "FSaleOrderEntry.FEntryID", "FSaleOrderEntry.FQty"])
    data = result["NeedReturnData"][0]
    assert data["FBillNo"] == result["Number"] and data["FID"] == result["Id"]
    assert data["FCustId"] == {"FNumber": "C0001"}
    assert data["FSaleOrderEntry"][0]["FQty"] == 1.0 and isinstance(data["FSaleOrderEntry"][0]["FEntryID"], int)


def test_system_dates_are_utc_plus_8_without_offset(k3: K3Http) -> None:
    ok(k3.save("BD_Customer", customer_model(), IsAutoSubmitAndAudit=True))
    [[created, modified, approved]] = k3.query("BD_Customer", "FCreateDate,FModifyDate,FApproveDate", "FNumber = 'C0001'")
    for value in (created, modified, approved):
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f")
        assert len(value) == 23
        now8 = datetime.now(timezone(timedelta(hours=8))).replace(tzinfo=None)
        assert abs((now8 - parsed).total_seconds()) < 60


def test_batch_save_partial_success_by_dindex(k3: K3Http) -> None:
    models = [customer_model("B1"), {"FName": "缺组织"}, customer_model("B3"), customer_model("B1")]
    result = k3.call("BatchSave", "BD_Customer", {"Model": models, "NeedReturnFields": ["FNumber"]})["Result"]
    status = result["ResponseStatus"]
    assert status["IsSuccess"] is False and status["ErrorCode"] == 500
    assert [(s["Number"], s["DIndex"]) for s in status["SuccessEntitys"]] == [("B1", 0), ("B3", 2)]
    assert sorted({e["DIndex"] for e in status["Errors"]}) == [1, 3]
    assert {"FieldName": "FNumber", "Message": "违反字段唯一性要求：编码唯一。[B1]在当前系统中已经被使用。", "DIndex": 3} in status["Errors"]
    assert result["NeedReturnData"] == [{"FNumber": "B1"}, {"FNumber": "B3"}]
    assert sorted(r["FNumber"] for r in k3_records(k3, "BD_Customer")) == ["B1", "B3"]


def test_draft_has_status_z_and_no_validation(k3: K3Http) -> None:
    result = k3.call("Draft", "SAL_SaleOrder", {"Model": {"FNote": "草稿"}})["Result"]
    ok(result)
    [record] = k3_records(k3, "SAL_SaleOrder")
    assert record["FDocumentStatus"] == "Z" and record["FID"] == result["Id"] and not record.get("FBillNo")
    status = k3.call("Submit", "SAL_SaleOrder", {"Ids": str(result["Id"])})["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False  # a draft must be saved before it can be submitted


def test_seed_and_records_admin_api(k3: K3Http, k3cloud) -> None:
    created = k3cloud.seed({"forms": {"BD_Customer": [customer_model("S1"), {**customer_model("S2"), "FDocumentStatus": "A"}],
                                      "SAL_SaleOrder": [order_model("S1", FBillNo="SEED-SO-1")]}})
    assert created["ok"] is True and [c["Number"] for c in created["created"]["BD_Customer"]] == ["S1", "S2"]
    records = {r["FNumber"]: r for r in k3cloud.records("BD_Customer")}
    assert records["S1"]["FDocumentStatus"] == "C" and records["S2"]["FDocumentStatus"] == "A"
    [order] = k3cloud.records("SAL_SaleOrder")
    assert order["FBillNo"] == "SEED-SO-1" and order["FDocumentStatus"] == "C" and order["FID"] > 0
    assert order["FSaleOrderEntry"][0]["FMaterialId"] == {"FNumber": "MAT-0001"} and "FModifyDate" in order


def test_base_data_is_present_after_reset(k3: K3Http, k3cloud) -> None:
    materials = k3cloud.records("BD_MATERIAL")  # a row per use org: 100 (the master) and 603 (allocated)
    assert sorted((m["FNumber"], m["FUseOrgId"]["FNumber"]) for m in materials) == sorted(
        (f"MAT-{i:04d}", org) for i in range(1, 21) for org in ("100", "603"))
    assert all(m["FDocumentStatus"] == "C" and m["FForbidStatus"] == "A" for m in materials)
    assert {r["FNumber"] for r in k3cloud.records("ORG_Organizations")} == {"100", "603"}
    assert k3.query("BOS_BillType", "FNumber", "FBillFormID = 'SAL_SaleOrder' AND FIsDefault = 1") == [["XSDD01_SYS"]]
    assert k3.query("BD_TaxRate", "FTaxRate", "FNumber = 'SL02_SYS'") == [[13.0]]
