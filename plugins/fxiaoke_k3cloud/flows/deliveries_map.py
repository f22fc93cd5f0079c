"""Transform step of the deliveries flow: staged notice rows → CRM delivery-note packages.

A notice goes through the mapping engine only when every line's sale order resolves to an existing CRM
order; otherwise it is *reported* (the CRM never sent that order, so there is nothing to attach a delivery
note to — a person must look). The lookup tables the mapping names (``orders``, ``accounts``, ``products``)
are built here from the id maps and CRM reads.
"""

from __future__ import annotations

import logging
from typing import Any

from fxiaoke_k3cloud.flows.deliveries_crm import crm_orders, crm_products, owners_of
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.window import SHANGHAI

log = logging.getLogger(__name__)


def _approve_ms(value: Any) -> int | None:
    """K3Cloud local datetime text (UTC+8, no offset) → epoch ms; None when empty or unparsable."""
    from datetime import datetime

    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return int(moment.timestamp() * 1000)


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


def map_notices(spec: FlowSpec, store: Any, hook: Any, run_pk: int) -> dict[str, int]:
    import pandas as pd

    from fxiaoke_k3cloud.audit import RecordOutcome
    from fxiaoke_k3cloud.flows.deliveries import CUSTOMER_ENTITY, ORDER_STATUS_MAP
    from fxiaoke_k3cloud.mapping import load_mapping, transform

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
            p for p in (_order_problem(line.get("FOrderNo"), resolved, orders) for line in lines) if p))
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
    masters = pd.DataFrame.from_records([lines[0] for lines in accepted.values()]) if accepted else pd.DataFrame()
    result = transform(mapping, masters, lines=pd.DataFrame.from_records(flat) if flat else None,
                       lookups={"orders": order_ids, "accounts": accounts, "products": products})

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
            "modified_ms": _approve_ms(lines[0].get("FApproveDate")),
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
