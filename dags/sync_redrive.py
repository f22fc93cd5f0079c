"""
### Re-drive failed, parked and drifted records (every flow of the registry, both directions)

The audit store is the queue. **Every hour** (Asia/Shanghai) this DAG takes the records whose latest outcome
is `failed` and the records still `parked`, and pushes them through **their flow's own steps** again
(`extract` with `ids` → `sync_dependencies` where the flow has it → `transform` → `load` → `report`, as flow
runs of type `redrive`): the source record is read again (a CRM record by id, a K3Cloud document by FID), and
idempotency, claims, read-back and parking are the flows' own, nothing is written twice.

A record re-driven `max_attempts` times and still failed or parked is **quarantined** (parked orders get the
parked status `quarantined`; failed records a `skipped` outcome with error class `Quarantined`), which takes
it out of the automatic loops; the `report` task then fails (red) and lists it. Re-drive it by id after the fix.

Before a chunk runs, id-map entries whose target record no longer exists (a K3Cloud document; for a
K3Cloud → CRM flow the CRM delivery note or payment, deleted or voided) are forgotten (the flow creates it
again), and records a reconciliation found different have their payload hash cleared (the flow rewrites them).

**Tasks**: `select_records` → `redrive` → `report`.

**Trigger with config** (all optional):

| param | meaning |
|---|---|
| `flow` | a flow of the registry (`customers`, `orders`, `contacts`, `deliveries`, `receipts`) or `all` |
| `ids` | re-drive exactly these source ids of `flow` (CRM ids; K3Cloud FIDs for deliveries, receipts; no cap) |
| `force` | with `ids`: rewrite even if the payload is unchanged (K3Cloud was edited by hand) |
| `outcomes` | queue selection: any of `failed`, `rejected`, `parked` |
| `error_class` | queue selection: text the error class or reason must contain |
| `since` | queue selection: latest outcome at/after this time (ISO 8601, no offset = Asia/Shanghai) |
| `from_drift_run` | re-drive the records a `sync_reconcile` run found drifted (its `sync_drift_run` id) |
| `max_attempts` | quarantine queue records after this many re-drives |
| `dry_run` | show what would be sent; write nothing |
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from fxiaoke_k3cloud.flows.specs import redrive_flows  # the registry (cheap at parse time)


@dag(
    dag_id="sync_redrive",
    schedule=CronDataIntervalTimetable("17 * * * *", timezone="Asia/Shanghai"),  # off the flows' quarter hours
    start_date=pendulum.datetime(2024, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=50),
    },
    params={
        "flow": Param("all", type="string", enum=["all", *redrive_flows()], description="Which flow"),
        "ids": Param([], type="array", items={"type": "string"}, description="Only these source ids (needs a flow)"),
        "force": Param(False, type="boolean", description="With ids: rewrite even if the payload is unchanged"),
        "outcomes": Param(["failed", "parked"], type="array",
                          items={"type": "string", "enum": ["failed", "rejected", "parked"]},
                          description="Queue: latest outcomes to re-drive"),
        "error_class": Param(None, type=["null", "string"], description="Queue: error class / reason contains"),
        "since": Param(None, type=["null", "string"], description="Queue: latest outcome at/after (ISO 8601)"),
        "from_drift_run": Param(None, type=["null", "integer"], description="Re-drive a reconciliation's drift"),
        "max_attempts": Param(5, type="integer", minimum=1, description="Quarantine queue records after N re-drives"),
        "chunk_size": Param(200, type="integer", minimum=1, maximum=2000, description="Records per flow run"),
        "limit": Param(1000, type="integer", minimum=1, description="Records per flow and DAG run at most"),
        "dry_run": Param(False, type="boolean", description="Show the packages; write nothing"),
    },
    tags=["fxiaoke", "k3cloud", "ops", "redrive"],
    doc_md=__doc__,
)
def sync_redrive():
    @task
    def select_records(**context) -> dict:
        from fxiaoke_k3cloud.ops import redrive

        return redrive.select_records(context)

    @task(pool="k3cloud_api")
    def redrive(selection: dict, **context) -> dict:
        from fxiaoke_k3cloud.ops import redrive as ops

        return ops.redrive(selection, context)

    @task(retries=0, trigger_rule="all_done")
    def report(**context) -> dict:
        from fxiaoke_k3cloud.ops import redrive

        return redrive.report(context)

    redrive(select_records()) >> report()


sync_redrive()
