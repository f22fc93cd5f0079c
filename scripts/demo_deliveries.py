"""Demo data for the deliveries flow: turn existing K3Cloud sale orders into audited delivery notices.

``make demo`` runs the orders flow first (CRM orders → K3Cloud ``SAL_SaleOrder``), then calls
:func:`create_demo_deliveries` so the deliveries DAG has audited notices to bring back to the CRM.
"""

from __future__ import annotations

import logging
from typing import Any

from fxiaoke_k3cloud.errors import SyncError
from fxiaoke_k3cloud.hooks.k3cloud_filter import F

log = logging.getLogger(__name__)

NOTICE_FORM = "SAL_DELIVERYNOTICE"
RULE = "SaleOrder-DeliveryNotice"


def create_demo_deliveries(k3cloud_hook: Any, count: int) -> list[str]:
    """Push up to ``count`` audited K3Cloud sale orders to delivery notices and audit them; returns the notice numbers.

    Orders are taken in FID order; an order already fully pushed (``关联数量已达上限``) is skipped, so calling
    this twice creates new notices only for orders that still have quantity to deliver.
    """
    if count <= 0:
        return []
    numbers: list[str] = []
    for page in k3cloud_hook.execute_bill_query("SAL_SaleOrder", ["FID", "FBillNo"], F("FDocumentStatus") == "C"):
        for order in page:
            if len(numbers) >= count:
                return numbers
            try:
                pushed = k3cloud_hook.push("SAL_SaleOrder", NOTICE_FORM, RULE, numbers=[order["FBillNo"]])
            except SyncError as exc:  # fully pushed already, or closed: not an error for a demo
                log.info("sale order %s not pushed: %s", order["FBillNo"], exc)
                continue
            created = [t.number for t in pushed.targets if t.number]
            if not created:
                continue
            k3cloud_hook.submit(NOTICE_FORM, numbers=created)
            k3cloud_hook.audit(NOTICE_FORM, numbers=created)
            numbers.extend(created)
    return numbers[:count]
