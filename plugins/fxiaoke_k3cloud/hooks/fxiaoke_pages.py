"""A cursor query's pages with several requests in flight, yielded in order; one at a time when N is 1.

The documented deep paging (:class:`.fxiaoke_query.IdCursorPaginator`: order by ``_id``, offset 0, ``_id GT
<last>``) needs each page's last ``_id`` before it can ask for the next one, so a query waits one round trip
per page. The gateway limits the rate (the throttle), not concurrency, so here a query reads *blocks*:

- a block's first request is the cursor request as always (offset 0, ``find_explicit_total_num``); its total T
  says how many rows follow the cursor;
- the block's other pages are asked for by offset (limit, 2 × limit, … while offset + limit ≤ ``BLOCK_ROWS``
  ≤ 10000, the API's cap, spec §3.4) under the same filters, cursor and ``_id`` order, up to N at once, each
  asking for the total too; pages are yielded strictly in order;
- the next block starts from the last ``_id`` of this one. Undisturbed, the calls are today's: ceil(T / limit),
  no empty call after a full last page.

Offsets are safe only while the filtered set stays the same. A row that leaves it (edited out of the window,
deleted) or enters it while the block is read shifts the later offsets, and changes the total: a page answered
with another total than the block's first answer (or not the length the total implies, or not following the
last row yielded in ``_id`` order) is dropped with every page after it, and the rest of the block is read by the
``_id`` cursor from the last row yielded, one request at a time. Every page yielded before that answered with the
first total: for a window read (rows only leave it: an edit stamps a time after the window, a void is read in
the folded filter, a delete removes the row) an equal total is the same set, so those pages are exact and the
cursor re-read skips nothing and repeats nothing. A set that both lost and gained a row between two answers
keeps its total; a page shifted that way repeats a row (caught by the order check) or skips one — the same
blind spot the sequential cursor has for a row entering behind it, and read by the next run's window.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterator

from fxiaoke_k3cloud.hooks.fxiaoke_query import MAX_OFFSET, IdCursorPaginator

#: Rows a block reads by offset from its cursor (its last page ends at offset + limit ≤ this ≤ the API's cap).
BLOCK_ROWS = MAX_OFFSET

#: ``fetch(search_query_info, with_total)`` → the answer's ``data`` (dataList, limit, total).
FetchPage = Callable[[dict[str, Any], bool], dict[str, Any]]


class CursorPages:
    """The pages of one cursor query (iterate once). ``pages``, ``rows`` and ``fallbacks`` count what it did.

    :param n: requests in flight at most (1 = the sequential cursor, exactly as before).
    :param after_id: start after this ``_id`` (a read resumed).
    :param max_rows: stop after the page that reaches this many rows, with no request beyond it.
    """

    def __init__(self, fetch: FetchPage, filters: list[dict[str, Any]], page_size: int, n: int,
                 log: logging.Logger, name: str = "query", *, after_id: str | None = None,
                 max_rows: int | None = None) -> None:
        self.fetch = fetch
        self.filters = filters
        self.page_size = page_size
        self.n = max(1, int(n))
        self.log = log
        self.name = name
        self.max_rows = max_rows
        self.last_id: str | None = after_id
        self.done = False
        self.pages = 0
        self.rows = 0
        self.fallbacks = 0  # blocks whose offsets shifted and were finished by the cursor
        self._pool: ThreadPoolExecutor | None = None

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        if self.n == 1:
            yield from self._sequential()
            return
        try:
            while not self.done:
                yield from self._block()
        finally:
            if self._pool is not None:  # also when the caller stopped early: nothing more is sent
                self._pool.shutdown(wait=True, cancel_futures=True)

    # ---- one block -------------------------------------------------------------------------------------------
    def _block(self) -> Iterator[list[dict[str, Any]]]:
        cursor = self.last_id
        data = self.fetch(self._search(cursor, 0, self.page_size), True)
        records = data.get("dataList") or []
        limit = _limit(data, self.page_size)
        self._take(records, limit, first_of_block=True)
        total = data.get("total")
        if (not records or len(records) < limit or (isinstance(total, int) and 0 < total <= len(records))
                or self._enough()):
            self.done = True
            if records:
                yield records
            return
        if not isinstance(total, int) or total <= 0:  # no total: nothing tells where the offsets end
            yield records
            yield from self._sequential(first_total=False)
            return
        if self._pool is None:  # started only when a query has a second page
            self._pool = ThreadPoolExecutor(max_workers=self.n, thread_name_prefix="fxiaoke-pages")
        pool = self._pool
        wanted = min(max(1, BLOCK_ROWS // limit), math.ceil(total / limit))  # pages of this block
        if self.max_rows is not None:  # no request beyond the page that reaches max_rows
            wanted = min(wanted, 1 + math.ceil((self.max_rows - self.rows) / limit))
        pending: deque[Future[dict[str, Any]]] = deque()
        sent = 1

        def send() -> None:
            nonlocal sent
            pending.append(pool.submit(self.fetch, self._search(cursor, sent * limit, limit), True))
            sent += 1

        while sent < wanted and len(pending) < self.n:
            send()
        yield records  # after the sends: requests are in flight while the caller works on a page
        for page in range(1, wanted):
            data = pending.popleft().result()  # a worker's error is raised here, in the caller
            records = data.get("dataList") or []
            expected = min(limit, total - page * limit)
            if data.get("total") != total or len(records) != expected or not self._follows(records):
                for future in pending:
                    future.cancel()
                self.fallbacks += 1
                self.log.info("%s: the result changed while paging (total %s, then %s on page %s of a block); the "
                              "rest of the block is read by the _id cursor", self.name, total, data.get("total"),
                              page + 1)
                yield from self._sequential(max_pages=wanted - page)
                return
            if sent < wanted:
                send()
            self._take(records, limit)
            yield records
        if total <= wanted * limit or self._enough():
            self.done = True

    def _enough(self) -> bool:
        return self.max_rows is not None and self.rows >= self.max_rows

    def _follows(self, records: list[dict[str, Any]]) -> bool:
        """The page continues the rows yielded: ``_id`` ascending, after the last one."""
        ids = [str(r.get("_id") or "") for r in records]
        return all(ids) and (self.last_id is None or ids[0] > self.last_id) and all(a < b for a, b in zip(ids, ids[1:]))

    # ---- the sequential cursor (N = 1, and a disturbed block's rest) -------------------------------------------
    def _sequential(self, *, max_pages: int | None = None, first_total: bool = True) -> Iterator[list[dict[str, Any]]]:
        """Pages by the ``_id`` cursor from the last row yielded, one request at a time (at most ``max_pages``;
        ``done`` once the data ended). Its first request asks for the total (``first_total``), which saves the
        empty call after a full last page. Rows that enter the result while we page have a modified time after
        the window and are read by the next run."""
        paginator = IdCursorPaginator(self.page_size, last_id=self.last_id)
        total: int | None = None
        rows = 0
        while paginator.has_next_page and (max_pages is None or paginator.pages < max_pages):
            first = paginator.pages == 0 and first_total
            data = self.fetch(paginator.update_request(self.filters), first)
            records = data.get("dataList") or []
            paginator.update_state(records, data.get("limit"))
            if first and isinstance(data.get("total"), int) and data["total"] > 0:
                total = data["total"]
            rows += len(records)
            if total is not None and rows >= total:
                paginator.has_next_page = False
            self.pages += 1
            self.rows += len(records)
            self.last_id = paginator.last_id
            if self._enough():
                paginator.has_next_page = False  # the caller resumes after the last _id (no call beyond)
            if records:
                yield records
        if not paginator.has_next_page:
            self.done = True

    def _take(self, records: list[dict[str, Any]], limit: int, *, first_of_block: bool = False) -> None:
        if first_of_block:  # the cursor request: the paginator refuses a server that ignored the cursor
            paginator = IdCursorPaginator(self.page_size, last_id=self.last_id)
            paginator.update_state(records, limit)
            self.last_id = paginator.last_id
        elif records:
            self.last_id = str(records[-1]["_id"])
        self.pages += 1
        self.rows += len(records)

    def _search(self, cursor: str | None, offset: int, limit: int) -> dict[str, Any]:
        search = IdCursorPaginator(limit, last_id=cursor).update_request(self.filters)
        search["offset"] = offset
        return search


def _limit(data: dict[str, Any], asked: int) -> int:
    """The page size the server says it applied (§9.7), else the one asked for."""
    limit = data.get("limit")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else asked
