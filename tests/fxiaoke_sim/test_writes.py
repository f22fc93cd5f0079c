"""Create/update/invalid/delete/recover/changeOwner, get, findOne/findSimple, describe and object list (§3.6–3.9)."""

from __future__ import annotations

import re

from .client import ADMIN, REP, Api, flt


def _product(api: Api, code: str) -> dict:
    [row] = api.rows("ProductObj", [flt("product_code", "EQ", code)])
    return row


def _account(api: Api, name: str = "上海测试机械有限公司") -> str:
    return api.ok("create", {"object_data": {"dataObjectApiName": "AccountObj", "name": name,
                                             "field_fnfcA__c": "CUST-900001"}})["dataId"]


def test_create_with_details_links_lines_and_returns_top_level_data_id(api: Api) -> None:
    api.admin("POST", "clock", {"set_ms": 1750000000000})
    account = _account(api)
    p1, p2 = _product(api, "MAT-0001"), _product(api, "MAT-0004")
    body = api.ok("create", {
        "object_data": {"dataObjectApiName": "SalesOrderObj", "account_id": account, "order_time": 1750000000000},
        "details": {"SalesOrderProductObj": [
            {"product_id": p1["_id"], "quantity": "10", "sales_price": "0.85"},
            {"product_id": p2["_id"], "quantity": 2, "sales_price": 12.5},
        ]},
    }, triggerApprovalFlow=False, triggerWorkFlow=False)
    order_id = body["dataId"]
    assert re.fullmatch(r"[0-9a-f]{32}", order_id) and "data" not in body  # the default id_format
    order = api.ok("get", {"dataObjectApiName": "SalesOrderObj", "objectDataId": order_id})["data"]
    assert order["account_id__r"] == "上海测试机械有限公司" and order["order_amount"] == "33.50"
    assert order["life_status"] == "normal" and order["version"] == "1" and order["owner"] == [ADMIN]
    assert order["last_modified_time"] == order["create_time"] >= 1750000000000
    lines = api.rows("SalesOrderProductObj", [flt("order_id", "EQ", order_id)],
                     orders=[{"fieldName": "subtotal", "isAsc": True}])
    assert [(line["product_id__r"], line["quantity"], line["subtotal"]) for line in lines] == [
        (p1["name"], "10", "8.50"), (p2["name"], "2", "25.00")]


def test_create_rejects_wrong_nesting_missing_required_and_bad_lookups(api: Api) -> None:
    nested_wrong = api.crm("create", {"dataObjectApiName": "AccountObj", "object_data": {"name": "X"}})
    assert nested_wrong["errorCode"] == 32000
    no_name = api.crm("create", {"object_data": {"dataObjectApiName": "AccountObj", "tel": "1"}})
    assert no_name["errorCode"] != 0 and "名称" in no_name["errorMessage"]
    bad_lookup = api.crm("create", {"object_data": {"dataObjectApiName": "SalesOrderObj", "name": "20210525-010",
                                                    "account_id": "ffffffffffffffffffffffff"}})
    assert bad_lookup["errorMessage"] == "数据[20210525-010]的字段[客户名称]关联关系不存在-201112011"
    bad_line = api.crm("create", {
        "object_data": {"dataObjectApiName": "SalesOrderObj", "account_id": _account(api)},
        "details": {"SalesOrderProductObj": [{"product_id": "nope", "quantity": "1"}]}})
    assert bad_line["errorCode"] != 0
    assert api.admin("GET", "records/SalesOrderObj") == []  # nothing half-written
    bad_type = api.crm("create", {"object_data": {"dataObjectApiName": "AccountObj", "name": "Y", "account_type": "老客户"}})
    assert bad_type["errorCode"] != 0


def test_update_bumps_version_and_time_and_ignores_owner(api: Api) -> None:
    account = _account(api)
    before = api.ok("get", {"dataObjectApiName": "AccountObj", "objectDataId": account})["data"]
    api.advance(5)
    api.ok("update", {"object_data": {"dataObjectApiName": "AccountObj", "_id": account, "tel": "021-555",
                                      "owner": [REP]}})
    after = api.ok("get", {"dataObjectApiName": "AccountObj", "objectDataId": account})["data"]
    assert after["tel"] == "021-555" and after["owner"] == [ADMIN]
    assert after["version"] == "2" and after["last_modified_time"] >= before["last_modified_time"] + 5000
    missing_api = api.crm("update", {"dataObjectApiName": "AccountObj", "object_data": {"_id": account}})
    assert missing_api["errorCode"] == 32000


def test_invalid_delete_recover_and_change_owner(api: Api) -> None:
    account = _account(api)
    ref = {"dataObjectApiName": "AccountObj"}
    assert api.crm("delete", {**ref, "idList": [account]})["errorCode"] != 0  # only voided rows can be deleted
    api.ok("invalid", {**ref, "object_data_id": account})
    row = api.ok("get", {**ref, "objectDataId": account})["data"]
    assert row["life_status"] == "invalid" and row["life_status__r"] == "作废" and row["version"] == "2"
    api.ok("recover", {**ref, "idList": [account]})
    assert api.ok("get", {**ref, "objectDataId": account})["data"]["life_status"] == "normal"
    api.ok("changeOwner", {**ref, "Data": [{"objectDataId": account, "ownerId": [REP]}]})
    row = api.ok("get", {**ref, "objectDataId": account})["data"]
    assert row["owner"] == [REP] and row["owner__r"] == "张伟" and row["version"] == "4"
    assert api.crm("changeOwner", {**ref, "Data": [{"objectDataId": account, "ownerId": ["FSUID_X"]}]})["errorCode"] != 0
    api.ok("invalid", {**ref, "object_data_id": account})
    api.ok("delete", {**ref, "idList": [account]})
    assert api.crm("get", {**ref, "objectDataId": account})["errorCode"] != 0


def test_voiding_an_order_voids_its_lines(api: Api) -> None:
    product = _product(api, "MAT-0002")
    order = api.ok("create", {"object_data": {"dataObjectApiName": "SalesOrderObj", "account_id": _account(api)},
                              "details": {"SalesOrderProductObj": [{"product_id": product["_id"], "quantity": "1"}]}})
    api.ok("invalid", {"dataObjectApiName": "SalesOrderObj", "object_data_id": order["dataId"]})
    [line] = api.admin("GET", "records/SalesOrderProductObj")
    assert line["life_status"] == "invalid"


def test_custom_object_paths_find_one_and_find_simple(api: Api) -> None:
    created = api.ok("create", {"object_data": {"dataObjectApiName": "object_demo__c", "name": "demo-1",
                                                "field_num1__c": 3}}, custom=True)
    found = api.ok("findOne", {"dataObjectApiName": "object_demo__c",
                               "search_query_info": {"filters": [flt("name", "EQ", "demo-1")]},
                               "field_projection": ["name"]}, custom=True)
    assert found["data"]["objectData"] == {"_id": created["dataId"], "name": "demo-1"}
    preset = api.ok("findOne", {"dataObjectApiName": "ProductObj",
                                "search_query_info": {"filters": [flt("product_code", "EQ", "MAT-9999")]}}, custom=True)
    assert preset["data"]["objectData"]["product_code"] == "MAT-9999"
    simple = api.ok("findSimple", {"dataObjectApiName": "ProductObj", "search_query_info": {"limit": 5, "offset": 0}},
                    custom=True)
    assert len(simple["data"]["dataList"]) == 5 and simple["data"]["total"] == 21
    api.admin("POST", "config", {"strict_prefix": True})
    wrong_prefix = api.crm("get", {"dataObjectApiName": "object_demo__c", "objectDataId": created["dataId"]})
    assert wrong_prefix["errorCode"] == 32000
    assert api.crm("findOne", {"dataObjectApiName": "ProductObj"}, custom=True)["errorCode"] == 0


def test_duplicate_rule_mentions_duplicate_when_switched_on(api: Api) -> None:
    api.admin("POST", "config", {"duplicate_rule": True})
    _account(api, "Same Name")
    dup = api.crm("create", {"object_data": {"dataObjectApiName": "AccountObj", "name": "Same Name"}})
    assert dup["errorCode"] != 0 and "duplicate" in dup["errorMessage"]


def test_describe_accepts_both_shapes_and_lists_custom_fields(api: Api) -> None:
    top = api.authed("/cgi/crm/v2/object/describe", {"apiName": "AccountObj", "includeDetail": True})
    nested = api.authed("/cgi/crm/v2/object/describe", {"includeDetail": True, "data": {"apiName": "AccountObj"}})
    assert top["data"] == nested["data"]
    fields = top["data"]["describe"]["fields"]
    assert top["data"]["describe"]["api_name"] == "AccountObj"
    assert fields["name"]["is_required"] is True and fields["name"]["type"] == "text"
    assert {o["value"] for o in fields["field_n5V1I__c"]["options"]} == {"KHLB001_SYS", "KHLB002_SYS"}
    for custom in ("field_fnfcA__c", "field_IdOci__c", "field_zW12m__c", "field_G45nC__c"):
        assert fields[custom]["define_type"] == "custom"
    assert api.authed("/cgi/crm/v2/object/describe", {"apiName": "NopeObj"})["errorCode"] != 0
    objects = api.authed("/cgi/crm/v2/object/list", {})["data"]["objects"]
    names = {o["describeApiName"] for o in objects}
    assert {"AccountObj", "SalesOrderProductObj", "DeliveryNoteProductObj", "OrderPaymentObj", "object_demo__c"} <= names


def test_seed_keeps_given_ids_and_times_and_fills_system_fields(api: Api) -> None:
    ids = api.seed(AccountObj=[{"_id": "aaaaaaaaaaaaaaaaaaaaaaaa", "name": "Kept", "last_modified_time": 42}])
    assert ids == {"AccountObj": ["aaaaaaaaaaaaaaaaaaaaaaaa"]}
    [row] = api.admin("GET", "records/AccountObj")
    assert row["last_modified_time"] == 42 and row["version"] == "1" and row["record_type"] == "default__c"
    assert row["lock_status"] == "0" and row["is_deleted"] is False and row["owner"] == [ADMIN]
    r = api.http.post(api.base_url + "/_sim/seed", json={"objects": {"AccountObj": [{"nope": 1}]}})
    assert r.status_code == 400
