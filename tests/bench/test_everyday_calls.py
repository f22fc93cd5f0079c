"""What an everyday scheduled run costs in API calls, counted by the simulators (``/_sim/stats``) over HTTP.

Issue 19, "cheap everyday runs": a run with nothing to do makes at most 2 calls; a run with 1 % of 20 000
customers changed (200 records) at most 6 across both systems. The counts are asserted exactly, per endpoint.
Each run's tasks are fresh task processes in a deployment, so the process caches (token, throttle windows) are
dropped before every run: what a run may reuse is only what the deployment shares (the Fxiaoke token and the
K3Cloud session, rows in the audit store encrypted with the Fernet key).
"""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from flows.conftest import airflow_db, audit_url, dagbag, run_dag, sims, store  # noqa: F401 — the flow tests' fixtures
from fxiaoke_k3cloud.hooks.fxiaoke_throttle import clear_shared_throttles
from fxiaoke_k3cloud.hooks.fxiaoke_token import clear_process_caches
from flows.test_orders_flow import line, order, products, seed
from flows.test_writeback import clock  # noqa: F401 — the write-back's clock, moved by hand
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from mapping.crm_records import account

DAG_ID = "fxiaoke_customers_to_k3cloud"
ORDERS_DAG = "fxiaoke_orders_to_k3cloud"
QUERY = "/cgi/crm/v2/data/query"
SEEDED = 1000
CHANGED = 200  # 1 % of 20 000: the call count depends on the rows changed, not on the rows that did not


@pytest.fixture
def fernet_key(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", _KEY)
    _forget_fernets()  # read again with this key
    yield _KEY
    # The session's Airflow metadata DB outlives this test: the watchers' trigger rows it wrote are encrypted with
    # this key, so they go (the next DAG parse writes them again), and the session's own key (none) comes back.
    _drop_triggers()
    monkeypatch.undo()
    _forget_fernets()


_KEY = Fernet.generate_key().decode()  # one key for the module's tests: they share one metadata DB


def _drop_triggers() -> None:
    from airflow.models.asset import AssetWatcherModel
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(AssetWatcherModel))
        session.execute(delete(Trigger))


def _forget_fernets() -> None:
    from airflow.models import crypto as models_crypto
    from airflow.sdk import crypto

    for module in (crypto, models_crypto):
        if hasattr(getattr(module, "get_fernet", None), "cache_clear"):
            module.get_fernet.cache_clear()


def _fresh_task_processes() -> None:
    clear_process_caches()
    clear_shared_throttles()


def _calls(sims) -> dict[str, dict[str, int]]:
    return {"fx": dict(sims.fx.stats()["calls"]), "k3": dict(sims.k3.stats()["calls"])}


def _diff(before, after) -> dict[str, dict[str, int]]:
    return {s: {k: v - before[s].get(k, 0) for k, v in after[s].items() if v - before[s].get(k, 0)} for s in after}


def test_everyday_runs_cost_few_calls(dagbag, sims, store, fernet_key):
    for start in range(1, SEEDED + 1, 500):
        sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(start, min(start + 500, SEEDED + 1))]}})
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success", states
    assert len(sims.k3.records("BD_Customer")) == SEEDED

    _fresh_task_processes()
    before = _calls(sims)
    dr, states = run_dag(dagbag, DAG_ID)  # nothing changed
    noop = _diff(before, _calls(sims))
    assert dr.state == "success", states
    # One window query (voided rows asked for in the same query); no token call (the deployment's token), no
    # K3Cloud call at all (the later tasks were skipped).
    assert noop == {"fx": {QUERY: 1}, "k3": {}}, noop

    _edit(sims, range(1, CHANGED + 1), "改名有限公司")
    _fresh_task_processes()
    before = _calls(sims)
    dr, states = run_dag(dagbag, DAG_ID)
    change = _diff(before, _calls(sims))
    assert dr.state == "success", states
    docs = {r["FNumber"]: r for r in sims.k3.records("BD_Customer")}
    assert len(docs) == SEEDED
    assert all(docs[f"CUST-{i:06d}"]["FName"] == f"改名有限公司{i:04d}" for i in range(1, CHANGED + 1))
    assert all(docs[f"CUST-{i:06d}"]["FDocumentStatus"] == "C" for i in range(1, SEEDED + 1))  # audited again
    # What the run costs, call by call (issue 19's target is ≤ 6; a regression in any of them fails here):
    # 2 query pages of 100 (voided rows in the same query); per load chunk of 100 one UnAudit by id, whose answer
    # is also the presence check, and one BatchSave of the 100 updates; the deployment's K3Cloud session
    # (no login, no logout) and Fxiaoke token.
    assert change == {"fx": {QUERY: 2}, "k3": {"UnAudit": 2, "BatchSave": 2}}, change

    # Behind our back: one customer deleted in K3Cloud, and the server lost every session. The next change run
    # logs in once (the refused call is replayed), re-creates the deleted customer and updates the others.
    with K3CloudHook(retry_wait_s=0) as k3:
        k3.unaudit("BD_Customer", numbers=["CUST-000002"])
        k3.delete("BD_Customer", numbers=["CUST-000002"])
    sims.k3.expire()
    _edit(sims, range(1, 4), "再改名有限公司")
    _fresh_task_processes()
    before = _calls(sims)
    dr, states = run_dag(dagbag, DAG_ID)
    again = _diff(before, _calls(sims))
    assert dr.state == "success", states
    docs = {}
    for r in sims.k3.records("BD_Customer"):
        docs.setdefault(r["FNumber"], []).append(r)
    assert len(docs) == SEEDED and all(len(v) == 1 for v in docs.values())  # no duplicate
    assert [(docs[f"CUST-{i:06d}"][0]["FName"], docs[f"CUST-{i:06d}"][0]["FDocumentStatus"]) for i in (1, 2, 3)] == \
        [(f"再改名有限公司{i:04d}", "C") for i in (1, 2, 3)]
    # 2 pages: the window's look-back re-reads the 200 edited before (unchanged: no K3Cloud call for them).
    # UnAudit (session lost, replayed after one login) answers for 1 and 3; the presence query finds 2 gone;
    # BatchSave creates 2, then updates 1 and 3.
    assert again == {"fx": {QUERY: 2}, "k3": {"ValidateUser": 1, "UnAudit": 2, "ExecuteBillQuery": 1,
                                              "BatchSave": 2}}, again
    outcomes = {r["source_id"]: (r["outcome"], r["reason"] or "") for r in _last_run_records(store)}
    assert outcomes[account(2)["_id"]][0] == "created" and "re-created" in outcomes[account(2)["_id"]][1]
    assert {outcomes[account(i)["_id"]][0] for i in (1, 3)} == {"updated"}


def _edit(sims, numbers, name: str) -> None:
    changed = [account(i, name=f"{name}{i:04d}") for i in numbers]
    for row in changed:
        row.pop("last_modified_time")  # the simulator stamps "now", as an edit in the CRM does
    sims.fx.seed({"objects": {"AccountObj": changed}})


def _last_run_records(store) -> list[dict]:
    from fxiaoke_k3cloud.flows.queries import run_records

    run = store.recent_runs("customers", limit=1)[0]
    return run_records(store, run["id"])


def test_an_orders_run_with_nothing_to_do_costs_two_crm_calls_and_the_hourly_status_query(dagbag, sims, store,
                                                                                          fernet_key, clock):
    p = products(sims.fx)
    accounts = [account(i) for i in (1, 2)]
    orders = [order(i, accounts[i - 1]["_id"]) for i in (1, 2)]
    seed(sims.fx, accounts, orders, [line(o["_id"], 1, p["MAT-0001"]) for o in orders])
    dr, states = run_dag(dagbag, ORDERS_DAG)
    assert dr.state == "success", states
    assert len(sims.k3.records("SAL_SaleOrder")) == 2

    _fresh_task_processes()
    before = _calls(sims)
    dr, states = run_dag(dagbag, ORDERS_DAG)
    noop = _diff(before, _calls(sims))
    assert dr.state == "success", states
    # The orders window and the lines changed since it started, voided rows in the same queries. The first run's
    # write-back moved both orders' last_modified_time: those are its echoes, not read again (0 extracted, no CRM
    # update). The orders write-back refreshes the status of orders not yet closed or cancelled once an hour
    # (write_back.refresh_every_minutes: 60) and in runs that loaded orders: the first run made this hour's, so
    # this run asks K3Cloud nothing (3 → 2 calls).
    assert noop == {"fx": {QUERY: 2}, "k3": {}}, noop
    assert store.recent_runs("orders", limit=1)[0]["extracted"] == 0

    # The first run of the next hour makes the hour's refresh: one ExecuteBillQuery per 500 open orders, in the
    # deployment's shared session (no login) — 3 calls in 1 scheduled run of 4.
    clock.advance(60)
    _fresh_task_processes()
    before = _calls(sims)
    dr, states = run_dag(dagbag, ORDERS_DAG)
    hourly = _diff(before, _calls(sims))
    assert dr.state == "success", states
    assert hourly == {"fx": {QUERY: 2}, "k3": {"ExecuteBillQuery": 1}}, hourly
