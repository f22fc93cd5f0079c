"""The K3Cloud side of every K3Cloud → CRM flow: the run's params and meta, and the reads of one form.

All reads go through ``ExecuteBillQuery`` (the hook pages them); a flow names its form and field keys:

* documents audited (``FDocumentStatus = 'C'``) inside the window — ``FApproveDate`` is UTC+8 local time on
  the wire; the filter helper converts the window's aware UTC bounds to Asia/Shanghai explicitly;
* documents changed inside the window that are no longer audited (un-audit → ``D`` clears ``FApproveDate`` but
  bumps ``FModifyDate``), and which of a list of FIDs still exist (deletions);
* the CRM order of K3Cloud sale order numbers: the orders flow's id map, else the order's ``FNetOrderBillNo``
  (the CRM order ``_id`` the orders flow wrote). Numbers are compared as K3Cloud does (:func:`number_key`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from fxiaoke_k3cloud.flows.window import Window
from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.numbers import number_key

ORDER_FORM = "SAL_SaleOrder"
ORDER_ENTITY = "order"  # written by the orders flow: CRM SalesOrderObj _id ⇄ K3 SAL_SaleOrder FID / FBillNo
PAGE_SIZE = 2000  # rows per ExecuteBillQuery page (spec §4.1: ≤ 10000; 2000 is the conservative default)
ID_CHUNK = 500  # FIDs / numbers per `IN (...)` filter
HEADER_KEYS = ("FID", "FBillNo", "FDocumentStatus", "FModifyDate")


# --------------------------------------------------------------------------------------------------
# reads of one form
# --------------------------------------------------------------------------------------------------
def ints(values: Iterable[Any]) -> list[int]:
    out: list[int] = []
    for value in values:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue  # an id that is not a K3Cloud FID cannot match; skip it rather than break the filter
    return list(dict.fromkeys(out))


def rows(hook: Any, form: str, keys: Sequence[str], flt: Any) -> list[dict[str, Any]]:
    return [row for page in hook.execute_bill_query(form, list(keys), flt, page_size=PAGE_SIZE) for row in page]


def ceil_second(moment: datetime) -> datetime:
    """FilterStrings carry times to the second: an end of 20:38:58.625 would render as 20:38:58 and miss a
    document audited at 20:38:58.609. Rounding up reads at most a fraction of a second more; the next window
    starts at the watermark (≤ the extract's start) less the look-back, so nothing falls between two windows."""
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def audited_in_window(hook: Any, form: str, keys: Sequence[str], window: Window) -> list[dict[str, Any]]:
    """Rows of documents audited inside ``[window.start, window.end)``, the end rounded up to a whole second."""
    flt = ((F("FDocumentStatus") == "C") & (F("FApproveDate") >= window.start)
           & (F("FApproveDate") < ceil_second(window.end)))
    return rows(hook, form, keys, flt)


def by_ids(hook: Any, form: str, keys: Sequence[str], fids: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows of these documents in any status (re-reading earlier failures and parked documents)."""
    ids = ints(fids)
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), ID_CHUNK):
        out.extend(rows(hook, form, keys, F("FID").isin(ids[start : start + ID_CHUNK])))
    return out


def unaudited_in_window(hook: Any, form: str, window: Window,
                        keys: Sequence[str] = HEADER_KEYS) -> list[dict[str, Any]]:
    """Header rows of documents changed inside the window that are not audited (now)."""
    flt = ((F("FDocumentStatus") != "C") & (F("FModifyDate") >= window.start)
           & (F("FModifyDate") < ceil_second(window.end)))
    return rows(hook, form, keys, flt)


def existing_ids(hook: Any, form: str, fids: Iterable[Any]) -> set[str]:
    """Which of these FIDs still exist in K3Cloud (any status)."""
    return {str(r["FID"]) for r in by_ids(hook, form, ["FID"], fids)}


# --------------------------------------------------------------------------------------------------
# sale order number → CRM order
# --------------------------------------------------------------------------------------------------
def net_order_ids(hook: Any, numbers: Iterable[str]) -> dict[str, str]:
    """``{number_key(sale order FBillNo): FNetOrderBillNo}`` for orders that carry a CRM order id."""
    wanted = list(dict.fromkeys(n for n in numbers if n))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), ID_CHUNK):
        flt = F("FBillNo").isin(wanted[start : start + ID_CHUNK])
        for row in rows(hook, ORDER_FORM, ["FID", "FBillNo", "FNetOrderBillNo"], flt):
            crm_id = str(row.get("FNetOrderBillNo") or "").strip()
            if crm_id:
                found[number_key(row["FBillNo"])] = crm_id
    return found


def resolve_order_numbers(store: Any, hook: Any, numbers: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{sale order number as given: {"crm_id", "via"}}`` from the orders flow's id map, else ``FNetOrderBillNo``.

    Numbers match as K3Cloud compares them (case, width and blanks ignored): a receipt or notice typed with
    ``so000001`` finds order ``SO000001``.
    """
    wanted = sorted({n for n in numbers if n})
    known = store.get_id_map_by_number_keys(ORDER_ENTITY, wanted)
    orders = {n: {"crm_id": known[number_key(n)].source_id, "via": "order id map"}
              for n in wanted if number_key(n) in known}
    rest = [n for n in wanted if n not in orders]
    net = net_order_ids(hook, rest) if rest else {}
    orders.update({n: {"crm_id": net[number_key(n)], "via": "FNetOrderBillNo"} for n in rest if number_key(n) in net})
    return orders
