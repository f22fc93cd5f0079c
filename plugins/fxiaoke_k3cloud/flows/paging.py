"""Paging helpers the steps share: CRM reads by id in ``IN`` batches, a page prefetched while the last one is staged,
one copy per record, and fixed-size chunks."""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

ID_BATCH = 100  # ids per `IN` query (the query API's page limit)
T = TypeVar("T")


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """``items`` ``size`` at a time."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def pages_in(hook: Any, api: str, field: str, values: Iterable[Any], fields: Sequence[str] | None = None, *,
             include_voided: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Pages of ``api`` records whose ``field`` is one of ``values`` (``IN`` queries of ID_BATCH values).

    Up to the hook's ``reads_in_flight`` batches are read at once (the hook caps its requests in flight at
    that figure whatever the batches' own pages do); pages come in batch order.

    :param include_voided: voided rows too, asked for explicitly (a tenant's default query may leave them out).
    """
    values = sorted({str(v) for v in values if v})
    batches = [values[start : start + ID_BATCH] for start in range(0, len(values), ID_BATCH)]

    def batch(ids: list[str]) -> Iterator[list[dict[str, Any]]]:
        flt = [{"field_name": field, "operator": "IN", "field_values": ids}]
        return hook.query_records(api, filters=flt, fields=fields, include_voided=include_voided)

    n = int(getattr(hook, "reads_in_flight", 1) or 1) if len(batches) > 1 else 1
    if n <= 1:
        for ids in batches:
            yield from batch(ids)
        return
    for pages in in_order(lambda ids: list(batch(ids)), batches, n):
        yield from pages


def in_order(fn: Callable[[Any], T], items: Sequence[Any], n: int) -> Iterator[T]:
    """``fn(item)`` for every item, up to ``n`` at once in threads, yielded in the items' order.

    An error is raised in the caller (at its item's turn); if the caller stops early, items not started are
    dropped and the running ones finish before this returns.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, n), thread_name_prefix="in-order")
    pending: deque[Future[T]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > n:  # n running, one queued: the next starts as soon as one ends
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def prefetched(pages: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``pages``, pulled by a background thread up to ``depth`` items ahead of the caller.

    While the caller stages page n, the thread already waits for page n+1's answer: API latency and
    database work overlap. The thread is the only one iterating ``pages``; a hook behind it has at most its
    ``reads_in_flight`` query requests out (its cursor queries read ahead by themselves). An error
    in the thread is raised in the caller; if the caller stops early, the thread finishes the call it is in
    and stops before the next one (this function returns only once it has). The thread starts with the first
    item asked for; :class:`Prefetched` starts it at once.
    """
    yield from Prefetched(pages, depth)


class Prefetched:
    """:func:`prefetched` whose thread starts when the object is made (the first items are fetched while the
    caller does other work); iterate it once, or :meth:`close` it (waits for the thread)."""

    def __init__(self, pages: Iterable[T], depth: int = 1) -> None:
        self._items: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._pages = pages
        self._worker = threading.Thread(target=self._produce, name="prefetch-pages", daemon=True)
        self._worker.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        iterator = iter(self._pages)
        try:
            for page in iterator:
                if not self._put(("page", page)):
                    return
            self._put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread and raised there
            self._put(("error", exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        try:
            while True:
                kind, value = self._items.get()
                if kind == "page":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        self._worker.join()


def dedupe_latest(records: Iterable[dict[str, Any]], modified_field: str) -> list[dict[str, Any]]:
    """One record per `_id`: the most recently modified (then highest version) copy wins."""
    best: dict[str, dict[str, Any]] = {}

    def rank(r: dict[str, Any]) -> tuple[int, int]:
        try:
            version = int(r.get("version") or 0)
        except (TypeError, ValueError):
            version = 0
        return int(r.get(modified_field) or 0), version

    for record in records:
        rid = str(record["_id"])
        if rid not in best or rank(record) >= rank(best[rid]):
            best[rid] = record
    return list(best.values())


def new_records(page: list[dict[str, Any]], seen: set[str]) -> list[dict[str, Any]]:
    """The page's records not staged yet (marks them as seen)."""
    out = []
    for record in dedupe_latest(page, "last_modified_time"):
        rid = str(record["_id"])
        if rid not in seen:
            seen.add(rid)
            out.append(record)
    return out
