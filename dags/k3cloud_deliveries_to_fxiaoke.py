"""
### K3Cloud delivery notices → Fxiaoke delivery notes (`SAL_DELIVERYNOTICE` → `DeliveryNoteObj`)

Within seconds of an audit — woken by the asset `k3cloud_audited_delivery_notices` (a watcher polling
K3Cloud in the triggerer, or a signed push from a K3Cloud service plug-in) — and every 15 minutes
(Asia/Shanghai) as the catch-up, this DAG takes the K3Cloud delivery notices **audited** since the flow's
watermark (less a look-back; `FApproveDate` is UTC+8 local time on the wire, converted explicitly) and
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

**Tasks**: `extract_deliveries` → `load_deliveries` (maps, then writes, in one task) → `report`.
`report` fails (red) when any notice was rejected or failed — after every good notice was written.

**Trigger with config** (all optional):

| param | meaning |
|---|---|
| `since` / `until` | window override, ISO 8601 (no offset = Asia/Shanghai) or epoch ms |
| `ids` | sync exactly these delivery notices (K3Cloud `FID`s), whatever the dates, as a re-drive does; the watermark does not move |
| `full_resync` | every audited notice from the beginning of time; unchanged ones cost no CRM write |
| `dry_run` | map and show the delivery notes that would be written; write nothing |

**Events are a doorbell.** An event-triggered run (`asset_triggered`) reads from the watermark like a
scheduled one, and one run at a time (`max_active_runs=1`) means events that arrive while a run is going
merge into the next: a lost, repeated or merged event changes nothing (docs/events.md).

**Windows.** Every incremental run — scheduled, *Trigger* (with or without the logical date the form
pre-fills), event-triggered — reads from the flow's watermark minus a look-back up to the earlier of now and
its data-interval end, so an interval whose run failed or was skipped is read by the next run that succeeds.
A backfill reads exactly its interval and leaves the watermark alone. `until` is clamped to now. Two runs at
once (a backfill beside the schedule, two workers) take turns per record: nothing is written twice.

**Backfill and the params.** The *Backfill* form offers the same params; leave them empty. Each backfill run
reads its own data interval *unless* a param overrides it: `since`/`until` replace every backfill run's dates
with that one window (each run reads the same window), `full_resync` turns every run into a full resync, and
`ids` reads only those records in every run, whatever the dates. `dry_run` writes nothing in any of them.
"""

from airflow.sdk import AssetOrTimeSchedule

from fxiaoke_k3cloud.dag_common import every_15_minutes, window_params
from fxiaoke_k3cloud.dag_factory import Stage, flow_dag
from fxiaoke_k3cloud.events.assets import flow_asset

dag = flow_dag(  # an Airflow DAG: the stages below, then `report`
    "deliveries",
    dag_id="k3cloud_deliveries_to_fxiaoke",
    schedule=AssetOrTimeSchedule(timetable=every_15_minutes(), assets=[flow_asset("deliveries")]),  # docs/events.md
    params=window_params(
        ids_of="K3Cloud FIDs of the delivery notices",
        full_resync="Re-read every audited delivery notice",
        dry_run="Show the delivery notes; write nothing",
    ),
    stages=[
        Stage("extract_deliveries", "extract", pool="k3cloud_api"),
        Stage("load_deliveries", ("transform", "load"), pool="fxiaoke_api"),  # fused: map and write in one task
    ],
    tags=["fxiaoke", "k3cloud", "deliveries", "sync"],
    doc_md=__doc__,
)
