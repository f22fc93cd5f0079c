"""
### Fxiaoke sales orders → K3Cloud sales orders (`SalesOrderObj` + lines → `SAL_SaleOrder`)

Every 15 minutes (Asia/Shanghai) this DAG takes the CRM orders changed since the flow's watermark (less a look-back) — and the orders
whose *lines* changed, since a line edit may not move the order's timestamp — maps each with its lines using
`include/mappings/sales_orders.yaml`, and saves them as K3Cloud sales orders (`BatchSave`, idempotent by id map,
payload hash and the order number `FBillNo`; the CRM order id is kept in `FNetOrderBillNo`).

**Dependencies.** An order's customer must exist in K3Cloud: customers the id map lacks are synced first, in
the same run (`sync_customers`). Each product must match an existing, audited K3Cloud material by
`product_code`. An order that cannot be resolved is **parked** with the reason (missing customer / material),
retried first by every later run, and released when the dependency lands; one parked longer than
`parked_escalate_hours` turns the report red.

**Conflicts.** A K3Cloud order that a person submitted or audited is never overwritten: the CRM change is
reported as a conflict. A CRM order voided or deleted after it reached K3Cloud is handled as the mapping's
`on_source_void` / `on_source_delete` say (default: reported for action; `cancel`: voided when unaudited, closed
when audited), once; `void_action=close` applies `on_source_void: close` for one run. A voided or deleted order
line leaves the K3Cloud order with the order's next update (kept lines keep their entry ids). Deleted orders
are found by an hourly presence check of the ids the id map holds.

**Tasks**: `extract_orders` → `sync_customers` → `transform_orders` → `load_orders` → `write_back_orders` → `report`.

**Write-back.** `write_back_orders` writes the K3Cloud bill number and status (saved / in approval / audited /
closed / cancelled) to the CRM order (the mapping's `write_back:` block; README "Write-back"). It refreshes the
status of orders not yet closed or cancelled (one K3Cloud query per 500) in every run that loaded orders and,
otherwise — idle runs too — in the first run of each hour (`refresh_every_minutes: 60`; `0` = every run): a status
changed in K3Cloud reaches the CRM within the hour, 75 minutes at worst; an idle run makes 2 API calls, the hour's
first 3. The next run does not read an order again for our own update: only a later edit in the CRM brings it back.

**Trigger with config**: `since` / `until` (ISO 8601, no offset = Asia/Shanghai, or epoch ms), `ids` (CRM order
ids; the watermark does not move), `full_resync`, `dry_run`, `parked_escalate_hours`, `void_action`
(`report` or `close`).

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

from airflow.sdk import AssetOrTimeSchedule, Param

from fxiaoke_k3cloud.dag_common import every_15_minutes, window_params
from fxiaoke_k3cloud.dag_factory import Stage, flow_dag
from fxiaoke_k3cloud.events.assets import flow_asset
from fxiaoke_k3cloud.flows.specs import WRITE_BACK

dag = flow_dag(  # an Airflow DAG: the stages below, then `report`
    "orders",
    dag_id="fxiaoke_orders_to_k3cloud",
    schedule=AssetOrTimeSchedule(timetable=every_15_minutes(), assets=[flow_asset("orders")]),  # docs/events.md
    params=window_params(
        ids_of="CRM order ids",
        full_resync="Re-read every CRM order",
        dry_run="Show the packages; write nothing",
        parked_escalate_hours=Param(24, type="number", minimum=0,
                                    description="Fail the report for orders parked longer than this"),
        void_action=Param("report", enum=["report", "close"],
                          description="CRM order voided after it reached K3Cloud: report it, or void (unaudited) / "
                                      "close (audited) the K3Cloud order"),
    ),
    stages=[
        Stage("extract_orders", "extract", pool="fxiaoke_api"),
        Stage("sync_customers", "sync_dependencies", pool="k3cloud_api"),
        Stage("transform_orders", "transform", pool="k3cloud_api"),
        Stage("load_orders", "load", pool="k3cloud_api"),
        Stage("write_back_orders", WRITE_BACK, pool="fxiaoke_api", always=True),  # also in idle runs
    ],
    tags=["fxiaoke", "k3cloud", "orders", "sync"],
    doc_md=__doc__,
)
