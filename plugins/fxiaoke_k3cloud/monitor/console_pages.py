"""HTML of the console pages: records (filter, search, select, Retry / Ignore), errors by cause.

No JavaScript: filters are a GET form, actions a POST form of checkboxes, so the pages work under the
monitor's strict Content-Security-Policy and inside the Airflow UI's iframe. Every stored value goes through
``esc``; links to Airflow runs open in the top window (``target="_top"``), out of the iframe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from fxiaoke_k3cloud.audit.schema import RECORD_OUTCOMES
from fxiaoke_k3cloud.monitor.console import RecordFilter, retryable_flows
from fxiaoke_k3cloud.monitor.pages import airflow_run_link, esc, layout, status_badge
from fxiaoke_k3cloud.monitor.text import fmt_time, one_line

T = Callable[[str], str]


def _options(values: Sequence[tuple[str, str]], chosen: str | None) -> str:
    return "".join(f'<option value="{esc(v)}"{" selected" if v == (chosen or "") else ""}>{esc(label)}</option>'
                   for v, label in values)


def _dt_value(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M") if value else ""


def filter_query(f: RecordFilter) -> str:
    """The filter as a query string (for the CSV link and the redirect after an action)."""
    pairs = {"flow": f.flow or "", "outcome": f.outcome or "any", "reason_class": f.reason_class or "",
             "since": _dt_value(f.since), "until": _dt_value(f.until), "q": f.q}
    return urlencode({k: v for k, v in pairs.items() if v})


def _filter_form(f: RecordFilter, flows: Sequence[str], classes: Sequence[str], t: T) -> str:
    outcomes = [("attention", t("needs_attention")), ("any", t("any"))]
    outcomes += [(o, o) for o in RECORD_OUTCOMES] + [("quarantined", "quarantined")]
    return (
        '<form class="filters" method="get" action="./records">'
        f'<label>{t("flow")} <select name="flow">{_options([("", t("any"))] + [(x, x) for x in flows], f.flow)}'
        "</select></label> "
        f'<label>{t("outcome")} <select name="outcome">{_options(outcomes, f.outcome or "any")}</select></label> '
        f'<label>{t("reason_class")} <select name="reason_class">'
        f'{_options([("", t("any"))] + [(c, c) for c in classes], f.reason_class)}</select></label> '
        f'<label>{t("since")} <input type="datetime-local" name="since" value="{_dt_value(f.since)}"></label> '
        f'<label>{t("until")} <input type="datetime-local" name="until" value="{_dt_value(f.until)}"></label> '
        f'<input type="search" name="q" value="{esc(f.q)}" placeholder="{esc(t("search_ph"))}" '
        f'aria-label="{esc(t("search"))}" size="34"> '
        f'<button type="submit">{t("filter")}</button> '
        f'<a class="button" href="./records.csv?{esc(filter_query(f))}">{t("csv")}</a></form>'
    )


def records_page(f: RecordFilter, rows: Sequence[Mapping[str, Any]], *, flows: Sequence[str],
                 classes: Sequence[str], t: T, lang: str, notice: str = "", error: str = "") -> str:
    head = "".join(f"<th>{esc(t(h))}</th>" for h in ("select", "when", "flow", "crm_id", "name", "k3_number",
                                                      "outcome", "reason_class", "reason", "airflow_run"))
    body_rows = []
    for r in rows:
        key = f"{r['flow']}|{r['source_id']}"
        body_rows.append(
            f'<tr><td><input type="checkbox" name="sel" value="{esc(key)}" aria-label="{esc(key)}"></td>'
            f"<td>{esc(r['created_at'])}</td><td>{esc(r['flow'])}</td>"
            f'<td><a href="./record?q={quote(str(r["source_id"]))}"><code>{esc(r["source_id"])}</code></a></td>'
            f"<td>{esc(r.get('source_name'))}</td><td><code>{esc(r.get('target_number'))}</code></td>"
            f'<td class="outcome">{status_badge(r["shown_outcome"])}</td><td>{esc(r.get("error_class"))}</td>'
            f"<td>{esc(one_line(r.get('reason'), 300))}</td>"
            f"<td>{airflow_run_link(r.get('dag_id'), r.get('run_id'), r.get('run_type'))}</td></tr>"
        )
    table = (f'<table id="records"><thead><tr>{head}</tr></thead><tbody>{"".join(body_rows)}</tbody></table>'
             if body_rows else f'<p class="muted">{t("no_records")}</p>')
    actions = (
        '<div class="actions">'
        f'<button type="submit" name="action" value="retry">{t("retry")}</button> '
        f'<input name="reason" placeholder="{esc(t("ignore_reason"))}" size="36" maxlength="500"> '
        f'<button type="submit" name="action" value="ignore">{t("ignore")}</button> '
        f'<span class="muted">{esc(retry_note(t))}</span></div>'
    )
    banner = (f'<p class="notice" id="notice">{notice}</p>' if notice else "") + (
        f'<p class="error" id="error">{esc(error)}</p>' if error else "")
    body = (
        f'<section class="flow"><h2>{t("records")}</h2>{banner}{_filter_form(f, flows, classes, t)}'
        f'<p class="muted"><span id="count">{len(rows)}</span> {t("shown")}.</p>'
        f'<form method="post" action="./records/action?{esc(filter_query(f))}">{actions}{table}</form></section>'
    )
    return layout(t("records"), body, flows=flows, current=None, t=t, lang=lang, page="records")


def errors_page(groups: Sequence[Mapping[str, Any]], mapping_problems: Sequence[Mapping[str, str]], *,
                flows: Sequence[str], t: T, lang: str, stopped: Sequence[Mapping[str, Any]] = ()) -> str:
    def table(items: Sequence[Mapping[str, Any]]) -> str:
        if not items:
            return f'<p class="muted">{t("none")}</p>'
        head = "".join(f"<th>{esc(t(h))}</th>" for h in ("flow", "outcome", "reason_class", "cause", "count", "fix"))
        rows = "".join(
            f"<tr><td>{esc(g['flow'])}</td><td>{status_badge(g['outcome'])}</td><td>{esc(g['error_class'])}</td>"
            f"<td>{esc(one_line(g['example'], 300))}</td>"
            f'<td class="n"><a href="./records?{esc(urlencode({"flow": g["flow"], "outcome": g["outcome"], "reason_class": g["error_class"]}))}">'
            f"{esc(g['count'])}</a></td><td>{esc(t(g['hint']))}</td></tr>"
            for g in items)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    if mapping_problems:
        mapping_html = "".join(f'<p class="error"><code>{esc(p["file"])}</code>: {esc(t("mapping_invalid"))} — '
                               f'{esc(p["message"])}</p>' for p in mapping_problems)
    else:
        mapping_html = f'<p class="muted">{t("mappings_ok")}</p>'
    if stopped:
        items = "".join(f"<li>{esc(r['flow'])}: {airflow_run_link(r.get('dag_id'), r['run_id'], r.get('run_type'))} "
                        f"({esc(fmt_time(r['started_at']))}) — {esc(one_line(r.get('message'), 800))}</li>"
                        for r in stopped)
        mapping_html += f'<h3>{t("stopped_runs")}</h3><ul id="stopped">{items}</ul>'
    config = [g for g in groups if g["kind"] == "config"]
    data = [g for g in groups if g["kind"] != "config"]
    body = (f'<section class="flow" id="config"><h2>{t("config_errors")}</h2>{mapping_html}{table(config)}</section>'
            f'<section class="flow" id="data"><h2>{t("data_errors")}</h2>{table(data)}</section>')
    return layout(t("errors"), body, flows=flows, current=None, t=t, lang=lang, page="errors")


def actions_table(actions: Sequence[Mapping[str, Any]], t: T) -> str:
    if not actions:
        return ""
    rows = "".join(f"<tr><td>{esc(fmt_time(a['at']))}</td><td>{esc(a['actor'])}</td><td>{esc(a['action'])}</td>"
                   f"<td>{esc(a['flow'])}</td><td>{esc(one_line(a['message'], 300))}</td></tr>" for a in actions)
    head = "".join(f"<th>{esc(t(h))}</th>" for h in ("when", "by", "action", "flow", "reason"))
    return f'<h3>{t("actions")}</h3><table id="actions"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def health_line(h: Mapping[str, Any], t: T) -> str:
    def dur(s: float | None) -> str:
        if s is None:
            return "—"
        return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"

    calls = h.get("api_calls_today")
    if calls:
        parts = []
        for system, n in sorted(calls.items()):
            text = f"{system} {n:,}"
            if system == "fxiaoke" and h.get("crm_quota"):
                quota, all_flows = int(h["crm_quota"]), int(h.get("crm_calls_all_flows") or n)
                text += (f" / {quota:,} {t('quota')} ({100 * n / quota:.1f} %; {t('all_flows')} {all_flows:,}, "
                         f"{100 * all_flows / quota:.1f} %)")
            parts.append(text)
        calls_text = ", ".join(parts)
    else:
        calls_text = t("not_recorded")
    last = (f"{airflow_run_link(h.get('dag_id'), h['last_success_run_id'])} ({esc(fmt_time(h['last_success_at']))})"
            if h.get("last_success_run_id") else t("never"))
    return (f'<p class="health">{t("lag")}: p50 <b>{dur(h.get("lag_p50_s"))}</b>, p95 <b>{dur(h.get("lag_p95_s"))}</b>'
            f' <span class="muted">(n={esc(h.get("lag_n"))})</span> · <span class="calls">{t("api_today")}: '
            f'{esc(calls_text)}</span> · '
            f'{t("last_success")}: {last}</p>')


def retry_allowed(flow: str) -> bool:
    return flow in retryable_flows()


def retry_note(t: T) -> str:
    """Which flows Retry re-drives (from the registry) and what to do for the others."""
    return t("retry_unsupported").format(flows=", ".join(retryable_flows()))


def watchers_table(states: Sequence[Mapping[str, Any]], t: T) -> str:
    """The event watchers: last poll (and how long ago), ok/error, position, and silent (highlighted)."""
    if not states:
        return (f'<section class="flow" id="watchers"><h2>{t("watchers")}</h2>'
                f'<p class="muted">{t("no_watchers")}</p></section>')

    def at(ms: Any) -> str:
        return fmt_time(datetime.fromtimestamp(ms / 1000, tz=timezone.utc)) if ms is not None else t("never")

    rows = []
    for w in states:
        since = w.get("seconds_since_poll")
        result = w.get("last_result")
        badge = status_badge("success" if result == "ok" else "failed") if result else ""
        result_text = f'{badge} {esc(w.get("last_error") or "")}' if result else esc(t("never"))
        silent = w.get("silent")
        rows.append(
            f'<tr class="{"silent" if silent else ""}"><td><code>{esc(w["name"])}</code></td>'
            f'<td>{esc(" ".join(str(x) for x in (w.get("source"), w.get("form")) if x))}</td><td>{esc(w.get("mode"))}</td>'
            f'<td>{esc(at(w.get("last_polled_ms")))}{"" if since is None else f" ({since:.0f} s)"}</td>'
            f"<td>{result_text}</td>"
            f'<td>{esc(at(w["position_ms"]) if (w.get("position_ms") or 0) > 0 else "—")} '
            f'<code>{esc(w.get("position_record_id") or "")}</code></td>'
            f'<td class="watch-silent">{status_badge("failed") + " " + esc(t("silent")) if silent else esc(t("no"))}'
            f"</td></tr>")
    head = "".join(f"<th>{esc(t(h))}</th>" for h in ("watcher", "source", "mode", "last_poll", "poll_result",
                                                      "position", "silent"))
    return (f'<section class="flow" id="watchers"><h2>{t("watchers")}</h2><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table><p class="muted">{t("watchers_note")}</p></section>')
