"""Routing, request envelopes and the exact response serialization (k3cloud-webapi.md §1, §3.2, §4.4)."""

from __future__ import annotations

import json

import pytest
import requests

from .k3sim_helpers import K3Http

CURRENCY_QUERY = {"FormId": "BD_Currency", "FieldKeys": "FCODE", "FilterString": "FNUMBER='PRE001'"}


@pytest.mark.parametrize("path", [
    "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc",
    "/K3Cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc",
    "/K3CLOUD/kingdee.bos.webapi.servicesstub.dynamicformservice.executebillquery.COMMON.KDSVC",
    "/galaxyapi/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.executeBillQuery.common.kdsvc",
])
def test_service_paths_are_case_insensitive(k3: K3Http, k3cloud, path: str) -> None:
    r = requests.post(k3cloud.base_url + path, json={"data": CURRENCY_QUERY},
                      headers={"Cookie": f"kdservice-sessionid={k3.sid}"}, timeout=10)
    assert r.status_code == 200
    assert r.json() == [["CNY"]]


@pytest.mark.parametrize("path", [
    "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save",
    "/api/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc",
    "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.NoSuchMethod.common.kdsvc",
    "/k3cloud/Save.common.kdsvc",
])
def test_other_paths_are_404(k3cloud, path: str) -> None:
    assert requests.post(k3cloud.base_url + path, json={}, timeout=10).status_code == 404


@pytest.mark.parametrize("body", [
    {"data": CURRENCY_QUERY},
    {"Data": json.dumps(CURRENCY_QUERY)},
    {"parameters": [json.dumps(CURRENCY_QUERY)]},
    {"parameters": [CURRENCY_QUERY]},
    {"format": 1, "useragent": "ApiClient", "rid": "123", "parameters": json.dumps([json.dumps(CURRENCY_QUERY)]),
     "timestamp": "2025-01-01 00:00:00", "v": "1.0"},
])
def test_query_envelopes_are_accepted(k3: K3Http, body: dict) -> None:
    r = k3.post("ExecuteBillQuery", body)
    assert r.json() == [["CNY"]]


def test_save_envelopes_and_case_insensitive_names(k3: K3Http) -> None:
    model = {"FNumber": "U-1", "FName": "单位一"}
    forms = [
        {"FormId": "BD_UNIT", "DATA": {"Model": model}},
        {"parameters": ["BD_UNIT", json.dumps({"Model": {**model, "FNumber": "U-2"}})]},
        {"format": 1, "parameters": json.dumps(["BD_UNIT", json.dumps({"Model": {**model, "FNumber": "U-3"}})])},
    ]
    numbers = [k3.post("Save", body).json()["Result"]["Number"] for body in forms]
    assert numbers == ["U-1", "U-2", "U-3"]


def test_body_is_json_whatever_the_content_type(k3: K3Http) -> None:
    raw = json.dumps({"data": CURRENCY_QUERY}, ensure_ascii=False).encode("utf-8")
    for content_type in ("text/plain", "applicatin/json", "application/x-www-form-urlencoded"):
        r = k3.post("ExecuteBillQuery", raw=raw, headers={"Content-Type": content_type})
        assert r.json() == [["CNY"]], content_type


def test_form_encoded_formid_and_data_are_tolerated(k3: K3Http) -> None:
    from urllib.parse import urlencode

    raw = urlencode({"formid": "BD_Currency", "data": json.dumps({"Number": "PRE001"})}).encode()
    r = k3.post("View", raw=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json()["Result"]["Result"]["Number"] == "PRE001"


def test_bare_array_body_is_rejected(k3: K3Http) -> None:
    r = k3.post("Save", raw=b'["BD_UNIT", "{}"]')
    assert r.status_code == 200
    assert '"IsSuccess":false' in r.text


def test_failure_serialization_is_compact_and_ordered(k3: K3Http) -> None:
    r = k3.post("Save", {"formid": "BD_Customer", "data": {"Model": {"FName": "x"}}})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    text = r.text
    assert text.startswith('{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":')
    assert ',"IsSuccess":false,' in text and ": " not in text
    status = r.json()["Result"]["ResponseStatus"]
    assert list(status) == ["ErrorCode", "IsSuccess", "Errors", "SuccessEntitys", "SuccessMessages", "MsgCode"]


def test_success_serialization_has_no_error_code_and_int_ids(k3: K3Http) -> None:
    r = k3.post("Save", {"formid": "BD_UNIT", "data": {"Model": {"FNumber": "U-9", "FName": "九"}}})
    body = r.json()["Result"]
    assert list(body) == ["ResponseStatus", "Id", "Number", "NeedReturnData"]
    assert list(body["ResponseStatus"]) == ["IsSuccess", "Errors", "SuccessEntitys", "SuccessMessages", "MsgCode"]
    assert isinstance(body["Id"], int) and body["ResponseStatus"]["SuccessEntitys"][0]["Id"] == body["Id"]
    assert body["NeedReturnData"] == [{}]


def test_query_error_is_wrapped_twice(k3: K3Http) -> None:
    r = k3.post("ExecuteBillQuery", {"data": {"FormId": "SAL_SaleOrder", "FieldKeys": "FBillNo,FIssueType"}})
    assert r.text.startswith('[[{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,')
    status = r.json()[0][0]["Result"]["ResponseStatus"]
    assert status["MsgCode"] == 9 and status["Errors"][0]["Message"] == "元数据中标识为FIssueType的字段不存在"


def test_unknown_form_and_missing_formid(k3: K3Http) -> None:
    unknown = k3.call("View", "NO_SUCH_FORM", {"Number": "x"})["Result"]["ResponseStatus"]
    assert unknown["IsSuccess"] is False and "业务对象" in unknown["Errors"][0]["Message"]
    missing = k3.call("View", None, {"Number": "x"})["Result"]["ResponseStatus"]
    assert missing["MsgCode"] == 5


def test_unhandled_errors_never_become_http_500(k3: K3Http) -> None:
    r = k3.post("Save", {"formid": "BD_UNIT", "data": "{not json"})
    assert r.status_code == 200 and r.json()["Result"]["ResponseStatus"]["MsgCode"] == 8

