"""Flow tests: the DAGs run with dag.test() against both simulators over HTTP, audit on SQLite and Postgres."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUDIT_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated Airflow metadata DB (SQLite in the session's temp AIRFLOW_HOME); dag.test() needs it."""
    from airflow.utils import db

    db.resetdb()


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(params=AUDIT_BACKENDS)
def audit_url(request, tmp_path, monkeypatch):
    """A fresh audit store for the test (the flows migrate it themselves), via SYNC_AUDIT_URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sync_audit.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        url = server.new_database()
        request.addfinalizer(lambda: server.drop_database(url))
    monkeypatch.setenv("SYNC_AUDIT_URL", url)
    return url


@pytest.fixture
def store(audit_url):
    from fxiaoke_k3cloud.audit import AuditStore

    s = AuditStore(audit_url)
    s.migrate()
    yield s
    s.dispose()


@pytest.fixture
def sims(k3cloud, fxiaoke, audit_url):
    """Both simulators reset, connections pointing at them, and a fresh audit store."""
    return SimpleNamespace(k3=k3cloud, fx=fxiaoke)


def run_dag(dagbag, dag_id: str, conf: dict | None = None, logical_date=None):
    """Run a DAG in-process like `airflow dags test`; returns (dag_run, {task_id: state})."""
    dag = dagbag.get_dag(dag_id)
    # dag.test() keeps the previous run's conf in the shared DAG object's params: always send every param.
    for t in dag.tasks:  # a failing task must fail the test now, not after minutes of retry delays
        t.retries = 0
    full = {"since": None, "until": None, "ids": [], "full_resync": False, "dry_run": False, "void_action": "report"}
    dr = dag.test(run_conf={**full, **(conf or {})}, logical_date=logical_date)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    return dr, states
