"""The flows on a real CeleryExecutor deployment (two workers, Redis, PostgreSQL), driven through the REST API
as a user or a script drives it; what landed is asserted in the simulators.

The tests run in file order on one deployment, each building on the state the previous one left (as a
production installation does: initial load, then deliveries, then everyday runs at once).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from flows.test_orders_flow import line, order, products, seed
from mapping.crm_records import account
from simproc import FX

from .conftest import SEED_CUSTOMERS
from .deployment import ROOT, WORKERS, Deployment

CUSTOMERS = "fxiaoke_customers_to_k3cloud"
ORDERS = "fxiaoke_orders_to_k3cloud"
DELIVERIES = "k3cloud_deliveries_to_fxiaoke"
REDRIVE = "sync_redrive"
TOKEN = "/cgi/corpAccessToken/get/V2"
SHIPPED = 6  # sale orders a K3Cloud user audits and ships before the deliveries backfill
NEW = 8  # customers (each with an order) created in the CRM before the three flows run at once

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(900)]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _all_succeeded(deployment: Deployment, runs: dict[str, list]) -> None:
    states = {d: Counter(r["state"] for r in rs) for d, rs in runs.items()}
    assert all(set(c) == {"success"} for c in states.values()), f"{states}\n{deployment.failed_task_logs()}"


def _at(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None


def _overlaps(intervals: list[tuple]) -> list[tuple]:
    ordered = sorted(intervals)
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if b[0] < a[1]]


def test_customers_and_orders_flows_succeed_on_the_celery_workers(deployment: Deployment) -> None:
    deployment.wait_for_dags([CUSTOMERS, ORDERS, DELIVERIES, REDRIVE])
    for dag_id in (CUSTOMERS, ORDERS):  # unpaused: the scheduler starts the latest interval's run (initial load)
        deployment.call("PATCH", f"dags/{dag_id}", {"is_paused": False})

    _all_succeeded(deployment, deployment.wait_runs_done([CUSTOMERS, ORDERS], {CUSTOMERS: 1, ORDERS: 1}))

    customers = Counter(r["FNumber"] for r in deployment.k3.records("BD_Customer"))
    assert len(customers) == SEED_CUSTOMERS and set(customers.values()) == {1}
    crm_orders = deployment.fx.records("SalesOrderObj")
    k3_orders = Counter(o["FBillNo"] for o in deployment.k3.records("SAL_SaleOrder"))
    assert len(k3_orders) == len(crm_orders) > 0 and set(k3_orders.values()) == {1}


def test_a_three_run_deliveries_backfill_over_the_same_notices_writes_one_note_and_message_each(
    deployment: Deployment,
) -> None:
    shipped = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_k3_user.py"), "--count", str(SHIPPED)],
                             env=deployment.env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    notices = [n["FBillNo"] for n in deployment.k3.records("SAL_DELIVERYNOTICE") if n.get("FDocumentStatus") == "C"]
    assert len(notices) == SHIPPED

    # Three backfill runs at once, each told to read the same window (the last two hours): every notice is
    # met by three runs on two workers. Backfills are not limited by the DAG's max_active_runs=1.
    since = str(_ms(datetime.now(timezone.utc) - timedelta(hours=2)))
    backfill = deployment.call("POST", "backfills", {
        "dag_id": DELIVERIES, "from_date": "2026-01-05T00:00:00Z", "to_date": "2026-01-05T00:30:00Z",
        "run_backwards": False, "dag_run_conf": {"since": since}, "reprocess_behavior": "none", "max_active_runs": 3})
    deployment.call("PATCH", f"dags/{DELIVERIES}", {"is_paused": False})

    runs = deployment.wait_runs_done([DELIVERIES], {DELIVERIES: 3})
    _all_succeeded(deployment, runs)
    backfill_runs = [r for r in runs[DELIVERIES] if r["run_type"] == "backfill"]
    assert len(backfill_runs) == 3, (backfill, [(r["dag_run_id"], r["run_type"]) for r in runs[DELIVERIES]])

    notes = Counter(n["name"] for n in deployment.fx.records("DeliveryNoteObj"))
    assert notes == Counter({number: 1 for number in notices}), notes
    messages = deployment.fx._admin("GET", "messages")
    sent = Counter(number for m in messages for number in notices if number in str(m))
    assert sent == Counter({number: 1 for number in notices}), sent


def test_customers_orders_and_redrive_at_once_write_each_record_once_through_a_pool_of_one(
    deployment: Deployment,
) -> None:
    now = _ms(datetime.now(timezone.utc))
    p = products(deployment.fx)
    accounts = [account(5000 + i, last_modified_time=now + i) for i in range(NEW)]
    orders = [order(90000 + i, a["_id"], last_modified_time=now + i) for i, a in enumerate(accounts)]
    lines = [line(o["_id"], 1, p["MAT-0001"], last_modified_time=now) for o in orders]
    seed(deployment.fx, accounts, orders, lines)
    deployment.call("PATCH", "pools/k3cloud_api", {"name": "k3cloud_api", "slots": 1, "include_deferred": False})
    before = {d: len(deployment.runs(d)) for d in (CUSTOMERS, ORDERS, REDRIVE)}
    pool_from = datetime.now(timezone.utc)
    time.sleep(0.5)

    for dag_id in (CUSTOMERS, ORDERS, REDRIVE):
        deployment.call("POST", f"dags/{dag_id}/dagRuns", {"logical_date": None})
    deployment.call("PATCH", f"dags/{REDRIVE}", {"is_paused": False})

    runs = deployment.wait_runs_done([CUSTOMERS, ORDERS, REDRIVE], {d: n + 1 for d, n in before.items()})
    _all_succeeded(deployment, runs)

    customers = Counter(r["FNumber"] for r in deployment.k3.records("BD_Customer"))
    assert len(customers) == SEED_CUSTOMERS + NEW and set(customers.values()) == {1}, customers
    k3_orders = Counter(o["FBillNo"] for o in deployment.k3.records("SAL_SaleOrder"))
    assert len(k3_orders) == len(deployment.fx.records("SalesOrderObj")) and set(k3_orders.values()) == {1}
    assert {f"SO{90000 + i:06d}" for i in range(NEW)} <= set(k3_orders)

    # The pool of one slot: no two of its tasks ran at the same time, on either worker.
    in_pool = [(_at(ti["start_date"]), _at(ti["end_date"])) for ti in deployment.task_instances()
               if ti["pool"] == "k3cloud_api" and ti["start_date"] and _at(ti["start_date"]) > pool_from]
    assert len(in_pool) >= 3 and all(end for _, end in in_pool)
    assert _overlaps(in_pool) == []


def test_tasks_ran_on_both_workers(deployment: Deployment) -> None:
    tis = deployment.task_instances()
    by_worker = Counter(ti["hostname"] for ti in tis if ti["state"] == "success")
    assert set(WORKERS) <= set(by_worker), by_worker


def test_one_token_for_the_whole_deployment_and_none_refused(deployment: Deployment) -> None:
    """With the endpoint's real limit set, every task process on both workers used one token."""
    tis = [ti for ti in deployment.task_instances() if ti["state"] == "success"]
    assert len(tis) > 20
    answers = Counter(line.split("errorCode=")[1].split()[0] for line in
                      deployment.fx.log_path.read_text(errors="replace").splitlines() if f"{TOKEN} errorCode=" in line)
    token_calls = deployment.fx.stats()["calls"].get(TOKEN, 0)
    # No token request refused (14001: "token interface call over limit"), and one call for the deployment
    # (the simulator's token lives 7200 s): every other task process read the token from the audit store.
    assert answers.get("14001", 0) == 0, f"{token_calls} token calls for {len(tis)} tasks, answers {dict(answers)}"
    assert token_calls == 1, f"{token_calls} token calls for {len(tis)} tasks, answers {dict(answers)}"


def test_the_shared_token_is_in_no_task_log_and_no_xcom(deployment: Deployment) -> None:
    """The token row (and the K3Cloud session's, hooks/k3cloud_session.py) is encrypted with the deployment's
    Fernet key; the token and the session id themselves appear nowhere else."""
    import sqlalchemy as sa
    from cryptography.fernet import Fernet

    from fxiaoke_k3cloud.audit import AuditStore
    from fxiaoke_k3cloud.audit.schema import sync_api_token

    store = AuditStore(deployment.env["AIRFLOW_CONN_SYNC_AUDIT"])
    with store.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(sync_api_token.c.app_id, sync_api_token.c.token_encrypted)).all())
    store.dispose()
    assert sorted(rows) == sorted([FX["app_id"], "k3cloud-session"]), sorted(rows)  # one token, one session
    fernet = Fernet(deployment.env["AIRFLOW__CORE__FERNET_KEY"].encode())
    secrets = {app: fernet.decrypt(encrypted.encode()).decode() for app, encrypted in rows.items()}
    assert all(len(secret) >= 16 and secret not in rows[app] for app, secret in secrets.items())

    logs = [p for p in (deployment.home / "logs").rglob("*") if p.is_file()]
    assert len(logs) > 20  # the task logs the workers wrote
    for secret in secrets.values():
        assert [str(p) for p in logs if secret in p.read_text(errors="replace")] == []
    entries = deployment.call("GET", "dags/~/dagRuns/~/taskInstances/~/xcomEntries", limit=1000)["xcom_entries"]
    values = [deployment.call("GET", f"dags/{e['dag_id']}/dagRuns/{e['run_id']}/taskInstances/{e['task_id']}/"
                              f"xcomEntries/{e['key']}", map_index=e.get("map_index", -1)) for e in entries]
    assert len(values) > 10 and any(v.get("value") for v in values)
    assert not [app for app, secret in secrets.items() if secret in json.dumps(values)]
