"""ExecuteBillQuery's 2000-row cap (issue 14 point 8): the hook pages past it over HTTP and never cuts rows silently."""

from __future__ import annotations

import time

import pytest

from fxiaoke_k3cloud.hooks.k3cloud_filter import F

from .helpers import calls, customer, make_hook

TOTAL = 2345  # not a multiple of 500: the last short page needs no confirming call


@pytest.fixture
def many(k3cloud):
    """2345 customers CAP00000…CAP02344 seeded in chunks (one seed call would hold the simulator a while)."""
    numbers = [f"CAP{i:05d}" for i in range(TOTAL)]
    started = time.monotonic()
    for at in range(0, TOTAL, 500):
        k3cloud.seed({"forms": {"BD_Customer": [customer(n) for n in numbers[at:at + 500]]}})
    assert time.monotonic() - started < 120
    return numbers


def _numbers(hook, **kwargs) -> tuple[list[str], list[int]]:
    pages = list(hook.execute_bill_query("BD_Customer", ["FNumber"], F("FNumber").like_startswith("CAP"), **kwargs))
    return [r["FNumber"] for p in pages for r in p], [len(p) for p in pages]


def test_more_than_2000_rows_come_back_complete_in_capped_pages(k3cloud, many):
    hook = make_hook()
    got, sizes = _numbers(hook)  # default page size 2000 = the server cap
    assert got == many and sizes == [2000, 345]
    assert calls(k3cloud, "ExecuteBillQuery") == 2
    objects = hook.bill_query("BD_Customer", ["FNumber"], F("FNumber").like_startswith("CAP"))
    assert [r["FNumber"] for page in objects for r in page] == many


def test_a_page_size_above_the_cap_is_refused_clearly(k3cloud):
    hook = make_hook()
    with pytest.raises(ValueError, match="at most 2000 rows per query call"):
        next(hook.execute_bill_query("BD_Customer", ["FNumber"], page_size=5000))
    assert calls(k3cloud, "ExecuteBillQuery") == 0


def test_a_server_capping_lower_than_the_page_size_is_paged_through(k3cloud, many):
    k3cloud._admin("POST", "protocol", {"query_row_cap": 1000})
    hook = make_hook()
    got, sizes = _numbers(hook, page_size=2000)
    assert got == many and sizes == [1000, 1000, 345]  # the short round page was probed, not taken as the end
    assert calls(k3cloud, "ExecuteBillQuery") == 3


def test_a_round_result_costs_one_confirming_call_only(k3cloud):
    k3cloud.seed({"forms": {"BD_Customer": [customer(f"CAP{i:05d}") for i in range(500)]}})
    hook = make_hook()
    got, sizes = _numbers(hook, page_size=2000)
    assert len(got) == 500 and sizes == [500]
    assert calls(k3cloud, "ExecuteBillQuery") == 2  # 500 is round: one more call shows it was the end
    got, _ = _numbers(make_hook(), page_size=300)
    assert len(got) == 500 and calls(k3cloud, "ExecuteBillQuery") == 4  # 300 + 200, no probe
