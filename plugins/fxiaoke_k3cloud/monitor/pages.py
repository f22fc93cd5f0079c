"""Server-rendered HTML of the monitor page. Every value from the store goes through ``esc``.

The store holds CRM data (customer names, reasons quoting user input): a name such as
``<script>…`` must show as text, never run. Links are relative so the page works under any prefix
and inside the Airflow UI's iframe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from fxiaoke_k3cloud.audit.schema import RUN_COUNT_COLUMNS
from fxiaoke_k3cloud.flows.specs import FLOWS
from fxiaoke_k3cloud.monitor.chart import SERIES, airflow_state, runs_chart
from fxiaoke_k3cloud.monitor.i18n import translator
from fxiaoke_k3cloud.monitor.queries import DriftSnapshot, RunView
from fxiaoke_k3cloud.monitor.text import fmt_time, fmt_window, one_line

_EN = translator("en")

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
svg.chart .axis{font-size:12px;fill:#323f4b}svg.chart .state{font-size:10px;fill:#ba2525}
code{font-size:12px}
form.filters{margin:0 0 10px;display:flex;gap:8px;flex-wrap:wrap;align-items:center}
form.filters select,form.filters input{padding:4px 6px;border:1px solid #bcccdc;border-radius:4px}
a.button,button{padding:5px 10px;border:1px solid #0b69a3;background:#0b69a3;color:#fff;border-radius:4px;
text-decoration:none;font-size:13px}
.actions{margin:6px 0 10px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.notice{background:#e3f9e5;border:1px solid #2f8132;padding:8px;border-radius:4px}
.health{background:#f0f4f8;padding:6px 10px;border-radius:4px}
tr.silent td{background:#fff5f5}
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


def status_badge(status: str) -> str:
    return f'<span class="badge {_BADGE.get(status, "running")}">{esc(status)}</span>'


_status = status_badge


def _run_state(status: str) -> str:
    """A run's Airflow state (what the Airflow UI shows), with the audit store's detail when it differs."""
    state = airflow_state(status)
    detail = f' <span class="muted">({esc(status)})</span>' if state != status else ""
    return f"{status_badge(state)}{detail}"


def layout(title: str, body: str, *, flows: Sequence[str], current: str | None, query: str = "",
           t: Callable[[str], str] = _EN, lang: str = "en", page: str = "overview") -> str:
    links = [f'<a href="./" class="{"on" if current is None and page == "overview" else ""}">{t("all_flows")}</a>']
    links += [
        f'<a href="./?flow={quote(f)}" class="{"on" if f == current else ""}">{esc(f)}</a>' for f in flows
    ]
    links += [f'<a href="./records" class="{"on" if page == "records" else ""}">{t("records")}</a>',
              f'<a href="./errors" class="{"on" if page == "errors" else ""}">{t("errors")}</a>']
    return (
        f"<!doctype html><html lang=\"{'zh-CN' if lang == 'zh' else 'en'}\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{t('title')}</h1>"
        f"<nav>{''.join(links)}</nav>"
        '<form class="search" method="get" action="./records">'
        f'<input name="q" value="{esc(query)}" placeholder="{esc(t("search_ph"))}" '
        f'aria-label="{esc(t("search_ph"))}"><input type="hidden" name="outcome" value="any">'
        f"<button type=\"submit\">{t('search')}</button></form></header>"
        f"<main>{body}</main></body></html>"
    )


def error_page(message: str, *, flows: Sequence[str] = ()) -> str:
    return layout("Sync monitor: store unavailable", f'<p class="error">{esc(message)}</p>', flows=flows, current=None)


def airflow_run_link(dag_id: str | None, run_id: str | None, run_type: str | None = None) -> str:
    """``<a>`` to the run in the Airflow UI, out of the iframe (re-drive chunks link to their ``sync_redrive`` run)."""
    if not run_id:
        return ""
    if run_type == "redrive":
        dag_id, run_id = "sync_redrive", run_id.split(":redrive:")[0].removesuffix(":quarantine")
    if not dag_id or run_type == "console":
        return f"<code>{esc(run_id)}</code>"
    href = f"../dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f'<a href="{esc(href)}" target="_top"><code>{esc(run_id)}</code></a>'


def _runs_table(runs: Sequence[RunView], t: Callable[[str], str] = _EN) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in (t("run"), t("airflow_run"), t("window"), t("state")))
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
        dag_id = FLOWS[run.flow].dag_id if run.flow in FLOWS else None
        rows.append(
            f"<tr><td>{esc(run.pk)}</td><td>{airflow_run_link(dag_id, run.run_id, run.run_type)}{reasons}</td>"
            f"<td>{esc(fmt_window(run.window_start, run.window_end))}</td><td>{_run_state(run.status)}</td>{counts}</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _parked_table(items: Sequence[Mapping[str, Any]], t: Callable[[str], str] = _EN) -> str:
    if not items:
        return f'<p class="muted">{t("nothing_parked")}</p>'
    head = "".join(f"<th>{h}</th>" for h in ("CRM id", "status", "reason", "waiting for", "attempts",
                                              "parked since (UTC)", "last tried (UTC)"))
    rows = "".join(
        f'<tr><td><a href="./record?q={quote(str(p["source_id"]))}"><code>{esc(p["source_id"])}</code></a></td>'
        f"<td>{_status(p['status'])}</td><td>{esc(p['reason'])}</td><td>{esc(p['missing'])}</td>"
        f'<td class="n">{esc(p["attempts"])}</td><td>{esc(p["first_parked_at"])}</td><td>{esc(p["last_tried_at"])}</td></tr>'
        for p in items
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _drift(drift: DriftSnapshot | None, t: Callable[[str], str] = _EN) -> str:
    if drift is None or not drift.rows:
        return f'<p class="muted">{t("no_drift")}</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in drift.columns)
    rows = "".join("<tr>" + "".join(f"<td>{esc(r.get(c))}</td>" for c in drift.columns) + "</tr>" for r in drift.rows)
    return (f'<p class="muted">Latest rows of <code>{esc(drift.table)}</code>.</p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def flow_section(
    flow: str, runs: Sequence[RunView], parked: Sequence[Mapping[str, Any]], drift: DriftSnapshot | None,
    *, t: Callable[[str], str] = _EN, health: str = "", open_problems: int = 0,
) -> str:
    totals = {name: sum(r.counts.get(name, 0) for r in runs) for name, _ in SERIES}
    summary = ", ".join(f"{esc(k)} {esc(v)}" for k, v in totals.items())
    runs_html = _runs_table(runs, t) if runs else f'<p class="muted">{t("no_runs")}</p>'
    problems = (f'<p class="notice"><a href="./records?flow={quote(flow)}"><b>{open_problems}</b> '
                f'{t("open_problems")} — {t("see_records")}</a></p>' if open_problems else "")
    return (
        f'<section class="flow" id="flow-{esc(flow)}"><h2>{esc(flow)}</h2>{health}{problems}'
        f'<p class="muted">{esc(t("last_runs").format(n=len(runs)))}: {summary}.</p>'
        + (runs_chart(runs, title=f"{flow}: " + t("chart_y"), x_label=t("chart_x"), y_label=t("chart_y")) if runs
           else f'<p class="muted">{t("no_chart")}</p>') +
        f"<h3>{t('recent_runs')}</h3>{runs_html}"
        f"<h3>{t('parked_q')}</h3>{_parked_table(parked, t)}"
        f"<h3>{t('drift')}</h3>{_drift(drift, t)}</section>"
    )


def overview_page(sections: Sequence[str], *, flows: Sequence[str], current: str | None, empty: bool,
                  t: Callable[[str], str] = _EN, lang: str = "en", extra: str = "") -> str:
    body = f'<p class="muted">{t("empty_store")}</p>' if empty else "".join(sections)
    return layout(t("title"), body + extra, flows=flows, current=current, t=t, lang=lang)


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
