"""Re-drive and reconciliation tests: the DAGs run with dag.test() against both simulators over HTTP."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUDIT_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

REDRIVE_PARAMS = {"flow": "all", "ids": [], "force": False, "outcomes": ["failed", "parked"], "error_class": None,
                  "since": None, "from_drift_run": None, "max_attempts": 5, "chunk_size": 200, "limit": 1000,
                  "dry_run": False}
RECONCILE_PARAMS = {"flows": ["customers", "orders"], "threshold": 0, "sample_size": 50}
FLOW_PARAMS = {"since": None, "until": None, "ids": [], "full_resync": False, "dry_run": False}
DEFAULTS = {"sync_redrive": REDRIVE_PARAMS, "sync_reconcile": RECONCILE_PARAMS}


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
    """A fresh audit store for the test (the DAGs migrate it themselves), via SYNC_AUDIT_URL."""
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


def run_dag(dagbag, dag_id: str, conf: dict | None = None):
    """Run a DAG in-process like `airflow dags test`; returns (dag_run, {task_id: state})."""
    dag = dagbag.get_dag(dag_id)
    for t in dag.tasks:  # a failing task must fail the test now, not after minutes of retry delays
        t.retries = 0
    # dag.test() keeps the previous run's conf in the shared DAG object's params: always send every param.
    dr = dag.test(run_conf={**DEFAULTS.get(dag_id, FLOW_PARAMS), **(conf or {})})
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}
