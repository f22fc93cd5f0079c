"""
### Reconcile Fxiaoke CRM with K3Cloud (every flow of the registry)

**Daily** at 02:30 Asia/Shanghai (and on demand) this DAG checks that each flow's target holds what its source
says it should. For a CRM → K3Cloud flow (customers, orders, contacts) each current CRM record is mapped with
its flow's own mapping file and compared with K3Cloud (`ExecuteBillQuery`):

* `missing_in_erp` — a record the mapping accepts whose number is not in K3Cloud (e.g. deleted there);
* `extra_in_erp` — a K3Cloud document carrying one of our numbers or a CRM order id that no CRM record maps to;
* `amount_difference` — CRM `order_amount` vs the K3Cloud lines' `FTaxPrice × FQty`, per order and per day;
* `field_difference` — for a sample of synced records, each mapped field vs the document's current value.

For a K3Cloud → CRM flow (deliveries, receipts) every audited K3Cloud document in the flow's id map must have its
live CRM record (delivery note, payment) and every live CRM record the id map links, its audited document:

* `missing_in_crm` — an audited, synced document whose CRM record is gone or voided (deleted behind our back);
* `extra_in_crm` — a live CRM record whose document is no longer audited (un-audited, deleted), or a second
  live CRM record named after a synced document.

Rows go to the audit store (`sync_drift_run`, `sync_drift`; the sync monitor page shows them). `report` fails
(red) when more records drifted than `threshold`; its log and XCom give the one-step repair:
**trigger `sync_redrive` with `{"from_drift_run": <id>}`** (re-creates deleted documents, rewrites changed ones,
through the flows' own load path; a `missing_in_crm` record is written again, once).

**Tasks**: `open_drift_run` → `compare_<flow>` (one per flow of the registry) → `report`.

**Trigger with config**: `flows` (subset of the registry's flows), `threshold` (drifted records allowed),
`sample_size` (records per flow whose fields are compared).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from fxiaoke_k3cloud.flows.specs import reconciled_flows  # the registry (cheap at parse time)


@dag(
    dag_id="sync_reconcile",
    schedule=CronDataIntervalTimetable("30 2 * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2024, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": timedelta(hours=2),
    },
    params={
        "flows": Param(reconciled_flows(), type="array",
                       items={"type": "string", "enum": reconciled_flows()}, description="Flows to compare"),
        "threshold": Param(0, type="integer", minimum=0, description="Drifted records allowed before the report fails"),
        "sample_size": Param(50, type="integer", minimum=0, description="Records per flow whose fields are compared"),
    },
    tags=["fxiaoke", "k3cloud", "ops", "reconcile"],
    doc_md=__doc__,
)
def sync_reconcile():
    @task
    def open_drift_run(**context) -> dict:
        from fxiaoke_k3cloud.ops import reconcile_steps

        return reconcile_steps.open_drift_run(context)

    def compare(flow: str):
        @task(task_id=f"compare_{flow}", pool="fxiaoke_api")
        def compare_flow(opened: dict, **context) -> dict:
            from fxiaoke_k3cloud.ops import reconcile_steps

            return reconcile_steps.compare(flow, opened, context)

        return compare_flow

    @task(retries=0, trigger_rule="all_done")
    def report(**context) -> dict:
        from fxiaoke_k3cloud.ops import reconcile_steps

        return reconcile_steps.report(context)

    opened = open_drift_run()
    [compare(flow)(opened) for flow in reconciled_flows()] >> report()  # one task per registry flow


sync_reconcile()
