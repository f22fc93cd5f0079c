"""The re-drive queue: which CRM records to push again, read from the audit store.

Nothing is enqueued anywhere: the audit store already knows every record's latest outcome, the parked
table knows what waits for a dependency, and a reconciliation's ``sync_drift`` rows name records that
disagree with K3Cloud. This module turns those into lists of source ids, and keeps the per-record count
of re-drive attempts that decides quarantine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit.schema import sync_drift, sync_record, sync_run
from fxiaoke_k3cloud.flows.specs import FlowSpec

#: Outcomes that mean "the record is in K3Cloud as the CRM has it": they end a run of failed attempts.
GOOD_OUTCOMES = ("created", "updated", "unchanged", "released")
#: Latest outcomes the queue can select from ``sync_record`` (``parked`` comes from the parked table).
RECORD_QUEUE_OUTCOMES = ("failed", "rejected")
QUEUE_OUTCOMES = (*RECORD_QUEUE_OUTCOMES, "parked")
#: Run type of the flow runs a re-drive opens (``sync_run.run_type``); attempts are counted on these.
REDRIVE_RUN_TYPE = "redrive"
#: Drift kinds that name a source record a re-drive can repair (an ERP-only document has no CRM record; an extra
#: CRM record of a K3Cloud → CRM flow is for a person). ``missing_in_crm``: the source id is the K3Cloud FID.
REPAIRABLE_DRIFT = ("missing_in_erp", "field_difference", "amount_difference", "missing_in_crm")
#: A dry run records "skipped — dry run: would …" for every record; that says nothing about K3Cloud and must
#: not hide an earlier failure from the queue.
DRY_RUN_REASON = "dry run:%"


def _not_dry_run() -> Any:
    return sa.or_(sync_record.c.outcome != "skipped", sync_record.c.reason.is_(None),
                  sync_record.c.reason.not_like(DRY_RUN_REASON))


def _matches(text: str | None, needle: str | None) -> bool:
    return not needle or needle.lower() in (text or "").lower()


def queued_ids(store: Any, spec: FlowSpec, *, outcomes: Sequence[str], error_class: str | None = None,
               since: datetime | None = None, limit: int = 1000) -> list[str]:
    """Source ids waiting for a re-drive, oldest first.

    :param outcomes: any of ``failed``, ``rejected`` (by the record's latest outcome in the flow) and
        ``parked`` (parked or escalated in the parked table; quarantined ones are out of the loop).
    :param error_class: case-insensitive text the latest outcome's error class or reason (for parked
        records: the reason or the missing dependency) must contain.
    :param since: only records whose latest outcome (parked: last try) is at or after this moment.
    """
    unknown = set(outcomes) - set(QUEUE_OUTCOMES)
    if unknown:
        raise ValueError(f"outcomes {sorted(unknown)} cannot be re-driven; choose from {QUEUE_OUTCOMES}")
    picked: dict[str, datetime] = {}
    wanted = [o for o in outcomes if o in RECORD_QUEUE_OUTCOMES]
    if wanted:
        latest = (
            sa.select(sa.func.max(sync_record.c.id).label("last_id"))
            .where(sync_record.c.flow == spec.name, sync_record.c.entity == spec.entity, _not_dry_run())
            .group_by(sync_record.c.source_id)
            .subquery()
        )
        query = (
            sa.select(sync_record.c.source_id, sync_record.c.error_class, sync_record.c.reason,
                      sync_record.c.created_at)
            .join(latest, sync_record.c.id == latest.c.last_id)
            .where(sync_record.c.outcome.in_(wanted))
            .order_by(sync_record.c.id)
        )
        if since is not None:
            query = query.where(sync_record.c.created_at >= since)
        with store.engine.connect() as conn:
            for row in conn.execute(query):
                if _matches(row.error_class, error_class) or _matches(row.reason, error_class):
                    picked.setdefault(row.source_id, row.created_at)
    if "parked" in outcomes:
        for item in store.list_parked(spec.entity, status=None, flow=spec.name):
            if item.status not in ("parked", "escalated"):
                continue
            if since is not None and item.last_tried_at < since:
                continue
            if _matches(item.reason, error_class) or _matches(item.missing, error_class):
                picked.setdefault(item.source_id, item.last_tried_at)
    return [sid for sid, _ in sorted(picked.items(), key=lambda kv: kv[1])][:limit]


def drift_ids(store: Any, drift_run: int, flow: str) -> dict[str, set[str]]:
    """CRM ids a reconciliation found drifted in ``flow``, by drift kind (repairable kinds only)."""
    query = (
        sa.select(sync_drift.c.kind, sync_drift.c.source_id)
        .where(sync_drift.c.drift_run == drift_run, sync_drift.c.flow == flow,
               sync_drift.c.kind.in_(REPAIRABLE_DRIFT), sync_drift.c.source_id.is_not(None))
        .order_by(sync_drift.c.id)
    )
    out: dict[str, set[str]] = {}
    with store.engine.connect() as conn:
        for kind, source_id in conn.execute(query):
            out.setdefault(kind, set()).add(source_id)
    return out


def drift_run_exists(store: Any, drift_run: int) -> bool:
    from fxiaoke_k3cloud.audit.schema import sync_drift_run

    with store.engine.connect() as conn:
        return conn.execute(sa.select(sync_drift_run.c.id).where(sync_drift_run.c.id == drift_run)).first() is not None


def redrive_attempts(store: Any, spec: FlowSpec, source_ids: Iterable[str]) -> dict[str, int]:
    """Re-drive runs since each record's last good outcome in which it ended failed or parked again.

    Counted per run (a record's last row in a run decides that run), so a task retry that reopens the
    same run does not count twice; scheduled flow runs retry failures too but do not use up the cap.
    """
    ids = sorted({str(i) for i in source_ids})
    counts = {sid: 0 for sid in ids}
    done: set[str] = set()
    seen: set[tuple[str, int]] = set()
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        query = (
            sa.select(sync_record.c.source_id, sync_record.c.run, sync_record.c.outcome, sync_run.c.run_type)
            .join(sync_run, sync_run.c.id == sync_record.c.run)
            .where(sync_record.c.flow == spec.name, sync_record.c.entity == spec.entity,
                   sync_record.c.source_id.in_(part), _not_dry_run())
            .order_by(sync_record.c.id.desc())
        )
        with store.engine.connect() as conn:
            for sid, run, outcome, run_type in conn.execute(query):
                if sid in done or (sid, run) in seen:
                    continue
                seen.add((sid, run))
                if outcome in GOOD_OUTCOMES:
                    done.add(sid)
                elif run_type == REDRIVE_RUN_TYPE and outcome in ("failed", "parked"):
                    counts[sid] += 1
    return counts


def plan_redrive(store: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Turn the ``sync_redrive`` params into one work item per flow: ids, where they came from, what to force.

    Precedence: ``from_drift_run`` (ids a reconciliation found drifted), then explicit ``ids`` (one flow),
    else the queue (latest outcome / parked status, filtered by ``outcomes``, ``error_class``, ``since``).
    Only queue items are subject to the quarantine cap: ids a person or a reconciliation chose are tried as
    asked.
    """
    from fxiaoke_k3cloud.errors import ConfigError
    from fxiaoke_k3cloud.flows.specs import flow_spec, redrive_flows
    from fxiaoke_k3cloud.flows.window import parse_moment

    flow = params.get("flow") or "all"
    known = redrive_flows()
    flows = known if flow == "all" else [flow]
    for name in flows:
        if name not in known:
            raise ConfigError(f"param 'flow'={name!r}: choose {', '.join(known)} or all")
    ids = params.get("ids") or []
    if isinstance(ids, str):
        ids = [i.strip() for i in ids.split(",") if i.strip()]
    ids = list(dict.fromkeys(str(i) for i in ids))
    limit = int(params.get("limit") or 1000)
    drift_run = params.get("from_drift_run")
    items: list[dict[str, Any]] = []
    if drift_run not in (None, ""):
        drift_run = int(drift_run)
        if not drift_run_exists(store, drift_run):
            raise ConfigError(f"param 'from_drift_run'={drift_run}: no such reconciliation (sync_drift_run.id)")
        for name in flows:
            kinds = drift_ids(store, drift_run, name)
            chosen = sorted(set().union(*kinds.values())) if kinds else []
            forced = sorted(kinds.get("field_difference", set()) | kinds.get("amount_difference", set()))
            items.append({"flow": name, "ids": chosen[:limit], "source": f"drift run {drift_run}",
                          "force_ids": forced, "capped": False})
        return items
    if ids:
        if flow == "all":
            raise ConfigError(f"param 'ids' needs one flow: set 'flow' to one of {', '.join(known)}")
        force = bool(params.get("force"))
        return [{"flow": flow, "ids": ids, "source": "ids", "force_ids": ids if force else [], "capped": False}]
    since = parse_moment(params["since"], name="since") if params.get("since") else None
    outcomes = params.get("outcomes") or ["failed", "parked"]
    for name in flows:
        chosen = queued_ids(store, flow_spec(name), outcomes=outcomes, error_class=params.get("error_class") or None,
                            since=since, limit=limit)
        items.append({"flow": name, "ids": chosen, "source": "queue", "force_ids": [], "capped": True})
    return items
