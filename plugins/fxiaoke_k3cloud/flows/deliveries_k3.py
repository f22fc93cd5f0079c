"""The K3Cloud side of the deliveries flow: which sale order (and order entry) each delivery notice line is for.
The reads themselves are the K3Cloud source's (:mod:`.k3_pipeline`, :mod:`.k3_source`), on the registry's form."""

from __future__ import annotations

from typing import Any

from fxiaoke_k3cloud.flows import k3_source

ORDER_FORM = k3_source.ORDER_FORM


def order_number(row: dict[str, Any]) -> str | None:
    """The sale order a notice line comes from: ``FOrderNo``, else ``FSrcBillNo`` when pushed from a sale order."""
    number = str(row.get("FOrderNo") or "").strip()
    if not number and row.get("FSrcType") == ORDER_FORM:
        number = str(row.get("FSrcBillNo") or "").strip()
    return number or None


def order_entry_id(row: dict[str, Any]) -> str | None:
    """The sale-order entry (``FSOEntryId``) a notice line was pushed from, as text; None when it has none (0)."""
    value = row.get("FSOEntryId")
    try:
        entry = int(value)
    except (TypeError, ValueError):
        return None
    return str(entry) if entry > 0 else None


def normalise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every line its order number in ``FOrderNo`` and its order entry id as text in ``FSOEntryId``
    (the fields the mapping reads; lookup keys are text)."""
    for row in rows:
        row["FOrderNo"] = order_number(row)
        if "FSOEntryId" in row:
            row["FSOEntryId"] = order_entry_id(row)
    return rows

