"""Audit-store queries the flows need beyond the store's own API."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit.schema import id_map, sync_record

RETRY_LIMIT = 1000  # earlier failures re-read per run at most (the rest wait for the next run)


def failed_source_ids(store: Any, flow: str, entity: str, limit: int = RETRY_LIMIT) -> list[str]:
    """Source ids whose most recent outcome in this flow is ``failed`` (worth retrying: the cause may have cleared).

    Dry-run rows are not outcomes: a dry run after a failure must not hide the failure from the next run.
    """
    dry_run = sa.and_(sync_record.c.outcome == "skipped", sync_record.c.reason.like("dry run:%"))
    latest = (
        sa.select(sync_record.c.source_id, sa.func.max(sync_record.c.id).label("last_id"))
        .where(sync_record.c.flow == flow, sync_record.c.entity == entity, sa.not_(dry_run))
        .group_by(sync_record.c.source_id)
        .subquery()
    )
    query = (
        sa.select(sync_record.c.source_id)
        .join(latest, sync_record.c.id == latest.c.last_id)
        .where(sync_record.c.outcome == "failed")
        .order_by(sync_record.c.id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(query)]


def run_records(store: Any, run_pk: int) -> list[dict[str, Any]]:
    """Every ``sync_record`` row of one run, in the order they were written."""
    query = sa.select(sync_record).where(sync_record.c.run == run_pk).order_by(sync_record.c.id)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def id_map_rows(store: Any, entity: str) -> list[dict[str, Any]]:
    """Every id map row of ``entity`` (source id, target id and number, payload hash), by source id."""
    query = (sa.select(id_map.c.source_id, id_map.c.target_id, id_map.c.target_number, id_map.c.payload_hash,
                       id_map.c.source_modified_ms)
             .where(id_map.c.entity == entity).order_by(id_map.c.source_id))
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
