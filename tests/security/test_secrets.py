"""Secrets never leave the connection: run every flow (with faults, so error paths log too) against simulators
started with distinctive credentials, then search the logs (every logger at DEBUG, stdout/stderr), the audit
store (every table's text) and the CRM messages for them. In-process run (the steps the DAG calls); the real
task runner's masking is not exercised here."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
import sqlalchemy as sa

from simproc import FX, K3, SimulatorProcess

SECRETS = {"fx_app_secret": "FXSECRET-7d1e9a-zebra", "fx_permanent_code": "PERMCODE-4b2c77-yak",
           "k3_password": "K3PASS-91f0aa-okapi", "k3_app_secret": "K3APPSECRET-55e1c0-quokka"}


@pytest.fixture
def secret_sims(tmp_path, monkeypatch):
    fx = SimulatorProcess("fxiaoke", "--app-secret", SECRETS["fx_app_secret"],
                          "--permanent-code", SECRETS["fx_permanent_code"]).start()
    k3 = SimulatorProcess("k3cloud", "--password", SECRETS["k3_password"], "--app-secret", SECRETS["k3_app_secret"]).start()
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps({
        "conn_type": "fxiaoke", "host": fx.base_url, "login": FX["app_id"], "password": SECRETS["fx_app_secret"],
        "extra": {"permanent_code": SECRETS["fx_permanent_code"], "open_user_id": FX["open_user_id"], "timeout": 1,
                  "calls_per_20s": 100}}))
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", json.dumps({
        "conn_type": "k3cloud", "host": f"{k3.base_url}/k3cloud/", "login": K3["username"],
        "password": SECRETS["k3_password"], "extra": {"acct_id": K3["acct_id"], "app_id": K3["app_id"],
                                                      "app_secret": SECRETS["k3_app_secret"], "lcid": 2052,
                                                      "org_number": "100", "timeout": 1}}))
    url = f"sqlite:///{tmp_path}/audit.db"
    monkeypatch.setenv("SYNC_AUDIT_URL", url)
    yield fx, k3, url
    fx.stop(), k3.stop()


def test_no_secret_in_logs_audit_store_or_messages(secret_sims, capfd):
    from fxiaoke_k3cloud.audit import AuditStore
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    from reliability.chaos import clear_client_caches, ship_orders
    from reliability.runner import CUSTOMERS, DELIVERIES, ORDERS, Scheduler, fast_backoff

    sys.path.insert(0, "scripts")
    from demo_deliveries import create_demo_deliveries

    fx, k3, url = secret_sims
    store = AuditStore(url)
    store.migrate()
    clear_client_caches()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        fx.seed({"demo": 8})
        profile = {"seed": 5, "error_rate": 0.1, "timeout_rate": 0.05, "timeout_delay_s": 1.5}
        fx.faults({**profile, "token_expire_every": 7}), k3.faults({**profile, "session_loss_every": 5})
        with fast_backoff():
            scheduler = Scheduler(max_runs=6)
            scheduler.settle(CUSTOMERS), scheduler.settle(ORDERS)
            fx.faults({}), k3.faults({})
            ship_orders(K3CloudHook(retry_wait_s=0), create_demo_deliveries, 50)
            import time

            time.sleep(1.1)
            fx.faults({**profile, "token_expire_every": 7}), k3.faults({**profile, "session_loss_every": 5})
            scheduler.settle(DELIVERIES)
            fx.expire(), k3.expire()
            fx.faults({}), k3.faults({})
            scheduler.run_once(CUSTOMERS)  # logs in again after the forced expiry
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    out, err = capfd.readouterr()
    texts = {"logs": buffer.getvalue(), "stdout": out, "stderr": err,
             "messages": json.dumps(fx._admin("GET", "messages"), ensure_ascii=False)}
    with store.engine.connect() as conn:
        for table in sa.inspect(store.engine).get_table_names():
            rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).fetchall()
            texts[f"audit:{table}"] = "\n".join(repr(tuple(r)) for r in rows)
    assert len(texts["logs"]) > 1000 and texts["audit:sync_record"], "the run must have produced logs and audit rows"
    hits = {(name, secret) for name, text in texts.items() for secret, value in SECRETS.items() if value in text}
    assert hits == set(), f"secrets found: {sorted(hits)}"
    store.dispose()
