"""Extract: the CRM records of a window through the hook's stable `_id`-cursor paging, streamed to the stage.

Pages go to the staging table as they arrive (memory does not grow with the window). A record is staged
once: the `_id` cursor inside a fixed window never repeats one, and the extra reads (earlier failures,
parked records, orders whose lines changed) skip ids already staged.

Pages are fetched one ahead in a background thread (:func:`prefetched`): the next page's HTTP round trip
overlaps with staging the current one, while the hook still has one request in flight at a time.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Iterable, Iterator, Sequence, TypeVar

import sqlalchemy as sa

from fxiaoke_k3cloud.audit.schema import sync_record
from fxiaoke_k3cloud.flows.queries import RETRY_LIMIT, failed_source_ids
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.window import Window

log = logging.getLogger(__name__)

ID_BATCH = 100  # ids per `IN` query (the query API's page limit)
# The mapping engine's reason for a record held by its life_status (mapping/engine.py, ``_apply_life_status``).
HELD_MARK = "is held until it becomes"
T = TypeVar("T")


def pages_in(hook: Any, api: str, field: str, values: Iterable[Any], fields: Sequence[str] | None = None, *,
             include_voided: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Pages of ``api`` records whose ``field`` is one of ``values`` (``IN`` queries of ID_BATCH values).

    :param include_voided: voided rows too, asked for explicitly (a tenant's default query may leave them out).
    """
    values = sorted({str(v) for v in values if v})
    for start in range(0, len(values), ID_BATCH):
        flt = [{"field_name": field, "operator": "IN", "field_values": values[start : start + ID_BATCH]}]
        yield from hook.query_records(api, filters=flt, fields=fields, include_voided=include_voided)


def held_source_ids(store: Any, flow: str, entity: str, limit: int = RETRY_LIMIT) -> list[str]:
    """Source ids whose most recent outcome is *held* (skipped for a life_status such as ``under_review``).

    Whether finishing a CRM approval moves ``last_modified_time`` is not documented; a record approved after
    its window must not wait for its next edit, so held records are read again by id until their status moves.
    """
    latest = (
        sa.select(sync_record.c.source_id, sa.func.max(sync_record.c.id).label("last_id"))
        .where(sync_record.c.flow == flow, sync_record.c.entity == entity,
               sa.not_(sa.and_(sync_record.c.outcome == "skipped", sync_record.c.reason.like("dry run:%"))))
        .group_by(sync_record.c.source_id)
        .subquery()
    )
    query = (
        sa.select(sync_record.c.source_id)
        .join(latest, sync_record.c.id == latest.c.last_id)
        .where(sync_record.c.outcome == "skipped", sync_record.c.reason.like(f"%{HELD_MARK}%"))
        .order_by(sync_record.c.id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(query)]


def retry_source_ids(spec: FlowSpec, store: Any) -> list[str]:
    """The records every run of a flow reads again by id: parked ones (their dependency may have landed), earlier
    failures (the cause may have cleared) and held ones (their approval may have finished), oldest first."""
    parked = [p.source_id for p in store.list_parked(spec.entity, status=None) if p.status in ("parked", "escalated")]
    again = [*parked, *failed_source_ids(store, spec.name, spec.entity), *held_source_ids(store, spec.name, spec.entity)]
    return list(dict.fromkeys(again))


def prefetched(pages: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``pages``, pulled by a background thread up to ``depth`` items ahead of the caller.

    While the caller stages page n, the thread already waits for page n+1's answer: API latency and
    database work overlap. The thread is the only one iterating ``pages``, so a hook behind it still sends
    one request at a time — provided the caller makes no calls of its own on that hook meanwhile. An error
    in the thread is raised in the caller; if the caller stops early, the thread finishes the call it is in
    and stops before the next one (this function returns only once it has).
    """
    items: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(pages)
        try:
            for page in iterator:
                if not put(("page", page)):
                    return
            put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread and raised there
            put(("error", exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="prefetch-pages", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "page":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join()


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


def extract_records(spec: FlowSpec, hook: Any, store: Any, stage: Any, run_pk: int, window: Window, *,
                    ids: list[str]) -> tuple[int, int]:
    """Stage the records to sync this run; returns (records staged, earlier failures re-read).

    With ``ids`` only those records are read. Otherwise the window is read, and records whose last outcome
    was ``failed`` (an API or K3Cloud-side problem that may have cleared) or *held* (in approval; see
    :func:`held_source_ids`) are read again by id, so they are retried by the next run instead of waiting for
    the next CRM edit: nothing accepted is lost. Window runs also look for synced records deleted in the CRM
    (:func:`check_presence`, at most hourly).
    """
    stage.clear_kind(run_pk, "raw")
    seen: set[str] = set()
    count = 0
    if ids:
        for page in prefetched(pages_in(hook, spec.source_object, "_id", ids, include_voided=True)):
            count += stage.append(run_pk, "raw", new_records(page, seen))
        missing = sorted(set(ids) - seen)
        if missing:
            log.warning("%s: %s requested id(s) not found in Fxiaoke: %s", spec.name, len(missing),
                        ", ".join(missing[:20]))
        return count, 0
    for page in prefetched(hook.query_window(spec.source_object, spec.modified_field, window.start_ms,
                                             window.end_ms)):
        count += stage.append(run_pk, "raw", new_records(page, seen))
    retry_ids = [sid for sid in retry_source_ids(spec, store) if sid not in seen]
    for page in prefetched(pages_in(hook, spec.source_object, "_id", retry_ids, include_voided=True)):
        count += stage.append(run_pk, "raw", new_records(page, seen))
    check_presence(spec, hook, store, stage, run_pk)
    return count, len(retry_ids)


def check_presence(spec: FlowSpec, hook: Any, store: Any, stage: Any, run_pk: int) -> int:
    """Stage the synced records deleted in the CRM since (at most hourly; see :mod:`.source_changes`)."""
    from datetime import datetime, timezone

    from fxiaoke_k3cloud.flows.source_changes import find_deleted

    return find_deleted(spec, hook, store, stage, run_pk, int(datetime.now(timezone.utc).timestamp() * 1000))


FUTURE_TOLERANCE_MS = 10 * 60 * 1000  # clock skew we accept before calling a modified time "in the future"
FUTURE_CHECK_EVERY_MS = 60 * 60 * 1000  # one extra query per flow and hour, not per run


def report_future_records(spec: FlowSpec, hook: Any, store: Any, run_pk: int, now_ms: int) -> int:
    """Reject (with a reason) CRM records whose modified time is in the future.

    Every window ends at the run time, so such a record (clock skew, a bad import) would never be
    extracted and never reported. Checked once an hour per flow; returns how many were found.
    """
    from fxiaoke_k3cloud.audit import RecordOutcome
    from fxiaoke_k3cloud.flows.window import from_ms

    key = f"{spec.name}:future-check"
    last = store.get_watermark(key)
    if last is not None and now_ms - last < FUTURE_CHECK_EVERY_MS:
        return 0
    flt = [{"field_name": spec.modified_field, "operator": "GT", "field_values": [now_ms + FUTURE_TOLERANCE_MS]}]
    rows = []
    for page in hook.query_records(spec.source_object, filters=flt, fields=["_id", "name", spec.modified_field]):
        for record in page:
            when = from_ms(int(record[spec.modified_field])).isoformat()
            name = str(record.get("name") or "")[:60]
            rows.append(RecordOutcome(
                flow=spec.name, entity=spec.entity, source_id=str(record["_id"]), source_name=name,
                outcome="rejected", error_class="FutureModifiedTime",
                reason=f"{spec.source_object} {record['_id']}/{name!r}: {spec.modified_field} {when} is in the "
                       "future, so the record never falls into a sync window; correct the record (or the CRM "
                       "clock), then save it again"))
    store.record_outcomes(run_pk, rows)
    store.set_watermark(key, now_ms, None)
    for row in rows[:20]:
        log.warning("%s", row.reason)
    return len(rows)
