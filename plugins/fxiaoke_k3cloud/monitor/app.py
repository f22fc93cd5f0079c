"""The monitor and console as a FastAPI app, mounted by Airflow's api-server under ``/sync-monitor``.

Plugin endpoints in Airflow 3 are public unless they ask for authentication, so the app carries
Airflow's ``requires_authenticated()`` dependency on every route: a request needs the UI's ``_token``
cookie (the iframe in the Airflow UI sends it) or an ``Authorization: Bearer`` JWT. The actions (Retry,
Ignore) are POSTs accepted only from the page's own origin, name the person from that token, and Retry
calls Airflow's REST API with that same token.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.flows.specs import FLOWS
from fxiaoke_k3cloud.monitor import console, console_pages, pages, queries
from fxiaoke_k3cloud.monitor.airflow_api import AirflowApiError, trigger_redrive, user_token
from fxiaoke_k3cloud.monitor.i18n import pick_language, translator

#: Runs per flow on the page (chart and table).
RUNS_PER_FLOW = 30
# Never let a browser or proxy cache CRM data; keep the page from being framed by other origins.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'self'",
    "Referrer-Policy": "same-origin",
}
CSV_COLUMNS = ("created_at", "flow", "entity", "source_id", "source_name", "target_number", "shown_outcome",
               "error_class", "reason", "run_id", "attempt")


def airflow_auth() -> list[Any]:
    """The dependency list that puts every route behind Airflow's authentication (api-server only)."""
    # Internal Airflow module (pinned Airflow 3.3.x): imported here, so the command line and the flows
    # never pay for it.
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return [Depends(requires_authenticated())]


async def airflow_actor(request: Request) -> str:
    """The logged-in Airflow user's name, from the same token the route was authenticated with."""
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    user = await resolve_user_from_token(user_token(request.headers, request.cookies))
    return str(user.get_name())


async def local_actor(request: Request) -> str:  # noqa: ARG001 - same signature as airflow_actor
    return "local (no authentication)"


def _page(html: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code, headers=_HEADERS)


def _when(text: str | None) -> datetime | None:
    """A ``datetime-local`` value (UTC, as the page labels it); a bad one is ignored."""
    try:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc) if text else None
    except ValueError:
        return None


def record_filter(params: Any) -> console.RecordFilter:
    flow = params.get("flow") or None
    outcome = params.get("outcome") or "attention"
    return console.RecordFilter(
        flow=flow if flow in FLOWS else None, outcome=None if outcome == "any" else outcome[:20],
        reason_class=(params.get("reason_class") or None), since=_when(params.get("since")),
        until=_when(params.get("until")), q=(params.get("q") or "")[:200])


def back_to(f: console.RecordFilter, *, done: str = "", error: str = "") -> RedirectResponse:
    """After a POST: back to the same filtered table (303), with what happened — reloading repeats nothing."""
    extra = f"&done={quote(done, safe='')}" if done else f"&error={quote(error, safe='')}"
    return RedirectResponse(f"../records?{console_pages.filter_query(f)}{extra}", status_code=303, headers=_HEADERS)


def create_app(
    store_factory: Callable[[], AuditStore] = AuditStore.from_airflow,
    *,
    dependencies: Sequence[Any] | None = None,
    actor: Callable[[Request], Awaitable[str]] | None = None,
    airflow_api: str | None = None,
) -> FastAPI:
    """Build the monitor app.

    :param store_factory: opens the audit store; called once, on the first request.
    :param dependencies: route dependencies; None means Airflow's authentication. Pass ``[]`` only to
        serve demo data locally (e.g. for a screenshot), never in the api-server.
    :param actor: names the person behind a request (default: from the Airflow token; ``local`` without auth).
    :param airflow_api: base URL of Airflow's REST API for Retry (default ``$SYNC_CONSOLE_AIRFLOW_API`` or the
        origin the request came to: the console runs inside the api-server).
    """
    app = FastAPI(
        title="Fxiaoke ⇄ K3Cloud sync monitor",
        dependencies=list(airflow_auth() if dependencies is None else dependencies),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.store = None
    who = actor or (airflow_actor if dependencies is None else local_actor)

    def store() -> AuditStore:
        # Lazily: the api-server imports plugins at start-up, when the audit database may be down.
        if app.state.store is None:
            app.state.store = store_factory()
        return app.state.store

    def language(request: Request) -> tuple[str, Callable[[str], str]]:
        lang = pick_language(request.headers.get("accept-language"))
        return lang, translator(lang)

    def overview(flow: str | None, lang: str, t: Callable[[str], str]) -> HTMLResponse:
        s = store()
        try:
            if queries.store_missing(s):
                return _page(pages.overview_page([], flows=list(FLOWS), current=flow, empty=True, t=t, lang=lang))
            present = queries.flows_in_store(s)
            nav = list(dict.fromkeys([*FLOWS, *present]))  # every registry flow, with runs or not yet
            shown = [flow] if flow else nav
            quota, _ = console.crm_daily_quota()
            health = {name: console.flow_health(s, name) for name in shown}
            crm_today = console.crm_calls_today(s)
            sections = [
                pages.flow_section(
                    name,
                    queries.list_runs(s, [name], last=RUNS_PER_FLOW),
                    queries.open_parked(s, name),
                    queries.latest_drift(s, name),
                    t=t,
                    health=console_pages.health_line(
                        {**health[name], "crm_quota": quota, "crm_calls_all_flows": crm_today}, t),
                    open_problems=len(console.records(s, console.RecordFilter(flow=name))),
                )
                for name in shown
            ]
            if not flow:
                sections.insert(0, console_pages.watchers_table(queries.watcher_states(s), t))
            invalid = console.mapping_problems()
            if invalid:  # a configuration error stops every run of that flow: say it first
                sections.insert(0, "".join(
                    f'<p class="error"><a href="./errors">{pages.esc(p["file"])}: {t("mapping_invalid")}</a></p>'
                    for p in invalid))
            extra = console_pages.actions_table(console.console_actions(s), t)
        except queries.StoreUnavailable as exc:
            return _page(pages.error_page(str(exc), flows=list(FLOWS)), 503)
        return _page(pages.overview_page(sections, flows=nav, current=flow, empty=not shown, t=t, lang=lang,
                                         extra=extra))

    def history(q: str) -> HTMLResponse:
        s = store()
        try:
            rows = [] if queries.store_missing(s) else queries.record_history(s, q)
        except queries.StoreUnavailable as exc:
            return _page(pages.error_page(str(exc), flows=list(FLOWS)), 503)
        return _page(pages.history_page(q, rows, flows=list(FLOWS)))

    def record_rows(f: console.RecordFilter) -> list[dict[str, Any]]:
        s = store()
        return [] if queries.store_missing(s) else console.records(s, f)

    def records_html(f: console.RecordFilter, lang: str, t: Callable[[str], str], notice: str = "",
                     error: str = "") -> HTMLResponse:
        try:
            rows = record_rows(f)
            classes = [] if queries.store_missing(store()) else console.reason_classes(store())
        except queries.StoreUnavailable as exc:
            return _page(pages.error_page(str(exc), flows=list(FLOWS)), 503)
        return _page(console_pages.records_page(f, rows, flows=list(FLOWS), classes=classes, t=t, lang=lang,
                                                notice=notice, error=error))

    def errors_html(lang: str, t: Callable[[str], str]) -> HTMLResponse:
        s = store()
        try:
            missing = queries.store_missing(s)
            groups = [] if missing else console.error_groups(s)
            stopped = [] if missing else console.stopped_runs(s)
        except queries.StoreUnavailable as exc:
            return _page(pages.error_page(str(exc), flows=list(FLOWS)), 503)
        return _page(console_pages.errors_page(groups, console.mapping_problems(), flows=list(FLOWS), t=t, lang=lang,
                                               stopped=stopped))

    @app.get("/", response_class=HTMLResponse)
    async def show_overview(request: Request, flow: str | None = Query(None, max_length=100)) -> HTMLResponse:
        """Per flow: health, runs over time, recent runs, parked/quarantined records, drift."""
        # Database work off the event loop: the api-server serves Airflow's own API on the same loop.
        return await run_in_threadpool(overview, flow or None, *language(request))

    @app.get("/record", response_class=HTMLResponse)
    async def show_record_history(q: str = Query("", max_length=200)) -> HTMLResponse:
        """Every recorded outcome of one CRM id or K3Cloud number."""
        return await run_in_threadpool(history, q)

    @app.get("/records", response_class=HTMLResponse)
    async def show_records(request: Request) -> HTMLResponse:
        """The record table across flows: filters, partial search, selection for Retry / Ignore."""
        f = record_filter(request.query_params)
        notice = console_pages.esc(request.query_params.get("done", "")[:300])
        error = request.query_params.get("error", "")[:300]
        return await run_in_threadpool(records_html, f, *language(request), notice, error)

    @app.get("/records.csv")
    async def export_records(request: Request) -> Response:
        """The filtered record table as CSV (UTF-8 with BOM, so Excel opens Chinese names correctly)."""
        rows = await run_in_threadpool(record_rows, record_filter(request.query_params))
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else r.get(c) for c in CSV_COLUMNS])
        headers = {**_HEADERS, "Content-Disposition": 'attachment; filename="sync-records.csv"'}
        return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)

    @app.get("/errors", response_class=HTMLResponse)
    async def show_errors(request: Request) -> HTMLResponse:
        """Open problems grouped by cause, configuration apart from data, with what to do."""
        return await run_in_threadpool(errors_html, *language(request))

    @app.post("/records/action", response_class=HTMLResponse)
    async def act_on_records(request: Request) -> Response:
        """Retry (re-drive through Airflow with the user's token) or Ignore (quarantine) the selected records."""
        lang, t = language(request)
        back = record_filter(request.query_params)
        origin = request.headers.get("origin") or request.headers.get("referer") or ""
        if urlparse(origin).netloc != request.url.netloc:  # a form posted from another site (CSRF)
            return _page(pages.error_page("refused: the action must come from this console's own page"), 403)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        action = (form.get("action") or [""])[0]
        selected: dict[str, list[str]] = {}
        for item in form.get("sel", []):
            flow, _, sid = item.partition("|")
            if flow in FLOWS and sid:
                selected.setdefault(flow, []).append(sid)
        if not selected:
            return back_to(back, error="select at least one record")
        actor_name = await who(request)
        if action == "ignore":
            reason = (form.get("reason") or [""])[0].strip()[:500]
            if not reason:
                return back_to(back, error="Ignore needs a reason")
            n = 0
            for flow, ids in selected.items():
                n += await run_in_threadpool(console.ignore, store(), flow, ids, reason=reason, actor=actor_name)
            done = f"{t('ignore_done')}: {n} — {actor_name}"
        elif action == "retry":
            unsupported = sorted(set(selected) - set(console.retryable_flows()))
            if unsupported:
                return back_to(back, error=console_pages.retry_note(t))
            token = user_token(request.headers, request.cookies) or ""
            base = airflow_api or os.environ.get("SYNC_CONSOLE_AIRFLOW_API") or f"{request.url.scheme}://{request.url.netloc}"
            runs = []
            try:
                for flow, ids in selected.items():
                    triggered = await run_in_threadpool(trigger_redrive, base, token, flow, ids)
                    await run_in_threadpool(console.record_retry, store(), flow, ids,
                                            actor=triggered.triggering_user or actor_name,
                                            airflow_run_id=triggered.dag_run_id)
                    runs.append(triggered.dag_run_id)
            except AirflowApiError as exc:
                return back_to(back, error=str(exc))
            done = f"{t('retry_done')} sync_redrive/{', '.join(runs)} — {actor_name}"
        else:
            return back_to(back, error=f"unknown action {action!r}")
        return back_to(back, done=done)

    return app
