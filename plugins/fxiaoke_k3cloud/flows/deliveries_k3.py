"""The K3Cloud side of the deliveries flow: which delivery notices a run looks at, and which CRM order each is for.

Three reads per run, all through ``ExecuteBillQuery`` ordered by ``FID`` + entry id (unique, stable paging):

* audited notices (``FDocumentStatus = 'C'``) approved inside the window — ``FApproveDate`` is UTC+8 local
  time on the wire; the filter helper converts the window's aware UTC bounds to Asia/Shanghai explicitly;
* notices already sent to the CRM that are no longer audited (un-audit → ``D`` clears ``FApproveDate`` but
  bumps ``FModifyDate``, so these are found by ``FModifyDate``), and notices that have disappeared (deleted);
* the ``FNetOrderBillNo`` (the CRM order ``_id`` the orders flow wrote) of sale orders the id map does not know.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fxiaoke_k3cloud.flows.window import Window
from fxiaoke_k3cloud.hooks.k3cloud_filter import F

NOTICE_FORM = "SAL_DELIVERYNOTICE"
ORDER_FORM = "SAL_SaleOrder"
PAGE_SIZE = 2000  # rows per ExecuteBillQuery page (spec §4.1: ≤ 10000; 2000 is the conservative default)
ID_CHUNK = 500  # FIDs / numbers per `IN (...)` filter
HEADER_KEYS = ["FID", "FBillNo", "FDocumentStatus", "FModifyDate"]


def _ints(values: Iterable[Any]) -> list[int]:
    out: list[int] = []
    for value in values:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue  # an id that is not a K3Cloud FID cannot match; skip it rather than break the filter
    return list(dict.fromkeys(out))


def _rows(hook: Any, form: str, keys: Sequence[str], flt: Any) -> list[dict[str, Any]]:
    return [row for page in hook.execute_bill_query(form, list(keys), flt, page_size=PAGE_SIZE) for row in page]


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
    """Entry rows of notices audited inside ``[window.start, window.end)``, the end rounded up to a whole second.

    FilterStrings carry times to the second: an end of 20:38:58.625 would render as 20:38:58 and miss a notice
    audited at 20:38:58.609. Rounding up reads at most a fraction of a second more; the next window starts
    at the watermark (≤ the extract's start) less the look-back, so nothing falls between two windows.
    """
    end = _ceil_second(window.end)
    flt = (F("FDocumentStatus") == "C") & (F("FApproveDate") >= window.start) & (F("FApproveDate") < end)
    return normalise(_rows(hook, NOTICE_FORM, keys, flt))


def notices_by_ids(hook: Any, keys: Sequence[str], fids: Iterable[Any]) -> list[dict[str, Any]]:
    """Entry rows of these notices in any status (re-reading earlier failures and parked notices)."""
    ids = _ints(fids)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), ID_CHUNK):
        rows.extend(_rows(hook, NOTICE_FORM, keys, F("FID").isin(ids[start : start + ID_CHUNK])))
    return normalise(rows)


def _ceil_second(moment: Any) -> Any:
    from datetime import timedelta

    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def unaudited_in_window(hook: Any, window: Window) -> list[dict[str, Any]]:
    """Header rows of notices changed inside the window that are not audited (now)."""
    flt = (F("FDocumentStatus") != "C") & (F("FModifyDate") >= window.start) & (F("FModifyDate") < _ceil_second(window.end))
    return _rows(hook, NOTICE_FORM, HEADER_KEYS, flt)


def existing_ids(hook: Any, fids: Iterable[Any]) -> set[str]:
    """Which of these notice FIDs still exist in K3Cloud (any status)."""
    ids = _ints(fids)
    found: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):
        rows = _rows(hook, NOTICE_FORM, ["FID"], F("FID").isin(ids[start : start + ID_CHUNK]))
        found.update(str(r["FID"]) for r in rows)
    return found


def net_order_ids(hook: Any, numbers: Iterable[str]) -> dict[str, str]:
    """``{sale order FBillNo: FNetOrderBillNo}`` for orders that carry a CRM order id (others are absent)."""
    wanted = list(dict.fromkeys(n for n in numbers if n))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), ID_CHUNK):
        flt = F("FBillNo").isin(wanted[start : start + ID_CHUNK])
        for row in _rows(hook, ORDER_FORM, ["FID", "FBillNo", "FNetOrderBillNo"], flt):
            crm_id = str(row.get("FNetOrderBillNo") or "").strip()
            if crm_id:
                found[str(row["FBillNo"])] = crm_id
    return found
