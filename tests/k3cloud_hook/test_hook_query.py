"""Queries against the simulator: StartRow paging, stable order, FilterString safety, BillQuery."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.hooks.k3cloud_filter import F

from .helpers import calls, customer, make_hook, seed_customers


def test_paging_yields_every_row_once_in_pk_order(k3cloud):
    numbers = seed_customers(k3cloud, 25)
    hook = make_hook()
    pages = list(hook.execute_bill_query("BD_Customer", ["FCUSTID", "FNumber"], F("FNumber").like_startswith("CS"), page_size=10))
    assert [len(p) for p in pages] == [10, 10, 5]
    rows = [r for p in pages for r in p]
    assert [r["FNumber"] for r in rows] == numbers
    ids = [r["FCUSTID"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == 25
    assert calls(k3cloud, "ExecuteBillQuery") == 3  # stops on the short page


def test_full_last_page_costs_one_empty_call(k3cloud):
    seed_customers(k3cloud, 20)
    hook = make_hook()
    pages = list(hook.execute_bill_query("BD_Customer", ["FNumber"], None, page_size=10))
    assert [len(p) for p in pages] == [10, 10]
    assert calls(k3cloud, "ExecuteBillQuery") == 3


def test_pages_are_lazy(k3cloud):
    seed_customers(k3cloud, 25)
    pages = make_hook().execute_bill_query("BD_Customer", ["FNumber"], page_size=10)
    assert calls(k3cloud, "ExecuteBillQuery") == 0
    next(pages)
    assert calls(k3cloud, "ExecuteBillQuery") == 1


@pytest.mark.parametrize(
    "attack",
    ["x' or '1'='1", "x' OR FNumber like '%", "' OR 1=1 --", "CS0001' OR 'a'='a", "%", "CS%"],
)
def test_filter_injection_attempts_match_nothing(k3cloud, attack):
    seed_customers(k3cloud, 3)
    hook = make_hook()
    assert list(hook.execute_bill_query("BD_Customer", ["FNumber"], F("FNumber") == attack)) == []
    assert list(hook.execute_bill_query("BD_Customer", ["FNumber"], F("FName").like_contains(attack))) == []
    assert hook.find_by_number("BD_Customer", attack) == []


def test_quotes_and_wildcards_round_trip_as_literal_text(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("Q'01", name="50%_off [A] O'Brien"))
    seed_customers(k3cloud, 2)
    assert [r["FNumber"] for r in hook.find_by_number("BD_Customer", "Q'01")] == ["Q'01"]
    rows = [r for p in hook.execute_bill_query("BD_Customer", ["FNumber"], F("FName").like_contains("%_off [A] O'")) for r in p]
    assert rows == [{"FNumber": "Q'01"}]


def test_leading_zero_numbers_are_matched_as_strings(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("0012"))
    hook.save("BD_Customer", customer("12"))
    assert [r["FNumber"] for r in hook.find_by_number("BD_Customer", "0012")] == ["0012"]
    rows = [r for p in hook.execute_bill_query("BD_Customer", ["FNumber"], F("FNumber").isin(["0012", "12"])) for r in p]
    assert sorted(r["FNumber"] for r in rows) == ["0012", "12"]


def test_raw_strings_are_refused_as_filter(k3cloud):
    with pytest.raises(TypeError, match="raw_filter"):
        next(make_hook().execute_bill_query("BD_Customer", ["FNumber"], "FNumber = 'x'"))  # type: ignore[arg-type]
    assert k3cloud.stats()["total"] == 0


def test_raw_filter_constant_is_anded_with_the_expression(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("R0001"), IsAutoSubmitAndAudit=True)
    hook.save("BD_Customer", customer("R0002"))
    rows = [
        r
        for p in hook.execute_bill_query(
            "BD_Customer", ["FNumber"], F("FNumber").like_startswith("R"), raw_filter="FDocumentStatus = 'C'"
        )
        for r in p
    ]
    assert rows == [{"FNumber": "R0001"}]


def test_unknown_field_key_is_a_business_rule_error(k3cloud):
    from fxiaoke_k3cloud.errors import BusinessRuleError

    with pytest.raises(BusinessRuleError) as info:
        next(make_hook().execute_bill_query("BD_Customer", ["FNoSuchField"]))
    assert info.value.code == 9


def test_bill_query_returns_rows_keyed_by_field_keys(k3cloud):
    seed_customers(k3cloud, 12)
    pages = list(make_hook().bill_query("BD_Customer", ["FNumber", "FName"], F("FNumber").like_startswith("CS"), page_size=5))
    assert [len(p) for p in pages] == [5, 5, 2]
    assert pages[0][0] == {"FNumber": "CS0000", "FName": "客户 CS0000"}
    assert calls(k3cloud, "BillQuery") == 3


def test_currency_check_query_like_the_sdk(k3cloud):
    rows = [r for p in make_hook().execute_bill_query("BD_Currency", ["FCODE"], F("FNUMBER") == "PRE001") for r in p]
    assert rows == [{"FCODE": "CNY"}]
