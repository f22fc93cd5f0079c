"""Echoes: a flow's own write-back to the CRM must not come back as a change to sync.

The write-back step (:mod:`.writeback`) updates CRM records (the K3Cloud number and status), and every CRM write
moves the record's ``last_modified_time`` (spec §8.8). Without more, the flow's next window reads each
written-back record again: wasted reads, a re-map, a re-check in K3Cloud.

* **Remembered.** The CRM's update answer carries only ``dataId`` (spec §3.7), so the write-back reads the new
  time back with one ``_id IN`` query per chunk of updated records (≤ 100, the chunk it read before updating;
  never a call per record), and keeps it as ``sync_write_back.echo_ms`` (:func:`read_back`).
* **Only when it is ours alone.** The time is kept only when nothing else can hide behind it: the record as
  read before the update is in a state the flow took in (its time is the one the id map recorded when the
  record was last written to K3Cloud, ``id_map.source_modified_ms``, or our previous echo), and the read-back
  ``version`` is the one read before plus one. ``version`` is a string counter on every record
  (spec §4.1) that every write bumps (§8.8); that the step is exactly one is our assumption, and a CRM that
  counts otherwise only loses the skip, never an edit. Otherwise — a user edited the record since it was last synced
  (also between the extract and the write-back, or unseen by the extract for the index lag), a stale index
  answered, or the CRM left the record out — no echo is kept and the next run reads the record as before. No
  clock is compared: only times the CRM itself reported.
* **Skipped.** The read of an everyday (watermark) window — :func:`.extract.extract_records` and every flow's
  own ``extract`` hook, e.g. the orders' — drops a record whose ``last_modified_time`` still equals its echo
  (:class:`Echoes`); one audit-store query per run fetches the echoes inside the window. A later user edit has a
  later time, so it is synced; a void moves the time too. Records read by id (parked, failed, held, ``ids``
  runs, reconciliation) are never skipped.

Driven by the mapping: a flow whose mapping has a ``write_back:`` block gets it, no flow names here.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa

from fxiaoke_k3cloud.audit.schema import sync_write_back
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.specs import FlowSpec

log = logging.getLogger(__name__)

MODIFIED = "last_modified_time"
VERSION = "version"
READ_FIELDS = (MODIFIED, VERSION)  # what the write-back's chunk read asks for besides its own fields
SKIPPING_WINDOWS = ("watermark",)  # window sources (flows/window.py) whose read skips echoes


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Echoes:
    """The echoes of one flow inside one window: ``source id → echo_ms``; :meth:`drop` filters a page."""

    def __init__(self, by_id: Mapping[str, int] | None = None, field: str = MODIFIED) -> None:
        self.by_id = dict(by_id or {})
        self.field = field
        self.skipped = 0

    @classmethod
    def for_window(cls, spec: FlowSpec, store: Any, window: Any) -> "Echoes":
        """The echoes of ``spec``'s records inside ``window`` (``start ≤ echo_ms < end``).

        None without a ``write_back:`` block, and none unless the window is the everyday one (``watermark``):
        a full resync, a backfill or a ``since``/``until`` run asks for every record of its window again (e.g.
        after a mapping change), echoes included.
        """
        if window.source not in SKIPPING_WINDOWS or getattr(flow_mapping(spec), "write_back", None) is None:
            return cls(field=spec.modified_field)
        wb = sync_write_back
        query = sa.select(wb.c.source_id, wb.c.echo_ms).where(
            wb.c.entity == spec.entity, wb.c.echo_ms >= window.start_ms, wb.c.echo_ms < window.end_ms)
        with store.engine.connect() as conn:
            return cls({str(r.source_id): int(r.echo_ms) for r in conn.execute(query)}, spec.modified_field)

    def drop(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records that are not an echo of our own write-back (a changed time is a real change)."""
        if not self.by_id:
            return list(records)
        kept = []
        for record in records:
            echo = self.by_id.get(str(record.get("_id")))
            if echo is not None and _int(record.get(self.field)) == echo:
                self.skipped += 1
            else:
                kept.append(record)
        return kept

    def filtered(self, pages: Iterable[list[dict[str, Any]]]) -> Iterable[list[dict[str, Any]]]:
        for page in pages:
            yield self.drop(page)

    def log(self, spec: FlowSpec) -> None:
        if self.skipped:
            log.info("%s: %s record(s) skipped: their only change is our own write-back (echo)", spec.name,
                     self.skipped)


def read_back(fx: Any, obj: str, before: Mapping[str, Mapping[str, Any]], updated: Sequence[str],
              processed: Mapping[str, Iterable[int | None]]) -> dict[str, int]:
    """``source id → echo_ms`` for the records just updated, from one ``_id IN`` query (≤ 100 ids).

    :param before: the records as read before the update (with ``last_modified_time`` and ``version``).
    :param processed: per source id, the times of the states the flow took in (the id map's
        ``source_modified_ms``, the previous echo): a record read before the update at another time held a change
        the flow has not synced, so its new time is not kept as an echo (the next run must read it).
    """
    def taken_in(sid: str) -> bool:
        ms = _int(before.get(sid, {}).get(MODIFIED))
        return ms is not None and ms in {_int(t) for t in processed.get(sid, ())}

    clean = [sid for sid in updated if taken_in(sid)]
    if not clean:
        return {}
    out: dict[str, int] = {}
    for page in fx.query_records(obj, [("_id", "IN", list(clean))], fields=["_id", *READ_FIELDS]):
        for rec in page:
            sid, ms = str(rec.get("_id")), _int(rec.get(MODIFIED))
            was, now = _int(before.get(sid, {}).get(VERSION)), _int(rec.get(VERSION))
            if ms is None or sid not in before:
                continue
            if was is not None and now is not None and now != was + 1:
                continue  # another write besides ours (or a stale index): not only our echo
            out[sid] = ms
    return out
