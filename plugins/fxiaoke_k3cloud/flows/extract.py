"""Extract: the CRM records of a window through the hook's stable `_id`-cursor paging, streamed to the stage.

Pages go to the staging table as they arrive (memory does not grow with the window). A record is staged
once: the `_id` cursor inside a fixed window never repeats one, and the extra reads (earlier failures,
parked records, orders whose lines changed) skip ids already staged.

Pages are fetched one ahead in a background thread (:func:`prefetched`): the next page's HTTP round trip
overlaps with staging the current one, while the hook still has one request in flight at a time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import RecordOutcome
from fxiaoke_k3cloud.audit.schema import sync_record
from fxiaoke_k3cloud.flows.echoes import Echoes
from fxiaoke_k3cloud.flows.paging import ID_BATCH, dedupe_latest, new_records, pages_in, prefetched  # noqa: F401 - re-exported
from fxiaoke_k3cloud.flows.queries import RETRY_LIMIT, failed_source_ids
from fxiaoke_k3cloud.flows.source_changes import find_deleted
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.stream import CURSOR_KIND, WindowRead, hand_off
from fxiaoke_k3cloud.flows.window import Window, from_ms

log = logging.getLogger(__name__)

# The mapping engine's reason for a record held by its life_status (mapping/engine.py, ``_apply_life_status``).
HELD_MARK = "is held until it becomes"


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


def extract_records(spec: FlowSpec, hook: Any, store: Any, stage: Any, run_pk: int, window: Window, *,
                    ids: list[str], hand_off_rows: int | None = None) -> tuple[int, int]:
    """Stage the records to sync this run; returns (records staged, earlier failures re-read).

    With ``ids`` only those records are read. Otherwise the window is read, and records whose last outcome
    was ``failed`` (an API or K3Cloud-side problem that may have cleared) or *held* (in approval; see
    :func:`held_source_ids`) are read again by id, so they are retried by the next run instead of waiting for
    the next CRM edit: nothing accepted is lost. Window runs also look for synced records deleted in the CRM
    (:func:`check_presence`, at most hourly). A window record whose only change is the flow's own write-back
    is not staged (:mod:`.echoes`).

    :param hand_off_rows: read at most this many rows of the window here; a bigger window's cursor is staged
        (kind ``cursor``) and the load reads the rest while it writes (:mod:`.stream`).
    """
    stage.clear_kind(run_pk, "raw")
    stage.clear_kind(run_pk, CURSOR_KIND)
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
    echoes = Echoes.for_window(spec, store, window)
    read = WindowRead(hook, spec, window, max_rows=hand_off_rows)
    for page in echoes.filtered(prefetched(read.pages())):
        count += stage.append(run_pk, "raw", new_records(page, seen))
    echoes.log(spec)
    if read.stopped_early:
        hand_off(stage, run_pk, window, read.last_id, read.rows)
    retry_ids = [sid for sid in retry_source_ids(spec, store) if sid not in seen]
    for page in prefetched(pages_in(hook, spec.source_object, "_id", retry_ids, include_voided=True)):
        count += stage.append(run_pk, "raw", new_records(page, seen))
    check_presence(spec, hook, store, stage, run_pk)
    return count, len(retry_ids)


def check_presence(spec: FlowSpec, hook: Any, store: Any, stage: Any, run_pk: int) -> int:
    """Stage the synced records deleted in the CRM since (at most hourly; see :mod:`.source_changes`)."""
    return find_deleted(spec, hook, store, stage, run_pk, int(datetime.now(timezone.utc).timestamp() * 1000))


FUTURE_TOLERANCE_MS = 10 * 60 * 1000  # clock skew we accept before calling a modified time "in the future"
FUTURE_CHECK_EVERY_MS = 60 * 60 * 1000  # one extra query per flow and hour, not per run
#: A run that already sent this many Fxiaoke calls is a backlog run (a first sync, a big import): its hourly
#: future check is left due for the next run. Its one query would otherwise open a throttle window of its own
#: (100 calls / 20 s per path) and wait up to 20 s — measured 11.5 s of a 20,000-customer first sync.
FUTURE_CHECK_DEFER_CALLS = 50


def report_future_records(spec: FlowSpec, hook: Any, store: Any, run_pk: int, now_ms: int, *,
                          backlog: bool = False) -> int:
    """Reject (with a reason) CRM records whose modified time is in the future.

    Every window ends at the run time, so such a record (clock skew, a bad import) would never be
    extracted and never reported. Checked once an hour per flow; returns how many were found.

    :param backlog: the run hands a big window's rest to its load (:mod:`.stream`): deferred like a run that
        already sent many calls (its query would take a slot of the window the load's reads need).
    """
    key = f"{spec.name}:future-check"
    last = store.get_watermark(key)
    if last is not None and now_ms - last < FUTURE_CHECK_EVERY_MS:
        return 0
    if (backlog or hook.calls.total >= FUTURE_CHECK_DEFER_CALLS) and (last is None or now_ms - last < 2 * FUTURE_CHECK_EVERY_MS):
        # Deferred at most one hour past due, so a deployment whose every run is big still checks hourly-ish.
        if last is None:
            store.set_watermark(key, now_ms - FUTURE_CHECK_EVERY_MS, None)  # due from now
        log.info("%s: future-modified check left for the next run (this run already sent %s Fxiaoke calls)",
                 spec.name, hook.calls.total)
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
