"""Paging helpers the steps share: CRM reads by id in ``IN`` batches, a page prefetched while the last one is staged,
one copy per record, and fixed-size chunks."""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterable, Iterator, Sequence, TypeVar

ID_BATCH = 100  # ids per `IN` query (the query API's page limit)
T = TypeVar("T")


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """``items`` ``size`` at a time."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def pages_in(hook: Any, api: str, field: str, values: Iterable[Any], fields: Sequence[str] | None = None, *,
             include_voided: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Pages of ``api`` records whose ``field`` is one of ``values`` (``IN`` queries of ID_BATCH values).

    :param include_voided: voided rows too, asked for explicitly (a tenant's default query may leave them out).
    """
    values = sorted({str(v) for v in values if v})
    for start in range(0, len(values), ID_BATCH):
        flt = [{"field_name": field, "operator": "IN", "field_values": values[start : start + ID_BATCH]}]
        yield from hook.query_records(api, filters=flt, fields=fields, include_voided=include_voided)


def prefetched(pages: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``pages``, pulled by a background thread up to ``depth`` items ahead of the caller.

    While the caller stages page n, the thread already waits for page n+1's answer: API latency and
    database work overlap. The thread is the only one iterating ``pages``, so a hook behind it still sends
    one request at a time — provided the caller makes no calls of its own on that hook meanwhile. An error
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
