"""What the chaos suite checks after a run: the simulators' state against the CRM's source records, and the audit
store's final outcome per source id. Findings are appended to the :class:`~tests.reliability.chaos.Outcome`."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

GOOD = {"created", "updated", "unchanged"}


def landed(fx: Any, k3: Any) -> dict[str, int]:
    """How many distinct target records exist now (for the share landed before the settling pass)."""
    return {"customers": len({r["FNumber"] for r in k3.records("BD_Customer")}),
            "orders": len({r["FBillNo"] for r in k3.records("SAL_SaleOrder")}),
            "deliveries": len({r["name"] for r in fx.records("DeliveryNoteObj")})}


def final_outcomes(store: Any, flow: str) -> dict[str, str]:
    """source id → outcome of its most recent sync_record row in ``flow``."""
    from fxiaoke_k3cloud.audit.schema import sync_record

    latest = (sa.select(sync_record.c.source_id, sa.func.max(sync_record.c.id).label("last_id"))
              .where(sync_record.c.flow == flow).group_by(sync_record.c.source_id).subquery())
    query = sa.select(sync_record.c.source_id, sync_record.c.outcome).join(latest, sync_record.c.id == latest.c.last_id)
    with store.engine.connect() as conn:
        return {row.source_id: row.outcome for row in conn.execute(query)}


def count_read_backs(store: Any) -> int:
    from fxiaoke_k3cloud.audit.schema import sync_record

    query = sa.select(sa.func.count()).select_from(sync_record).where(sync_record.c.reason.like("%read-back%"))
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _qty(value: Any) -> Decimal:
    return Decimal(str(value)).normalize()


def verify(out: Any, fx: Any, k3: Any, store: Any, notices: list[str]) -> None:
    accounts = fx.records("AccountObj")
    orders = [o for o in fx.records("SalesOrderObj") if o.get("life_status") == "normal"]
    products = {p["_id"]: p["product_code"] for p in fx.records("ProductObj")}
    lines_by_order: dict[str, Counter] = {}
    for line in fx.records("SalesOrderProductObj"):
        lines_by_order.setdefault(line["order_id"], Counter())[(products[line["product_id"]], _qty(line["quantity"]))] += 1
    account_number = {a["_id"]: a.get("field_fnfcA__c") for a in accounts}

    # --- customers: exactly once, right name --------------------------------------------------------
    k3_customers = k3.records("BD_Customer")
    per_number = Counter(c["FNumber"] for c in k3_customers)
    by_number = {c["FNumber"]: c for c in k3_customers}
    for a in accounts:
        number = a.get("field_fnfcA__c")
        n = per_number.get(number, 0)
        if n == 0:
            out.losses.append(f"customer {a['_id']} ({number}) not in K3Cloud")
        elif n > 1:
            out.duplicates.append(f"customer {number} in K3Cloud {n} times")
        elif by_number[number].get("FName") != a["name"]:
            out.wrong.append(f"customer {number}: FName {by_number[number].get('FName')!r} != {a['name']!r}")
    extra = set(per_number) - {a.get("field_fnfcA__c") for a in accounts}
    out.wrong += [f"K3Cloud customer {n} has no CRM source" for n in sorted(extra)]

    # --- orders: exactly once, right customer, right lines ------------------------------------------
    k3_orders = k3.records("SAL_SaleOrder")
    per_bill = Counter(o["FBillNo"] for o in k3_orders)
    by_bill = {o["FBillNo"]: o for o in k3_orders}
    for o in orders:
        n = per_bill.get(o["name"], 0)
        if n == 0:
            out.losses.append(f"order {o['_id']} ({o['name']}) not in K3Cloud")
            continue
        if n > 1:
            out.duplicates.append(f"order {o['name']} in K3Cloud {n} times")
        so = by_bill[o["name"]]
        if so.get("FNetOrderBillNo") != o["_id"]:
            out.wrong.append(f"order {o['name']}: FNetOrderBillNo {so.get('FNetOrderBillNo')!r} != {o['_id']}")
        if (so.get("FCustId") or {}).get("FNumber") != account_number.get(o["account_id"]):
            out.wrong.append(f"order {o['name']}: customer {so.get('FCustId')} != {account_number.get(o['account_id'])}")
        got = Counter((e["FMaterialId"]["FNumber"], _qty(e["FQty"])) for e in so.get("FSaleOrderEntry") or [])
        if got != lines_by_order.get(o["_id"], Counter()):
            out.wrong.append(f"order {o['name']}: lines {sorted(got.items())} != {sorted(lines_by_order.get(o['_id'], {}).items())}")
    out.duplicates += [f"K3Cloud order {b} created {n} times" for b, n in per_bill.items()
                       if n > 1 and b not in {o["name"] for o in orders}]

    # --- deliveries: one note per audited notice, one message per notice -----------------------------
    audited = [n for n in k3.records("SAL_DELIVERYNOTICE") if n.get("FDocumentStatus") == "C"]
    if sorted(n["FBillNo"] for n in audited) != sorted(notices):
        out.wrong.append(f"audited notices {len(audited)} != notices created by the test {len(notices)}")
    notes = Counter(r["name"] for r in fx.records("DeliveryNoteObj"))
    messages = [json.dumps(m, ensure_ascii=False) for m in fx._admin("GET", "messages")]
    for notice in audited:
        number = notice["FBillNo"]
        if notes.get(number, 0) == 0:
            out.losses.append(f"delivery notice {number} has no CRM delivery note")
        elif notes[number] > 1:
            out.duplicates.append(f"delivery notice {number}: {notes[number]} CRM delivery notes")
        sent = sum(f"{number} 已审核" in m for m in messages)
        if sent == 0:
            out.message_losses.append(f"delivery notice {number}: no owner message")
        elif sent > 1:
            out.duplicates.append(f"delivery notice {number}: {sent} owner messages")

    # --- audit store: a final good outcome for every source id ---------------------------------------
    expected = {"customers": {a["_id"] for a in accounts}, "orders": {o["_id"] for o in orders},
                "deliveries": {str(n["FID"]) for n in audited}}
    for flow, ids in expected.items():
        finals = final_outcomes(store, flow)
        missing = ids - set(finals)
        bad = {i: finals[i] for i in ids & set(finals) if finals[i] not in GOOD}
        out.losses += [f"audit: {flow} source {i} has no outcome" for i in sorted(missing)[:20]]
        out.wrong += [f"audit: {flow} source {i} final outcome {o}" for i, o in sorted(bad.items())[:20]]
    out.read_backs = count_read_backs(store)
    out.counts = {"customers": len(accounts), "orders": len(orders), "order_lines": sum(
        sum(c.values()) for c in lines_by_order.values()), "notices": len(audited)}
