"""errorCode → typed exception, on literal answer bodies taken from the spec (§2, §3.4, §6.2)."""

from __future__ import annotations

import pytest
import requests

from fxiaoke_k3cloud.errors import (
    ApiError,
    AuthenticationError,
    BusinessRuleError,
    OutcomeUnknownError,
    PermanentApiError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitedError,
    RetryableApiError,
    SessionExpiredError,
    TransportError,
)
from fxiaoke_k3cloud.hooks.fxiaoke_errors import error_from_body, is_retryable, parse_response, refused_without_effect

PATH = "/cgi/crm/v2/data/query"
HOST = "open.fxiaoke.com"


def body(code, message="m", description="d", trace="E-O.x.1000-abc"):
    return {"errorCode": code, "errorMessage": message, "errorDescription": description, "traceId": trace}


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (30004, RateLimitedError, True),
        (14001, RateLimitedError, True),
        (-1, RetryableApiError, True),
        (-2, RetryableApiError, True),
        (50009, RetryableApiError, True),
        (20016, SessionExpiredError, False),  # already past the one bounded refresh: no loop
        (30002, QuotaExhaustedError, False),
        (30003, QuotaExhaustedError, False),
        (20020, PermissionDeniedError, False),
        (20021, PermissionDeniedError, False),
        (20022, PermissionDeniedError, False),
        (15003, PermissionDeniedError, False),
        (10006, AuthenticationError, False),
        (20006, AuthenticationError, False),
        (20015, AuthenticationError, False),
        (11002, AuthenticationError, False),
        (11013, AuthenticationError, False),
        (11016, PermanentApiError, False),
        (20017, PermanentApiError, False),
        (32000, PermanentApiError, False),
    ],
)
def test_error_codes_map_to_typed_exceptions(code, cls, retryable):
    exc = error_from_body(body(code), path=PATH, host=HOST)
    assert type(exc) is cls
    assert is_retryable(exc) is retryable
    assert exc.code == code and exc.endpoint == PATH and exc.trace_id == "E-O.x.1000-abc"


def test_no_quota_message_says_buy_a_resource_pack():
    exc = error_from_body(
        body(30003, "FSCID_X has no openapi quote currently!", "没有openapi配额"), path=PATH, host=HOST
    )
    text = str(exc)
    assert "no API quota purchased" in text and "buy an OpenAPI resource pack" in text
    assert "FSCID_X has no openapi quote currently!" in text and "traceId=E-O.x.1000-abc" in text


def test_daily_quota_message_names_the_reset_time():
    assert "resets 00:00 Asia/Shanghai" in str(error_from_body(body(30002), path=PATH, host=HOST))


def test_no_permission_for_tenant_message_tells_an_admin_what_to_do():
    text = str(error_from_body(body(20020, "应用没有获取该企业的数据的权限"), path=PATH, host=HOST))
    assert "app has no permission for this tenant" in text and "admin" in text


@pytest.mark.parametrize(
    ("code", "names"),
    [(10006, "app secret"), (20015, "permanent_code"), (20006, "app id"), (11001, "app id")],
)
def test_bad_credentials_name_the_credential_to_check(code, names):
    assert names in str(error_from_body(body(code), path="/cgi/corpAccessToken/get/V2", host=HOST))


def test_the_observed_bad_secret_body_is_an_authentication_error():
    observed = {
        "errorCode": 10006,
        "errorMessage": "the parameter appSecret is missing or illegal",
        "errorDescription": "缺少参数或参数不合法",
        "traceId": "open-api-gateway-web/abc",
    }
    exc = error_from_body(observed, path="/cgi/corpAccessToken/get/V2", host=HOST)
    assert isinstance(exc, AuthenticationError) and "app secret (connection password)" in str(exc)


def test_offset_cap_10013_is_reported_as_a_paging_bug_not_a_token_problem():
    exc = error_from_body(body(10013, "offset out of range 10000", "offset 不能超过10000"), path=PATH, host=HOST)
    assert isinstance(exc, PermanentApiError) and "paging bug" in str(exc) and "_id cursor" in str(exc)
    missing_token = error_from_body(body(10013, "corpAccessToken is missing", "缺少参数"), path=PATH, host=HOST)
    assert "paging" not in str(missing_token)


def test_unknown_code_keeps_code_message_description_trace_and_path():
    exc = error_from_body(body(123456, "boom", "详细说明"), path=PATH, host=HOST)
    assert type(exc) is ApiError
    assert exc.details == {"errorMessage": "boom", "errorDescription": "详细说明", "path": PATH, "host": HOST}
    assert all(part in str(exc) for part in ("123456", "boom", "详细说明", "E-O.x.1000-abc", PATH))


def test_unknown_code_on_a_write_is_a_business_rule_rejection():
    exc = error_from_body(body(201112011, "数据的字段[客户名称]关联关系不存在"), path="/cgi/crm/v2/data/create", host=HOST, write=True)
    assert isinstance(exc, BusinessRuleError) and not is_retryable(exc)


def response(status, text, content_type="application/json", headers=None):
    resp = requests.Response()
    resp.status_code = status
    resp._content = text.encode()
    resp.headers["Content-Type"] = content_type
    resp.headers.update(headers or {})
    return resp


def test_redirect_to_the_www_host_is_a_transport_error_naming_the_host():
    resp = response(302, "<html>moved</html>", "text/html", {"Location": "https://www.fxiaoke.com/XV/Home"})
    with pytest.raises(TransportError) as err:
        parse_response(resp, host="www.fxiaoke.com", path=PATH)
    assert "www.fxiaoke.com" in str(err.value) and "not the Fxiaoke OpenAPI gateway" in str(err.value)
    assert not is_retryable(err.value)


def test_html_200_is_a_non_retryable_transport_error():
    with pytest.raises(TransportError) as err:
        parse_response(response(200, "<html>login</html>", "text/html"), host="example.com", path=PATH)
    assert "example.com" in str(err.value) and "HTML" in str(err.value)
    assert not is_retryable(err.value)


def test_5xx_without_envelope_is_retryable_on_reads():
    with pytest.raises(TransportError) as err:
        parse_response(response(502, "Bad Gateway", "text/plain"), host=HOST, path=PATH)
    assert err.value.status == 502 and is_retryable(err.value)


def test_json_envelope_is_returned_even_on_http_500():
    assert parse_response(response(500, '{"errorCode": -1, "errorMessage": "busy"}'), host=HOST, path=PATH)["errorCode"] == -1


def test_only_sure_no_effect_failures_may_replay_a_create():
    assert refused_without_effect(error_from_body(body(30004), path=PATH, host=HOST))
    assert refused_without_effect(TransportError("connect failed", system="fxiaoke"))
    assert not refused_without_effect(OutcomeUnknownError("lost answer", system="fxiaoke"))
    assert not refused_without_effect(error_from_body(body(50009), path=PATH, host=HOST))
    assert not is_retryable(OutcomeUnknownError("lost answer", system="fxiaoke"))
