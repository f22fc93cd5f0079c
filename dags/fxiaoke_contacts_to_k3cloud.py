"""
### Fxiaoke contacts → K3Cloud contacts (`ContactObj` → `BD_CommonContact`)

Within seconds of a CRM edit — woken by the asset `fxiaoke_changed_contacts` (a watcher polling `ContactObj` in
the triggerer, or a signed push from a Fxiaoke workflow function) — and every 15 minutes (Asia/Shanghai) as the
catch-up, one run at a time, this DAG takes the CRM contacts changed since the flow's watermark (less a
look-back), maps them with `include/mappings/contacts.yaml` — name, mobile, phone, email and the contact's
customer (`FCompanyType` `BD_Customer`, `FCompany`/`FCustId` through the customers flow's id map) — and writes
them with `BatchSave`, audited. Incremental and idempotent like the customers flow: an id map decides create vs
update, an unchanged contact is not written again, every outcome lands in the audit store.

**Customers first**: a contact whose CRM customer K3Cloud does not have yet gets that customer synced in the same
run (`sync_customers`, a customers run of type `dependency`); a contact whose customer still cannot be used
(rejected, in approval, forbidden) is *parked* and read again by every run until its customer lands.
A contact voided or deleted in the CRM is reported, as the mapping's `on_source_void` / `on_source_delete` say.

**Tasks**: `extract_contacts` → `sync_customers` → `transform_contacts` → `load_contacts` → `report`.
Params as in the customers DAG (`since`/`until`, `ids`, `full_resync`, `dry_run`, `parked_escalate_hours`).
"""

from airflow.sdk import AssetOrTimeSchedule, Param

from fxiaoke_k3cloud.dag_common import every_15_minutes, window_params
from fxiaoke_k3cloud.dag_factory import Stage, flow_dag
from fxiaoke_k3cloud.events.assets import flow_asset

dag = flow_dag(  # an Airflow DAG: the stages below, then `report`
    "contacts",
    dag_id="fxiaoke_contacts_to_k3cloud",
    schedule=AssetOrTimeSchedule(timetable=every_15_minutes(), assets=[flow_asset("contacts")]),  # docs/events.md
    params=window_params(
        ids_of="CRM contact ids",
        full_resync="Re-read every CRM contact",
        dry_run="Show the packages; write nothing",
        parked_escalate_hours=Param(24, type="number", minimum=0,
                                    description="Fail the report for contacts parked longer than this"),
    ),
    stages=[
        Stage("extract_contacts", "extract", pool="fxiaoke_api"),
        Stage("sync_customers", "sync_dependencies", pool="k3cloud_api"),
        Stage("transform_contacts", "transform", pool="k3cloud_api"),
        Stage("load_contacts", "load", pool="k3cloud_api"),
    ],
    tags=["fxiaoke", "k3cloud", "contacts", "sync"],
    doc_md=__doc__,
)
