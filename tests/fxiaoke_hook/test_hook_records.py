"""Typed CRM methods against the simulator: create with details, get, update, void, describe, custom objects, messages."""

from __future__ import annotations

import pytest
from simproc import FX
from fxiaoke_hook.helpers import calls, messages

from fxiaoke_k3cloud.errors import BusinessRuleError, ConfigError
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

CUSTOM = "object_demo__c"


def hook(**kwargs) -> FxiaokeHook:
    return FxiaokeHook(retry_wait_s=0, **kwargs)


def product_ids(h: FxiaokeHook, *codes: str) -> dict[str, str]:
    rows = [r for page in h.query_records("ProductObj", filters=[("product_code", "IN", list(codes))]) for r in page]
    return {r["product_code"]: r["_id"] for r in rows}


def test_create_order_with_details_then_get_and_read_lines(fxiaoke):
    h = hook()
    account_id = h.create_record("AccountObj", {"name": "上海华创机械有限公司", "account_no": "C-0001"})
    products = product_ids(h, "MAT-0001", "MAT-0004")
    order_id = h.create_record(
        "SalesOrderObj",
        {"account_id": account_id, "order_time": 1_700_000_000_000, "remark": "from test"},
        details={
            "SalesOrderProductObj": [
                {"product_id": products["MAT-0001"], "quantity": "100", "sales_price": "0.85"},
                {"product_id": products["MAT-0004"], "quantity": "2", "sales_price": "12.50"},
            ]
        },
    )
    order = h.get_record("SalesOrderObj", order_id)
    assert order["account_id"] == account_id and order["remark"] == "from test"
    lines = [r for page in h.query_records("SalesOrderProductObj", filters=[("order_id", "EQ", order_id)]) for r in page]
    assert sorted((r["product_id"], r["quantity"]) for r in lines) == sorted(
        [(products["MAT-0001"], "100"), (products["MAT-0004"], "2")]
    )
    assert calls(fxiaoke, "/cgi/crm/v2/data/create") == 2


def test_refused_create_is_a_business_rule_error_not_retried(fxiaoke):
    h = hook()
    with pytest.raises(BusinessRuleError) as err:
        h.create_record("SalesOrderObj", {"order_time": 1_700_000_000_000})  # account_id is required
    assert err.value.trace_id and err.value.endpoint == "/cgi/crm/v2/data/create"
    assert calls(fxiaoke, "/cgi/crm/v2/data/create") == 1


def test_update_and_void(fxiaoke):
    h = hook()
    record_id = h.create_record("AccountObj", {"name": "苏州恒通自动化"})
    h.update_record("AccountObj", record_id, {"tel": "0512-12345678"})
    assert h.get_record("AccountObj", record_id)["tel"] == "0512-12345678"
    h.invalid_record("AccountObj", record_id)
    assert h.get_record("AccountObj", record_id)["life_status"] == "invalid"
    with pytest.raises(BusinessRuleError):  # a voided record cannot be edited
        h.update_record("AccountObj", record_id, {"tel": "1"})


def test_describe_returns_the_field_map(fxiaoke):
    describe = hook().describe("AccountObj")
    assert describe["api_name"] == "AccountObj"
    assert {"name", "owner", "last_modified_time"} <= set(describe["fields"])


def test_custom_objects_use_the_custom_path(fxiaoke):
    h = hook()
    record_id = h.create_record(CUSTOM, {"name": "demo-1", "field_text1__c": "hello"})
    assert h.get_record(CUSTOM, record_id)["field_text1__c"] == "hello"
    rows = [r for page in h.query_records(CUSTOM, filters=[("field_text1__c", "EQ", "hello")]) for r in page]
    assert [r["_id"] for r in rows] == [record_id]
    stats = fxiaoke.stats()["calls"]
    assert {"/cgi/crm/custom/v2/data/create", "/cgi/crm/custom/v2/data/get", "/cgi/crm/custom/v2/data/query"} <= set(stats)
    assert not any(p.startswith("/cgi/crm/v2/data/") for p in stats)
    assert h.describe(CUSTOM)["api_name"] == CUSTOM


def test_send_text_message_reaches_the_recipients_once(fxiaoke):
    rep = "FSUID_" + "A002".rjust(32, "0")
    h = hook()
    assert h.send_text_message([FX["open_user_id"], rep, rep], "3 orders failed to sync; see run 42") == 1
    sent = messages(fxiaoke)
    assert len(sent) == 1
    assert sent[0]["toUser"] == [FX["open_user_id"], rep] and sent[0]["text"]["content"].startswith("3 orders failed")
    assert calls(fxiaoke, "/cgi/message/send") == 1


def test_send_text_message_splits_recipients_into_batches(fxiaoke):
    reps = ["FSUID_" + s.rjust(32, "0") for s in ("A002", "A003", "A004")]
    assert hook().send_text_message([FX["open_user_id"], *reps], "nightly sync done", batch_size=3) == 2
    assert [m["toUser"] for m in messages(fxiaoke)] == [[FX["open_user_id"], *reps[:2]], [reps[2]]]
    assert calls(fxiaoke, "/cgi/message/send") == 2


def test_more_than_500_recipients_per_call_is_refused():
    with pytest.raises(ConfigError, match="toUser cap"):
        hook().send_text_message(["FSUID_1"], "x", batch_size=501)


@pytest.mark.parametrize(("users", "content"), [([], "x"), (["FSUID_1"], "  ")])
def test_send_text_message_refuses_empty_input_without_a_call(fxiaoke, users, content):
    with pytest.raises(ConfigError):
        hook().send_text_message(users, content)
    assert fxiaoke.stats()["total"] == 0
