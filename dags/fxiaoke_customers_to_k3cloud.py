"""
### Fxiaoke customers → K3Cloud customers (`AccountObj` → `BD_Customer`)

Every 15 minutes (Asia/Shanghai) this DAG takes the CRM customers changed since the flow's watermark
(less a look-back; see *Windows* below), maps them with `include/mappings/customers.yaml` into the complete K3Cloud
customer package, and writes them with `BatchSave`. It is incremental and idempotent:

* an id map (CRM `_id` ⇄ K3 `FCUSTID` + `FNumber`) decides create vs update; a record whose mapped payload
  is unchanged since its last sync is skipped without an API call;
* a write whose outcome is unknown (timeout) is read back by number before anything is retried;
* every record's outcome lands in the audit store (`sync_audit` connection; SQLite by default);
* a customer voided or deleted in the CRM after it reached K3Cloud is reported, or forbidden (禁用) in K3Cloud
  once, as the mapping's `on_source_void` / `on_source_delete` say; deleted customers are found by an hourly
  presence check of the ids the id map holds.

**Tasks**: `extract_customers` → `transform_customers` → `load_customers` → `write_back_customers` → `report`.
A window of more than 2,000 customers (a first sync, a big import) is read on by `load_customers` while it writes
(docs/performance.md, "A big window").

**Write-back.** `write_back_customers` writes the K3Cloud customer number to the CRM account where the CRM does not hold it (the mapping's `write_back:` block; README "Write-back").
`report` fails (red) when any record was rejected or failed — after every good record was written.

**Trigger with config** (all optional):

| param | meaning |
|---|---|
| `since` / `until` | window override, ISO 8601 (no offset = Asia/Shanghai) or epoch ms |
| `ids` | sync exactly these CRM customer ids (the watermark does not move) |
| `full_resync` | from the beginning of time; unchanged records are still skipped |
| `dry_run` | transform and show the packages that would be sent; write nothing |

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
from fxiaoke_k3cloud.flows.specs import WRITE_BACK

dag = flow_dag(  # an Airflow DAG: the stages below, then `report`
    "customers",
    dag_id="fxiaoke_customers_to_k3cloud",
    schedule=AssetOrTimeSchedule(timetable=every_15_minutes(), assets=[flow_asset("customers")]),  # docs/events.md
    params=window_params(
        ids_of="CRM customer ids",
        full_resync="Re-read every CRM customer",
        dry_run="Show the packages; write nothing",
    ),
    stages=[
        Stage("extract_customers", "extract", pool="fxiaoke_api"),
        Stage("transform_customers", "transform"),
        Stage("load_customers", "load", pool="k3cloud_api"),
        Stage("write_back_customers", WRITE_BACK, pool="fxiaoke_api", always=True),  # also in idle runs
    ],
    tags=["fxiaoke", "k3cloud", "customers", "sync"],
    doc_md=__doc__,
)
