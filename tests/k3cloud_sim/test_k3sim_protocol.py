"""Protocol switches of issue 14 (README "Protocol switches"): the shapes real servers answer, over HTTP."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from simulators.k3cloud.auth import kdsign

from .k3sim_helpers import AUTH, K3, K3Http, customer_model

QUERY = {"FormId": "BD_Currency", "FieldKeys": "FCODE", "FilterString": "FNUMBER='PRE001'"}
LOCK_TEXT = "冲突，请稍候再使用"


def protocol(sim, **switches) -> dict:
    r = requests.post(f"{sim.base_url}/_sim/protocol", json=switches, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["protocol"]


def login_body(method: str = "ValidateUser") -> dict:
    if method == "ValidateUser":
        return {"acctID": K3["acct_id"], "username": K3["username"], "password": K3["password"], "lcid": 2052}
    return {"acctID": K3["acct_id"], "username": K3["username"], "appId": K3["app_id"], "appSecret": K3["app_secret"],
            "lcid": 2052}


@pytest.mark.parametrize(("shape", "code"), [("msgcode0", 0), ("no_msgcode", None), ("msgcode13", 13)])
def test_lock_conflict_shapes(k3: K3Http, k3cloud, shape, code) -> None:
    protocol(k3cloud, lock_conflict_shape=shape)
    k3cloud.faults({"lock_conflict_rate": 1.0})
    status = k3.save("BD_Customer", customer_model("LC1"))["ResponseStatus"]
    assert status["IsSuccess"] is False and LOCK_TEXT in status["Errors"][0]["Message"]
    assert status.get("MsgCode") == code and (("MsgCode" in status) is (code is not None))
    assert k3cloud.records("BD_Customer") == []


def test_lock_conflicts_hit_single_batch_packages(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"lock_conflict_record_rate": 0.5, "seed": 3})
    models = [customer_model(f"LR{i}") for i in range(8)]
    status = k3.call("BatchSave", "BD_Customer", {"Model": models})["Result"]["ResponseStatus"]
    saved = {s["DIndex"] for s in status["SuccessEntitys"]}
    locked = {e["DIndex"] for e in status["Errors"]}
    assert saved and locked and saved | locked == set(range(8)) and not saved & locked
    assert all(LOCK_TEXT in e["Message"] for e in status["Errors"]) and status["MsgCode"] == 0
    assert sorted(r["FNumber"] for r in k3cloud.records("BD_Customer")) == sorted(f"LR{i}" for i in saved)


@pytest.mark.parametrize("service", ["View", "ExecuteBillQuery"])
def test_session_lost_without_msgcode(k3cloud, service) -> None:
    protocol(k3cloud, session_lost_shape="text_only")
    client = K3Http(k3cloud.base_url)  # no session at all
    body = client.post(service, {"formid": "BD_UNIT", "data": {"Number": "Pcs", **QUERY}}).json()
    status = (body[0][0] if service == "ExecuteBillQuery" else body)["Result"]["ResponseStatus"]
    assert "MsgCode" not in status and status["Errors"][0]["Message"] == "会话信息已丢失，请重新登录"


def test_session_lost_as_a_bare_list(k3: K3Http, k3cloud) -> None:
    protocol(k3cloud, session_lost_shape="bare_list")
    k3cloud.faults({"session_loss_every": 1})
    r = k3.post("Save", {"formid": "BD_Customer", "data": {"Model": customer_model("SL1")}})
    assert r.text == '[{"FieldName":null,"Message":"会话信息已丢失，请重新登录","DIndex":0}]'
    assert k3cloud.records("BD_Customer") == []


def test_app_secret_login_with_a_null_session_id_carries_it_in_the_cookie(k3cloud) -> None:
    protocol(k3cloud, app_secret_null_session_id=True)
    client = K3Http(k3cloud.base_url)
    r = client.post("LoginByAppSecret", login_body("LoginByAppSecret"), prefix=AUTH)
    assert r.json()["LoginResultType"] == 1 and r.json()["KDSVCSessionId"] is None
    client.sid = r.cookies["kdservice-sessionid"]
    assert client.post("ExecuteBillQuery", {"data": QUERY}).json() == [["CNY"]]
    # ValidateUser keeps the id in the body
    assert K3Http(k3cloud.base_url).post("ValidateUser", login_body(), prefix=AUTH).json()["KDSVCSessionId"]


def test_success_answers_omit_empty_keys_on_newer_servers(k3: K3Http, k3cloud) -> None:
    protocol(k3cloud, omit_empty_keys=True)
    r = k3.post("Save", {"formid": "BD_Customer", "data": {"Model": customer_model("OE1")}})
    result = r.json()["Result"]
    assert set(result["ResponseStatus"]) == {"IsSuccess", "SuccessEntitys"} and "NeedReturnData" not in result
    assert '"IsSuccess":true,"SuccessEntitys"' in r.text and result["Number"] == "OE1"
    failed = k3.post("Save", {"formid": "BD_Customer", "data": {"Model": customer_model("OE1")}}).json()
    status = failed["Result"]["ResponseStatus"]  # failures keep every key
    assert status["MsgCode"] == 11 and status["SuccessEntitys"] == [] and status["Errors"]


def test_query_returns_at_most_the_row_cap_whatever_limit_says(k3: K3Http, k3cloud) -> None:
    protocol(k3cloud, query_row_cap=3)
    k3cloud.seed({"forms": {"BD_Customer": [customer_model(f"QC{i}") for i in range(5)]}})
    data = {"FormId": "BD_Customer", "FieldKeys": "FNumber", "OrderString": "FNumber ASC"}
    for limit in (0, 4, 2000):
        assert len(k3.call("ExecuteBillQuery", data={**data, "Limit": limit})) == 3
    assert k3.call("ExecuteBillQuery", data={**data, "StartRow": 3, "Limit": 10}) == [["QC3"], ["QC4"]]
    assert len(k3.call("BillQuery", data={**data, "Limit": 10})) == 3
    assert json.loads(requests.get(f"{k3cloud.base_url}/_sim/protocol", timeout=5).text)["query_row_cap"] == 3


def test_default_row_cap_is_2000(k3cloud) -> None:
    assert requests.get(f"{k3cloud.base_url}/_sim/protocol", timeout=5).json()["query_row_cap"] == 2000


def test_logins_beyond_the_session_limit_are_refused_until_one_logs_out(k3cloud) -> None:
    protocol(k3cloud, max_sessions_per_user=2)
    first, second, third = (K3Http(k3cloud.base_url) for _ in range(3))
    for client in (first, second):
        client.sid = client.post("ValidateUser", login_body(), prefix=AUTH).json()["KDSVCSessionId"]
    refused = third.post("ValidateUser", login_body(), prefix=AUTH).json()
    assert refused["LoginResultType"] == -1 and refused["IsSuccessByAPI"] is False and refused["KDSVCSessionId"] is None
    assert "在线会话数已达到上限" in refused["Message"] and "apiuser" in refused["Message"]
    assert first.post("Logout", {}, prefix=AUTH).json() is True
    assert third.post("ValidateUser", login_body(), prefix=AUTH).json()["LoginResultType"] == 1
    stats = k3cloud.stats()["sessions"]
    assert stats == {"live": 2, "opened": 3, "logged_out": 1}


def test_signed_calls_without_the_cookie_each_open_a_session(k3cloud) -> None:
    from k3cloud_webapi_sdk.main import K3CloudApiSdk

    protocol(k3cloud, max_sessions_per_user=3)
    server_url = f"{k3cloud.base_url}/k3cloud/"
    sdk = K3CloudApiSdk(server_url)
    sdk.InitConfig(K3["acct_id"], K3["username"], K3["app_id"], K3["app_secret"], server_url, lcid=2052)
    for _ in range(5):  # the official SDK replays its cookie: one session for every call
        assert json.loads(sdk.ExecuteBillQuery(QUERY)) == [["CNY"]]
    assert k3cloud.stats()["sessions"]["opened"] == 1
    # A client that drops the cookie opens a session per call, until the limit refuses (MsgCode 7 许可错误).
    plain = f"{K3['acct_id']},{K3['username']},2052,0"
    headers = {"X-Kd-Appkey": K3["app_id"], "X-Kd-Appdata": base64.b64encode(plain.encode()).decode(),
               "X-Kd-Signature": kdsign(K3["app_secret"], K3["app_id"] + plain)}
    url = server_url + "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
    answers = [requests.post(url, json={"data": QUERY}, headers=headers, timeout=5).json()
               for _ in range(3)]
    assert answers[:2] == [[["CNY"]], [["CNY"]]]
    assert answers[2][0][0]["Result"]["ResponseStatus"]["MsgCode"] == 7


def test_protocol_switches_are_validated_and_reset_restores_them(k3cloud) -> None:
    bad = requests.post(f"{k3cloud.base_url}/_sim/protocol", json={"lock_conflict_shape": "weird"}, timeout=5)
    assert bad.status_code == 400 and "msgcode0" in bad.json()["error"]
    assert requests.post(f"{k3cloud.base_url}/_sim/protocol", json={"nope": 1}, timeout=5).status_code == 400
    protocol(k3cloud, omit_empty_keys=True, max_sessions_per_user=1)
    k3cloud.reset()
    now = requests.get(f"{k3cloud.base_url}/_sim/protocol", timeout=5).json()
    assert now["omit_empty_keys"] is False and now["max_sessions_per_user"] == 20
