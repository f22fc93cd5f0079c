"""Transform step of the deliveries flow: staged notice rows → CRM delivery-note packages.

A notice goes through the mapping engine only when every line's sale order resolves to an existing CRM
order and its lines ship from one warehouse; otherwise it is *reported* (the CRM never sent that order, or a
CRM delivery note cannot hold two warehouses — a person must look). The lookup tables the mapping names
(``orders``, ``accounts``, ``products``, ``warehouses``, ``order_lines``) are built here from the id maps and
CRM reads:

* ``warehouses``: K3Cloud ``FStockID`` number → CRM ``WarehouseObj`` ``_id`` by its ``number``; a CRM without
  WarehouseObj (inventory module off) gets notes without a warehouse;
* ``order_lines``: the notice line's ``FSOEntryId`` (sale-order entry) → CRM order line, from the orders
  flow's line id map (entity ``order_line``: CRM line ``_id`` ⇄ K3 ``FEntryID``, :mod:`.entry_rows`), else the
  CRM order's only non-voided line of the same product. A line neither finds parks the notice with a reason.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import pandas as pd
import sqlalchemy as sa

from fxiaoke_k3cloud.audit import RecordOutcome
from fxiaoke_k3cloud.audit.schema import id_map
from fxiaoke_k3cloud.flows.deliveries_crm import crm_order_lines, crm_orders, crm_products, crm_warehouses, owners_of
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.window import k3_local_ms
from fxiaoke_k3cloud.mapping import load_mapping, transform

log = logging.getLogger(__name__)

CUSTOMER_ENTITY = "customer"  # written by the customers flow: CRM AccountObj _id ⇄ K3 BD_Customer FNumber
ORDER_STATUS_MAP = "order_status_on_delivery"
ORDER_LINE_ENTITY = "order_line"  # written by the orders flow (entry_rows.line_entity): CRM line _id ⇄ K3 FEntryID
STOCK_KEY = "FStockID.FNumber"
ENTRY_KEY = "FSOEntryId"
ID_CHUNK = 500


def _drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    """The CRM treats an absent field as empty; sending "" to a lookup or select field is an error there."""
    return {k: v for k, v in values.items() if v not in ("", None)}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _order_problem(number: str | None, resolved: dict[str, Any], orders: dict[str, dict[str, Any]]) -> str | None:
    if not number:
        return "a line has no sale order number (FOrderNo / FSrcBillNo): the CRM never sent its order"
    found = resolved.get(number)
    if found is None:
        return (f"sale order {number} was not sent by the CRM (no order id-map entry and no FNetOrderBillNo); "
                "enter the delivery in the CRM by hand if it belongs to a CRM order")
    if found["crm_id"] not in orders:
        return f"sale order {number} names CRM order {found['crm_id']} ({found['via']}), which the CRM does not have"
    return None


def _warehouse_problem(lines: list[dict[str, Any]]) -> str | None:
    """A CRM delivery note has one warehouse: lines from several cannot become one note."""
    stocks = sorted({str(line[STOCK_KEY]) for line in lines if line.get(STOCK_KEY)})
    if len(stocks) > 1:
        return (f"its lines ship from {len(stocks)} warehouses ({', '.join(stocks)}) but a CRM delivery note has one "
                "(delivery_warehouse_id): split the notice in K3Cloud or enter the delivery in the CRM by hand")
    return None


def mapped_order_lines(store: Any, entry_ids: Iterable[str]) -> dict[str, str]:
    """``{K3Cloud sale-order FEntryID: CRM order line _id}`` from the orders flow's line id map."""
    wanted = sorted({str(e) for e in entry_ids if e})
    out: dict[str, str] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), ID_CHUNK):
            query = sa.select(id_map.c.target_id, id_map.c.source_id).where(
                id_map.c.entity == ORDER_LINE_ENTITY, id_map.c.target_id.in_(wanted[start : start + ID_CHUNK]))
            out.update({str(row.target_id): str(row.source_id) for row in conn.execute(query)})
    return out


def order_line_table(store: Any, hook: Any, lines: list[dict[str, Any]], order_ids: dict[str, str],
                     products: dict[str, str]) -> dict[str, str]:
    """The ``order_lines`` lookup: the line id map, else the CRM order's only line of the line's product."""
    table = mapped_order_lines(store, (line.get(ENTRY_KEY) for line in lines))
    unknown = [line for line in lines if line.get(ENTRY_KEY) and line[ENTRY_KEY] not in table]
    if not unknown:
        return table
    orders = {order_ids[line["FOrderNo"]] for line in unknown if line.get("FOrderNo") in order_ids}
    by_product: dict[tuple[str, str], list[str]] = {}
    for row in crm_order_lines(hook, orders):
        by_product.setdefault((str(row.get("order_id")), str(row.get("product_id"))), []).append(str(row["_id"]))
    for line in unknown:
        key = (order_ids.get(line.get("FOrderNo") or "", ""), products.get(str(line.get("FMaterialID.FNumber") or ""), ""))
        found = by_product.get(key, [])
        if len(found) == 1:  # two lines of one product: which is which is not knowable; the notice waits
            table[line[ENTRY_KEY]] = found[0]
    return table


def map_notices(spec: FlowSpec, store: Any, hook: Any, run_pk: int) -> dict[str, int]:
    """Map the run's staged notices into staged delivery-note packages; outcomes for the others."""
    mapping = load_mapping(spec.mapping_path)
    stage = Stage(store)
    rows = list(stage.get(run_pk, "raw"))
    resolved: dict[str, dict[str, str]] = next(iter(stage.get(run_pk, "orders")), {}).get("orders", {})
    by_notice: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (int(r["FID"]), int(r.get("FEntity_FEntryID") or 0))):
        by_notice.setdefault(str(row["FID"]), []).append(row)
    orders = crm_orders(hook, {o["crm_id"] for o in resolved.values()})

    def outcome(fid: str, kind: str, reason: str, **extra: Any) -> RecordOutcome:
        number = by_notice[fid][0].get("FBillNo")
        extra.setdefault("target_number", number)  # the notice number: what people search the audit by
        return RecordOutcome(flow=spec.name, entity=spec.entity, source_id=fid, source_name=number, outcome=kind,
                             reason=reason, **extra)

    outcomes: list[RecordOutcome] = []
    accepted: dict[str, list[dict[str, Any]]] = {}
    for fid, lines in by_notice.items():
        problems = [] if lines[0].get("FDocumentStatus") != "C" else list(dict.fromkeys(
            p for p in (*(_order_problem(line.get("FOrderNo"), resolved, orders) for line in lines),
                        _warehouse_problem(lines)) if p))
        if problems:
            outcomes.append(outcome(fid, "reported", f"{lines[0].get('FBillNo')}: " + "; ".join(problems)))
        else:
            accepted[fid] = lines

    flat = [line for lines in accepted.values() for line in lines]
    order_ids = {n: r["crm_id"] for n, r in resolved.items() if r["crm_id"] in orders}
    customers = {str(r.get("FCustomerID.FNumber") or "") for r in flat} - {""}
    accounts = {n: e.source_id for n, e in store.get_id_map_by_numbers(CUSTOMER_ENTITY, sorted(customers)).items()}
    for line in flat:  # the CRM order's own account when the customer flow's id map does not know the customer
        number, order_no = str(line.get("FCustomerID.FNumber") or ""), line.get("FOrderNo")
        account = orders.get(order_ids.get(order_no or "", ""), {}).get("account_id")
        if number and number not in accounts and account:
            accounts[number] = str(account)
    products = crm_products(hook, {str(r.get("FMaterialID.FNumber") or "") for r in flat} - {""})
    warehouses = crm_warehouses(hook, sorted({str(r.get(STOCK_KEY) or "") for r in flat} - {""}))
    masters = []
    for lines in accepted.values():  # the note's warehouse is its lines' one warehouse (checked above)
        stock = next((line[STOCK_KEY] for line in lines if line.get(STOCK_KEY)), None)
        masters.append({**lines[0], STOCK_KEY: stock if warehouses is not None else None})
    frame = pd.DataFrame.from_records(masters) if masters else pd.DataFrame()
    order_lines = order_line_table(store, hook, flat, order_ids, products)
    result = transform(mapping, frame, lines=pd.DataFrame.from_records(flat) if flat else None,
                       lookups={"orders": order_ids, "accounts": accounts, "products": products,
                                "warehouses": warehouses or {}, "order_lines": order_lines})

    status_map = mapping.value_maps.get(ORDER_STATUS_MAP, {})
    entity = mapping.entries.entity if mapping.entries else "DeliveryNoteProductObj"
    packages = []
    for pkg in result.packages:
        lines = accepted[pkg.source_id]
        model = pkg.model
        ids = list(dict.fromkeys(order_ids[line["FOrderNo"]] for line in lines))
        mapped = {k: v for k, v in pkg.mapped.items() if k != entity}
        packages.append({
            "source_id": pkg.source_id, "number": pkg.number,
            "create_data": _drop_empty({k: v for k, v in model.items() if k != entity}),
            "update_data": _drop_empty(mapped),
            "lines": [_drop_empty(line) for line in model.get(entity) or []],
            "payload_hash": pkg.payload_hash,
            "order_ids": ids,
            "order_names": [str(orders[i].get("name") or i) for i in ids],
            "owners": list(dict.fromkeys(o for i in ids for o in owners_of(orders[i]))),
            "order_status": _text(status_map.get(str(lines[0].get("FDocumentStatus")))),
            "modified_ms": k3_local_ms(lines[0].get("FApproveDate")),
        })
    stage.put(run_pk, "package", packages, key="source_id")

    outcomes += [outcome(r.source_id, "rejected", r.reason, error_class="MappingRejection") for r in result.rejected]
    outcomes += [outcome(s.source_id, "skipped", s.reason) for s in result.held]
    outcomes += [outcome(s.source_id, "reported", s.reason) for s in result.reported]
    outcomes += [outcome(p.source_id, "parked", p.reason) for p in result.parked]
    if result.parked:
        store.park(spec.entity, spec.name, [(p.source_id, p.reason, ", ".join(p.missing)) for p in result.parked])
    store.record_outcomes(run_pk, outcomes)
    counts = {"packages": len(packages), "rejected": len(result.rejected), "parked": len(result.parked),
              "held": len(result.held), "reported": len(result.reported) + len(by_notice) - len(accepted)}
    log.info("%s: %s", spec.name, counts)
    return counts
