"""Envelope, traceIds and the corpAccessToken lifecycle (spec §1, §2, §8.3–8.5)."""

from __future__ import annotations

import re

import pytest

from .client import ADMIN, APP_ID, APP_SECRET, CORP_ID, CREDENTIALS, PERMANENT_CODE, TOKEN_PATH, Api

TRACE = re.compile(r"^E-O\.simcorp\.1000-[0-9a-f]{16}$")
TOKEN_INVALID_MSG = "the cropId,cropAccessToken or authorization is error"


def test_token_is_top_level_32_upper_hex_with_corp_id(api: Api) -> None:
    body = api.post(TOKEN_PATH, CREDENTIALS, thirdTraceId="4f0c2b7e-unknown-param")
    assert body["errorCode"] == 0
    assert re.fullmatch(r"[0-9A-F]{32}", body["corpAccessToken"])
    assert body["corpId"] == CORP_ID and body["expiresIn"] == 7200
    assert "data" not in body


def test_every_envelope_has_the_four_fields_and_unique_trace_ids(api: Api) -> None:
    traces = set()
    for _ in range(3):
        body = api.authed("/cgi/crm/v2/object/list", {}, thirdTraceId="x")
        assert (body["errorCode"], body["errorMessage"], body["errorDescription"]) == (0, "OK", "success")
        assert TRACE.match(body["traceId"]), body["traceId"]
        assert isinstance(body["data"]["objects"], list)
        traces.add(body["traceId"])
    assert len(traces) == 3


def test_bad_or_missing_secret_answers_10006_exactly(api: Api) -> None:
    for creds in ({"appId": APP_ID, "permanentCode": PERMANENT_CODE},
                  {**CREDENTIALS, "appSecret": "wrong"}):
        r = api.raw(TOKEN_PATH, creds)
        assert r.status_code == 200
        body = r.json()
        assert body["errorCode"] == 10006
        assert body["errorMessage"] == "the parameter appSecret is missing or illegal"
        assert body["errorDescription"] == "缺少参数或参数不合法"
        assert body["traceId"].startswith("open-api-gateway-web/")


@pytest.mark.parametrize(("creds", "code"), [
    ({"appId": "FSAID_nope", "appSecret": APP_SECRET, "permanentCode": PERMANENT_CODE}, 20006),
    ({"appId": APP_ID, "appSecret": APP_SECRET, "permanentCode": "WRONG"}, 20015),
])
def test_wrong_app_id_or_permanent_code_is_refused(api: Api, creds: dict, code: int) -> None:
    assert api.post(TOKEN_PATH, creds)["errorCode"] == code


def test_missing_token_is_20017_and_forged_token_or_wrong_corp_is_20016(api: Api) -> None:
    path = "/cgi/crm/v2/object/list"
    missing = api.post(path, {"corpId": CORP_ID, "currentOpenUserId": ADMIN})
    assert missing["errorCode"] == 20017 and missing["errorMessage"] == "corpAccessToken为必填项，不能为空"
    assert missing["traceId"].startswith("E-O.null.-1000-")
    forged = api.post(path, {"corpAccessToken": "0" * 32, "corpId": CORP_ID, "currentOpenUserId": ADMIN})
    assert forged["errorCode"] == 20016 and forged["errorMessage"] == TOKEN_INVALID_MSG
    wrong_corp = api.post(path, {"corpAccessToken": api.token(), "corpId": "FSCID_OTHER", "currentOpenUserId": ADMIN})
    assert wrong_corp["errorCode"] == 20016


def test_current_open_user_id_is_checked_on_crm_but_not_on_directory_paths(api: Api) -> None:
    unknown = api.authed("/cgi/crm/v2/object/list", {}, user="FSUID_UNKNOWN")
    assert unknown["errorCode"] == 20012
    missing = api.authed("/cgi/crm/v2/object/list", {}, user=None)
    assert missing["errorCode"] == 20012
    assert api.authed("/cgi/department/list", {}, user=None)["errorCode"] == 0
    assert api.authed("/cgi/user/getByMobile", {"mobile": "13800000000"}, user=None)["errorCode"] == 0


def test_same_token_for_6600s_then_a_new_one_while_the_old_lives_to_7200s(api: Api) -> None:
    first = api.post(TOKEN_PATH, CREDENTIALS)
    api.advance(1000)
    again = api.post(TOKEN_PATH, CREDENTIALS)
    assert again["corpAccessToken"] == first["corpAccessToken"]
    assert 6195 <= again["expiresIn"] <= 6200
    api.advance(5601)  # 6601 s after issue
    renewed = api.post(TOKEN_PATH, CREDENTIALS)
    assert renewed["corpAccessToken"] != first["corpAccessToken"] and renewed["expiresIn"] == 7200

    def call(token: str) -> int:
        body = {"corpAccessToken": token, "corpId": CORP_ID, "currentOpenUserId": ADMIN}
        return api.post("/cgi/crm/v2/object/list", body)["errorCode"]

    assert call(first["corpAccessToken"]) == 0  # still inside its own 7200 s
    api.advance(600)  # 7201 s after the first issue
    assert call(first["corpAccessToken"]) == 20016
    assert call(renewed["corpAccessToken"]) == 0


def test_admin_expire_invalidates_every_token(api: Api) -> None:
    token = api.token()
    api.admin("POST", "expire")
    body = api.post("/cgi/department/list", {"corpAccessToken": token, "corpId": CORP_ID})
    assert body["errorCode"] == 20016
    assert api.token(fresh=True) != token


def test_non_json_and_empty_bodies_are_envelope_errors(api: Api) -> None:
    r = api.http.post(api.base_url + "/cgi/crm/v2/data/query", data=b"not json",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["errorCode"] == 32000
    r = api.http.post(api.base_url + "/cgi/crm/v2/data/query", data=b"")
    assert r.status_code == 200 and r.json()["errorCode"] == 12004
