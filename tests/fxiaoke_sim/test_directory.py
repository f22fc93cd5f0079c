"""Users, departments and message/send (spec §2.3, §5): results at the top level, no acting user needed."""

from __future__ import annotations

from .client import ADMIN, MOBILE, REP, Api


def test_get_by_mobile_resolves_the_admin_and_returns_empty_for_unknown(api: Api) -> None:
    body = api.authed("/cgi/user/getByMobile", {"mobile": MOBILE}, user=None)
    assert body["errorCode"] == 0 and body["empList"][0]["openUserId"] == ADMIN
    assert api.authed("/cgi/user/getByMobile", {"mobile": "10000000000"}, user=None)["empList"] == []


def test_user_get_is_top_level(api: Api) -> None:
    body = api.authed("/cgi/user/get", {"openUserId": REP}, user=None)
    assert body["name"] == "张伟" and body["departmentIds"] == [1001] and "data" not in body
    assert api.authed("/cgi/user/get", {"openUserId": "FSUID_NONE"}, user=None)["errorCode"] == 30027


def test_department_and_user_lists(api: Api) -> None:
    depts = api.authed("/cgi/department/list", {}, user=None)["departments"]
    assert {d["id"] for d in depts} >= {999999, 1001, 1002}
    everyone = api.authed("/cgi/user/list", {"departmentId": 999999, "fetchChild": True}, user=None)["userList"]
    assert len(everyone) == 4
    east = api.authed("/cgi/user/simpleList", {"departmentId": 1001}, user=None)["userList"]
    assert {u["name"] for u in east} == {"张伟", "李娜"} and set(east[0]) == {"openUserId", "name"}
    assert api.authed("/cgi/user/list", {"departmentId": 4242}, user=None)["errorCode"] == 30007


def test_batch_by_upd_time_pages_employees(api: Api) -> None:
    body = api.authed("/cgi/user/get/batchByUpdTime", {"pageSize": 3, "pageNumber": 2}, user=None)
    assert (body["totalCount"], body["pageCount"], body["pageNumber"]) == (4, 2, 2)
    assert len(body["employees"]) == 1 and body["empList"] == body["employees"]


def test_message_send_validates_and_stores(api: Api) -> None:
    text = {"toUser": [ADMIN, REP], "msgType": "text", "text": {"content": "3 orders failed to sync"}}
    body = api.authed("/cgi/message/send", text, user=None)
    assert body["errorCode"] == 0 and set(body) == {"errorCode", "errorMessage", "errorDescription", "traceId"}
    composite = {"toUser": [REP], "msgType": "composite", "composite": {
        "head": {"title": "Delivery"}, "first": {"content": "SO000001 shipped"},
        "form": [{"label": "Qty", "value": "3"}], "link": {"title": "Open", "url": "fs://CRM/udobj?x"}}}
    assert api.authed("/cgi/message/send", composite, user=None)["errorCode"] == 0
    cases = [
        ({**text, "toUser": []}, 10015),
        ({**text, "toUser": ["FSUID_UNKNOWN"]}, 11016),
        ({**text, "toUser": [ADMIN] * 501}, 11016),
        ({**text, "msgType": "image"}, 11017),
        ({**text, "text": {"content": " "}}, 12005),
        ({"toUser": [REP], "msgType": "composite", "composite": {"head": {"title": "x"}}}, 32000),
    ]
    for body_, code in cases:
        assert api.authed("/cgi/message/send", body_, user=None)["errorCode"] == code, body_
    stored = api.admin("GET", "messages")
    assert [m["msgType"] for m in stored] == ["text", "composite"]
    assert stored[0]["text"]["content"] == "3 orders failed to sync" and stored[0]["toUser"] == [ADMIN, REP]
