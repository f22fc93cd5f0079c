"""The console after real flow runs (dag.test against both simulators over HTTP), on SQLite and PostgreSQL:
API calls per system recorded on the run and shown against the CRM's daily quota, a rejected record found by its
K3 number (console search and ``history``), a configuration error's own text as the run's message, every registry
flow in the console, the watcher panel.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from flows.conftest import airflow_db, dagbag, run_dag, sims  # noqa: F401
from mapping.crm_records import account
from simproc import fxiaoke_conn, k3cloud_conn

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.cli import main
from fxiaoke_k3cloud.flows.specs import FLOWS
from fxiaoke_k3cloud.monitor.app import create_app

CUSTOMERS = "fxiaoke_customers_to_k3cloud"
FULL = {"full_resync": True}


@pytest.fixture
def store(audit_url):
    s = AuditStore(audit_url)
    yield s
    s.dispose()


def client(store: AuditStore) -> TestClient:
    return TestClient(create_app(lambda: store, dependencies=[]))


def cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue() + err.getvalue()  # stdout first (JSON), then which store was read


def test_a_run_records_its_api_calls_per_system_and_the_console_shows_them_against_the_quota(
        dagbag, sims, store, monkeypatch) -> None:  # noqa: F811
    conn = json.loads(fxiaoke_conn(sims.fx))
    conn["extra"]["daily_quota"] = 50_000
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in (1, 2, 3)]}})
    fx_before, k3_before = sims.fx.stats()["total"], sims.k3.stats()["total"]
    dr, states = run_dag(dagbag, CUSTOMERS, FULL)
    assert dr.state == "success", states
    run = store.recent_runs("customers", limit=1)[0]
    calls = run["api_calls"]
    # Every request the simulators saw for this run, per system, and by path.
    assert calls["fxiaoke"]["total"] == sims.fx.stats()["total"] - fx_before > 0
    assert calls["k3cloud"]["total"] == sims.k3.stats()["total"] - k3_before > 0
    assert sum(calls["k3cloud"]["by_path"].values()) == calls["k3cloud"]["total"]
    assert any("query" in p.lower() for p in calls["fxiaoke"]["by_path"]), calls
    html = client(store).get("/", params={"flow": "customers"}).text
    shown = re.search(r'<span class="calls">(.*?)</span>', html).group(1)
    n = calls["fxiaoke"]["total"]
    assert f"fxiaoke {n:,} / 50,000 daily quota" in shown and f"k3cloud {calls['k3cloud']['total']:,}" in shown
    code, out = cli("report", "--flow", "customers", "--format", "json")
    assert code == 0 and json.JSONDecoder().raw_decode(out)[0][0]["api_calls"] == calls

    # A second flow's calls add up in the tenant's total; the per-flow figure stays its own.
    fx_before = sims.fx.stats()["total"]
    dr, states = run_dag(dagbag, "fxiaoke_orders_to_k3cloud", FULL)
    assert dr.state == "success", states
    orders = store.recent_runs("orders", limit=1)[0]["api_calls"]["fxiaoke"]["total"]
    assert orders == sims.fx.stats()["total"] - fx_before > 0
    html = client(store).get("/", params={"flow": "customers"}).text
    assert f"all flows {n + orders:,}" in html


def test_the_deliveries_run_records_its_k3cloud_calls_too(dagbag, sims, store) -> None:  # noqa: F811
    k3_before = sims.k3.stats()["total"]
    dr, states = run_dag(dagbag, "k3cloud_deliveries_to_fxiaoke", FULL)
    assert dr.state == "success", states
    calls = store.recent_runs("deliveries", limit=1)[0]["api_calls"]
    assert calls["k3cloud"]["total"] == sims.k3.stats()["total"] - k3_before > 0


def test_a_rejected_record_is_found_by_its_k3_number(dagbag, sims, store) -> None:  # noqa: F811
    nameless = account(5, name="   ")  # rejected by the transform: no name
    sims.fx.seed({"objects": {"AccountObj": [account(1), nameless]}})
    dr, states = run_dag(dagbag, CUSTOMERS, FULL)
    assert states["report"] == "failed", states
    number = "CUST-000005"  # the mapping's FNumber of that record (field_fnfcA__c, upper-cased)
    assert not [r for r in sims.k3.records("BD_Customer") if r["FNumber"] == number]
    html = client(store).get("/records", params={"outcome": "any", "q": number.lower()}).text
    assert re.findall(r'name="sel" value="customers\|([^"]+)"', html) == [nameless["_id"]]
    assert "rejected" in html and f"<code>{number}</code>" in html
    code, out = cli("history", number)
    assert code == 0 and nameless["_id"] in out and "rejected" in out, out


def test_a_configuration_error_is_the_runs_message_in_the_store_and_the_console(
        dagbag, sims, store, monkeypatch) -> None:  # noqa: F811
    sims.fx.seed({"objects": {"AccountObj": [account(1)]}})
    wrong = json.loads(k3cloud_conn(sims.k3))
    wrong["password"] = "not-the-password"
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", json.dumps(wrong))
    dr, states = run_dag(dagbag, CUSTOMERS, FULL)
    assert states["load_customers"] == "failed" and states["report"] == "failed", states
    run = store.recent_runs("customers", limit=1)[0]
    message = run["message"]
    assert run["status"] == "failed"
    assert message.startswith("load_customers stopped on a configuration error (not retried): ")
    assert "load did not finish" not in message and "not-the-password" not in message
    error_text = message.split(": ", 1)[1]
    assert "password" in error_text.lower() or "login" in error_text.lower(), message
    errors = client(store).get("/errors").text.split('id="data"')[0]
    assert "load_customers stopped on a configuration error" in errors
    code, out = cli("report", "--flow", "customers")
    assert code == 0 and "configuration error" in out


def test_a_stopped_extract_closes_its_run_with_the_error(dagbag, sims, store, monkeypatch) -> None:  # noqa: F811
    wrong = json.loads(fxiaoke_conn(sims.fx))
    wrong["password"] = "not-the-app-secret"
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(wrong))
    dr, states = run_dag(dagbag, CUSTOMERS, FULL)
    assert states["extract_customers"] == "failed", states
    run = store.recent_runs("customers", limit=1)[0]
    assert run["status"] == "failed", run  # not left "running" for a later run to close as abandoned
    assert run["message"].startswith("extract_customers stopped on a configuration error"), run["message"]


def test_every_registry_flow_is_in_the_console_without_runs(store) -> None:
    store.migrate()
    c = client(store)
    overview, records = c.get("/").text, c.get("/records").text
    for name in FLOWS:
        assert f'id="flow-{name}"' in overview, name
        assert f'<option value="{name}"' in records, name
    assert 'id="watchers"' in overview
    zh = c.get("/", headers={"Accept-Language": "zh-CN"}).text
    assert "最近 0 次运行" in zh and "尚无可绘制的运行。" in zh and "run(s)" not in zh and "to chart" not in zh


def test_watcher_panel_shows_last_poll_result_position_and_silence(store) -> None:
    import time

    store.migrate()
    now = int(time.time() * 1000)
    store.set_watermark("watch:k3cloud_audited_delivery_notices", now - 60_000, "id:100123", force=True)
    store.set_watermark("watch:k3cloud_audited_delivery_notices:polled", now - 5_000, "ok")
    store.set_watermark("watch:fxiaoke_changed_accounts:polled", now - 3_600_000, "TransportError")
    html = client(store).get("/").text
    panel = html.split('id="watchers"')[1].split("</section>")[0]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr[^>]*><td><code>([^<]+)</code>.*?</tr>", panel)}
    k3 = rows["k3cloud_audited_delivery_notices"]
    assert "100123" in k3 and "success" in k3 and 'class="silent"' not in k3
    fx = rows["fxiaoke_changed_accounts"]
    assert "TransportError" in fx and 'class="silent"' in fx


def test_lag_counts_the_incremental_runs_writes_not_a_full_resync_of_old_records(dagbag, sims, store) -> None:  # noqa: F811
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.monitor.console import flow_health

    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in (1, 2, 3)]}})  # changed long ago (BASE_MS)
    dr, states = run_dag(dagbag, CUSTOMERS, FULL)
    assert dr.state == "success", states
    assert flow_health(store, "customers")["lag_n"] == 0  # a full resync's writes say nothing about lag
    FxiaokeHook(retry_wait_s=0).update_record("AccountObj", account(2)["_id"], {"name": "新名字有限公司"})
    dr, states = run_dag(dagbag, CUSTOMERS)  # incremental: from the watermark
    assert dr.state == "success", states
    health = flow_health(store, "customers")
    assert health["lag_n"] == 1 and 0 <= health["lag_p95_s"] < 120, health
