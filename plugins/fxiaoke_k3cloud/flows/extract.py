"""Extract: the CRM records of a window through the hook's stable `_id`-cursor paging, streamed to the stage.

Pages go to the staging table as they arrive (memory does not grow with the window). A record is staged
once: the `_id` cursor inside a fixed window never repeats one, and the extra reads (earlier failures,
parked records, orders whose lines changed) skip ids already staged.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Iterator

from fxiaoke_k3cloud.flows.queries import failed_source_ids
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.window import Window

log = logging.getLogger(__name__)

ID_BATCH = 100  # ids per `IN` query (the query API's page limit)


def pages_in(hook: Any, api: str, field: str, values: Iterable[Any]) -> Iterator[list[dict[str, Any]]]:
    """Pages of ``api`` records whose ``field`` is one of ``values`` (``IN`` queries of ID_BATCH values)."""
    values = sorted({str(v) for v in values if v})
    for start in range(0, len(values), ID_BATCH):
        flt = [{"field_name": field, "operator": "IN", "field_values": values[start : start + ID_BATCH]}]
        yield from hook.query_records(api, filters=flt)


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
    was ``failed`` (an API or K3Cloud-side problem that may have cleared) are read again by id, so a failure
    is retried by the next run instead of waiting for the next CRM edit: nothing accepted is lost.
    """
    stage.clear_kind(run_pk, "raw")
    seen: set[str] = set()
    count = 0
    if ids:
        for page in pages_in(hook, spec.source_object, "_id", ids):
            count += stage.append(run_pk, "raw", new_records(page, seen))
        missing = sorted(set(ids) - seen)
        if missing:
            log.warning("%s: %s requested id(s) not found in Fxiaoke: %s", spec.name, len(missing),
                        ", ".join(missing[:20]))
        return count, 0
    for page in hook.query_window(spec.source_object, spec.modified_field, window.start_ms, window.end_ms):
        count += stage.append(run_pk, "raw", new_records(page, seen))
    retry_ids = [sid for sid in failed_source_ids(store, spec.name, spec.entity) if sid not in seen]
    for page in pages_in(hook, spec.source_object, "_id", retry_ids):
        count += stage.append(run_pk, "raw", new_records(page, seen))
    return count, len(retry_ids)


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
