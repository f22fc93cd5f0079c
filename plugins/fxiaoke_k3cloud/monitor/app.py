"""The monitor page as a FastAPI app, mounted by Airflow's api-server under ``/sync-monitor``.

Plugin endpoints in Airflow 3 are public unless they ask for authentication, so the app carries
Airflow's ``requires_authenticated()`` dependency on every route: a request needs the UI's ``_token``
cookie (the iframe in the Airflow UI sends it) or an ``Authorization: Bearer`` JWT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.flows.specs import FLOWS
from fxiaoke_k3cloud.monitor import pages, queries

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


def airflow_auth() -> list[Any]:
    """The dependency list that puts every route behind Airflow's authentication (api-server only)."""
    # Internal Airflow module (pinned Airflow 3.3.x): imported here, so the command line and the flows
    # never pay for it.
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return [Depends(requires_authenticated())]


def _page(html: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code, headers=_HEADERS)


def create_app(
    store_factory: Callable[[], AuditStore] = AuditStore.from_airflow,
    *,
    dependencies: Sequence[Any] | None = None,
) -> FastAPI:
    """Build the monitor app.

    :param store_factory: opens the audit store; called once, on the first request.
    :param dependencies: route dependencies; None means Airflow's authentication. Pass ``[]`` only to
        serve demo data locally (e.g. for a screenshot), never in the api-server.
    """
    app = FastAPI(
        title="Fxiaoke ⇄ K3Cloud sync monitor",
        dependencies=list(airflow_auth() if dependencies is None else dependencies),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.store = None

    def store() -> AuditStore:
        # Lazily: the api-server imports plugins at start-up, when the audit database may be down.
        if app.state.store is None:
            app.state.store = store_factory()
        return app.state.store

    def overview(flow: str | None) -> HTMLResponse:
        s = store()
        try:
            if queries.store_missing(s):
                return _page(pages.overview_page([], flows=list(FLOWS), current=flow, empty=True))
            present = queries.flows_in_store(s)
            nav = list(dict.fromkeys([*FLOWS, *present]))
            shown = [flow] if flow else present
            sections = [
                pages.flow_section(
                    name,
                    queries.list_runs(s, [name], last=RUNS_PER_FLOW),
                    queries.open_parked(s, name),
                    queries.latest_drift(s, name),
                )
                for name in shown
            ]
        except queries.StoreUnavailable as exc:
            return _page(pages.error_page(str(exc), flows=list(FLOWS)), 503)
        return _page(pages.overview_page(sections, flows=nav, current=flow, empty=not shown))

    def history(q: str) -> HTMLResponse:
        s = store()
        try:
            rows = [] if queries.store_missing(s) else queries.record_history(s, q)
        except queries.StoreUnavailable as exc:
            return _page(pages.error_page(str(exc), flows=list(FLOWS)), 503)
        return _page(pages.history_page(q, rows, flows=list(FLOWS)))

    @app.get("/", response_class=HTMLResponse)
    async def show_overview(flow: str | None = Query(None, max_length=100)) -> HTMLResponse:
        """Runs over time, recent runs, parked/quarantined records and drift, per flow."""
        # Database work off the event loop: the api-server serves Airflow's own API on the same loop.
        return await run_in_threadpool(overview, flow or None)

    @app.get("/record", response_class=HTMLResponse)
    async def show_record_history(q: str = Query("", max_length=200)) -> HTMLResponse:
        """Every recorded outcome of one CRM id or K3Cloud number."""
        return await run_in_threadpool(history, q)

    return app
