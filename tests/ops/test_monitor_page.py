"""The monitor page: numbers from the audit store, escaping of CRM data, and Airflow authentication."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.monitor.app import create_app

from .fill import CRM_ID, K3_NUMBER, SECRET, XSS_NAME, Filled, fill


def client_for(store: AuditStore) -> TestClient:
    # Authentication is tested against the real Airflow api-server below; here it is left out.
    return TestClient(create_app(lambda: store, dependencies=[]))


def cells(html: str, row_marker: str) -> list[str]:
    """Text of the cells of the first table row containing ``row_marker``."""
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", html, re.S) if row_marker in r)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_overview_shows_the_runs_counts_and_reasons(filled: Filled) -> None:
    r = client_for(filled.store).get("/")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    html = r.text
    bad = cells(html, "scheduled__2026-01-05T00:15:00")
    assert bad[0] == str(filled.bad_run)
    # Airflow shows this run failed (report fails a partial run); the audit detail follows.
    assert bad[2:] == ["2026-01-05 00:15 → 00:30", "failed (partial)", "4", "0", "1", "0", "2", "1", "0", "0"]
    assert "2 × rejected: tax_id is required (FTAXREGISTERCODE)" in html
    assert "password=***" in html and SECRET not in html
    orders = cells(html, "manual__2026-01-05T00:30:00")
    assert orders[3:] == ["success", "2", "1", "0", "0", "0", "0", "1", "0"]
    # One chart per flow, with one point per run and series.
    assert html.count("<svg") == 2
    assert "parked 1 — run %d (success)" % filled.order_run in html


def test_parked_and_quarantined_records_are_listed_with_reasons(filled: Filled) -> None:
    html = client_for(filled.store).get("/", params={"flow": "orders"}).text
    assert 'id="flow-customers"' not in html
    parked = cells(html, "77000000000000000000d002")
    assert parked[:4] == ["77000000000000000000d002", "parked", "customer not in K3Cloud yet", f"customer:{CRM_ID}"]
    quarantined = cells(html, "77000000000000000000d003")
    assert quarantined[:4] == ["77000000000000000000d003", "quarantined", "material MAT-9999 missing",
                               "material:MAT-9999"]
    assert "No reconciliation drift recorded yet." in html


def test_crm_data_is_escaped_never_executed(filled: Filled) -> None:
    client = client_for(filled.store)
    for html in (client.get("/record", params={"q": CRM_ID}).text,
                 client.get("/record", params={"q": '"><script>alert(1)</script>'}).text):
        assert "<script>" not in html
    html = client.get("/record", params={"q": CRM_ID}).text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; 上海精密机械" in html
    assert "content-security-policy" in client.get("/").headers


def test_search_shows_a_records_whole_history(filled: Filled) -> None:
    client = client_for(filled.store)
    for key in (CRM_ID, K3_NUMBER):
        html = client.get("/record", params={"q": key}).text
        rows = [cells(html, run_id) for run_id in ("scheduled__2026-01-05T00:15:00", "scheduled__2026-01-05T00:00:00")]
        assert [r[6] for r in rows] == ["updated", "created"]
        assert all(r[3] == CRM_ID and r[5] == K3_NUMBER for r in rows)
        assert "2 recorded outcome(s)" in html
    assert "Nothing recorded for" in client.get("/record", params={"q": "CUST-404"}).text


def test_drift_table_of_the_reconciliation_is_shown_when_present(sqlite_filled: Filled) -> None:
    with sqlite_filled.store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE reconcile_drift (id INTEGER PRIMARY KEY, flow TEXT, source_id TEXT, issue TEXT)"))
        conn.execute(sa.text("INSERT INTO reconcile_drift (flow, source_id, issue) VALUES "
                             "('customers', 'c1', 'name differs: <b>x</b>'), ('orders', 'o1', 'missing in K3')"))
    html = client_for(sqlite_filled.store).get("/", params={"flow": "customers"}).text
    assert "reconcile_drift" in html
    assert "name differs: &lt;b&gt;x&lt;/b&gt;" in html
    assert "missing in K3" not in html  # filtered to the flow


def test_empty_and_unreachable_stores_give_a_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = AuditStore(f"sqlite:///{tmp_path / 'none.db'}")
    r = client_for(empty).get("/")
    assert r.status_code == 200 and "no sync runs yet" in r.text
    down = AuditStore("postgresql://sync:pw-not-shown@127.0.0.1:1/sync_audit")
    r = client_for(down).get("/")
    assert r.status_code == 503
    assert "cannot read the audit store" in r.text and "pw-not-shown" not in r.text


def test_app_carries_airflows_authentication_dependency() -> None:
    from airflow.api_fastapi.core_api import security

    app = create_app(lambda: pytest.fail("no store needed"))
    names = [d.dependency.__qualname__ for d in app.router.dependencies]
    assert names == [security.requires_authenticated().__qualname__]


# ---------------------------------------------------------------------------------------- real api-server
@pytest.fixture(scope="module")
def airflow_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    """Airflow's own api-server app (plugins loaded from the entry point) and a valid JWT."""
    import os

    from airflow.utils import db

    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'audit.db'}"
    filled = fill(url)
    old = os.environ.get("SYNC_AUDIT_URL")
    os.environ["SYNC_AUDIT_URL"] = url
    # The api-server checks tokens against the metadata DB (revoked tokens). Reset it only when no other
    # test module has set it up already, so this module never wipes another's state.
    from airflow.settings import engine

    if not sa.inspect(engine).has_table("revoked_token"):
        db.resetdb()
    from airflow.api_fastapi.app import create_app as create_airflow_app
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from fxiaoke_k3cloud.monitor.plugin import SyncMonitorPlugin

    SyncMonitorPlugin.fastapi_apps[0]["app"].state.store = None  # resolve the store from this URL
    app = create_airflow_app("core")
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    yield TestClient(app), token
    filled.store.dispose()
    if old is None:
        os.environ.pop("SYNC_AUDIT_URL", None)
    else:
        os.environ["SYNC_AUDIT_URL"] = old


@pytest.mark.parametrize("path", ["/sync-monitor/", "/sync-monitor/record?q=CUST-000123"])
def test_api_server_refuses_anonymous_and_bad_tokens(airflow_api: tuple[TestClient, str], path: str) -> None:
    client, _ = airflow_api
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403
    assert client.get(path, cookies={"_token": "not-a-jwt"}).status_code == 403


def test_api_server_serves_the_page_to_a_logged_in_user(airflow_api: tuple[TestClient, str]) -> None:
    client, token = airflow_api
    r = client.get("/sync-monitor/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert "scheduled__2026-01-05T00:15:00+00:00" in r.text
    # The UI's iframe authenticates with the session cookie.
    client.cookies.set("_token", token)
    try:
        assert client.get("/sync-monitor/record", params={"q": CRM_ID}).status_code == 200
    finally:
        client.cookies.clear()


def test_api_server_lists_the_nav_entry(airflow_api: tuple[TestClient, str]) -> None:
    client, token = airflow_api
    plugins = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}).json()["plugins"]
    monitor = next(p for p in plugins if p["name"] == "sync_monitor")
    assert monitor["external_views"][0]["href"] == "/sync-monitor/"
    assert monitor["fastapi_apps"][0]["url_prefix"] == "/sync-monitor"
