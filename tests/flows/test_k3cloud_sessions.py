"""K3Cloud sessions per task (issue 15 point 4): one login per task that talks to K3Cloud, and a Logout when it ends.

Counted from the simulator's own figures (/_sim/stats: calls per service and the sessions it opened and closed),
for the customers and orders DAGs run end to end, in password and signed mode, and when a task fails.
"""

from __future__ import annotations

from mapping.crm_records import account
from simproc import k3cloud_conn

from .conftest import run_dag
from .test_orders_flow import line, order, products, seed

ORDERS_DAG = "fxiaoke_orders_to_k3cloud"
CUSTOMERS_DAG = "fxiaoke_customers_to_k3cloud"
FULL = {"full_resync": True}
# Tasks of the orders DAG that talk to K3Cloud: sync_customers, transform (material/customer lookups), load, and
# write_back_orders (it reads the orders' K3Cloud status to write it to the CRM; 3 → 4 when the orders write-back
# became on by default).
ORDERS_K3_TASKS = 4


def sessions(sim) -> dict:
    stats = sim.stats()
    return {"logins": stats["calls"].get("ValidateUser", 0), "logouts": stats["calls"].get("Logout", 0),
            **stats["sessions"]}


def seed_one_order(sims, i: int = 1) -> None:
    p = products(sims.fx)
    acc = account(i)
    o = order(i, acc["_id"])
    seed(sims.fx, [acc], [o], [line(o["_id"], 1, p["MAT-0001"])])


def test_each_orders_task_logs_in_once_and_logs_out(dagbag, sims, store):
    seed_one_order(sims)
    dr, states = run_dag(dagbag, ORDERS_DAG, FULL)
    assert dr.state == "success", states
    figures = sessions(sims.k3)
    assert figures["logins"] == ORDERS_K3_TASKS, figures
    assert figures["logouts"] == ORDERS_K3_TASKS and figures["live"] == 0, figures


def test_customers_run_leaves_no_session_open(dagbag, sims, store):
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(1, 4)]}})
    dr, states = run_dag(dagbag, CUSTOMERS_DAG, FULL)
    assert dr.state == "success", states
    figures = sessions(sims.k3)
    assert figures["logins"] == 1 and figures["logouts"] == 1 and figures["live"] == 0, figures
    assert len(sims.k3.records("BD_Customer")) == 3


def test_signed_mode_opens_one_server_session_per_task(dagbag, sims, store, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(sims.k3, "signed"))
    seed_one_order(sims)
    dr, states = run_dag(dagbag, ORDERS_DAG, FULL)
    assert dr.state == "success", states
    figures = sessions(sims.k3)
    # No login call in signed mode; each task's first signed call opens the session that its cookie then carries.
    assert figures["logins"] == 0 and figures["opened"] == ORDERS_K3_TASKS, figures
    assert figures["logouts"] == ORDERS_K3_TASKS and figures["live"] == 0, figures


def test_a_failing_task_still_logs_out(dagbag, sims, store):
    seed_one_order(sims)
    sims.k3.faults({"error_rate": 1.0})  # every K3Cloud call answers HTTP 502: the first K3Cloud task fails
    dr, states = run_dag(dagbag, ORDERS_DAG, FULL)
    sims.k3.faults({})
    assert dr.state == "failed", states
    # Logins were refused by the 502s too, so no session is left behind; with a session held, close() gives it back.
    assert sessions(sims.k3)["live"] == 0


def test_a_task_failing_after_login_logs_out(dagbag, sims, store):
    seed_one_order(sims)
    # Writes only fail: every task logs in and reads; load's BatchSave gets 502 (outcome unknown) and fails the task.
    sims.k3.faults({"error_rate": 0, "lock_conflict_rate": 1.0})
    dr, states = run_dag(dagbag, ORDERS_DAG, FULL)
    sims.k3.faults({})
    figures = sessions(sims.k3)
    assert figures["logins"] >= 1 and figures["logouts"] == figures["logins"] and figures["live"] == 0, (states, figures)


def test_a_run_fits_in_a_two_session_limit(dagbag, sims, store):
    """With the server allowing the user only 2 live sessions, a whole orders run still succeeds (sessions are
    given back task by task); before, the 3 tasks left 3 sessions open and the third login was refused."""
    sims.k3._admin("POST", "protocol", {"max_sessions_per_user": 2})
    seed_one_order(sims, 5)
    dr, states = run_dag(dagbag, ORDERS_DAG, FULL)
    assert dr.state == "success", (states, sessions(sims.k3))
    assert sessions(sims.k3)["live"] == 0
