"""Paging pitfalls of spec §3.4–3.5 against the simulator: offset cap, equal timestamps, rows moving."""

from __future__ import annotations

from collections import Counter

import pytest
from fxiaoke_hook.helpers import QUERY, accounts, calls, seed_accounts

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

TIE_MS = 1_700_000_000_000


def hook(**kwargs) -> FxiaokeHook:
    return FxiaokeHook(retry_wait_s=0, **kwargs)


def test_id_cursor_crosses_the_10000_offset_cap(fxiaoke):
    ids = set(seed_accounts(fxiaoke, 10_250))
    h = hook(calls_per_20s=1000)  # the simulator has no gateway limit on; the throttle is tested on its own
    pages = list(h.query_records("AccountObj", filters=[("name", "STARTWITH", "ACC-")], fields=["name"]))
    seen = [r["_id"] for page in pages for r in page]
    assert len(seen) == len(set(seen)) == 10_250 and set(seen) == ids
    assert len(pages) == 103 and calls(fxiaoke, QUERY) == 103  # the last page is short: no empty extra call

    # Offset paging with explicit orders stops *before* the cap with advice, instead of a 10013 mid-run.
    rows = 0
    with pytest.raises(ConfigError, match="offset cap"):
        for page in h.query_records("AccountObj", orders=[("name", True)], fields=["name"]):
            rows += len(page)
    assert rows == 10_000


def test_equal_timestamps_at_page_boundaries_are_neither_missed_nor_repeated(fxiaoke):
    tied = set(seed_accounts(fxiaoke, 260, last_modified_time=TIE_MS))
    fxiaoke.seed({"objects": {"AccountObj": accounts(5, prefix="NEXT", last_modified_time=TIE_MS + 1)}})
    h = hook()
    seen = [r["_id"] for page in h.query_window("AccountObj", "last_modified_time", TIE_MS, TIE_MS + 1) for r in page]
    assert len(seen) == 260 and set(seen) == tied  # half-open window: the TIE_MS + 1 rows belong to the next one


def test_rows_changed_while_paging_are_still_seen_exactly_once(fxiaoke):
    ids = seed_accounts(fxiaoke, 250, last_modified_time=TIE_MS)
    h = hook()
    seen: Counter[str] = Counter()
    for page_no, page in enumerate(h.query_window("AccountObj", "last_modified_time", TIE_MS, 2**53, page_size=100)):
        seen.update(r["_id"] for r in page)
        if page_no == 0:
            ordered = sorted(ids)
            h.update_record("AccountObj", ordered[0], {"remark": "edited: already paged"})
            h.update_record("AccountObj", ordered[-1], {"remark": "edited: not yet paged"})
    assert set(seen) == set(ids) and set(seen.values()) == {1}


def test_caller_filters_are_anded_with_the_cursor(fxiaoke):
    fxiaoke.seed({"objects": {"AccountObj": accounts(120, prefix="KEEP") + accounts(130, prefix="DROP")}})
    h = hook()
    names = [r["name"] for page in h.query_records("AccountObj", filters=[("name", "STARTWITH", "KEEP")], page_size=50) for r in page]
    assert len(names) == 120 and all(n.startswith("KEEP") for n in names)
    assert calls(fxiaoke, QUERY) == 3


def test_projection_keeps_id_and_pages_are_lists_of_dicts(fxiaoke):
    seed_accounts(fxiaoke, 3)
    page = next(hook().query_records("AccountObj", filters=[("name", "STARTWITH", "ACC-")], fields=["name"]))
    assert {"_id", "name"} <= set(page[0]) and "tel" not in page[0]
