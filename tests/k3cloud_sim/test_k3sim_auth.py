"""Logins, session carriage, signed headers (k3cloud-webapi.md §2), with the spec's test vectors."""

from __future__ import annotations

import base64
import re
import time
import uuid

import pytest
import requests

from .k3sim_helpers import AUTH, K3, K3Http
from simulators.k3cloud import SimConfig, create_app
from simulators.k3cloud.auth import api_signature, client_secret, kdsign, login_sign

SESSION_LOST_BODY = ('{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,'
                     '"Message":"会话信息已丢失，请重新登录","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":1}}}')
QUERY = {"data": {"FormId": "BD_Currency", "FieldKeys": "FCODE", "FilterString": "FNUMBER='PRE001'"}}
SAVE_URL_PATH = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc"


def _login(client: K3Http, method: str, body: dict) -> requests.Response:
    return client.post(method, body, prefix=AUTH)


def test_validate_user_response_and_cookies(k3cloud) -> None:
    client = K3Http(k3cloud.base_url)
    r = _login(client, "ValidateUser", {"acctID": K3["acct_id"], "username": "apiuser", "password": K3["password"], "lcid": 2052})
    body = r.json()
    assert body["LoginResultType"] == 1 and body["IsSuccessByAPI"] is True
    assert str(uuid.UUID(body["KDSVCSessionId"])) == body["KDSVCSessionId"]
    ctx = body["Context"]
    assert {"UserId", "UserName", "DBid", "SessionId", "DisplayVersion"} <= set(ctx)
    assert ctx["DBid"] == K3["acct_id"] and ctx["UserName"] == "apiuser" and len(ctx["SessionId"]) == 24
    cookies = r.raw.headers.getlist("Set-Cookie")
    assert cookies == [f"kdservice-sessionid={body['KDSVCSessionId']}; path=/",
                       f"ASP.NET_SessionId={ctx['SessionId']}; path=/; HttpOnly"]
    assert all("," not in c and "expires" not in c.lower() for c in cookies)


@pytest.mark.parametrize("body, result_type", [
    ({"acctID": K3["acct_id"], "username": "apiuser", "password": "wrong", "lcid": 2052}, -1),
    ({"acctID": "nope", "username": "apiuser", "password": K3["password"], "lcid": 2052}, 0),
    ({"acctID": K3["acct_id"], "username": "someone", "password": K3["password"], "lcid": 2052}, -1),
])
def test_validate_user_failures(k3cloud, body: dict, result_type: int) -> None:
    r = _login(K3Http(k3cloud.base_url), "ValidateUser", body)
    data = r.json()
    assert data["LoginResultType"] == result_type and data["Message"] and data["KDSVCSessionId"] is None
    assert "Set-Cookie" not in r.headers


def test_validate_user_positional_parameters(k3cloud) -> None:
    r = _login(K3Http(k3cloud.base_url), "ValidateUser", {"parameters": [K3["acct_id"], "apiuser", K3["password"], 2052]})
    assert r.json()["LoginResultType"] == 1


def test_login_by_app_secret(k3cloud) -> None:
    client = K3Http(k3cloud.base_url)
    good = {"acctid": K3["acct_id"], "username": "apiuser", "appId": K3["app_id"], "appSecret": K3["app_secret"], "lcid": 2052}
    assert _login(client, "LoginByAppSecret", good).json()["LoginResultType"] == 1
    bad = _login(client, "LoginByAppSecret", {**good, "appSecret": "x"}).json()
    assert bad["LoginResultType"] == -1 and bad["MessageCode"] == "002005000003016"


def test_login_sign_matches_spec_vector() -> None:
    sign = login_sign("65a1b2c3d4e5f6", "apiuser", "123456_AQIGAFMFDg9aBlNRV1dSXlMCCldUAVML",
                      "00112233445566778899aabbccddeeff", "1700000000")
    assert sign == "1addd8ba44ec3e6ca4cca161d2c3d4cec39d43ab633d9510641434aba8408b27"


def test_login_by_sign_over_http(k3cloud) -> None:
    client = K3Http(k3cloud.base_url)
    ts = str(int(time.time()))
    sign = login_sign(K3["acct_id"], "apiuser", K3["app_id"], K3["app_secret"], ts)
    body = {"acctID": K3["acct_id"], "username": "apiuser", "appId": K3["app_id"], "timestamp": ts, "sign": sign, "lcid": 2052}
    assert _login(client, "LoginBySign", body).json()["LoginResultType"] == 1
    assert _login(client, "LoginBySign", {**body, "sign": "0" * 64}).json()["LoginResultType"] == -1


@pytest.mark.parametrize("carrier", ["cookie", "kdservice-sessionid", "SID"])
def test_session_is_accepted_from_cookie_and_headers(k3cloud, carrier: str) -> None:
    client = K3Http(k3cloud.base_url)
    sid = client.login()["KDSVCSessionId"]
    client.sid = None
    headers = {"Cookie": f"Theme=standard;kdservice-sessionid={sid}"} if carrier == "cookie" else {carrier: sid}
    assert client.post("ExecuteBillQuery", QUERY, headers=headers).json() == [["CNY"]]


def test_without_session_business_calls_report_msgcode_1(k3cloud) -> None:
    client = K3Http(k3cloud.base_url)
    assert client.post("Save", {"formid": "BD_UNIT", "data": {"Model": {}}}).text == SESSION_LOST_BODY
    assert client.post("ExecuteBillQuery", QUERY).text == f"[[{SESSION_LOST_BODY}]]"
    assert client.post("View", {"formid": "BD_UNIT", "data": {"Number": "Pcs"}},
                       headers={"kdservice-sessionid": str(uuid.uuid4())}).text == SESSION_LOST_BODY


def test_logout_and_expire_end_sessions(k3cloud) -> None:
    client = K3Http(k3cloud.base_url)
    client.login()
    assert client.post("Logout", {}, prefix=AUTH).json() is True
    assert client.post("ExecuteBillQuery", QUERY).json()[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1
    client.login()
    k3cloud.expire()
    assert client.post("ExecuteBillQuery", QUERY).json()[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1


def test_data_center_list_needs_no_session(k3cloud) -> None:
    r = requests.post(f"{k3cloud.base_url}/k3cloud/Kingdee.BOS.ServiceFacade.ServicesStub.Account.AccountService."
                      "GetDataCenterList.common.kdsvc", json={}, timeout=10)
    centers = r.json()
    assert centers[0]["Id"] == K3["acct_id"] and {"Number", "Name", "Version", "AuthenticationMethods"} <= set(centers[0])


# --- signed headers (§2.7) ------------------------------------------------------------------------------------

def test_signature_primitives_match_spec_vectors() -> None:
    app_data = "65a1b2c3d4e5f6,apiuser,2052,0"
    assert base64.b64encode(app_data.encode()).decode() == "NjVhMWIyYzNkNGU1ZjYsYXBpdXNlciwyMDUyLDA="
    assert kdsign(K3["app_secret"], K3["app_id"] + app_data) == (
        "YzQwZDU0ZDJlNzQ3ZWU4NTg3YjZmMzI1ZDlhYjk5MDZiYWEwYjI3YTM5MWVlMWE4NmFiNDVmNWZmNmYxZTBlZA==")
    assert client_secret(K3["app_id"]) == "MTIzNDU2Nzg5MGFiY2RlZjEyMzQ1Njc4"
    assert api_signature("MTIzNDU2Nzg5MGFiY2RlZjEyMzQ1Njc4", SAVE_URL_PATH, "1700000000", "1700000000") == (
        "Y2FjOGI3OTU5ZjdiZmMwYzc3MTBlM2ZmNmZmZWRlYjI2ODBiZTYwZDU0ZGIwNWI0YTM2NmRjOTE5ZGJjMTllOA==")


def signed_headers(path: str, app_secret: str = K3["app_secret"], ts: str | None = None) -> dict[str, str]:
    ts = ts or str(int(time.time()))
    app_data = f"{K3['acct_id']},apiuser,2052,0"
    return {
        "X-Api-ClientID": "123456", "X-Api-Auth-Version": "2.0", "x-api-timestamp": ts, "x-api-nonce": ts,
        "x-api-signheaders": "x-api-timestamp,x-api-nonce",
        "X-Api-Signature": api_signature(client_secret(K3["app_id"]), path, ts, ts),
        "X-Kd-Appkey": K3["app_id"], "X-Kd-Appdata": base64.b64encode(app_data.encode()).decode(),
        "X-Kd-Signature": kdsign(app_secret, K3["app_id"] + app_data),
    }


def test_signed_headers_log_in_and_set_the_session_cookie(k3cloud) -> None:
    client = K3Http(k3cloud.base_url)
    path = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
    r = client.post("ExecuteBillQuery", QUERY, headers=signed_headers(path))
    assert r.json() == [["CNY"]]
    sid = r.cookies.get("kdservice-sessionid")
    assert sid and re.fullmatch(r"[0-9a-f-]{36}", sid)
    # the session it handed out works on its own afterwards
    assert client.post("ExecuteBillQuery", QUERY, headers={"kdservice-sessionid": sid}).json() == [["CNY"]]


def test_signed_headers_with_wrong_secret_are_refused(k3cloud) -> None:
    client = K3Http(k3cloud.base_url)
    path = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
    r = client.post("ExecuteBillQuery", QUERY, headers=signed_headers(path, app_secret="0" * 32))
    assert r.json()[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1


@pytest.mark.filterwarnings("ignore")
def test_api_signature_is_checked_only_when_enabled() -> None:
    """In-process apps (the factory) with and without the flag; each request stands alone (no cookie jar)."""
    from fastapi.testclient import TestClient

    path = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
    good = signed_headers(path)
    tampered = {**good, "X-Api-Signature": kdsign("wrong", "x")}
    strict_app = create_app(SimConfig(verify_api_signature=True))
    lenient_app = create_app(SimConfig())

    def post(app, headers: dict[str, str]):
        return TestClient(app).post(path, json=QUERY, headers=headers).json()

    assert post(strict_app, good) == [["CNY"]]
    assert post(strict_app, tampered)[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1
    assert post(lenient_app, tampered) == [["CNY"]]
    # Java SDK style millisecond timestamps verify too
    assert post(strict_app, signed_headers(path, ts=str(int(time.time() * 1000)))) == [["CNY"]]
