"""Signed headers and login-answer checks against the spec's test vectors (§2.7, §2.5)."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.errors import AuthenticationError, ConfigError
from fxiaoke_k3cloud.hooks.k3cloud_auth import (
    K3Credentials,
    app_data,
    client_secret_from_app_id,
    kdsign,
    login_request,
    session_id_from_login,
    signed_headers,
)

APP_ID = "123456_AQIGAFMFDg9aBlNRV1dSXlMCCldUAVML"
APP_SECRET = "00112233445566778899aabbccddeeff"
URL = "http://127.0.0.1:8080/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc"


def creds(mode: str = "signed", **over) -> K3Credentials:
    fields = dict(
        base_url="http://127.0.0.1:8080/k3cloud/", acct_id="65a1b2c3d4e5f6", username="apiuser", auth_mode=mode,
        password="pw", app_id=APP_ID, app_secret=APP_SECRET, lcid=2052, org_number="0",
    )
    fields.update(over)
    return K3Credentials(**fields)


def test_client_secret_is_derived_from_app_id():
    assert client_secret_from_app_id(APP_ID) == "MTIzNDU2Nzg5MGFiY2RlZjEyMzQ1Njc4"
    assert client_secret_from_app_id("123456_short") == ""


def test_signed_headers_match_spec_test_vector():
    headers = signed_headers(creds(), URL, timestamp=1700000000)
    assert headers["X-Kd-Appdata"] == "NjVhMWIyYzNkNGU1ZjYsYXBpdXNlciwyMDUyLDA="
    assert headers["X-Kd-Signature"] == "YzQwZDU0ZDJlNzQ3ZWU4NTg3YjZmMzI1ZDlhYjk5MDZiYWEwYjI3YTM5MWVlMWE4NmFiNDVmNWZmNmYxZTBlZA=="
    assert headers["X-Api-Signature"] == "Y2FjOGI3OTU5ZjdiZmMwYzc3MTBlM2ZmNmZmZWRlYjI2ODBiZTYwZDU0ZGIwNWI0YTM2NmRjOTE5ZGJjMTllOA=="
    assert headers["X-Api-ClientID"] == "123456"
    assert headers["X-Kd-Appkey"] == APP_ID
    assert headers["x-api-timestamp"] == headers["x-api-nonce"] == "1700000000"
    assert headers["x-api-signheaders"] == "x-api-timestamp,x-api-nonce"
    assert headers["X-Api-Auth-Version"] == "2.0"


def test_kdsign_is_base64_of_hex_digest():
    assert len(kdsign("k", "m")) == 88 and kdsign("k", "m").endswith("==")


def test_app_data_uses_org_number():
    assert app_data(creds(org_number="100")) == "65a1b2c3d4e5f6,apiuser,2052,100"


def test_login_requests_per_mode():
    service, body = login_request(creds("password"))
    assert service.endswith("AuthService.ValidateUser")
    assert body == {"acctID": "65a1b2c3d4e5f6", "username": "apiuser", "password": "pw", "lcid": 2052}
    service, body = login_request(creds("app_secret"))
    assert service.endswith("AuthService.LoginByAppSecret")
    assert body["appId"] == APP_ID and body["appSecret"] == APP_SECRET
    with pytest.raises(ConfigError):
        login_request(creds("signed"))


def test_credentials_check_required_fields_and_hide_secrets():
    with pytest.raises(ConfigError, match="password"):
        creds("password", password="")
    with pytest.raises(ConfigError, match="app_secret"):
        creds("app_secret", app_secret="")
    with pytest.raises(ConfigError, match="auth_mode"):
        creds("sso")
    assert APP_SECRET not in repr(creds()) and "pw" not in repr(creds()).replace("apiuser", "")


def test_login_success_returns_session_id():
    body = {"LoginResultType": 1, "KDSVCSessionId": "3f2b8c1e-5d4a-4c6b-9a7e-1b2c3d4e5f60", "IsSuccessByAPI": True}
    assert session_id_from_login(body, creds("password")) == "3f2b8c1e-5d4a-4c6b-9a7e-1b2c3d4e5f60"
    assert session_id_from_login({"LoginResultType": 1}, creds("password"), cookie_session_id="abc") == "abc"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"LoginResultType": 0, "Message": "用户名或密码错误", "MessageCode": None}, ["LoginResultType=0", "PWError", "用户名或密码错误", "password", "IP whitelist"]),
        ({"LoginResultType": -1, "Message": "签名错误", "MessageCode": "002005000003016"}, ["LoginResultType=-1", "002005000003016"]),
        ({"LoginResultType": 1, "IsSuccessByAPI": False, "KDSVCSessionId": "x"}, ["LoginResultType=1"]),
        ("<html>login</html>", ["no LoginResultType"]),
    ],
)
def test_login_failure_messages_say_what_to_check(body, expected):
    with pytest.raises(AuthenticationError) as info:
        session_id_from_login(body, creds("password"))
    for text in expected:
        assert text in str(info.value)
