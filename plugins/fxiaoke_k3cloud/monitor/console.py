"""The console's questions and actions: records across flows, errors by cause, per-flow health, Ignore.

Reads go through ``AuditStore``'s engine; the one write, *Ignore*, goes through the store's own methods
(``quarantine``, ``start_run``/``record_outcomes``), the way the re-drive quarantines: a parked record's row
turns ``quarantined``; a failed or rejected one gets a ``skipped`` outcome of class ``Quarantined`` naming
who ignored it, when and why, which takes it out of the automatic retries and the re-drive queue.
A *Retry* is recorded as a console run naming who asked, when, and the Airflow run it started.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import AuditStore, RecordOutcome
from fxiaoke_k3cloud.audit.schema import id_map, parked, sync_record, sync_run
from fxiaoke_k3cloud.errors import MappingError
from fxiaoke_k3cloud.flows.specs import FLOWS, redrive_flows
from fxiaoke_k3cloud.mapping import load_mapping
from fxiaoke_k3cloud.monitor.queries import StoreUnavailable, _reading, _short

#: Run type of the console's own audit rows (kept out of the flows' charts and tables).
CONSOLE_RUN_TYPE = "console"
QUARANTINE_CLASS = "Quarantined"
#: Outcomes the console lists by default: open problems a person has to look at (quarantined ones were looked
#: at already: they have their own filter).
ATTENTION = ("rejected", "failed", "parked")
#: Error classes that are set-up problems, not a record's data (see ``fxiaoke_k3cloud.errors``).
CONFIG_CLASSES = frozenset({"ConfigError", "MappingError", "AuthenticationError", "PermissionDeniedError",
                            "UnknownFormError"})
#: The CRM's daily API quota when the Fxiaoke connection does not say (extra ``daily_quota``, else its
#: ``call_budget``): one "Open API [100000 次]" resource pack (docs/specs: fxiaoke-openapi §6.3).
DEFAULT_DAILY_QUOTA = 100_000
FXIAOKE_CONN_ID = "fxiaoke_default"  # FxiaokeHook.default_conn_name (not imported: the hook pulls in requests)
#: Rows scanned for a free-text search (the newest first): plenty for a console, bounded for the database.
SEARCH_SCAN = 20_000
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # window start of a full resync (flows.window.EPOCH)


def retryable_flows() -> list[str]:
    """Flows the re-drive DAG retries by id: the registry's ``redrive`` flows (``flows.specs``)."""
    return redrive_flows()


def crm_daily_quota(conn_id: str = FXIAOKE_CONN_ID) -> tuple[int, str]:
    """The CRM's API calls a day and where that figure comes from (connection extra, or the default)."""
    try:
        # Imported here: airflow.models is heavy and only the overview page needs it (the api-server has it loaded).
        from airflow.models.connection import Connection

        extra = Connection.get_connection_from_secrets(conn_id).extra_dejson
    except Exception:  # noqa: BLE001 - no such connection, no Airflow database: the documented default
        extra = {}
    for key in ("daily_quota", "call_budget"):
        try:
            value = int(extra.get(key) or 0)
        except (TypeError, ValueError):
            continue
        if value > 0:
            return value, f"{conn_id} extra {key}"
    return DEFAULT_DAILY_QUOTA, "default"


def normalise(text: Any) -> str:
    """Search form of a value: NFKC (full-width → ASCII), case-folded, without spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text or ""))).casefold()


@dataclass(frozen=True)
class RecordFilter:
    flow: str | None = None
    outcome: str | None = "attention"  # an outcome, "quarantined", "attention" (ATTENTION) or None (any)
    reason_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str = ""
    limit: int = 500


def _shown_outcome(row: dict[str, Any]) -> str:
    if row.get("parked_status") == "quarantined" or row.get("error_class") == QUARANTINE_CLASS:
        return "quarantined"
    return row["outcome"]


def records(store: AuditStore, f: RecordFilter) -> list[dict[str, Any]]:
    """The latest outcome of every record matching ``f``, newest first, each with its Airflow run id."""
    latest = sa.select(sa.func.max(sync_record.c.id)).group_by(
        sync_record.c.flow, sync_record.c.entity, sync_record.c.source_id)
    joined = sync_record.join(sync_run, sync_run.c.id == sync_record.c.run).outerjoin(
        parked, sa.and_(parked.c.entity == sync_record.c.entity, parked.c.source_id == sync_record.c.source_id))
    query = (sa.select(sync_record, sync_run.c.run_id, sync_run.c.run_type, parked.c.status.label("parked_status"))
             .select_from(joined).where(sync_record.c.id.in_(latest)))
    if f.flow:
        query = query.where(sync_record.c.flow == f.flow)
    if f.since:
        query = query.where(sync_record.c.created_at >= f.since)
    if f.until:
        query = query.where(sync_record.c.created_at < f.until)
    if f.reason_class:
        query = query.where(sync_record.c.error_class == f.reason_class)
    # COALESCE: the outer join leaves NULLs, and NOT (NULL OR NULL) would drop every plain row.
    quarantined = sa.or_(sa.func.coalesce(parked.c.status, "") == "quarantined",
                         sa.func.coalesce(sync_record.c.error_class, "") == QUARANTINE_CLASS)
    if f.outcome == "attention":
        query = query.where(sync_record.c.outcome.in_(ATTENTION), sa.not_(quarantined))
    elif f.outcome == "quarantined":
        query = query.where(quarantined)
    elif f.outcome:
        query = query.where(sync_record.c.outcome == f.outcome, sa.not_(quarantined))
    needle = normalise(f.q)
    query = query.order_by(sync_record.c.created_at.desc(), sync_record.c.id.desc())
    query = query.limit(SEARCH_SCAN if needle else f.limit)
    with _reading(store) as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
        rows += _parked_only(conn, f, {(r["flow"], r["source_id"]) for r in rows})
    rows.sort(key=lambda r: (r["created_at"], r.get("id") or 0), reverse=True)
    if needle:
        rows = [r for r in rows if any(needle in normalise(r.get(k)) for k in ("source_id", "target_number",
                                                                                 "source_name"))][: f.limit]
    for r in rows:
        r["shown_outcome"] = _shown_outcome(r)
        r["dag_id"] = FLOWS[r["flow"]].dag_id if r["flow"] in FLOWS else None
    return rows


def _parked_only(conn: sa.Connection, f: RecordFilter, seen: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """Open parked-table entries without a ``sync_record`` row (a quarantine by hand, an old park): findable too."""
    wanted = {"attention": ("parked", "escalated"), "parked": ("parked", "escalated"), "quarantined": ("quarantined",),
              None: ("parked", "escalated", "quarantined")}.get(f.outcome)
    if not wanted or f.reason_class:
        return []
    query = sa.select(parked).where(parked.c.status.in_(wanted))
    if f.flow:
        query = query.where(parked.c.flow == f.flow)
    if f.since:
        query = query.where(parked.c.last_tried_at >= f.since)
    if f.until:
        query = query.where(parked.c.last_tried_at < f.until)
    out = []
    for row in conn.execute(query.limit(f.limit)):
        m = row._mapping
        if (m["flow"], m["source_id"]) in seen:
            continue
        out.append({"id": None, "flow": m["flow"], "entity": m["entity"], "source_id": m["source_id"],
                    "source_name": None, "target_number": None, "target_id": None, "outcome": "parked",
                    "parked_status": m["status"], "error_class": None, "reason": m["reason"], "attempt": m["attempts"],
                    "created_at": m["last_tried_at"], "run_id": None, "run_type": None})
    return out


def reason_classes(store: AuditStore) -> list[str]:
    """Error classes present in the store, for the filter's choices."""
    with _reading(store) as conn:
        found = conn.execute(sa.select(sync_record.c.error_class).where(sync_record.c.error_class.is_not(None))
                             .distinct()).scalars().all()
    return sorted(str(c) for c in found)


# ---------------------------------------------------------------------------------------------- errors by cause
_VARIABLE = re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”|\b[0-9a-f]{16,}\b|\b[A-Z]+-\d+\b|\d+(?:\.\d+)?")


def cause_of(reason: str | None) -> str:
    """A reason with its record-specific parts (ids, numbers, quoted values) replaced, so alike reasons group."""
    return _VARIABLE.sub("…", (reason or "(no reason recorded)").strip())[:300]


def fix_hint(outcome: str, error_class: str | None, reason: str | None) -> str:  # noqa: ARG001 - reason kept for callers
    """The label key (``monitor.i18n``) of what a person does about one cause; the reason names the field."""
    cls = error_class or ""
    if cls in CONFIG_CLASSES:
        return "hint_config"
    if outcome == "parked":
        return "hint_parked"
    if outcome == "rejected":
        return "hint_rejected"
    if cls == "AuditedInK3Cloud":
        return "hint_audited"
    if cls in ("TargetMissing", "RenumberRefused", "DuplicateNumber"):
        return "hint_conflict"
    if cls.startswith("K3CloudMsgCode"):
        return "hint_k3_refused"
    if cls in ("TransportError", "OutcomeUnknownError", "RetryableApiError", "RateLimitedError"):
        return "hint_transient"
    return "hint_other"


def error_groups(store: AuditStore, flow: str | None = None) -> list[dict[str, Any]]:
    """Open problems (latest outcome rejected/failed/parked) grouped by flow, kind, class and cause."""
    rows = records(store, RecordFilter(flow=flow, outcome="attention", limit=SEARCH_SCAN))
    groups: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in rows:
        cls = r.get("error_class") or ""
        kind = "config" if cls in CONFIG_CLASSES else "data"
        key = (r["flow"], r["outcome"], cls, cause_of(r.get("reason")))
        g = groups.setdefault(key, {"flow": r["flow"], "outcome": r["outcome"], "error_class": cls, "kind": kind,
                                    "cause": key[3], "example": r.get("reason"), "count": 0,
                                    "hint": fix_hint(r["outcome"], cls, r.get("reason"))})
        g["count"] += 1
    return sorted(groups.values(), key=lambda g: (g["kind"] != "config", -g["count"], g["flow"], g["cause"]))


def stopped_runs(store: AuditStore, *, days: int = 7, limit: int = 20) -> list[dict[str, Any]]:
    """Runs that failed as a whole (a step stopped: typically a configuration error), newest first.

    Their cause is in the failed task's log (one message saying what to fix), not in per-record rows.
    """
    since = datetime.now(timezone.utc) - timedelta(days=days)
    with _reading(store) as conn:
        rows = conn.execute(sa.select(sync_run.c.flow, sync_run.c.run_id, sync_run.c.run_type, sync_run.c.started_at,
                                      sync_run.c.message)
                            .where(sync_run.c.status.in_(("failed", "abandoned")), sync_run.c.started_at >= since,
                                   sync_run.c.run_type != CONSOLE_RUN_TYPE)
                            .order_by(sync_run.c.started_at.desc()).limit(limit)).all()
    return [dict(r._mapping) | {"dag_id": FLOWS[r.flow].dag_id if r.flow in FLOWS else None} for r in rows]


# ---------------------------------------------------------------------------------------------- per-flow health
def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def flow_health(store: AuditStore, flow: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Lag p50/p95 (source change → target write, last 7 days, incremental runs), API calls today, last success."""
    now = now or datetime.now(timezone.utc)
    spec = FLOWS.get(flow)
    today = _today(now)
    with _reading(store) as conn:
        lags: list[float] = []
        if spec is not None:
            # Writes of the flow's own incremental runs: a full resync or a backfill re-sends records changed
            # long ago, whose "lag" says nothing about how fast a change gets through.
            rows = conn.execute(
                sa.select(id_map.c.synced_at, id_map.c.source_modified_ms)
                .join(sync_run, sync_run.c.id == id_map.c.run)
                .where(id_map.c.entity == spec.entity, id_map.c.synced_at >= now - timedelta(days=7),
                       id_map.c.source_modified_ms.is_not(None), sync_run.c.flow == flow,
                       sync_run.c.window_start > EPOCH, sync_run.c.run_type != "backfill")
                .order_by(id_map.c.synced_at.desc()).limit(5000)).all()
            lags = [max(0.0, s.timestamp() - m / 1000) for s, m in rows]
        calls: Counter[str] = Counter()
        recorded = False
        for (value,) in conn.execute(sa.select(sync_run.c.api_calls).where(
                sync_run.c.flow == flow, sync_run.c.started_at >= today, sync_run.c.api_calls.is_not(None))):
            if isinstance(value, dict):
                recorded = True
                calls.update(_calls_of(value))
        last = conn.execute(sa.select(sync_run.c.run_id, sync_run.c.finished_at).where(
            sync_run.c.flow == flow, sync_run.c.status == "success", sync_run.c.run_type != CONSOLE_RUN_TYPE)
            .order_by(sync_run.c.finished_at.desc()).limit(1)).one_or_none()
    return {
        "lag_p50_s": statistics.median(lags) if lags else None,
        "lag_p95_s": _percentile(lags, 95) if lags else None,
        "lag_n": len(lags),
        "api_calls_today": dict(calls) if recorded else None,
        "last_success_run_id": last[0] if last else None,
        "last_success_at": last[1] if last else None,
        "dag_id": spec.dag_id if spec else None,
    }


def _calls_of(value: Any) -> Counter[str]:
    """``{system: n}`` of one run's ``api_calls`` (``{system: {"total", "by_path"}}``, or older flat shapes)."""
    calls: Counter[str] = Counter()
    if isinstance(value, dict):
        for api, n in value.items():
            if isinstance(n, (int, float)):
                calls[str(api)] += int(n)
            elif isinstance(n, dict):
                total = n.get("total")
                calls[str(api)] += int(total) if isinstance(total, (int, float)) else sum(
                    int(v) for v in n.values() if isinstance(v, (int, float)))
    return calls


def _today(now: datetime) -> datetime:
    """Midnight in China time: when the CRM's daily quota starts again."""
    return now.astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)


def crm_calls_today(store: AuditStore, *, now: datetime | None = None) -> int:
    """Fxiaoke API calls recorded today by every flow's runs (the tenant's quota is shared)."""
    today = _today(now or datetime.now(timezone.utc))
    with _reading(store) as conn:
        values = conn.execute(sa.select(sync_run.c.api_calls).where(
            sync_run.c.started_at >= today, sync_run.c.api_calls.is_not(None))).scalars().all()
    return sum(_calls_of(v).get("fxiaoke", 0) for v in values)


# ---------------------------------------------------------------------------------------------- actions
def _latest_rows(store: AuditStore, flow: str, source_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    latest = (sa.select(sa.func.max(sync_record.c.id)).where(sync_record.c.flow == flow,
                                                             sync_record.c.source_id.in_(list(source_ids)))
              .group_by(sync_record.c.source_id))
    with _reading(store) as conn:
        rows = conn.execute(sa.select(sync_record).where(sync_record.c.id.in_(latest))).all()
    return {r._mapping["source_id"]: dict(r._mapping) for r in rows}


def _console_run(store: AuditStore, flow: str, label: str, actor: str) -> int:
    now = datetime.now(timezone.utc)
    who = actor.replace(":", "_")[:80]
    return store.start_run(flow, f"console:{label}:{who}:{now.isoformat()}", CONSOLE_RUN_TYPE, now, now)


def ignore(store: AuditStore, flow: str, source_ids: Sequence[str], *, reason: str, actor: str) -> int:
    """Quarantine records with a person's reason; returns how many. Recorded with who and when."""
    spec = FLOWS[flow]
    ids = sorted(set(source_ids))
    if not ids:
        return 0
    now = datetime.now(timezone.utc)
    latest = _latest_rows(store, flow, ids)
    try:
        store.quarantine(spec.entity, ids)
        run_pk = _console_run(store, flow, "ignore", actor)
        note = f"ignored by {actor} at {now.isoformat(timespec='seconds')}: {reason}"
        store.record_outcomes(run_pk, [
            RecordOutcome(flow=flow, entity=spec.entity, source_id=sid, outcome="skipped",
                          error_class=QUARANTINE_CLASS, reason=note,
                          source_name=(latest.get(sid) or {}).get("source_name"),
                          target_number=(latest.get(sid) or {}).get("target_number"),
                          target_id=(latest.get(sid) or {}).get("target_id"))
            for sid in ids])
        store.finish_run(run_pk, "success", None, f"{len(ids)} record(s) {note}")
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot write to the audit store at {store.url}: {_short(exc)}") from exc
    return len(ids)


def record_retry(store: AuditStore, flow: str, source_ids: Sequence[str], *, actor: str, airflow_run_id: str) -> int:
    """Note a Retry (who, when, which records, which Airflow run); the re-drive run records the outcomes."""
    ids = sorted(set(source_ids))
    run_pk = _console_run(store, flow, "retry", actor)
    store.finish_run(run_pk, "success", None, f"retry of {len(ids)} record(s) requested by {actor}: Airflow run "
                                               f"sync_redrive/{airflow_run_id}; ids {', '.join(ids[:50])}")
    return run_pk


def console_actions(store: AuditStore, limit: int = 20) -> list[dict[str, Any]]:
    """The latest console actions (who, when, what), newest first."""
    with _reading(store) as conn:
        rows = conn.execute(sa.select(sync_run.c.flow, sync_run.c.run_id, sync_run.c.started_at, sync_run.c.message)
                            .where(sync_run.c.run_type == CONSOLE_RUN_TYPE)
                            .order_by(sync_run.c.started_at.desc(), sync_run.c.id.desc()).limit(limit)).all()
    out = []
    for flow, run_id, at, message in rows:
        _, action, actor, _ = (run_id.split(":", 3) + ["", "", "", ""])[:4]
        out.append({"flow": flow, "action": action, "actor": actor, "at": at, "message": message})
    return out


def mapping_problems() -> list[dict[str, str]]:
    """Every flow's mapping file loaded and validated; one ``{flow, file, message}`` per file that fails."""
    problems = []
    for name, spec in FLOWS.items():
        try:
            load_mapping(spec.mapping_path)
        except MappingError as exc:
            problems.append({"flow": name, "file": str(spec.mapping_path), "message": str(exc)})
    return problems
