"""Re-drive and reconciliation tests: the DAGs run with dag.test() against both simulators over HTTP."""

from __future__ import annotations

# The flows' fixtures: Airflow metadata DB, DagBag, audit store on SQLite and Postgres, both simulators.
from flows.conftest import airflow_db, audit_url, dagbag, sims, store  # noqa: F401

REDRIVE_PARAMS = {"flow": "all", "ids": [], "force": False, "outcomes": ["failed", "parked"], "error_class": None,
                  "since": None, "from_drift_run": None, "max_attempts": 5, "chunk_size": 200, "limit": 1000,
                  "dry_run": False}
RECONCILE_PARAMS = {"flows": ["customers", "orders"], "threshold": 0, "sample_size": 50}
FLOW_PARAMS = {"since": None, "until": None, "ids": [], "full_resync": False, "dry_run": False, "void_action": "report"}
DEFAULTS = {"sync_redrive": REDRIVE_PARAMS, "sync_reconcile": RECONCILE_PARAMS}


def run_dag(dagbag, dag_id: str, conf: dict | None = None):
    """Run a DAG in-process like `airflow dags test`; returns (dag_run, {task_id: state})."""
    dag = dagbag.get_dag(dag_id)
    for t in dag.tasks:  # a failing task must fail the test now, not after minutes of retry delays
        t.retries = 0
    # dag.test() keeps the previous run's conf in the shared DAG object's params: always send every param.
    dr = dag.test(run_conf={**DEFAULTS.get(dag_id, FLOW_PARAMS), **(conf or {})})
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}
