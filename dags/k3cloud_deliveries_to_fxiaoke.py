"""
### K3Cloud delivery notices → Fxiaoke delivery notes (`SAL_DELIVERYNOTICE` → `DeliveryNoteObj`)

Every 15 minutes (Asia/Shanghai) this DAG takes the K3Cloud delivery notices **audited** in the run's data
interval (widened by a look-back; `FApproveDate` is UTC+8 local time on the wire, converted explicitly) and
tells the CRM:

* one CRM delivery note (`DeliveryNoteObj`, named after the notice number) with one line
  (`DeliveryNoteProductObj`) per notice entry, linked to the CRM order the notice was pushed from — found
  through the orders flow's id map or the K3Cloud order's `FNetOrderBillNo` (the CRM order id);
* the CRM order's `order_status` as `include/mappings/deliveries.yaml` says (`value_maps.order_status_on_delivery`);
* ONE text message to the order's owner per notice.

It is idempotent: an id map (notice `FID` ⇄ CRM note `_id`) decides create vs update, a create whose answer
was lost is read back by name before it is sent again, and sent messages are recorded, so re-running a window
never duplicates a note or a message. Notices whose order the CRM never sent, and notices un-audited or
deleted in K3Cloud after they reached the CRM, are **reported** in the audit store (`sync_audit`), not
dropped; notices whose products are not in the CRM are parked and retried.

**Tasks**: `extract_deliveries` → `transform_deliveries` → `load_deliveries` → `report`.
`report` fails (red) when any notice was rejected or failed — after every good notice was written.

**Trigger with config** (all optional):

| param | meaning |
|---|---|
| `since` / `until` | window override, ISO 8601 (no offset = Asia/Shanghai) or epoch ms |
| `full_resync` | every audited notice from the beginning of time; unchanged ones cost no CRM write |
| `dry_run` | map and show the delivery notes that would be written; write nothing |

Manual runs have no data interval: they start at the stored watermark. Backfills use their intervals.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task


def _alert_on_failure(context) -> None:
    """A red report sends one digest per run (and notes to owners of rejected records); see alerts.py."""
    from fxiaoke_k3cloud.alerts import on_report_failure

    on_report_failure(context)


@dag(
    dag_id="k3cloud_deliveries_to_fxiaoke",
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=30),
    },
    params={
        "since": Param(None, type=["null", "string"], description="Window start (ISO 8601 or epoch ms)"),
        "until": Param(None, type=["null", "string"], description="Window end (ISO 8601 or epoch ms)"),
        "full_resync": Param(False, type="boolean", description="Re-read every audited delivery notice"),
        "dry_run": Param(False, type="boolean", description="Show the delivery notes; write nothing"),
    },
    tags=["fxiaoke", "k3cloud", "deliveries", "sync"],
    doc_md=__doc__,
)
def k3cloud_deliveries_to_fxiaoke():
    @task(pool="k3cloud_api")
    def extract_deliveries(**context) -> dict:
        from fxiaoke_k3cloud.flows import deliveries

        return deliveries.extract(context)

    @task(pool="fxiaoke_api")
    def transform_deliveries(extracted: dict, **context) -> dict:
        from fxiaoke_k3cloud.flows import deliveries

        return deliveries.transform(extracted, context)

    @task(pool="fxiaoke_api")
    def load_deliveries(transformed: dict, **context) -> dict:
        from fxiaoke_k3cloud.flows import deliveries

        return deliveries.load(transformed, context)

    @task(retries=0, trigger_rule="all_done", on_failure_callback=_alert_on_failure)
    def report(**context) -> dict:
        from fxiaoke_k3cloud.flows import steps

        return steps.report("deliveries", context)

    load_deliveries(transform_deliveries(extract_deliveries())) >> report()


k3cloud_deliveries_to_fxiaoke()
