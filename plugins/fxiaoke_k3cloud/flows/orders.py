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

from fxiaoke_k3cloud.flows.extract import new_records, pages_in
from fxiaoke_k3cloud.flows.queries import failed_source_ids
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_spec
from fxiaoke_k3cloud.flows.window import Window

log = logging.getLogger(__name__)

LINES_OBJECT = "SalesOrderProductObj"
PRODUCT_OBJECT = "ProductObj"


def extract_orders(spec: FlowSpec, hook: Any, store: Any, stage: Any, run_pk: int, window: Window, *,
                   ids: list[str]) -> tuple[int, int]:
    """Stage orders (kind ``raw``) and their lines (kind ``lines``, keyed by order id) page by page.

    Returns (orders staged, parked/failed orders re-read). Each line carries its product's ``product_code``.
    """
    stage.clear_kind(run_pk, "raw")
    stage.clear_kind(run_pk, "lines")
    seen: set[str] = set()
    codes: dict[str, Any] = {}
    counts = {"orders": 0, "lines": 0}

    def take(page: list[dict[str, Any]]) -> None:
        orders = new_records(page, seen)
        if not orders:
            return
        lines = [line for p in pages_in(hook, LINES_OBJECT, "order_id", (o["_id"] for o in orders)) for line in p]
        unknown = {str(line.get("product_id")) for line in lines if line.get("product_id")} - set(codes)
        for p in pages_in(hook, PRODUCT_OBJECT, "_id", unknown):
            codes.update({str(prod["_id"]): prod.get("product_code") for prod in p})
        for line in lines:
            line["product_code"] = codes.get(str(line.get("product_id")))
        counts["orders"] += stage.append(run_pk, "raw", orders)
        counts["lines"] += stage.append(run_pk, "lines", lines, key="order_id")

    retried = 0
    if ids:
        for page in pages_in(hook, spec.source_object, "_id", ids):
            take(page)
    else:
        for page in hook.query_window(spec.source_object, spec.modified_field, window.start_ms, window.end_ms):
            take(page)
        line_orders: set[str] = set()
        # On a full resync or first sync every order is read, and with it every line: reading the window's
        # changed lines as well would only double the calls.
        if window.source not in ("full_resync", "first_sync"):
            for page in hook.query_window(LINES_OBJECT, spec.modified_field, window.start_ms, window.end_ms,
                                          fields=["_id", "order_id"]):
                line_orders.update(str(line["order_id"]) for line in page if line.get("order_id"))
        parked_ids = {p.source_id for p in store.list_parked(spec.entity, status=None)
                      if p.status in ("parked", "escalated")}
        retry = set(failed_source_ids(store, spec.name, spec.entity))
        again = sorted((line_orders | parked_ids | retry) - seen)
        retried = len((parked_ids | retry) - seen)
        for page in pages_in(hook, spec.source_object, "_id", again):
            take(page)
    log.info("orders: %s orders (%s parked/failed retried), %s lines, %s products", counts["orders"], retried,
             counts["lines"], len(codes))
    return counts["orders"], retried


def missing_customer_ids(store: Any, orders: list[dict[str, Any]]) -> list[str]:
    account_ids = sorted({str(o["account_id"]) for o in orders if o.get("account_id")})
    known = store.get_id_map("customer", account_ids)
    return [a for a in account_ids if a not in known or not known[a].target_number]


def sync_missing_customers(store: Any, fx_hook: Any, k3_hook: Any, orders: list[dict[str, Any]], *,
                           run_id: str, window: Window) -> dict[str, int]:
    """Sync the CRM customers these orders need and the id map lacks, as a ``customers`` dependency run."""
    import pandas as pd

    from fxiaoke_k3cloud.flows.load import Package, load_packages
    from fxiaoke_k3cloud.flows.transform import audit_transform_outcomes, package_from_mapping
    from fxiaoke_k3cloud.mapping import load_mapping, transform

    missing = missing_customer_ids(store, orders)
    if not missing:
        return {}
    customers = flow_spec("customers")
    accounts = [a for page in pages_in(fx_hook, customers.source_object, "_id", missing) for a in page]
    run_pk = store.start_run(customers.name, f"{run_id}:dependency", "dependency", window.start, window.end)
    mapping = load_mapping(customers.mapping_path)
    result = transform(mapping, pd.DataFrame.from_records(accounts) if accounts else pd.DataFrame({"_id": []}))
    audit_transform_outcomes(customers, store, run_pk, result)
    modified = {str(a["_id"]): a.get(customers.modified_field) for a in accounts}
    packages = [Package.from_stage(package_from_mapping(p, mapping.target.pk, modified.get(p.source_id)))
                for p in result.packages]
    counts = dict(load_packages(customers, store, k3_hook, run_pk, mapping, packages))
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


class _ListSink:
    """A stage stand-in that keeps rows in lists (for readers that want every order at once)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {"raw": [], "lines": []}

    def clear_kind(self, run_pk: int, kind: str) -> None:
        self.rows[kind] = []

    def append(self, run_pk: int, kind: str, rows: Iterable[dict[str, Any]], *, key: str = "_id") -> int:
        rows = list(rows)
        self.rows[kind].extend(rows)
        return len(rows)


def read_orders(spec: FlowSpec, hook: Any, store: Any, window: Window) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every order of the window and all their lines, in memory (reconciliation compares whole sets)."""
    sink = _ListSink()
    extract_orders(spec, hook, store, sink, 0, window, ids=[])
    return sink.rows["raw"], sink.rows["lines"]
