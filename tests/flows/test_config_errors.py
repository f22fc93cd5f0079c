"""Configuration errors fail the step that met them once, without retries; data errors stay per record."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from mapping.crm_records import account
from simproc import k3cloud_conn

from .conftest import run_dag

DAG_ID = "fxiaoke_customers_to_k3cloud"
FULL = {"full_resync": True}


def run_with_retries(dagbag, conf: dict):
    """Like ``run_dag`` but the tasks keep retries: a config error must not use them."""
    dag = dagbag.get_dag(DAG_ID)
    for t in dag.tasks:
        t.retries, t.retry_delay = 2, timedelta(seconds=0)
    full = {"since": None, "until": None, "ids": [], "full_resync": False, "dry_run": False, "void_action": "report"}
    dr = dag.test(run_conf={**full, **conf})
    return dr, {ti.task_id: ti for ti in dr.get_task_instances()}


@pytest.fixture
def restore_retries(dagbag):
    yield
    for t in dagbag.get_dag(DAG_ID).tasks:
        t.retries = 0


def test_refused_k3cloud_login_fails_load_once_with_one_message_and_no_per_record_failures(
        dagbag, sims, store, monkeypatch, restore_retries):
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(1, 8)]}})
    wrong = json.loads(k3cloud_conn(sims.k3))
    wrong["password"] = "not-the-password"
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", json.dumps(wrong))
    dr, tis = run_with_retries(dagbag, FULL)
    load = tis["load_customers"]
    assert (load.state, load.try_number) == ("failed", 1), "a refused login is not retried"
    assert dr.state == "failed"
    run = store.recent_runs("customers", limit=1)[0]
    records = dict(store.run_summary(run["id"])["records"])
    assert records.get("failed", 0) == 0, f"no per-record failure for a login problem: {records}"
    assert sims.k3.records("BD_Customer") == []


def test_mapping_that_does_not_validate_fails_at_once_naming_file_and_key(
        dagbag, sims, store, tmp_path, monkeypatch, restore_retries):
    from fxiaoke_k3cloud.flows.specs import mappings_dir

    for f in mappings_dir().glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    text = (tmp_path / "customers.yaml").read_text(encoding="utf-8")
    (tmp_path / "customers.yaml").write_text(text + "\nunknown_top_level_key: 1\n", encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(tmp_path))
    sims.fx.seed({"objects": {"AccountObj": [account(1)]}})
    dr, tis = run_with_retries(dagbag, FULL)
    failed = [ti for ti in tis.values() if ti.state == "failed"]
    assert failed and all(ti.try_number == 1 for ti in failed), [(t.task_id, t.try_number) for t in failed]
    assert dr.state == "failed"
    assert sims.k3.records("BD_Customer") == []


def test_console_lists_the_stopped_run_under_configuration_errors(dagbag, sims, store, monkeypatch, restore_retries):
    from fastapi.testclient import TestClient

    from fxiaoke_k3cloud.monitor.app import create_app

    sims.fx.seed({"objects": {"AccountObj": [account(1)]}})
    wrong = json.loads(k3cloud_conn(sims.k3))
    wrong["password"] = "not-the-password"
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", json.dumps(wrong))
    dr, _ = run_with_retries(dagbag, FULL)
    html = TestClient(create_app(lambda: store, dependencies=[])).get("/errors").text
    config = html.split('id="data"')[0]
    assert "Runs that stopped" in config and dr.run_id.split("+")[0] in config
    # The configuration error's own text, with what to check, not a generic "load did not finish".
    assert "load did not finish" not in config
    assert "load_customers stopped on a configuration error (not retried)" in config
    assert "Check the acct id (data center), the user name, the password" in config
    assert "None." in html.split('id="data"')[1]  # no per-record failures for a login problem
