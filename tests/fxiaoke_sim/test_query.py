"""The query engine: every operator, typing, AND, orders, projection, nulls, totals and paging (spec §3.2–3.4)."""

from __future__ import annotations

import time

import pytest

from .client import ADMIN, REP, Api, flt

CUSTOM = "object_demo__c"


def _demo_rows() -> list[dict]:
    base = {"owner": [ADMIN]}
    return [
        {**base, "_id": "000000000000000000000001", "name": "n1", "field_text1__c": "alpha-one", "field_num1__c": "10",
         "field_tags__c": ["a"], "field_flag__c": True, "last_modified_time": 1000},
        {"_id": "000000000000000000000002", "name": "n2", "field_text1__c": "beta-two", "field_num1__c": "2.5",
         "field_tags__c": ["a", "b"], "field_flag__c": False, "last_modified_time": 2000, "owner": [REP]},
        {**base, "_id": "000000000000000000000003", "name": "n3", "field_text1__c": "gamma", "field_num1__c": 100,
         "field_tags__c": [], "field_flag__c": True, "last_modified_time": 3000},
        {**base, "_id": "000000000000000000000004", "name": "n4", "field_tags__c": ["c"], "last_modified_time": 3000},
        {**base, "_id": "000000000000000000000005", "name": "n5", "field_text1__c": "alpha-two", "field_num1__c": "-1",
         "field_tags__c": ["b", "c"], "last_modified_time": 4000},
    ]


OPERATOR_CASES = [
    (flt("field_text1__c", "EQ", "gamma"), {"n3"}),
    (flt("field_num1__c", "EQ", "10.0"), {"n1"}),  # numeric, not textual, equality
    (flt("field_text1__c", "N", "gamma"), {"n1", "n2", "n4", "n5"}),  # N matches empty values too
    (flt("field_num1__c", "GT", 2.5), {"n1", "n3"}),  # "10" > "2.5" only as numbers
    (flt("field_num1__c", "GTE", "2.5"), {"n1", "n2", "n3"}),
    (flt("field_num1__c", "LT", 10), {"n2", "n5"}),
    (flt("field_num1__c", "LTE", "10"), {"n1", "n2", "n5"}),
    (flt("field_text1__c", "LIKE", "two"), {"n2", "n5"}),
    (flt("field_text1__c", "NLIKE", "alpha"), {"n2", "n3", "n4"}),
    (flt("field_text1__c", "IS"), {"n4"}),
    (flt("field_text1__c", "ISN"), {"n1", "n2", "n3", "n5"}),
    (flt("field_text1__c", "IN", "gamma", "beta-two"), {"n2", "n3"}),
    (flt("field_text1__c", "NIN", "gamma"), {"n1", "n2", "n4", "n5"}),
    (flt("last_modified_time", "BETWEEN", 2000, 3000), {"n2", "n3", "n4"}),  # inclusive at both ends
    (flt("last_modified_time", "NBETWEEN", "2000", "3000"), {"n1", "n5"}),
    (flt("field_text1__c", "STARTWITH", "alpha"), {"n1", "n5"}),
    (flt("field_text1__c", "ENDWITH", "two"), {"n2", "n5"}),
    (flt("field_tags__c", "CONTAINS", "b", "c"), {"n5"}),
    (flt("field_tags__c", "HASANYOF", "a", "c"), {"n1", "n2", "n4", "n5"}),
    (flt("field_tags__c", "NHASANYOF", "a"), {"n3", "n4", "n5"}),
    (flt("last_modified_time", "GT", "2500"), {"n3", "n4", "n5"}),  # ms as a numeric string
    (flt("_id", "GT", "000000000000000000000003"), {"n4", "n5"}),
    (flt("field_flag__c", "EQ", True), {"n1", "n3"}),
    (flt("owner", "IN", REP), {"n2"}),
]


@pytest.mark.parametrize(("flt_", "expected"), OPERATOR_CASES, ids=[f"{c[0]['operator']}-{c[0]['field_name']}-{i}"
                                                                    for i, c in enumerate(OPERATOR_CASES)])
def test_operator(api: Api, flt_: dict, expected: set[str]) -> None:
    api.seed(**{CUSTOM: _demo_rows()})
    body = api.authed("/cgi/crm/custom/v2/data/query", {"data": {
        "dataObjectApiName": CUSTOM, "search_query_info": {"limit": 100, "offset": 0, "filters": [flt_]}}})
    assert body["errorCode"] == 0, body
    assert {r["name"] for r in body["data"]["dataList"]} == expected
    assert body["data"]["total"] == len(expected)


def test_filters_are_and_combined(api: Api) -> None:
    api.seed(**{CUSTOM: _demo_rows()})
    rows = api.rows(CUSTOM, [flt("field_text1__c", "STARTWITH", "alpha"), flt("field_num1__c", "LT", 0)])
    assert [r["name"] for r in rows] == ["n5"]


@pytest.mark.parametrize("bad", [
    flt("no_such_field", "EQ", "x"),
    flt("name", "NE", "x"),
    flt("field_num1__c", "GT", "ten"),
    flt("last_modified_time", "BETWEEN", 1),
])
def test_bad_filters_are_parameter_errors(api: Api, bad: dict) -> None:
    body = api.query(CUSTOM, [bad])
    assert body["errorCode"] == 32000 and "data" not in body


def test_unknown_order_field_is_a_parameter_error(api: Api) -> None:
    assert api.query("AccountObj", orders=[{"fieldName": "nope", "isAsc": True}])["errorCode"] == 32000


def test_multi_key_orders_and_default_order(api: Api) -> None:
    rows = [{"_id": f"00000000000000000000000{i}", "name": n, "account_level": lvl, "last_modified_time": t}
            for i, (n, lvl, t) in enumerate([("b", "A", 5), ("a", "B", 7), ("c", "A", 7), ("d", "B", 5)], start=1)]
    api.seed(AccountObj=rows)
    ordered = api.rows("AccountObj", orders=[{"fieldName": "account_level", "isAsc": True},
                                             {"fieldName": "name", "isAsc": False}])
    assert [r["name"] for r in ordered] == ["c", "b", "d", "a"]
    default = api.rows("AccountObj")  # last_modified_time desc, then _id asc
    assert [r["name"] for r in default] == ["a", "c", "b", "d"]


def test_projection_returns_listed_fields_plus_id(api: Api) -> None:
    api.seed(AccountObj=[{"name": "Acme", "tel": "021-1"}])
    [row] = api.rows("AccountObj", projection=["name", "tel"])
    assert set(row) == {"_id", "name", "tel"}


def test_null_fields_are_omitted_unless_include_null(api: Api) -> None:
    api.seed(AccountObj=[{"name": "NoPhone"}])
    [row] = api.rows("AccountObj")
    assert "tel" not in row and row["name"] == "NoPhone" and row["owner"] == [ADMIN]
    [full] = api.rows("AccountObj", includeNull=True)
    body = api.crm("query", {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 10, "offset": 0}},
                   includeNull=True)
    assert body["data"]["dataList"][0]["tel"] is None
    assert full["tel"] is None


def test_total_offset_limit_echo_and_explicit_total_off(api: Api) -> None:
    api.seed(AccountObj=[{"name": f"c{i}"} for i in range(7)])
    data = api.query("AccountObj", limit=5, offset=5)["data"]
    assert (data["offset"], data["limit"], data["total"], len(data["dataList"])) == (5, 5, 7, 2)
    data = api.query("AccountObj", limit=5, find_explicit_total_num=False)["data"]
    assert data["total"] == 0 and len(data["dataList"]) == 5


def test_limit_above_100_is_clamped_or_an_error_in_strict_mode(api: Api) -> None:
    data = api.query("ProductObj", limit=500)["data"]
    assert data["limit"] == 100
    api.admin("POST", "config", {"strict_limit": True})
    assert api.query("ProductObj", limit=500)["errorCode"] == 32000


def test_offset_rules(api: Api) -> None:
    assert api.query("ProductObj", limit=10, offset=15)["errorCode"] == 32000  # not a multiple of limit
    assert api.query("ProductObj", limit=100, offset=10000)["errorCode"] == 0
    over = api.query("ProductObj", limit=100, offset=10100)
    assert (over["errorCode"], over["errorMessage"], over["errorDescription"]) == (
        10013, "offset out of range 10000", "offset 不能超过10000")
    assert api.query("ProductObj", limit=0)["errorCode"] == 32000


def test_id_cursor_pages_past_the_offset_cap_over_10250_rows_sharing_one_timestamp(api: Api) -> None:
    started = time.monotonic()
    stamp = 1700000000000
    ids = api.seed(ContactObj=[{"name": f"p{i}", "last_modified_time": stamp} for i in range(10_250)])["ContactObj"]
    assert len(ids) == 10_250
    seen: list[str] = []
    last = ""
    while True:
        filters = [flt("last_modified_time", "EQ", stamp)] + ([flt("_id", "GT", last)] if last else [])
        page = api.rows("ContactObj", filters, orders=[{"fieldName": "_id", "isAsc": True}], projection=["_id"])
        seen += [r["_id"] for r in page]
        if len(page) < 100:
            break
        last = page[-1]["_id"]
    assert len(seen) == len(set(seen)) == 10_250 and seen == sorted(seen)
    assert time.monotonic() - started < 30
