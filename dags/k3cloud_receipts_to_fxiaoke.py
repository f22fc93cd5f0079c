"""
### K3Cloud receipt bills → Fxiaoke payments (`AR_RECEIVEBILL` → `PaymentObj` + `OrderPaymentObj`)

Within seconds of an audit — woken by the asset `k3cloud_audited_receipt_bills` (a watcher polling
`AR_RECEIVEBILL` in the triggerer, or a signed push from a K3Cloud service plug-in) — and every 15 minutes
(Asia/Shanghai) as the catch-up, one run at a time, this DAG takes the K3Cloud receipt bills (收款单) **audited**
since the flow's watermark (less a look-back; `FApproveDate` is UTC+8 local time on the wire, converted
explicitly) and tells the CRM, so sales see per order what was paid and what is still owed:

* one CRM payment (`PaymentObj`, 回款, named after the bill number) per bill;
* one payment line (`OrderPaymentObj`, 回款明细) per bill entry, linked to the CRM order the entry pays
  (`FSALEORDERNO` through the orders flow's id map, else the K3Cloud order's `FNetOrderBillNo`).

It is idempotent: an id map (bill `FID` ⇄ CRM payment `_id`) and a claim per bill make a second run, or two runs
at once, write nothing twice. A bill whose order the CRM does not know yet is **parked** and lands once the
orders flow has synced the order; an entry without a sale order is **reported**. A bill **un-audited** (or
deleted) in K3Cloud after it reached the CRM has its CRM payment **voided** (lines too); re-audited, it is
written again. Mapping: `include/mappings/receipts.yaml`.

**Tasks**: `extract_receipts` → `load_receipts` (maps, then writes, in one task) → `report`.
`report` fails (red) when any bill was rejected or failed — after every good bill was written.

**Trigger with config** (all optional):

| param | meaning |
|---|---|
| `since` / `until` | window override, ISO 8601 (no offset = Asia/Shanghai) or epoch ms |
| `ids` | sync exactly these receipt bills (K3Cloud `FID`s), whatever the dates, as a re-drive does; the watermark does not move |
| `full_resync` | every audited bill from the beginning of time; unchanged ones cost no CRM write |
| `dry_run` | map and show the payments that would be written; write nothing |

**Windows.** Every incremental run reads from the flow's watermark minus a look-back up to the earlier of now and
its data-interval end, so an interval whose run failed is read by the next run that succeeds. A backfill reads
exactly its interval and leaves the watermark alone.

**Backfill and the params.** The *Backfill* form offers the same params; leave them empty. Each backfill run
reads its own data interval *unless* a param overrides it: `since`/`until` replace every backfill run's dates
with that one window, `full_resync` turns every run into a full resync, and `ids` reads only those bills in every
run, whatever the dates. `dry_run` writes nothing in any of them.
"""

from airflow.sdk import AssetOrTimeSchedule

from fxiaoke_k3cloud.dag_common import every_15_minutes, window_params
from fxiaoke_k3cloud.dag_factory import Stage, flow_dag
from fxiaoke_k3cloud.events.assets import flow_asset

dag = flow_dag(  # an Airflow DAG: the stages below, then `report`
    "receipts",
    dag_id="k3cloud_receipts_to_fxiaoke",
    schedule=AssetOrTimeSchedule(timetable=every_15_minutes(), assets=[flow_asset("receipts")]),  # docs/events.md
    params=window_params(
        ids_of="K3Cloud FIDs of the receipt bills",
        full_resync="Re-read every audited receipt bill",
        dry_run="Show the payments; write nothing",
    ),
    stages=[
        Stage("extract_receipts", "extract", pool="k3cloud_api"),
        Stage("load_receipts", ("transform", "load"), pool="fxiaoke_api"),  # fused: map and write in one task
    ],
    tags=["fxiaoke", "k3cloud", "receipts", "sync"],
    doc_md=__doc__,
)
