"""How the orders flow reads orders, lines and products: every line of every order, in as few calls as that allows.

Extract runs against the Fxiaoke simulator over HTTP into a real stage (SQLite and Postgres); the calls are
counted by the simulator (``/_sim/stats``) and, per object, by a hook that only counts what it sends.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from datetime import datetime, timezone

import pytest
from mapping.crm_records import BASE_MS, account

from .test_orders_flow import line, order, products, seed

DAY = 86_400_000
QUERY = "/cgi/crm/v2/data/query"


@pytest.fixture
def counting_hook(fxiaoke):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    class CountingHook(FxiaokeHook):
        """The real hook; remembers which object each query page was for (the simulator counts paths only)."""

        def __init__(self) -> None:
            super().__init__()
            self.pages: Counter = Counter()

        def query_records(self, object_api_name, *args, **kwargs):
            for page in super().query_records(object_api_name, *args, **kwargs):
                self.pages[object_api_name] += 1
                yield page

    return CountingHook()


def run_extract(store, hook, window, ids=()):
    from fxiaoke_k3cloud.flows.orders import extract_orders, staged_lines
    from fxiaoke_k3cloud.flows.specs import flow_spec
    from fxiaoke_k3cloud.flows.stage import Stage

    stage = Stage(store)
    run_pk = store.start_run("orders", f"test-{time.monotonic_ns()}", "manual", window.start, window.end)
    staged, _ = extract_orders(flow_spec("orders"), hook, store, stage, run_pk, window, ids=list(ids))
    orders = list(stage.get(run_pk, "raw"))
    lines = staged_lines(stage, run_pk, [o["_id"] for o in orders])
    by_order: dict[str, list[dict]] = {}
    for ln in lines:
        by_order.setdefault(ln["order_id"], []).append(ln)
    assert staged == len(orders)
    return orders, by_order


def window(start_ms: int, end_ms: int | None = None, source: str = "params"):
    from fxiaoke_k3cloud.flows.window import Window, from_ms

    end = from_ms(end_ms) if end_ms is not None else datetime.now(timezone.utc)
    return Window(from_ms(start_ms), end, source)


def test_a_first_sync_reads_lines_in_full_pages_and_products_once(fxiaoke, counting_hook, store):
    """250 orders with 1–3 lines: orders, lines and products each cost ceil(rows / 100) queries."""
    p = products(fxiaoke)
    codes = sorted(c for c in p if c != "MAT-9999")
    accs = [account(i) for i in range(1, 11)]
    orders, lines = [], []
    for i in range(1, 251):
        o = order(i, accs[i % 10]["_id"], create_time=BASE_MS + i, last_modified_time=BASE_MS + i)
        orders.append(o)
        for n in range(1, 1 + (i % 3) + 1):
            lines.append(line(o["_id"], n, p[codes[(i + n) % len(codes)]], create_time=BASE_MS + i,
                              last_modified_time=BASE_MS + i))
    seed(fxiaoke, accs, orders, lines)
    list(counting_hook.query_records("ProductObj", filters=[("_id", "IN", ["none"])]))  # token fetched before
    counting_hook.pages.clear()
    before = fxiaoke.stats()["calls"].get(QUERY, 0)
    staged, by_order = run_extract(store, counting_hook, window(0, source="first_sync"))
    queries = fxiaoke.stats()["calls"].get(QUERY, 0) - before

    assert len(staged) == 250
    expected = Counter(ln["order_id"] for ln in lines)
    assert {oid: len(v) for oid, v in by_order.items()} == dict(expected)
    assert all(ln["product_code"] in codes for v in by_order.values() for ln in v)
    assert counting_hook.pages == Counter({"SalesOrderObj": 3, "SalesOrderProductObj": math.ceil(len(lines) / 100),
                                           "ProductObj": 1})
    # No extra query for voided orders or lines: the window query asks for every life_status value itself
    # (life_status IN …; whether a tenant's default query returns voided rows is unknown, issue 14)
    assert queries == 3 + math.ceil(len(lines) / 100) + 1


def test_an_incremental_window_gives_old_and_new_orders_all_their_lines(fxiaoke, counting_hook, store):
    """New orders get their lines from the changed-lines stream; an old order edited in the window, and an old
    order of which only one line changed, get every line (also the unchanged ones) by order id."""
    p = products(fxiaoke)
    acc = account(1)
    start = BASE_MS + 10 * DAY
    old_edited = order(1, acc["_id"], create_time=BASE_MS, last_modified_time=start + 5)
    old_line_changed = order(2, acc["_id"], create_time=BASE_MS, last_modified_time=BASE_MS)
    new = order(3, acc["_id"], create_time=start + 7, last_modified_time=start + 7)
    untouched = order(4, acc["_id"], create_time=BASE_MS, last_modified_time=BASE_MS)
    lines = [
        line(old_edited["_id"], 1, p["MAT-0001"], last_modified_time=BASE_MS),
        line(old_edited["_id"], 2, p["MAT-0002"], last_modified_time=BASE_MS),
        line(old_line_changed["_id"], 1, p["MAT-0003"], last_modified_time=BASE_MS),
        line(old_line_changed["_id"], 2, p["MAT-0004"], last_modified_time=start + 9),
        line(new["_id"], 1, p["MAT-0005"], create_time=start + 7, last_modified_time=start + 7),
        line(untouched["_id"], 1, p["MAT-0006"], last_modified_time=BASE_MS),
    ]
    seed(fxiaoke, [acc], [old_edited, old_line_changed, new, untouched], lines)
    staged, by_order = run_extract(store, counting_hook, window(start, start + DAY))

    assert sorted(o["_id"] for o in staged) == sorted([old_edited["_id"], old_line_changed["_id"], new["_id"]])
    got = {oid: sorted(ln["product_code"] for ln in v) for oid, v in by_order.items()}
    assert got == {old_edited["_id"]: ["MAT-0001", "MAT-0002"], old_line_changed["_id"]: ["MAT-0003", "MAT-0004"],
                   new["_id"]: ["MAT-0005"]}


def test_a_new_order_whose_lines_carry_older_stamps_still_gets_them(fxiaoke, counting_hook, store):
    """Lines stamped before their order was created (an import, a clock) are not in the stream: asked by id."""
    p = products(fxiaoke)
    acc = account(1)
    start = BASE_MS + 10 * DAY
    o = order(1, acc["_id"], create_time=start + 1, last_modified_time=start + 1)
    seed(fxiaoke, [acc], [o], [line(o["_id"], 1, p["MAT-0001"], last_modified_time=BASE_MS),
                               line(o["_id"], 2, p["MAT-0002"], last_modified_time=BASE_MS)])
    staged, by_order = run_extract(store, counting_hook, window(start, start + DAY))
    assert [x["_id"] for x in staged] == [o["_id"]]
    assert sorted(ln["product_code"] for ln in by_order[o["_id"]]) == ["MAT-0001", "MAT-0002"]


def test_orders_asked_by_id_get_every_line(fxiaoke, counting_hook, store):
    p = products(fxiaoke)
    acc = account(1)
    o1, o2 = order(1, acc["_id"]), order(2, acc["_id"])
    seed(fxiaoke, [acc], [o1, o2], [line(o1["_id"], 1, p["MAT-0001"]), line(o2["_id"], 1, p["MAT-0002"]),
                                    line(o2["_id"], 2, p["MAT-9999"])])
    staged, by_order = run_extract(store, counting_hook, window(0), ids=[o2["_id"]])
    assert [x["_id"] for x in staged] == [o2["_id"]]
    assert sorted(ln["product_code"] for ln in by_order[o2["_id"]]) == ["MAT-0002", "MAT-9999"]


# ---- prefetched: the background page reader ---------------------------------------------------------------
class Source:
    """Pages that take a while each, and notice if two are being produced at once."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.active = self.max_active = self.produced = 0
        self.lock = threading.Lock()
        self.threads: set[str] = set()

    def __iter__(self):
        for i in range(self.n):
            with self.lock:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            self.threads.add(threading.current_thread().name)
            time.sleep(0.02)
            with self.lock:
                self.active -= 1
            if i == self.fail_at:
                raise RuntimeError(f"page {i} failed")
            self.produced += 1
            yield [i]


def test_prefetched_overlaps_the_callers_work_with_the_next_page():
    from fxiaoke_k3cloud.flows.extract import prefetched

    src = Source(10)
    started = time.perf_counter()
    got = []
    for page in prefetched(src):
        time.sleep(0.02)  # the caller's work on the page (staging)
        got.extend(page)
    elapsed = time.perf_counter() - started
    assert got == list(range(10))
    assert src.max_active == 1 and src.threads == {"prefetch-pages"}
    assert elapsed < 0.34  # sequential would be 10 × (0.02 + 0.02) = 0.40 s


def test_prefetched_raises_the_readers_error_in_the_caller():
    from fxiaoke_k3cloud.flows.extract import prefetched

    got = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        for page in prefetched(Source(10, fail_at=3)):
            got.extend(page)
    assert got == [0, 1, 2]


def test_prefetched_stops_reading_when_the_caller_stops():
    from fxiaoke_k3cloud.flows.extract import prefetched

    src = Source(100)
    with pytest.raises(ValueError):
        for page in prefetched(src):
            if page == [2]:
                raise ValueError("caller failed")
    produced = src.produced
    time.sleep(0.1)
    assert src.produced == produced <= 5  # at most the page in hand and the ones queued; then nothing more
    assert not any(t.name == "prefetch-pages" for t in threading.enumerate())
