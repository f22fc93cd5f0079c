"""Server-rendered HTML of the monitor page. Every value from the store goes through ``esc``.

The store holds CRM data (customer names, reasons quoting user input): a name such as
``<script>…`` must show as text, never run. Links are relative so the page works under any prefix
and inside the Airflow UI's iframe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from fxiaoke_k3cloud.audit.schema import RUN_COUNT_COLUMNS
from fxiaoke_k3cloud.monitor.chart import SERIES, runs_chart
from fxiaoke_k3cloud.monitor.queries import DriftSnapshot, RunView
from fxiaoke_k3cloud.monitor.text import fmt_time, fmt_window, one_line

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:0;
color:#1f2933;background:#f5f7fa}
header{background:#fff;border-bottom:1px solid #d9e2ec;padding:12px 20px;display:flex;gap:16px;align-items:center;
flex-wrap:wrap}
header h1{font-size:18px;margin:0 12px 0 0}
nav a{margin-right:10px;color:#0b69a3;text-decoration:none}nav a.on{font-weight:600;text-decoration:underline}
form.search input{padding:5px 8px;width:260px;border:1px solid #bcccdc;border-radius:4px}
form.search button{padding:5px 10px;border:1px solid #0b69a3;background:#0b69a3;color:#fff;border-radius:4px}
main{padding:16px 20px}
section.flow{background:#fff;border:1px solid #d9e2ec;border-radius:6px;padding:12px 16px;margin-bottom:18px}
h2{font-size:16px;margin:4px 0 10px}h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e4e7eb;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f4f8;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{padding:1px 6px;border-radius:8px;font-size:12px;color:#fff}
.success{background:#2f8132}.partial{background:#c77c02}.failed{background:#ba2525}.running{background:#486581}
.parked,.escalated{background:#a23e8c}.quarantined{background:#616e7c}
.muted{color:#7b8794}.reasons{margin:2px 0 0 0;padding-left:16px;color:#52606d}
.error{background:#ffe3e3;border:1px solid #e12d39;padding:10px;border-radius:4px}
svg.chart .grid{stroke:#e4e7eb}svg.chart .tick,svg.chart .legend{font-size:11px;fill:#52606d}
code{font-size:12px}
"""


def esc(value: Any) -> str:
    """HTML-escape any value (quotes too: values also land in attributes)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return escape(fmt_time(value))
    return escape(str(value), quote=True)


#: Badge colour class of run statuses, parked statuses and record outcomes.
_BADGE = {
    "success": "success", "created": "success", "updated": "success", "released": "success",
    "partial": "partial", "rejected": "partial",
    "failed": "failed", "abandoned": "failed",
    "running": "running", "unchanged": "running", "skipped": "running", "reported": "running",
    "parked": "parked", "escalated": "escalated", "quarantined": "quarantined",
}


def _status(status: str) -> str:
    return f'<span class="badge {_BADGE.get(status, "running")}">{esc(status)}</span>'


def layout(title: str, body: str, *, flows: Sequence[str], current: str | None, query: str = "") -> str:
    links = [f'<a href="./" class="{"on" if current is None else ""}">all flows</a>']
    links += [
        f'<a href="./?flow={quote(f)}" class="{"on" if f == current else ""}">{esc(f)}</a>' for f in flows
    ]
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        "<header><h1>Fxiaoke ⇄ K3Cloud sync monitor</h1>"
        f"<nav>{''.join(links)}</nav>"
        '<form class="search" method="get" action="./record">'
        f'<input name="q" value="{esc(query)}" placeholder="CRM id or K3 number (e.g. CUST-000123)" '
        'aria-label="CRM id or K3 number">'
        "<button type=\"submit\">History</button></form></header>"
        f"<main>{body}</main></body></html>"
    )


def error_page(message: str, *, flows: Sequence[str] = ()) -> str:
    return layout("Sync monitor: store unavailable", f'<p class="error">{esc(message)}</p>', flows=flows, current=None)


def _runs_table(runs: Sequence[RunView]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in ("run", "Airflow run id", "window (UTC)", "status"))
    head += "".join(f'<th class="n">{esc(c)}</th>' for c in RUN_COUNT_COLUMNS)
    rows = []
    for run in runs:
        reasons = ""
        if run.top_reasons:
            items = "".join(
                f"<li>{esc(i['count'])} × {esc(i['outcome'])}: {esc(one_line(i['reason'], 200))}</li>"
                for i in run.top_reasons
            )
            reasons = f'<ul class="reasons">{items}</ul>'
        counts = "".join(f'<td class="n">{esc(run.counts.get(c, 0))}</td>' for c in RUN_COUNT_COLUMNS)
        rows.append(
            f"<tr><td>{esc(run.pk)}</td><td><code>{esc(run.run_id)}</code>{reasons}</td>"
            f"<td>{esc(fmt_window(run.window_start, run.window_end))}</td><td>{_status(run.status)}</td>{counts}</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _parked_table(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return '<p class="muted">Nothing parked or quarantined.</p>'
    head = "".join(f"<th>{h}</th>" for h in ("CRM id", "status", "reason", "waiting for", "attempts",
                                              "parked since (UTC)", "last tried (UTC)"))
    rows = "".join(
        f'<tr><td><a href="./record?q={quote(str(p["source_id"]))}"><code>{esc(p["source_id"])}</code></a></td>'
        f"<td>{_status(p['status'])}</td><td>{esc(p['reason'])}</td><td>{esc(p['missing'])}</td>"
        f'<td class="n">{esc(p["attempts"])}</td><td>{esc(p["first_parked_at"])}</td><td>{esc(p["last_tried_at"])}</td></tr>'
        for p in items
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _drift(drift: DriftSnapshot | None) -> str:
    if drift is None or not drift.rows:
        return '<p class="muted">No reconciliation drift recorded yet.</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in drift.columns)
    rows = "".join("<tr>" + "".join(f"<td>{esc(r.get(c))}</td>" for c in drift.columns) + "</tr>" for r in drift.rows)
    return (f'<p class="muted">Latest rows of <code>{esc(drift.table)}</code>.</p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def flow_section(
    flow: str, runs: Sequence[RunView], parked: Sequence[Mapping[str, Any]], drift: DriftSnapshot | None
) -> str:
    totals = {name: sum(r.counts.get(name, 0) for r in runs) for name, _ in SERIES}
    summary = ", ".join(f"{esc(k)} {esc(v)}" for k, v in totals.items())
    runs_html = _runs_table(runs) if runs else '<p class="muted">No runs yet.</p>'
    return (
        f'<section class="flow" id="flow-{esc(flow)}"><h2>{esc(flow)}</h2>'
        f'<p class="muted">Last {len(runs)} run(s): {summary}.</p>'
        f"{runs_chart(runs, title=f'{flow}: records per run')}"
        f"<h3>Recent runs</h3>{runs_html}"
        f"<h3>Parked and quarantined records</h3>{_parked_table(parked)}"
        f"<h3>Latest reconciliation drift</h3>{_drift(drift)}</section>"
    )


def overview_page(sections: Sequence[str], *, flows: Sequence[str], current: str | None, empty: bool) -> str:
    if empty:
        body = '<p class="muted">The audit store has no sync runs yet: no flow has run against it.</p>'
    else:
        body = "".join(sections)
    return layout("Sync monitor", body, flows=flows, current=current)


def history_page(query: str, rows: Sequence[Mapping[str, Any]], *, flows: Sequence[str]) -> str:
    if not query.strip():
        body = '<p class="muted">Enter a CRM id or a K3Cloud number above.</p>'
    elif not rows:
        body = f'<p class="muted">Nothing recorded for <code>{esc(query)}</code>.</p>'
    else:
        head = "".join(f"<th>{h}</th>" for h in ("when (UTC)", "flow", "entity", "CRM id", "name", "K3 number",
                                                  "outcome", "try", "Airflow run id", "window (UTC)", "reason"))
        body_rows = "".join(
            f"<tr><td>{esc(r['created_at'])}</td><td>{esc(r['flow'])}</td><td>{esc(r['entity'])}</td>"
            f"<td><code>{esc(r['source_id'])}</code></td><td>{esc(r.get('source_name'))}</td>"
            f"<td><code>{esc(r.get('target_number'))}</code></td><td>{_status(r['outcome'])}</td>"
            f'<td class="n">{esc(r["attempt"])}</td><td><code>{esc(r.get("run_id"))}</code></td>'
            f"<td>{esc(fmt_window(r['window_start'], r['window_end']))}</td><td>{esc(r.get('reason'))}</td></tr>"
            for r in rows
        )
        body = (f"<section class=\"flow\"><h2>History of <code>{esc(query)}</code></h2>"
                f'<p class="muted">{len(rows)} recorded outcome(s), newest first.</p>'
                f"<table><thead><tr>{head}</tr></thead><tbody>{body_rows}</tbody></table></section>")
    return layout(f"Sync monitor: {query}", body, flows=flows, current=None, query=query)
