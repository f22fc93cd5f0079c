"""Response classification on literal bodies (spec §2.8, §3.2, §4.4, §6) and the retry predicate."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.errors import (
    AuthenticationError,
    BusinessRuleError,
    OutcomeUnknownError,
    PermanentApiError,
    PermissionDeniedError,
    RateLimitedError,
    RetryableApiError,
    SessionExpiredError,
    TransportError,
)
from fxiaoke_k3cloud.hooks.k3cloud_response import (
    FieldError,
    batch_outcomes,
    is_record_level_failure,
    is_session_lost,
    raise_for_status,
    response_status,
    waf_block_message,
)
from fxiaoke_k3cloud.hooks.k3cloud_transport import should_retry


def failed(code: int, message: str = "boom", field: str | None = None, dindex: int = 0) -> dict:
    return {"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": False,
            "Errors": [{"FieldName": field, "Message": message, "DIndex": dindex}],
            "SuccessEntitys": [], "SuccessMessages": [], "MsgCode": code}}}


SESSION_LOST = failed(1, "会话信息已丢失，请重新登录")


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        (SESSION_LOST, SessionExpiredError, 1),
        (failed(0, "会话已过期"), SessionExpiredError, 1),  # text only, no MsgCode
        (failed(4, "會話信息已丟失，請重新登錄"), SessionExpiredError, 1),  # zh-TW
        (failed(2, "没有客户的新增权限"), PermissionDeniedError, 2),
        (failed(7, "许可错误"), PermanentApiError, 7),
        (failed(15, "禁止管理员登录"), AuthenticationError, 15),
        (failed(9, "元数据中标识为FIssueType的字段不存在"), BusinessRuleError, 9),
        (failed(10, "未找到对应数据"), BusinessRuleError, 10),
        (failed(11, "违反字段唯一性要求：编码唯一。[C1]在当前系统中已经被使用。", "FNumber"), BusinessRuleError, 11),
        (failed(12, "单据已经审核！"), BusinessRuleError, 12),
        (failed(13, "“X”使用业务单据冲突，请稍候再使用。"), RetryableApiError, 13),
        (failed(14, "调用限制"), RateLimitedError, 14),
        (failed(8, "参数错误"), PermanentApiError, 8),
    ],
)
def test_msg_codes_map_to_typed_errors(body, error, code):
    with pytest.raises(error) as info:
        raise_for_status(response_status(body), "Save")
    assert type(info.value) is error
    assert info.value.code == code
    assert info.value.details and isinstance(info.value.details[0], FieldError)


def test_business_error_carries_field_and_message():
    with pytest.raises(BusinessRuleError) as info:
        raise_for_status(response_status(failed(11, "字段“客户”是必填项", "FCustId")), "Save")
    assert info.value.details == [FieldError("FCustId", "字段“客户”是必填项")]
    assert "FCustId: 字段“客户”是必填项" in str(info.value)


def test_query_error_wrapped_twice_is_detected():
    body = [[failed(9, "元数据中标识为FX的字段不存在")]]
    status = response_status(body)
    assert status is not None and status["MsgCode"] == 9
    assert response_status([[failed(1, "会话信息已丢失，请重新登录")]])["MsgCode"] == 1


def test_bare_session_error_list_is_detected():
    status = response_status([{"FieldName": None, "Message": "会话信息已丢失，请重新登录", "DIndex": 0}])
    assert status is not None and is_session_lost(status)


@pytest.mark.parametrize(
    "body",
    [[], [["C0001", 100030, "C"]], [{"FNumber": "C1", "FName": "x"}], [{"FBillNo": "X", "Message": "m", "DIndex": 0}]],
)
def test_rows_are_not_errors(body):
    assert response_status(body) is None


def test_success_status_does_not_raise_and_string_booleans_are_understood():
    raise_for_status({"IsSuccess": "true", "MsgCode": 0}, "Save")
    with pytest.raises(BusinessRuleError):
        raise_for_status({"IsSuccess": "false", "MsgCode": 11, "Errors": []}, "Save")


def test_waf_block_is_recognised():
    body = [{"actionname": "showConfirm", "params": [{"msg": "请求参数存在可疑数据,当前请求已经被拦截规则[caller_in_less_Point_Bracket]阻止!"}]}]
    assert "拦截" in waf_block_message(body)
    assert waf_block_message([["a"]]) is None


def test_batch_outcomes_map_by_dindex():
    status = {"ErrorCode": 500, "IsSuccess": False, "MsgCode": 11,
              "Errors": [{"FieldName": "FName", "Message": "字段“名称”是必填项", "DIndex": 1},
                         {"FieldName": "FCustTypeId", "Message": "不存在", "DIndex": 1},
                         {"FieldName": None, "Message": "重复", "DIndex": 3}],
              "SuccessEntitys": [{"Id": 101, "Number": "C0", "DIndex": 0}, {"Id": 102, "Number": "C2", "DIndex": 2}],
              "SuccessMessages": []}
    assert is_record_level_failure(status)
    rows = batch_outcomes(status, 4)
    assert [(r.index, r.ok, r.id, r.number) for r in rows] == [(0, True, 101, "C0"), (1, False, None, None), (2, True, 102, "C2"), (3, False, None, None)]
    assert rows[1].errors == [FieldError("FName", "字段“名称”是必填项"), FieldError("FCustTypeId", "不存在")]
    assert rows[1].msg_code == 11 and rows[3].errors == [FieldError(None, "重复")]


def test_batch_error_without_dindex_reaches_every_failed_row():
    status = {"IsSuccess": False, "MsgCode": 11, "Errors": [{"FieldName": None, "Message": "整单失败"}], "SuccessEntitys": []}
    rows = batch_outcomes(status, 2)
    assert all(not r.ok and r.errors == [FieldError(None, "整单失败")] for r in rows)


def test_whole_call_failures_are_not_record_level():
    for code in (1, 2, 14, 15):
        assert not is_record_level_failure(response_status(failed(code))), code


def test_a_lock_conflict_in_a_batch_is_left_to_batch_save_which_resends_the_packages():
    # Changed with issue 14: BatchSave re-sends only the locked packages instead of failing the whole call.
    assert is_record_level_failure(response_status(failed(13)))
    rows = batch_outcomes(response_status(failed(13)), 3)
    assert [(r.ok, r.msg_code) for r in rows] == [(False, 13)] * 3


@pytest.mark.parametrize(
    ("exc", "write", "expected"),
    [
        (RetryableApiError("lock", system="k3cloud", code=13), True, True),
        (RateLimitedError("limit", system="k3cloud", code=14), True, True),
        (RetryableApiError("server exception", system="k3cloud", code="response_error"), False, True),
        (RetryableApiError("server exception", system="k3cloud", code="response_error"), True, False),
        (TransportError("502", system="k3cloud", status=502), False, True),
        (TransportError("refused", system="k3cloud"), True, True),  # not sent: OutcomeUnknownError otherwise
        (TransportError("404", system="k3cloud", status=404), False, False),
        (TransportError("html", system="k3cloud", status=200), False, False),
        (OutcomeUnknownError("timeout", system="k3cloud"), True, False),
        (SessionExpiredError("lost twice", system="k3cloud", code=1), False, False),
        (BusinessRuleError("dup", system="k3cloud", code=11), False, False),
        (AuthenticationError("bad", system="k3cloud"), False, False),
    ],
)
def test_retry_predicate_only_retries_what_is_safe(exc, write, expected):
    assert should_retry(exc, write=write) is expected


def test_partial_lock_conflict_in_a_batch_is_per_row_not_a_whole_call_retry():
    status = {"IsSuccess": False, "MsgCode": 13,
              "Errors": [{"FieldName": None, "Message": "网控冲突，请稍候再使用。", "DIndex": 1}],
              "SuccessEntitys": [{"Id": 5, "Number": "C5", "DIndex": 0}]}
    assert is_record_level_failure(status)
    rows = batch_outcomes(status, 2)
    assert rows[0].ok and not rows[1].ok and rows[1].msg_code == 13


def _response(status: int, body: str) -> "requests.Response":
    import requests

    response = requests.Response()
    response.status_code = status
    response._content = body.encode("utf-8")
    response.encoding = "utf-8"
    response.url = "https://erp.example.com/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc"
    return response


def _client():
    from fxiaoke_k3cloud.hooks._http import HttpSettings
    from fxiaoke_k3cloud.hooks.k3cloud_auth import K3Credentials
    from fxiaoke_k3cloud.hooks.k3cloud_transport import K3CloudClient

    creds = K3Credentials(base_url="https://erp.example.com/k3cloud/", acct_id="a", username="u", auth_mode="password", password="p")
    return K3CloudClient(creds, HttpSettings())


@pytest.mark.parametrize(
    ("status", "body", "write", "error", "text"),
    [
        (200, "<html><body>Login</body></html>", False, TransportError, "erp.example.com"),
        (200, "<html><body>Login</body></html>", True, OutcomeUnknownError, "not JSON"),
        (404, "Not Found", False, TransportError, "/k3cloud/"),
        (404, "Not Found", True, TransportError, "HTTP 404"),
        (502, "Bad Gateway", False, TransportError, "HTTP 502"),
        (504, "Gateway Timeout", True, OutcomeUnknownError, "Read the record back"),
        (429, "", True, RateLimitedError, "429"),
        (200, 'response_error:{"Message":"对象引用未设置到对象的实例。"}', False, RetryableApiError, "对象引用"),
        (200, '[{"actionname":"showConfirm","params":[{"msg":"请求已经被拦截规则阻止!"}]}]', True, PermanentApiError, "拦截"),
    ],
)
def test_wire_shapes_become_typed_errors(status, body, write, error, text):
    with pytest.raises(error) as info:
        _client()._decode(_response(status, body), "Save", write=write)
    assert type(info.value) is error
    assert text in str(info.value)


def test_json_bodies_decode_with_a_bom():
    assert _client()._decode(_response(200, '\ufeff[["CNY"]]'), "ExecuteBillQuery", write=False) == [["CNY"]]
