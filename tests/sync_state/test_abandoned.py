"""A task killed mid-run (OOM, a worker lost, SIGKILL) leaves its audit run 'running' and its staged rows behind:
the next run of the flow closes it as abandoned, with what it had done, and deletes its staged rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import sqlalchemy as sa
from flows.conftest import run_dag
from mapping.crm_records import account

from .procs import ROOT, TESTS

DAG_ID = "fxiaoke_customers_to_k3cloud"

# A task process that extracts and transforms, then dies without any clean-up (os._exit skips finally blocks).
KILLED = """
import os, sys
from sync_state.flowrun import FakeTI
from datetime import datetime, timezone
from types import SimpleNamespace
from fxiaoke_k3cloud.flows import steps
ctx = {"params": {"full_resync": True, "ids": []}, "ti": FakeTI(),
       "dag_run": SimpleNamespace(run_id="scheduled__killed", run_type="scheduled", run_after=datetime.now(timezone.utc))}
up = steps.transform("customers", steps.extract("customers", ctx), ctx)
print("RUN", up["run_pk"], flush=True)
os._exit(137)
"""


def _stage_rows(store, run_pk: int) -> int:
    from fxiaoke_k3cloud.audit.schema import sync_stage

    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(sync_stage.c.run == run_pk)).scalar_one()


def test_the_next_run_closes_a_killed_run_as_abandoned_and_syncs_its_records(dagbag, sims, store):
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(1, 6)]}})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(TESTS)])}
    out = subprocess.run([sys.executable, "-c", KILLED], cwd=str(TESTS), env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 137, out.stdout + out.stderr
    killed = int(next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("RUN ")))
    assert store.run_summary(killed)["status"] == "running" and _stage_rows(store, killed) > 0

    dr, states = run_dag(dagbag, DAG_ID, {"full_resync": True})
    assert dr.state == "success", states

    old = store.run_summary(killed)
    assert old["status"] == "abandoned" and old["finished_at"] is not None
    assert "abandoned" in old["message"] and "no record outcome stored" in old["message"]
    assert _stage_rows(store, killed) == 0
    assert Counter(r["FNumber"] for r in sims.k3.records("BD_Customer")) == Counter(
        {f"CUST-{i:06d}": 1 for i in range(1, 6)})
    newest = store.recent_runs("customers", limit=1)[0]
    assert (newest["status"], newest["created"]) == ("success", 5)


def test_a_running_run_of_another_live_dag_run_is_left_alone(dagbag, sims, store):
    """A re-drive or dependency run in progress is not Airflow's to judge: only silence makes it abandoned."""
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    live = store.start_run("customers", "manual__x:redrive:customers:1", "redrive", now, now)
    sims.fx.seed({"objects": {"AccountObj": [account(1)]}})
    dr, states = run_dag(dagbag, DAG_ID, {"full_resync": True})
    assert dr.state == "success", states
    assert store.run_summary(live)["status"] == "running"
