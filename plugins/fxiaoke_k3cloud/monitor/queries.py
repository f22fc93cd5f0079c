"""Read-only questions the operations surface asks the audit store.

Built on ``AuditStore``'s engine and the table definitions of ``audit.schema``; nothing here writes,
migrates or creates tables, so pointing the page or the command line at a fresh database is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.audit.schema import RUN_COUNT_COLUMNS, sync_record, sync_run, watermark
from fxiaoke_k3cloud.flows.specs import FLOWS

try:  # the watchers' own reading of their rows (events/status.py), when this build has it
    from fxiaoke_k3cloud.events.status import watcher_states as _watcher_states
except ImportError:  # pragma: no cover - older builds: read the rows directly (same shape, fewer fields)
    _watcher_states = None

#: Watermark-table rows of the event watchers (events/position.py): ``watch:<name>`` and ``watch:<name>:polled``.
WATCH_PREFIX = "watch:"

#: Outcomes a person has to look at; a run with any of them gets its top reasons listed.
ATTENTION = ("rejected", "failed", "parked")
#: Parked-table statuses that are still open (released records are done).
OPEN_PARKED = ("parked", "escalated", "quarantined")


class StoreUnavailable(Exception):
    """The audit store cannot be read (unreachable server, bad URL, locked file); the message says which."""


@dataclass(frozen=True)
class RunView:
    """One ``sync_run`` row as the reports show it, with the reasons behind its problems."""

    pk: int
    flow: str
    run_id: str
    run_type: str
    status: str
    window_start: datetime
    window_end: datetime
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    message: str | None
    top_reasons: list[dict[str, Any]] = field(default_factory=list)
    #: API calls the run's tasks sent: ``{system: {"total": n, "by_path": {path: n}}}`` (None: not recorded).
    api_calls: dict[str, Any] | None = None

    @property
    def has_problems(self) -> bool:
        return self.status in ("partial", "failed", "abandoned") or any(self.counts.get(k, 0) for k in ATTENTION)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "flow": self.flow,
            "run_id": self.run_id,
            "run_type": self.run_type,
            "status": self.status,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "counts": dict(self.counts),
            "message": self.message,
            "top_reasons": list(self.top_reasons),
            "api_calls": self.api_calls,
        }


def _run_view(row: Any, reasons: list[dict[str, Any]]) -> RunView:
    m = row._mapping
    return RunView(
        pk=int(m["id"]),
        flow=m["flow"],
        run_id=m["run_id"],
        run_type=m["run_type"],
        status=m["status"],
        window_start=m["window_start"],
        window_end=m["window_end"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        counts={name: int(m[name] or 0) for name in RUN_COUNT_COLUMNS},
        message=m["message"],
        top_reasons=reasons,
        api_calls=m["api_calls"] if isinstance(m["api_calls"], dict) else None,
    )


def store_missing(store: AuditStore) -> bool:
    """True when the store holds no audit tables yet (never migrated, or a SQLite file not created).

    A SQLite path that does not exist is reported without opening it: connecting would create the file.
    """
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).exists():
            return True
    try:
        return not sa.inspect(store.engine).has_table("sync_run")
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the audit store at {store.url}: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    # DBAPI messages carry the statement and parameters; the first line says what went wrong.
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def flows_in_store(store: AuditStore) -> list[str]:
    """Flows that have runs, the known flows first in their usual order."""
    with _reading(store) as conn:
        present = {r[0] for r in conn.execute(sa.select(sync_run.c.flow).distinct())}
    known = [name for name in FLOWS if name in present]
    return known + sorted(present - set(known))


@contextmanager
def _reading(store: AuditStore) -> Iterator[sa.Connection]:
    """A read connection whose database errors become ``StoreUnavailable`` (a message, not a traceback)."""
    try:
        with store.engine.connect() as conn:
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the audit store at {store.url}: {_short(exc)}") from exc


def list_runs(
    store: AuditStore,
    flows: Sequence[str],
    *,
    since: datetime | None = None,
    last: int = 20,
    reasons: int = 5,
) -> list[RunView]:
    """The latest ``last`` runs of each flow (started at or after ``since``), newest first per flow.

    :param reasons: how many top reasons to attach to each run with problems (0: none).
    """
    views: list[RunView] = []
    with _reading(store) as conn:
        for flow in flows:
            # The console's own audit rows (who ignored or retried what) are not flow runs.
            query = sa.select(sync_run).where(sync_run.c.flow == flow, sync_run.c.run_type != "console")
            if since is not None:
                query = query.where(sync_run.c.started_at >= since)
            query = query.order_by(sync_run.c.started_at.desc(), sync_run.c.id.desc()).limit(last)
            for row in conn.execute(query).all():
                view = _run_view(row, [])
                if reasons and view.has_problems:
                    view.top_reasons.extend(_top_reasons(conn, view.pk, reasons))
                views.append(view)
    return views


def get_run(store: AuditStore, run_pk: int, *, reasons: int = 5) -> RunView:
    """One run by its key, with its top reasons; ``KeyError`` when there is no such run."""
    with _reading(store) as conn:
        row = conn.execute(sa.select(sync_run).where(sync_run.c.id == run_pk)).one_or_none()
        if row is None:
            raise KeyError(f"no sync_run with id {run_pk}")
        return _run_view(row, _top_reasons(conn, run_pk, reasons) if reasons else [])


def _final_rows(run_pk: int) -> Any:
    """Ids of each record's last row in the run (a retried record counts once, by its final outcome)."""
    return (
        sa.select(sa.func.max(sync_record.c.id))
        .where(sync_record.c.run == run_pk)
        .group_by(sync_record.c.entity, sync_record.c.source_id)
    )


def _top_reasons(conn: sa.Connection, run_pk: int, limit: int) -> list[dict[str, Any]]:
    n = sa.func.count().label("n")
    rows = conn.execute(
        sa.select(sync_record.c.outcome, sync_record.c.reason, n)
        .where(sync_record.c.id.in_(_final_rows(run_pk)), sync_record.c.outcome.in_(ATTENTION))
        .group_by(sync_record.c.outcome, sync_record.c.reason)
        .order_by(n.desc(), sync_record.c.outcome, sync_record.c.reason)
        .limit(limit)
    )
    return [{"outcome": o, "reason": r or "(no reason recorded)", "count": int(c)} for o, r, c in rows]


def final_records(store: AuditStore, run_pk: int, outcomes: Sequence[str]) -> list[dict[str, Any]]:
    """The run's records whose final outcome is in ``outcomes`` (``sync_record`` columns as dicts)."""
    with _reading(store) as conn:
        rows = conn.execute(
            sa.select(sync_record)
            .where(sync_record.c.id.in_(_final_rows(run_pk)), sync_record.c.outcome.in_(tuple(outcomes)))
            .order_by(sync_record.c.entity, sync_record.c.source_id)
        )
        return [dict(r._mapping) for r in rows]


def record_history(store: AuditStore, key: str, *, limit: int = 200) -> list[dict[str, Any]]:
    """Everything recorded for ``key`` taken as a CRM id *or* a K3Cloud number, newest first."""
    key = key.strip()
    if not key:
        return []
    try:
        by_source = store.record_history(source_id=key, limit=limit)
        by_number = store.record_history(target_number=key, limit=limit)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the audit store at {store.url}: {_short(exc)}") from exc
    merged = {row["id"]: row for row in (*by_source, *by_number)}
    rows = sorted(merged.values(), key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return rows[:limit]


def open_parked(store: AuditStore, flow: str) -> list[dict[str, Any]]:
    """Records of ``flow`` still parked, escalated or quarantined (not released), oldest first."""
    spec = FLOWS.get(flow)
    if spec is None:
        return []
    try:
        items = store.list_parked(spec.entity, None, flow=flow)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the audit store at {store.url}: {_short(exc)}") from exc
    return [
        {
            "source_id": p.source_id,
            "status": p.status,
            "reason": p.reason,
            "missing": p.missing,
            "attempts": p.attempts,
            "first_parked_at": p.first_parked_at,
            "last_tried_at": p.last_tried_at,
        }
        for p in items
        if p.status in OPEN_PARKED
    ]


@dataclass(frozen=True)
class DriftSnapshot:
    """Latest rows of the reconciliation's drift table, shown as they are (its schema is not ours)."""

    table: str
    columns: list[str]
    rows: list[dict[str, Any]]


def latest_drift(store: AuditStore, flow: str | None = None, *, limit: int = 20) -> DriftSnapshot | None:
    """The newest rows of a ``*drift*`` table written by the reconcile flow, or None if there is none yet.

    The reconciliation is built separately; until its table exists the page says so. Rows are ordered by
    the table's primary key (newest first) and filtered on ``flow`` when the table has such a column.
    """
    try:
        names = sorted(n for n in sa.inspect(store.engine).get_table_names() if "drift" in n.lower())
        if not names:
            return None
        table = sa.Table(names[0], sa.MetaData(), autoload_with=store.engine)
        query = sa.select(table)
        if flow is not None and "flow" in table.c:
            query = query.where(table.c.flow == flow)
        order = list(table.primary_key.columns) or list(table.c)[:1]
        query = query.order_by(*(c.desc() for c in order)).limit(limit)
        with store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the audit store at {store.url}: {_short(exc)}") from exc
    return DriftSnapshot(table=names[0], columns=[c.name for c in table.c], rows=rows)


def watcher_states(store: AuditStore, *, now_ms: int | None = None) -> list[dict[str, Any]]:
    """Per event watcher: when it last polled, ok or error, its position, and whether it has gone silent.

    ``events.status.watcher_states`` when present (it knows the deployment's watchers, modes and thresholds);
    otherwise the ``watch:*`` rows of the watermark table read directly (silent after 300 s without a poll).
    """
    if store_missing(store):
        return []
    try:
        if _watcher_states is not None:
            return _watcher_states(store, now_ms=now_ms)
        return _watcher_rows(store, now_ms=now_ms)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the audit store at {store.url}: {_short(exc)}") from exc


def _watcher_rows(store: AuditStore, *, now_ms: int | None = None, silent_s: float = 300.0) -> list[dict[str, Any]]:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _reading(store) as conn:
        rows = {str(r.flow): (int(r.value_ms), str(r.run_id or "")) for r in conn.execute(
            sa.select(watermark.c.flow, watermark.c.value_ms, watermark.c.run_id)
            .where(watermark.c.flow.like(WATCH_PREFIX + "%")))}
    names = sorted({key[len(WATCH_PREFIX):].removesuffix(":polled") for key in rows})
    out = []
    for name in names:
        polled, position = rows.get(f"{WATCH_PREFIX}{name}:polled"), rows.get(WATCH_PREFIX + name)
        since = None if polled is None else max(0.0, (now_ms - polled[0]) / 1000)
        rid = position[1] if position else None
        out.append({"name": name, "source": None, "form": None, "mode": "poll", "expected": True,
                    "last_polled_ms": polled[0] if polled else None,
                    "last_result": None if polled is None else ("ok" if polled[1] == "ok" else "error"),
                    "last_error": None if polled is None or polled[1] == "ok" else polled[1],
                    "position_ms": position[0] if position else None,
                    "position_record_id": None if rid is None else rid.removeprefix("id:"),
                    "poll_s": None, "threshold_s": silent_s,
                    "seconds_since_poll": None if since is None else round(since, 1),
                    "silent": since is None or since > silent_s})
    return out
