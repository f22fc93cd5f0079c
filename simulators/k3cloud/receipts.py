"""收款单 (AR_RECEIVEBILL) pushed from a sale order: what the real conversion fills in, and what is left to pay.

The real rule pushes from the order's receipt plan (收款计划); the simulator's plan is the whole order amount
(its lines' ``FAllAmount``), less what audited-or-not receipts already pushed from the order took
(their ``FRECEIVEBILLSRCENTRY`` link rows), so a receipt deleted again frees its amount. One receipt per order,
one receipt line (``FRECEIVEBILLENTRY``: 销售收款, 电汇, the order number in ``FSALEORDERNO``) and one source line
(``FRECEIVEBILLSRCENTRY``: ``FSRCBILLTYPEID = SAL_SaleOrder``, ``FSRCBILLNO``, link row to ``T_SAL_ORDERPLAN``).
See README "AR_RECEIVEBILL" for the evidence and what is assumed.
"""

from __future__ import annotations

from typing import Any

from .store import Doc, Store, today_local
from .wire import K3Error

RULE = "SaleOrder-ReceiveBill"  # ASSUMPTION: the rule id (the real one is tenant-visible in BOS; not public)
PLAN_TABLE = "T_SAL_ORDERPLAN"
LINK = "FRECEIVEBILLSRCENTRY_Link"
DEFAULT_PURPOSE = "SFKYT01_SYS"  # 销售收款
DEFAULT_SETTLE = "JSFS04_SYS"  # 电汇


def _ref(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else None


def order_amount(order: Doc) -> float:
    return round(sum(float(row.get("FAllAmount") or 0) for row in order.data.get("FSaleOrderEntry") or []), 2)


def pushed_amount(store: Store, target: Any, order: Doc) -> float:
    """What receipts pushed from ``order`` already take (their link rows to its plan)."""
    total = 0.0
    for doc in store.table(target).values():
        for row in doc.data.get("FRECEIVEBILLSRCENTRY") or []:
            for link in row.get(LINK) or []:
                if link.get(f"{LINK}_FSTableName") == PLAN_TABLE and str(link.get(f"{LINK}_FSBillId")) == str(order.id):
                    total += float(link.get(f"{LINK}_FREALRECAMOUNT") or 0)
    return round(total, 2)


def receipt_from_order(store: Store, target: Any, order: Doc) -> dict[str, Any]:
    """The Save model of a receipt for what is still to be received on ``order`` (K3Error when nothing is)."""
    d = order.data
    amount = round(order_amount(order) - pushed_amount(store, target, order), 2)
    if amount <= 0:
        raise K3Error(f"单据编号为“{order.number}”的销售订单：关联数量已达上限，没有可下推的收款计划。", 11)
    customer = _ref(d.get("FChargeId")) or _ref(d.get("FCustId"))
    currency = _ref((d.get("FSaleOrderFinance") or {}).get("FSettleCurrId")) or {"FNumber": "PRE001"}
    first = next(iter(d.get("FSaleOrderEntry") or []), {})
    return {
        "FDATE": today_local(), "FCONTACTUNITTYPE": "BD_Customer", "FCONTACTUNIT": _ref(d.get("FCustId")),
        "FPAYUNITTYPE": "BD_Customer", "FPAYUNIT": customer, "FCURRENCYID": currency, "FSETTLECUR": currency,
        "FSETTLEORGID": _ref(d.get("FSaleOrgId")), "FPAYORGID": _ref(d.get("FSaleOrgId")),
        "FSALEORGID": _ref(d.get("FSaleOrgId")), "FSALEERID": _ref(d.get("FSalerId")),
        "FSALEDEPTID": _ref(d.get("FSaleDeptId")),
        "FRECEIVEBILLENTRY": [{
            "FSETTLETYPEID": {"FNumber": DEFAULT_SETTLE}, "FPURPOSEID": {"FNumber": DEFAULT_PURPOSE},
            "FRECTOTALAMOUNTFOR": amount, "FRECAMOUNTFOR_E": amount, "FPOSTDATE": today_local(),
            "FSALEORDERNO": order.number, "FSaleOrderID": order.id, "FORDERENTRYID": first.get("FEntryID"),
        }],
        "FRECEIVEBILLSRCENTRY": [{
            "FSRCBILLTYPEID": order.form.form_id, "FSRCBILLNO": order.number, "FSRCBILLID": order.id,
            "FORDERBILLNO": order.number, "FPLANRECAMOUNT": amount, "FREALRECAMOUNT": amount,
            "FAFTTAXTOTALAMOUNT": order_amount(order), "FSRCCURRENCYID": currency,
            LINK: [{f"{LINK}_FRuleId": RULE, f"{LINK}_FSTableName": PLAN_TABLE, f"{LINK}_FSBillId": order.id,
                    f"{LINK}_FSId": order.id, f"{LINK}_FREALRECAMOUNTOLD": amount, f"{LINK}_FREALRECAMOUNT": amount}],
        }],
    }
