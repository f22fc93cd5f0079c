"""The K3Cloud side of the deliveries flow: which delivery notices a run looks at, and which sale order each
line is for. The reads themselves are the pipeline's (:mod:`.k3_source`), on the ``SAL_DELIVERYNOTICE`` form."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fxiaoke_k3cloud.flows import k3_source
from fxiaoke_k3cloud.flows.window import Window

NOTICE_FORM = "SAL_DELIVERYNOTICE"
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


def audited_in_window(hook: Any, keys: Sequence[str], window: Window) -> list[dict[str, Any]]:
    """Entry rows of notices audited inside the window (see :func:`.k3_source.audited_in_window`)."""
    return normalise(k3_source.audited_in_window(hook, NOTICE_FORM, keys, window))


def notices_by_ids(hook: Any, keys: Sequence[str], fids: Iterable[Any]) -> list[dict[str, Any]]:
    """Entry rows of these notices in any status (re-reading earlier failures and parked notices)."""
    return normalise(k3_source.by_ids(hook, NOTICE_FORM, keys, fids))


def unaudited_in_window(hook: Any, window: Window) -> list[dict[str, Any]]:
    """Header rows of notices changed inside the window that are not audited (now)."""
    return k3_source.unaudited_in_window(hook, NOTICE_FORM, window)


def existing_ids(hook: Any, fids: Iterable[Any]) -> set[str]:
    """Which of these notice FIDs still exist in K3Cloud (any status)."""
    return k3_source.existing_ids(hook, NOTICE_FORM, fids)
