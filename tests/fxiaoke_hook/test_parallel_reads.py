"""A cursor query reads its pages with several requests in flight (issue 19), against the simulator over HTTP.

Same rows in the same order and the same calls as one request at a time; a result that changes while it is read
(rows edited, voided, deleted, created) is finished by the ``_id`` cursor so no row that stayed is missed or
repeated; blocks keep offset + limit under the cap; the connection extra is validated.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from fxiaoke_hook.helpers import QUERY, TOKEN, accounts, calls, seed_accounts

from fxiaoke_k3cloud.errors import ConfigError, QuotaExhaustedError
from fxiaoke_k3cloud.flows import paging
from fxiaoke_k3cloud.hooks import fxiaoke_pages
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.fxiaoke_config import FxiaokeSettings
from fxiaoke_k3cloud.hooks.fxiaoke_pages import CursorPages
from simproc import FX, fxiaoke_conn

TIE_MS = 1_700_000_000_000
WINDOW = ("last_modified_time", TIE_MS, TIE_MS + 1)  # an edit stamps "now": the row leaves the window


def hook(**kwargs) -> FxiaokeHook:
    return FxiaokeHook(retry_wait_s=0, calls_per_20s=1000, **kwargs)


def read(h: FxiaokeHook, **kwargs) -> list[str]:
    return [r["_id"] for page in h.query_window("AccountObj", *WINDOW, fields=["name"], **kwargs) for r in page]


@pytest.fixture
def readers(monkeypatch) -> list[CursorPages]:
    """Every CursorPages the hook makes (to see what a query did: pages, fallbacks)."""
    made: list[CursorPages] = []
    original = CursorPages.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(CursorPages, "__init__", init)
    return made


def test_four_in_flight_read_the_same_rows_in_the_same_order_with_the_same_calls(fxiaoke):
    ids = seed_accounts(fxiaoke, 1_050, last_modified_time=TIE_MS)
    fxiaoke.faults({"latency_ms": 40})  # answers take long enough for requests to overlap
    started = time.monotonic()
    sequential = read(hook(max_in_flight=1))
    sequential_s, sequential_calls = time.monotonic() - started, calls(fxiaoke, QUERY)
    assert fxiaoke.stats()["max_in_flight_seen"] == 1

    started = time.monotonic()
    parallel = read(hook())  # the connection's default: 4
    parallel_s, parallel_calls = time.monotonic() - started, calls(fxiaoke, QUERY) - sequential_calls

    assert parallel == sequential == sorted(ids)
    assert parallel_calls == sequential_calls == 11  # ceil(1050 / 100): no extra call
    assert fxiaoke.stats()["max_in_flight_seen"] == 4
    assert parallel_s < sequential_s * 0.75, (parallel_s, sequential_s)


def test_a_full_last_page_costs_no_empty_call(fxiaoke):
    ids = seed_accounts(fxiaoke, 400, last_modified_time=TIE_MS)
    h = hook()
    assert read(h) == sorted(ids)
    assert calls(fxiaoke, QUERY) == 4


def test_rows_changed_while_pages_are_in_flight_are_read_once_and_none_that_stayed_is_missed(fxiaoke, readers):
    ids = sorted(seed_accounts(fxiaoke, 650, last_modified_time=TIE_MS))
    fxiaoke.faults({"latency_ms": 150})
    h = hook()
    writer = hook()  # the CRM users: edits through the API while the read's next pages are in flight
    seen: Counter[str] = Counter()
    for page_no, page in enumerate(h.query_window("AccountObj", *WINDOW, fields=["name"])):
        seen.update(r["_id"] for r in page)
        if page_no == 0:  # pages 2–4 are in flight now; 5–7 are asked for after these writes
            done = threading.Event()

            def edit() -> None:
                writer.update_record("AccountObj", ids[3], {"remark": "edited out of the window (read)"})
                writer.invalid_record("AccountObj", ids[50])  # voided: leaves the window too
                writer.invalid_record("AccountObj", ids[420])
                writer.delete_records("AccountObj", [ids[420]])  # not read yet, then gone
                writer.update_record("AccountObj", ids[640], {"remark": "edited out, not read yet"})
                fxiaoke.seed({"objects": {"AccountObj": accounts(3, prefix="NEW", last_modified_time=TIE_MS)}})
                done.set()

            threading.Thread(target=edit, daemon=True).start()
            assert done.wait(10)
    in_window = {r["_id"] for r in fxiaoke.records("AccountObj")
                 if TIE_MS <= r["last_modified_time"] < TIE_MS + 1}
    stayed = in_window & set(ids)
    assert len(stayed) == 650 - 4
    assert stayed <= set(seen)  # no row that stayed in the window is missed …
    assert set(seen.values()) == {1}  # … and none is read twice
    assert set(seen) <= set(ids) | in_window
    assert readers[0].fallbacks >= 1  # the offsets shifted and the cursor finished the block


def test_blocks_keep_offsets_under_the_cap_and_cost_no_extra_call(fxiaoke, monkeypatch, readers):
    monkeypatch.setattr(fxiaoke_pages, "BLOCK_ROWS", 300)  # the API's cap is 10,000: 3 pages a block here
    sent: list[int] = []
    original = CursorPages._search

    def search(self, cursor, offset, limit):
        sent.append(offset + limit)
        return original(self, cursor, offset, limit)

    monkeypatch.setattr(CursorPages, "_search", search)
    ids = seed_accounts(fxiaoke, 730, last_modified_time=TIE_MS)
    assert read(hook()) == sorted(ids)
    assert calls(fxiaoke, QUERY) == 8 and max(sent) == 300  # blocks of 300, 300, 130 rows
    assert readers[0].fallbacks == 0

    ids = seed_accounts(fxiaoke, 600, last_modified_time=TIE_MS + 5)  # two full blocks: no empty third one
    pages = hook().query_window("AccountObj", "last_modified_time", TIE_MS + 5, TIE_MS + 6, fields=["name"])
    assert [r["_id"] for page in pages for r in page] == sorted(ids)
    assert calls(fxiaoke, QUERY) == 8 + 6


def test_a_token_refused_while_pages_are_in_flight_is_fetched_once(fxiaoke):
    ids = seed_accounts(fxiaoke, 350, last_modified_time=TIE_MS)
    fxiaoke.faults({"latency_ms": 150})
    seen: list[str] = []
    for page_no, page in enumerate(hook().query_window("AccountObj", *WINDOW, fields=["name"])):
        seen += [r["_id"] for r in page]
        if page_no == 0:
            fxiaoke.expire()  # pages 2–4 are in flight: each is refused (20016) and replayed
    assert seen == sorted(ids)
    assert calls(fxiaoke, TOKEN) == 2  # one fresh token for the three threads, not one each
    assert calls(fxiaoke, QUERY) == 4 + 3


def test_an_error_in_a_reader_thread_is_raised_in_the_caller_and_nothing_more_is_sent(fxiaoke):
    seed_accounts(fxiaoke, 650, last_modified_time=TIE_MS)
    h = hook(call_budget=4)  # the token and three queries: the fourth query is refused by the budget
    rows = 0
    with pytest.raises(QuotaExhaustedError, match="call budget"):
        for page in h.query_window("AccountObj", *WINDOW, fields=["name"]):
            rows += len(page)
    assert rows == 300 and calls(fxiaoke, QUERY) == 3 and h.calls.total == 4


def test_stopping_early_stops_the_readers(fxiaoke):
    seed_accounts(fxiaoke, 1_000, last_modified_time=TIE_MS)
    fxiaoke.faults({"latency_ms": 100})
    pages = hook().query_window("AccountObj", *WINDOW, fields=["name"])
    assert len(next(pages)) == 100
    pages.close()
    sent = calls(fxiaoke, QUERY)
    assert sent <= 1 + 4
    time.sleep(0.3)
    assert calls(fxiaoke, QUERY) == sent
    assert not [t for t in threading.enumerate() if t.name.startswith("fxiaoke-pages")]


def test_a_separate_voided_pass_reads_in_parallel_too(fxiaoke, monkeypatch, readers):
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(fxiaoke, voided_query="separate"))
    fxiaoke._admin("POST", "config", {"query_includes_invalid": False})
    rows = accounts(250, prefix="LIVE", last_modified_time=TIE_MS) + \
        accounts(230, prefix="VOID", last_modified_time=TIE_MS, life_status="invalid")
    ids = fxiaoke.seed({"objects": {"AccountObj": rows}})["ids"]["AccountObj"]
    seen = read(hook())
    assert Counter(seen) == Counter(ids)
    assert [r.n for r in readers] == [4, 4] and [r.pages for r in readers] == [3, 3]
    assert calls(fxiaoke, QUERY) == 6


@pytest.mark.parametrize("raw, expected", [(None, 4), ("", 4), (1, 1), ("8", 8), (32, 32), (4.0, 4)])
def test_max_in_flight_extra_accepts_a_whole_number_from_1_to_32(raw, expected):
    extra = {"permanent_code": FX["permanent_code"], "open_user_id": FX["open_user_id"], "max_in_flight": raw}
    settings = FxiaokeSettings.from_connection(conn_id="fx", host=None, login="a", password="s", extra=extra)
    assert settings.max_in_flight == expected


@pytest.mark.parametrize("raw", [0, 33, -1, "four", 2.5, True, [4]])
def test_max_in_flight_extra_refuses_anything_else_naming_the_field(raw):
    extra = {"permanent_code": FX["permanent_code"], "open_user_id": FX["open_user_id"], "max_in_flight": raw}
    with pytest.raises(ConfigError, match=r"connection 'fx': extra 'max_in_flight' must be a whole number from 1 to 32"):
        FxiaokeSettings.from_connection(conn_id="fx", host=None, login="a", password="s", extra=extra)


def test_pages_in_reads_batches_side_by_side_within_the_hook_s_requests_in_flight(fxiaoke, monkeypatch):
    monkeypatch.setattr(paging, "ID_BATCH", 1)  # one name per IN query: five queries of four pages each
    names = [f"N{i}" for i in range(5)]
    fxiaoke.seed({"objects": {"AccountObj": [{"name": name, "last_modified_time": TIE_MS}
                                             for name in names for _ in range(310)]}})
    fxiaoke.faults({"latency_ms": 40})
    sequential = [[r["_id"] for r in page] for page in paging.pages_in(hook(max_in_flight=1), "AccountObj", "name",
                                                                        names, fields=["name"])]
    sequential_calls = calls(fxiaoke, QUERY)
    parallel = [[r["_id"] for r in page] for page in paging.pages_in(hook(), "AccountObj", "name", names,
                                                                      fields=["name"])]
    assert parallel == sequential and sum(map(len, parallel)) == 1_550
    assert calls(fxiaoke, QUERY) - sequential_calls == sequential_calls == 20
    # Four batches at once, each a cursor query with three pages in flight of its own, and yet four at most.
    assert fxiaoke.stats()["max_in_flight_seen"] == 4


def test_max_rows_sends_no_request_beyond_its_page_and_after_id_resumes_in_parallel(fxiaoke, readers):
    ids = seed_accounts(fxiaoke, 730, last_modified_time=TIE_MS)
    fxiaoke.faults({"latency_ms": 30})
    first = read(hook(), max_rows=250)  # pages of 100: the third reaches 250
    assert first == sorted(ids)[:300] and calls(fxiaoke, QUERY) == 3
    rest = read(hook(), after_id=first[-1])
    assert first + rest == sorted(ids) and calls(fxiaoke, QUERY) == 3 + 5
    assert fxiaoke.stats()["max_in_flight_seen"] == 4 and [r.fallbacks for r in readers] == [0, 0]
