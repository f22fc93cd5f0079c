"""The order's paid and owed amounts (已回款金额 / 待回款金额), rolled up from its payment lines.

ASSUMPTION (README "PaymentObj / OrderPaymentObj"): the real CRM keeps these on SalesOrderObj as roll-up fields
over the order's non-voided 回款明细 (OrderPaymentObj); their api names here are ``payment_amount`` and
``receivable_amount`` (= ``order_amount`` − ``payment_amount``). The simulator recomputes them after every write
that touches a payment or a payment line.
"""

from __future__ import annotations

from typing import Any, Iterable

PAYMENT_OBJECTS = ("PaymentObj", "OrderPaymentObj")


def order_ids_of(store: Any, api_name: str, records: Iterable[dict[str, Any]]) -> set[str]:
    """The orders whose roll-up a write to these payment / payment-line records may change."""
    if api_name not in PAYMENT_OBJECTS:
        return set()
    out: set[str] = set()
    for rec in records:
        if api_name == "PaymentObj":
            out.update(str(line.get("order_id")) for line in store.table("OrderPaymentObj").values()
                       if line.get("payment_id") == rec.get("_id") and line.get("order_id"))
        if rec.get("order_id"):
            out.add(str(rec["order_id"]))
    return out


def refresh(store: Any, order_ids: Iterable[str]) -> None:
    orders = store.table("SalesOrderObj")
    lines = [r for r in store.table("OrderPaymentObj").values() if r.get("life_status") != "invalid"]
    for order_id in set(order_ids):
        order = orders.get(order_id)
        if order is None:
            continue
        paid = round(sum(float(r.get("payment_amount") or 0) for r in lines if r.get("order_id") == order_id), 2)
        order["payment_amount"] = f"{paid:.2f}"
        order["receivable_amount"] = f"{float(order.get('order_amount') or 0) - paid:.2f}"
