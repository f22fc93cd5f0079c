"""Plain-text renderings of runs and record histories (command line, alert digests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from fxiaoke_k3cloud.audit.redact import safe_text
from fxiaoke_k3cloud.audit.schema import RUN_COUNT_COLUMNS
from fxiaoke_k3cloud.monitor.queries import RunView

_RUN_HEADERS = ("flow", "run", "run id", "window (UTC)", "status", *RUN_COUNT_COLUMNS)
_HISTORY_HEADERS = ("when (UTC)", "flow", "entity", "crm id", "k3 number", "outcome", "try", "run id", "reason")


def fmt_time(value: datetime | None) -> str:
    """``2026-01-05 08:15:00`` in UTC (the store's time zone), empty for None."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def fmt_window(start: datetime, end: datetime) -> str:
    """A window in one short string: the end drops the date when it is the same day."""
    s, e = fmt_time(start)[:16], fmt_time(end)[:16]
    return f"{s} → {e[11:] if e[:10] == s[:10] else e}"


def one_line(text: str | None, limit: int = 160) -> str:
    """Reasons as one scrubbed line: newlines folded, long ones cut (a table must stay a table)."""
    flat = " ".join((safe_text(text) or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = ()) -> list[str]:
    """Columns padded to their widest cell; column indexes in ``right`` are right-aligned (numbers)."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(parts).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])]


def runs_table(runs: Sequence[RunView]) -> str:
    """The runs as a table; each run with problems is followed by its top reasons, indented."""
    first_count = len(_RUN_HEADERS) - len(RUN_COUNT_COLUMNS)
    # One table over all runs so the columns line up; the reasons are interleaved below each row.
    rows = [
        [r.flow, r.pk, r.run_id, fmt_window(r.window_start, r.window_end), r.status,
         *(r.counts[k] for k in RUN_COUNT_COLUMNS)]
        for r in runs
    ]
    rendered = table(_RUN_HEADERS, rows, right=range(first_count, len(_RUN_HEADERS)))
    lines = rendered[:2]
    for run, text in zip(runs, rendered[2:]):
        lines.append(text)
        if run.message and run.has_problems:
            lines.append(f"    message: {one_line(run.message)}")
        for item in run.top_reasons:
            lines.append(f"    {item['count']:>5} × {item['outcome']}: {one_line(item['reason'])}")
    return "\n".join(lines)


def history_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A record's history, newest first, one line per recorded outcome."""
    body = [
        [fmt_time(r["created_at"]), r["flow"], r["entity"], r["source_id"], r.get("target_number") or "",
         r["outcome"], r["attempt"], r.get("run_id") or "", one_line(r.get("reason"), 120)]
        for r in rows
    ]
    return "\n".join(table(_HISTORY_HEADERS, body, right=(6,)))


def run_digest(run: RunView, run_url: str | None = None) -> str:
    """The alert text of a run: flow, window, status, counts, top reasons and a link. Scrubbed of secrets."""
    counts = ", ".join(f"{k} {run.counts[k]}" for k in RUN_COUNT_COLUMNS if run.counts.get(k))
    lines = [
        f"[同步告警 Sync alert] {run.flow}: run {run.status}",
        f"Window (UTC): {fmt_window(run.window_start, run.window_end)}",
        f"Airflow run: {run.run_id}",
        f"Counts: {counts or 'none'}",
    ]
    if run.message:
        lines.append(f"Message: {one_line(run.message, 300)}")
    if run.top_reasons:
        lines.append("Top reasons:")
        lines.extend(f"- {i['count']} × {i['outcome']}: {one_line(i['reason'], 200)}" for i in run.top_reasons)
    if run_url:
        lines.append(f"Details: {run_url}")
    return safe_text("\n".join(lines), limit=3500) or ""
