"""Tenant-dependent behaviours behind switches (issue 14, points 11–14): id shape, voided rows in default queries,
mandatory approval flows and tenant-required fields."""

from __future__ import annotations

import re

import pytest
import requests

from .client import Api, flt


def _config(api: Api, **switches) -> dict:
    return api.admin("POST", "config", switches)


def _create(api: Api, obj: str, **fields) -> dict:
    return api.crm("create", {"object_data": {"dataObjectApiName": obj, **fields}})


def _account(api: Api, name: str) -> str:
    body = _create(api, "AccountObj", name=name)
    assert body["errorCode"] == 0, body
    return body["dataId"]


@pytest.mark.parametrize("fmt, pattern", [("hex32", r"[0-9a-f]{32}"), ("hex24", r"[0-9a-f]{24}")])
def test_id_format_switch_gives_both_real_id_shapes_and_the_cursor_pages_over_them(api, fmt, pattern):
    assert _config(api, id_format=fmt)["id_format"] == fmt
    ids = [_account(api, f"ID-{i:03d}") for i in range(7)]
    assert all(re.fullmatch(pattern, i) for i in ids) and len(set(ids)) == 7
    seen, last = [], None
    while True:  # the documented deep-paging pattern: _id GT last, ordered by _id
        cursor = [flt("_id", "GT", last)] if last else []
        page = api.rows("AccountObj", [flt("name", "STARTWITH", "ID-"), *cursor],
                        orders=[{"fieldName": "_id", "isAsc": True}], limit=3)
        seen += [r["_id"] for r in page]
        if len(page) < 3:
            break
        last = page[-1]["_id"]
    assert seen == sorted(ids)


def test_hex32_ids_do_not_grow_with_creation_time(api):
    ids = [_account(api, f"ORD-{i}") for i in range(6)]
    assert ids != sorted(ids)  # nothing may rely on _id order meaning creation order


@pytest.mark.parametrize("includes", [True, False], ids=["default-includes-voided", "default-excludes-voided"])
def test_voided_rows_in_a_default_query_follow_the_switch_and_a_life_status_filter_always_finds_them(api, includes):
    _config(api, query_includes_invalid=includes)
    kept, voided = _account(api, "V-kept"), _account(api, "V-voided")
    api.ok("invalid", {"dataObjectApiName": "AccountObj", "object_data_id": voided})
    default = {r["_id"] for r in api.rows("AccountObj", [flt("name", "STARTWITH", "V-")])}
    assert default == ({kept, voided} if includes else {kept})
    explicit = api.rows("AccountObj", [flt("name", "STARTWITH", "V-"), flt("life_status", "EQ", "invalid")])
    assert [r["_id"] for r in explicit] == [voided]
    total = api.query("AccountObj", [flt("name", "STARTWITH", "V-")])["data"]["total"]
    assert total == (2 if includes else 1)
    # get reads one record by id: voided or not, it is there
    assert api.ok("get", {"dataObjectApiName": "AccountObj", "objectDataId": voided})["data"]["life_status"] == "invalid"


def test_a_record_of_an_approval_object_waits_locked_until_approved(api):
    _config(api, approval_objects={"SalesOrderObj": "under_review"})
    account = _account(api, "审批客户")  # AccountObj has no approval flow here: normal at once
    [product] = api.rows("ProductObj", [flt("product_code", "EQ", "MAT-0001")])
    body = api.crm("create", {"object_data": {"dataObjectApiName": "SalesOrderObj", "account_id": account},
                              "details": {"SalesOrderProductObj": [{"product_id": product["_id"], "quantity": "1",
                                                                    "sales_price": "5"}]}},
                   triggerApprovalFlow=False)  # mandatory: the flag does not skip it
    order = body["dataId"]
    got = api.ok("get", {"dataObjectApiName": "SalesOrderObj", "objectDataId": order})["data"]
    assert (got["life_status"], got["life_status__r"], got["lock_status"]) == ("under_review", "审核中", "1")
    [line] = api.rows("SalesOrderProductObj", [flt("order_id", "EQ", order)])
    assert line["life_status"] == "under_review"
    assert api.ok("get", {"dataObjectApiName": "AccountObj", "objectDataId": account})["data"]["life_status"] == "normal"

    api.advance(5)
    done = api.admin("POST", "approve", {"object": "SalesOrderObj", "ids": [order]})
    assert done == {"ok": True, "life_status": "normal", "ids": [order]}
    after = api.ok("get", {"dataObjectApiName": "SalesOrderObj", "objectDataId": order})["data"]
    assert (after["life_status"], after["lock_status"]) == ("normal", "0")
    assert after["last_modified_time"] >= got["last_modified_time"] + 5000 and after["version"] == "2"
    [line] = api.rows("SalesOrderProductObj", [flt("order_id", "EQ", order)])
    assert line["life_status"] == "normal"


def test_a_rejected_approval_leaves_the_record_ineffective_and_approval_touches_off_keeps_its_modified_time(api):
    _config(api, approval_objects={"AccountObj": "under_review"}, approval_touches=False)
    account = _account(api, "驳回客户")
    before = api.ok("get", {"dataObjectApiName": "AccountObj", "objectDataId": account})["data"]
    api.advance(5)
    assert api.admin("POST", "approve", {"object": "AccountObj", "ids": [account], "result": "reject"})["life_status"] \
        == "ineffective"
    after = api.ok("get", {"dataObjectApiName": "AccountObj", "objectDataId": account})["data"]
    assert after["life_status"] == "ineffective"
    assert (after["last_modified_time"], after["version"]) == (before["last_modified_time"], before["version"])
    for ids in (["no-such-id"], [account]):  # unknown, or no longer in approval (ineffective can be re-approved)
        if ids == [account]:
            api.admin("POST", "approve", {"object": "AccountObj", "ids": ids})
        with pytest.raises(requests.HTTPError) as info:
            api.admin("POST", "approve", {"object": "AccountObj", "ids": ids})
        assert info.value.response.status_code == 409


def test_tenant_required_fields_refuse_a_create_naming_the_field_and_nothing_is_stored(api):
    _config(api, required_fields={"DeliveryNoteObj": ["delivery_warehouse_id"],
                                  "DeliveryNoteProductObj": ["sales_order_product_id"]})
    account = _account(api, "发货客户")
    order = _create(api, "SalesOrderObj", account_id=account)["dataId"]
    [product] = api.rows("ProductObj", [flt("product_code", "EQ", "MAT-0002")])
    [warehouse] = api.rows("WarehouseObj", [flt("number", "EQ", "CK001")])
    line = {"product_id": product["_id"], "delivery_num": "1"}

    no_warehouse = api.crm("create", {"object_data": {"dataObjectApiName": "DeliveryNoteObj", "sales_order_id": order},
                                      "details": {"DeliveryNoteProductObj": [line]}})
    assert no_warehouse["errorCode"] == 33001
    assert no_warehouse["errorMessage"] == "发货单的必填字段[发货仓库]不能为空"
    assert "delivery_warehouse_id" in no_warehouse["errorDescription"]
    no_link = api.crm("create", {"object_data": {"dataObjectApiName": "DeliveryNoteObj", "sales_order_id": order,
                                                 "delivery_warehouse_id": warehouse["_id"]},
                                 "details": {"DeliveryNoteProductObj": [line]}})
    assert no_link["errorCode"] == 33001 and "订单产品" in no_link["errorMessage"]
    assert api.admin("GET", "records/DeliveryNoteObj") == []

    so_line = api.crm("create", {"object_data": {"dataObjectApiName": "SalesOrderProductObj", "order_id": order,
                                                 "product_id": product["_id"], "quantity": "1"}})["dataId"]
    ok = api.ok("create", {"object_data": {"dataObjectApiName": "DeliveryNoteObj", "sales_order_id": order,
                                           "delivery_warehouse_id": warehouse["_id"]},
                           "details": {"DeliveryNoteProductObj": [{**line, "sales_order_product_id": so_line}]}})
    note = api.ok("get", {"dataObjectApiName": "DeliveryNoteObj", "objectDataId": ok["dataId"]})["data"]
    assert note["delivery_warehouse_id__r"] == "成品仓"
    [note_line] = api.rows("DeliveryNoteProductObj", [flt("delivery_note_id", "EQ", ok["dataId"])])
    assert note_line["sales_order_product_id"] == so_line


@pytest.mark.parametrize("switches, text", [
    ({"id_format": "hex16"}, "id_format"),
    ({"approval_objects": {"AccountObj": "pending"}}, "under_review"),
    ({"approval_objects": {"NoSuchObj": "under_review"}}, "unknown object"),
    ({"required_fields": {"DeliveryNoteObj": ["warehouse"]}}, "no field"),
    ({"query_includes_invalid": "no"}, "true or false"),
])
def test_bad_switch_values_are_refused_with_the_reason(api, switches, text):
    r = api.http.post(f"{api.base_url}/_sim/config", json=switches, timeout=10)
    assert r.status_code == 400 and text in r.text
