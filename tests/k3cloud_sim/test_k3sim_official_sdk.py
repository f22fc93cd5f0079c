"""Kingdee's official Python SDK (kingdee-cdp-webapi-sdk, signed headers) works against the simulator unchanged."""

from __future__ import annotations

import json

from .k3sim_helpers import K3
from k3cloud_webapi_sdk.main import K3CloudApiSdk


def make_sdk(base_url: str) -> K3CloudApiSdk:
    server_url = f"{base_url}/k3cloud/"
    sdk = K3CloudApiSdk(server_url)
    sdk.InitConfig(K3["acct_id"], K3["username"], K3["app_id"], K3["app_secret"], server_url, lcid=2052, org_num=0,
                   connect_timeout=5, request_timeout=10)
    return sdk


def test_official_sdk_round_trip(k3cloud) -> None:
    sdk = make_sdk(k3cloud.base_url)
    customer = {"Model": {"FCUSTID": 0, "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                          "FNumber": "SDK-C1", "FName": "SDK 客户", "FTRADINGCURRID": {"FNumber": "PRE001"}},
                "IsAutoSubmitAndAudit": "true"}
    saved = json.loads(sdk.Save("BD_Customer", customer))
    assert saved["Result"]["ResponseStatus"]["IsSuccess"] is True, saved
    assert sdk.cookiesStore.SID  # the SDK picked up the session cookie from the signed call

    order = {"Model": {"FBillTypeID": {"FNumber": "XSDD01_SYS"}, "FDate": "2025-01-02", "FSaleOrgId": {"FNumber": "100"},
                       "FCustId": {"FNumber": "SDK-C1"}, "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE001"}},
                       "FSaleOrderEntry": [{"FMaterialId": {"FNumber": "MAT-0005"}, "FQty": 3, "FTaxPrice": 9.5}]}}
    batch = json.loads(sdk.BatchSave("SAL_SaleOrder", {"Model": [order["Model"], {**order["Model"], "FCustId": {"FNumber": "NOPE"}}]}))
    status = batch["Result"]["ResponseStatus"]
    assert [s["DIndex"] for s in status["SuccessEntitys"]] == [0] and [e["DIndex"] for e in status["Errors"]] == [1]
    number = status["SuccessEntitys"][0]["Number"]

    one = json.loads(sdk.Save("SAL_SaleOrder", order))
    assert one["Result"]["ResponseStatus"]["IsSuccess"] is True

    view = json.loads(sdk.View("SAL_SaleOrder", {"Number": number}))
    assert view["Result"]["Result"]["BillNo"] == number

    assert json.loads(sdk.Submit("SAL_SaleOrder", {"Numbers": [number]}))["Result"]["ResponseStatus"]["IsSuccess"] is True
    audited = json.loads(sdk.Audit("SAL_SaleOrder", {"Numbers": [number]}))
    assert audited["Result"]["ResponseStatus"]["IsSuccess"] is True

    rows = json.loads(sdk.ExecuteBillQuery({"FormId": "SAL_SaleOrder", "FieldKeys": "FBillNo,FDocumentStatus,FQty",
                                            "FilterString": f"FBillNo = '{number}'", "Limit": 10}))
    assert rows == [[number, "C", 3.0]]
    objects = json.loads(sdk.BillQuery({"FormId": "BD_Currency", "FieldKeys": "FCODE", "FilterString": "FNUMBER='PRE001'"}))
    assert objects == [{"FCODE": "CNY"}]
    centers = json.loads(sdk.GetDataCenters())
    assert centers[0]["Id"] == K3["acct_id"]


def test_official_sdk_after_sessions_expire_signs_in_again(k3cloud) -> None:
    sdk = make_sdk(k3cloud.base_url)
    query = {"FormId": "BD_Currency", "FieldKeys": "FCODE", "FilterString": "FNUMBER='PRE001'"}
    assert json.loads(sdk.ExecuteBillQuery(query)) == [["CNY"]]
    old_sid = sdk.cookiesStore.SID
    k3cloud.expire()
    assert json.loads(sdk.ExecuteBillQuery(query)) == [["CNY"]]  # the signature still authenticates
    assert sdk.cookiesStore.SID != old_sid


def test_official_sdk_query_invoke_mode(k3cloud) -> None:
    sdk = make_sdk(k3cloud.base_url)
    model = {"Model": [{"FNumber": "U-Q1", "FName": "异步单位"}]}
    result = json.loads(sdk.BatchSaveQuery("BD_UNIT", model))
    assert result["Result"]["ResponseStatus"]["IsSuccess"] is True
    assert [r["FNumber"] for r in k3cloud.records("BD_UNIT") if r["FNumber"] == "U-Q1"] == ["U-Q1"]


def test_official_sdk_with_wrong_secret_gets_session_lost(k3cloud) -> None:
    server_url = f"{k3cloud.base_url}/k3cloud/"
    sdk = K3CloudApiSdk(server_url)
    sdk.InitConfig(K3["acct_id"], K3["username"], K3["app_id"], "wrong-secret", server_url)
    body = json.loads(sdk.View("BD_UNIT", {"Number": "Pcs"}))
    assert body["Result"]["ResponseStatus"]["MsgCode"] == 1
