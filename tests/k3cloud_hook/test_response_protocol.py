"""Classification of the real answer shapes of issue 14 on literal bodies (taken from public client code)."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.errors import BusinessRuleError, RetryableApiError, SessionExpiredError
from fxiaoke_k3cloud.hooks.k3cloud_response import (
    api_error_for,
    batch_outcomes,
    is_lock_conflict,
    is_session_lost,
    response_status,
)
from fxiaoke_k3cloud.hooks.k3cloud_transport import should_retry

# A real Save answer (public Java test, 2021): a 网控 conflict with MsgCode 0.
LOCK_MSGCODE_0 = {"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": False, "Errors": [
    {"FieldName": None, "Message": "“demo”使用业务单据：“销售订单”业务操作-“[销售订单-2021-28-修改]”冲突，请稍候再使用。",
     "DIndex": 0}], "SuccessEntitys": [], "SuccessMessages": [], "MsgCode": 0}}}
# Seen without MsgCode at all (a public Python client's contract test).
LOCK_NO_MSGCODE = {"Result": {"ResponseStatus": {"IsSuccess": False, "Errors": [
    {"Message": "“I0001”使用业务单据：“辅助资料”业务操作-“[辅助资料-TEST-修改]”冲突，请稍候再使用。"}]}}}
# A bare list as a PDA client quotes it.
LOCK_BARE_LIST = [{"Message": "“Administrator”使用业务单据：“采购入库单”业务操作-“[采购入库单-CGRK00011-修改]”冲突，请稍候再使用。",
                   "FieldName": None, "DIndex": 0}]
SESSION_TEXT_ONLY = {"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": False, "Errors": [
    {"FieldName": None, "Message": "会话信息已丢失，请重新登录", "DIndex": 0}], "SuccessEntitys": [], "SuccessMessages": []}}}
SESSION_BARE_LIST = [{"FieldName": None, "Message": "会话信息已丢失，请重新登录", "DIndex": 0}]


@pytest.mark.parametrize("body", [LOCK_MSGCODE_0, LOCK_NO_MSGCODE, LOCK_BARE_LIST], ids=["msgcode0", "none", "list"])
def test_lock_conflicts_are_recognised_by_text_and_retried_even_for_writes(body):
    status = response_status(body)
    assert is_lock_conflict(status)
    error = api_error_for(status, "Save")
    assert isinstance(error, RetryableApiError) and not isinstance(error, BusinessRuleError) and error.code == 13
    assert should_retry(error, write=True)


def test_a_data_error_mentioning_nothing_of_a_lock_stays_a_data_error():
    status = {"IsSuccess": False, "MsgCode": 0, "Errors": [{"FieldName": "FName", "Message": "字段“名称”是必填项"}]}
    assert not is_lock_conflict(status)
    assert isinstance(api_error_for(status, "Save"), BusinessRuleError)


@pytest.mark.parametrize("body", [SESSION_TEXT_ONLY, SESSION_BARE_LIST, [[SESSION_TEXT_ONLY]]],
                         ids=["text", "list", "query"])
def test_session_loss_without_msgcode_is_session_loss(body):
    status = response_status(body)
    assert is_session_lost(status)
    assert isinstance(api_error_for(status, "View"), SessionExpiredError)


def test_batch_rows_refused_with_the_conflict_text_are_marked_as_conflicts():
    status = {"IsSuccess": False, "MsgCode": 0,
              "Errors": [{"FieldName": None, "Message": LOCK_BARE_LIST[0]["Message"], "DIndex": 1},
                         {"FieldName": "FName", "Message": "字段“名称”是必填项", "DIndex": 2}],
              "SuccessEntitys": [{"Id": 7, "Number": "C0", "DIndex": 0}]}
    rows = batch_outcomes(status, 3)
    assert [(r.ok, r.msg_code) for r in rows] == [(True, 0), (False, 13), (False, 0)]
