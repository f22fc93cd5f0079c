"""What the orders flow adds to the generic steps: lines, dependencies (customers, materials) and parking.

* Extract: orders changed in the window, orders whose *lines* changed in the window (a line edit may not
  move the order's timestamp), parked orders (retried first, every run) and earlier failures; then every
  line of those orders, and the products the lines use (for their ``product_code``).
* Customers first: an order whose CRM customer is not in the id map yet gets that customer synced in the
  same run (a ``customers`` run of type ``dependency``), through the customers flow's own code.
* Lookups for the mapping: CRM account → K3 customer number (id map), CRM product → K3 material number
  (only materials that exist, are audited and not forbidden in K3Cloud). Anything missing parks the order.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from fxiaoke_k3cloud.flows.extract import ID_BATCH, dedupe_latest, fetch_by_ids
from fxiaoke_k3cloud.flows.queries import failed_source_ids
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_spec
from fxiaoke_k3cloud.flows.window import Window

log = logging.getLogger(__name__)

LINES_OBJECT = "SalesOrderProductObj"
PRODUCT_OBJECT = "ProductObj"


def _query_in(hook: Any, api: str, field: str, values: Iterable[str]) -> list[dict[str, Any]]:
    values = sorted({str(v) for v in values if v})
    rows: list[dict[str, Any]] = []
    for start in range(0, len(values), ID_BATCH):
        flt = [{"field_name": field, "operator": "IN", "field_values": values[start : start + ID_BATCH]}]
        for page in hook.query_records(api, filters=flt):
            rows.extend(page)
    return rows


def extract_orders(spec: FlowSpec, hook: Any, store: Any, window: Window, *, ids: list[str]) -> dict[str, Any]:
    """Orders, their lines and their products for this run; see the module docstring."""
    parked_ids = [p.source_id for p in store.list_parked(spec.entity, status=None)
                  if p.status in ("parked", "escalated")]
    if ids:
        orders = fetch_by_ids(spec, hook, ids)
        retried = 0
    else:
        orders = []
        for page in hook.query_window(spec.source_object, spec.modified_field, window.start_ms, window.end_ms):
            orders.extend(page)
        changed_lines: list[dict[str, Any]] = []
        for page in hook.query_window(LINES_OBJECT, spec.modified_field, window.start_ms, window.end_ms):
            changed_lines.extend(page)
        seen = {str(o["_id"]) for o in orders}
        extra = {str(line["order_id"]) for line in changed_lines if line.get("order_id")} - seen
        retry = [i for i in failed_source_ids(store, spec.name, spec.entity) if i not in seen]
        again = sorted((extra | set(parked_ids) | set(retry)) - seen)
        if again:
            orders.extend(fetch_by_ids(spec, hook, again))
        retried = len(set(parked_ids) | set(retry))
    orders = dedupe_latest(orders, spec.modified_field)
    lines = dedupe_latest(_query_in(hook, LINES_OBJECT, "order_id", (o["_id"] for o in orders)), spec.modified_field)
    products = _query_in(hook, PRODUCT_OBJECT, "_id", (line.get("product_id") for line in lines))
    codes = {str(p["_id"]): p.get("product_code") for p in products}
    for line in lines:
        line["product_code"] = codes.get(str(line.get("product_id")))
    log.info("orders: %s orders (%s parked/failed retried), %s lines, %s products", len(orders), retried,
             len(lines), len(products))
    return {"orders": orders, "lines": lines, "retried": retried}


def missing_customer_ids(store: Any, orders: list[dict[str, Any]]) -> list[str]:
    account_ids = sorted({str(o["account_id"]) for o in orders if o.get("account_id")})
    known = store.get_id_map("customer", account_ids)
    return [a for a in account_ids if a not in known or not known[a].target_number]


def sync_missing_customers(store: Any, fx_hook: Any, k3_hook: Any, orders: list[dict[str, Any]], *,
                           run_id: str, window: Window) -> dict[str, int]:
    """Sync the CRM customers these orders need and the id map lacks, as a ``customers`` dependency run."""
    import pandas as pd

    from fxiaoke_k3cloud.flows.load import Loader, Package
    from fxiaoke_k3cloud.flows.transform import audit_transform_outcomes, package_from_mapping
    from fxiaoke_k3cloud.mapping import load_mapping, transform

    missing = missing_customer_ids(store, orders)
    if not missing:
        return {}
    customers = flow_spec("customers")
    accounts = fetch_by_ids(customers, fx_hook, missing)
    run_pk = store.start_run(customers.name, f"{run_id}:dependency", "dependency", window.start, window.end)
    mapping = load_mapping(customers.mapping_path)
    result = transform(mapping, pd.DataFrame.from_records(accounts) if accounts else pd.DataFrame({"_id": []}))
    audit_transform_outcomes(customers, store, run_pk, result)
    modified = {str(a["_id"]): a.get(customers.modified_field) for a in accounts}
    packages = [Package.from_stage(package_from_mapping(p, mapping.target.pk, modified.get(p.source_id)))
                for p in result.packages]
    options = mapping.save_options.as_dict()
    loader = Loader(customers, k3_hook, store, run_pk, options, pk_key=mapping.target.pk,
                    number_key=mapping.target.number, unaudit_before_update=bool(options.get("IsAutoSubmitAndAudit")))
    loaded = loader.run(packages)
    if loaded.id_map:
        store.upsert_id_map(customers.entity, loaded.id_map)
    store.record_outcomes(run_pk, loaded.outcomes)
    counts = dict(loaded.counts)
    bad = len(result.rejected) + counts.get("failed", 0)
    store.finish_run(run_pk, "partial" if bad else "success", None,
                     f"customers needed by orders: {len(missing)} missing, {len(accounts)} found in the CRM")
    log.info("orders: synced %s customer(s) the orders needed first: %s", len(accounts), counts)
    return counts


def build_lookups(store: Any, k3_hook: Any, orders: list[dict[str, Any]], lines: list[dict[str, Any]]) -> dict:
    """The mapping's lookup tables: account _id → customer number, product _id → material number."""
    from fxiaoke_k3cloud.hooks.k3cloud_filter import F

    account_ids = {str(o["account_id"]) for o in orders if o.get("account_id")}
    customers = {sid: e.target_number for sid, e in store.get_id_map("customer", account_ids).items()
                 if e.target_number}
    codes = {str(line["product_id"]): line.get("product_code") for line in lines if line.get("product_id")}
    wanted = sorted({c for c in codes.values() if c})
    usable: set[str] = set()
    for start in range(0, len(wanted), 500):
        flt = (F("FNumber").isin(wanted[start : start + 500]) & (F("FDocumentStatus") == "C")
               & (F("FForbidStatus") == "A"))
        for page in k3_hook.execute_bill_query("BD_MATERIAL", ["FMATERIALID", "FNumber"], filter=flt):
            usable.update(str(row["FNumber"]) for row in page)
    materials = {pid: code for pid, code in codes.items() if code in usable}
    return {"customers": customers, "materials": materials}


def audited_targets(k3_hook: Any, form_id: str, numbers: list[str]) -> dict[str, str]:
    """K3Cloud documents among ``numbers`` that are submitted or audited (B/C): number → status."""
    from fxiaoke_k3cloud.hooks.k3cloud_filter import F

    out: dict[str, str] = {}
    for start in range(0, len(numbers), 500):
        flt = F("FBillNo").isin(numbers[start : start + 500]) & F("FDocumentStatus").isin(["B", "C"])
        for page in k3_hook.execute_bill_query(form_id, ["FID", "FBillNo", "FDocumentStatus"], filter=flt):
            out.update({str(r["FBillNo"]): str(r["FDocumentStatus"]) for r in page})
    return out
