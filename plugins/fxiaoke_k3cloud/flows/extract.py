"""Extract: the CRM records of a window through the hook's stable `_id`-cursor paging, deduplicated."""

from __future__ import annotations

import logging
from typing import Any, Iterable

from fxiaoke_k3cloud.flows.queries import failed_source_ids
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.window import Window

log = logging.getLogger(__name__)

ID_BATCH = 100  # ids per `_id IN` query (the query API's page limit)


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


def fetch_by_ids(spec: FlowSpec, hook: Any, ids: list[str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for start in range(0, len(ids), ID_BATCH):
        chunk = ids[start : start + ID_BATCH]
        flt = [{"field_name": "_id", "operator": "IN", "field_values": chunk}]
        for page in hook.query_records(spec.source_object, filters=flt):
            records.extend(page)
    return records


def extract_records(
    spec: FlowSpec, hook: Any, store: Any, window: Window, *, ids: list[str]
) -> tuple[list[dict[str, Any]], int]:
    """Records to sync this run, and how many of them are earlier failures being retried.

    With ``ids`` only those records are read. Otherwise the window is read, and records whose last outcome
    was ``failed`` (an API or K3Cloud-side problem that may have cleared) are read again by id, so a failure
    is retried by the next run instead of waiting for the next CRM edit: nothing accepted is lost.
    """
    if ids:
        records = fetch_by_ids(spec, hook, ids)
        missing = sorted(set(ids) - {str(r["_id"]) for r in records})
        if missing:
            log.warning("%s: %s requested id(s) not found in Fxiaoke: %s", spec.name, len(missing), ", ".join(missing[:20]))
        return dedupe_latest(records, spec.modified_field), 0
    records: list[dict[str, Any]] = []
    for page in hook.query_window(spec.source_object, spec.modified_field, window.start_ms, window.end_ms):
        records.extend(page)
    seen = {str(r["_id"]) for r in records}
    retry_ids = [sid for sid in failed_source_ids(store, spec.name, spec.entity) if sid not in seen]
    if retry_ids:
        records.extend(fetch_by_ids(spec, hook, retry_ids))
    return dedupe_latest(records, spec.modified_field), len(retry_ids)
