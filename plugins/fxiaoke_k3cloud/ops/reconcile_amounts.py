"""Reconciliation of amounts (the orders flow's ``reconcile_drifts`` hook): CRM ``order_amount`` against the
K3Cloud lines' ``FTaxPrice × FQty``, per order and summed per day (``order_time`` in Asia/Shanghai vs ``FDate``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any, Sequence

from fxiaoke_k3cloud.flows.window import SHANGHAI
from fxiaoke_k3cloud.ops.reconcile import Drift, normalise, parse_amount

AMOUNT_TOLERANCE = Decimal("0.01")


def erp_amount(doc: dict[str, Any]) -> Decimal:
    total = Decimal(0)
    for row in doc.get("rows") or []:
        price, qty = parse_amount(row.get("FTaxPrice")), parse_amount(row.get("FQty"))
        if price is not None and qty is not None:
            total += price * qty
    return total


def _day(ms: Any) -> str | None:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=SHANGHAI).date().isoformat()
    except (TypeError, ValueError):
        return None


def compare_amounts(flow: str, packages: Sequence[Any], records: dict[str, dict[str, Any]],
                    docs: dict[str, dict[str, Any]], extras: Sequence[str]) -> list[Drift]:
    """Per order, then per day: CRM ``order_amount`` vs the K3Cloud lines' ``FTaxPrice × FQty``."""
    drifts: list[Drift] = []
    crm_days: dict[str, Decimal] = defaultdict(Decimal)
    erp_days: dict[str, Decimal] = defaultdict(Decimal)
    for pkg in packages:
        record = records.get(pkg.source_id, {})
        amount, day = parse_amount(record.get("order_amount")), _day(record.get("order_time"))
        if amount is not None and day:
            crm_days[day] += amount
        doc = docs.get(pkg.number)
        if doc is None:
            continue
        erp = erp_amount(doc)
        erp_day = normalise(doc.get("FDate")) or day
        if erp_day:
            erp_days[erp_day] += erp
        if amount is not None and abs(amount - erp) > AMOUNT_TOLERANCE:
            drifts.append(Drift(flow, "amount_difference", pkg.source_id, pkg.number, "order_amount",
                                format(amount, "f"), format(erp, "f")))
    for number in extras:
        doc = docs[number]
        day = normalise(doc.get("FDate"))
        if day:
            erp_days[day] += erp_amount(doc)
    for day in sorted(set(crm_days) | set(erp_days)):
        crm, erp = crm_days.get(day, Decimal(0)), erp_days.get(day, Decimal(0))
        if abs(crm - erp) > AMOUNT_TOLERANCE:
            drifts.append(Drift(flow, "amount_difference", None, None, f"day:{day}", format(crm, "f"), format(erp, "f")))
    return drifts
