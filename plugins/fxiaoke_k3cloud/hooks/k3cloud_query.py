"""Query helpers for K3CloudHook: the form → key table, stable OrderStrings and row shaping (spec §4, §5).

Paging with ``StartRow`` is only correct when the order is total, so every query is ordered by the form's
primary key — plus the entry primary key when entry-level fields are requested, because then the server returns
one row per entry line (header × entry) and the header key alone repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.hooks.k3cloud_filter import check_field_name

# ExecuteBillQuery returns at most 2000 rows per call whatever Limit says (production notes; the docs allow a
# Limit up to 10000). A larger page size would come back short and look like the last page: refused, not clamped.
MAX_PAGE_SIZE = 2000
# A short page whose length is a multiple of this may be a lower server cap rather than the end: look once more.
CAP_PROBE_MULTIPLE = 500


@dataclass(frozen=True)
class FormKeys:
    """Unique keys of a form: header PK, number field, and the entry table with its PK and best-known fields."""

    pk: str
    number_key: str
    entry: str | None = None
    entry_pk: str | None = None
    entry_fields: frozenset[str] = frozenset()

    @property
    def entry_pk_key(self) -> str | None:
        """The FieldKey of the entry PK, e.g. ``FSaleOrderEntry_FEntryID``."""
        return f"{self.entry}_{self.entry_pk}" if self.entry and self.entry_pk else None

    def is_entry_key(self, field_key: str) -> bool:
        if not self.entry:
            return False
        root = field_key.split(".", 1)[0].lower()
        return root.startswith(self.entry.lower() + "_") or root in self.entry_fields


def _fields(*names: str) -> frozenset[str]:
    return frozenset(n.lower() for n in names)


# Entry-field lists are the Save keys of spec §5; a key not listed here is still detected by its entry prefix.
FORM_KEYS: dict[str, FormKeys] = {
    "BD_Customer": FormKeys("FCUSTID", "FNumber"),
    "BD_MATERIAL": FormKeys("FMATERIALID", "FNumber"),
    "BD_Currency": FormKeys("FCURRENCYID", "FNumber"),
    "SAL_SaleOrder": FormKeys(
        "FID", "FBillNo", "FSaleOrderEntry", "FEntryID",
        _fields(
            "FRowType", "FMaterialId", "FUnitID", "FQty", "FPrice", "FTaxPrice", "FEntryTaxRate", "FIsFree",
            "FDiscountRate", "FDeliveryDate", "FStockOrgId", "FSettleOrgIds", "FSupplyOrgId", "FOwnerTypeId",
            "FOwnerId", "FMtoNo", "FEntryNote", "FLot", "FDeliQty", "FStockOutQty", "FRemainOutQty", "FCanOutQty",
            "FReturnQty", "FInvoiceQty", "FReceiveAmount", "FDeliveryStatus", "FMrpCloseStatus",
        ),
    ),
    "SAL_DELIVERYNOTICE": FormKeys(
        "FID", "FBillNo", "FEntity", "FEntryID",
        _fields(
            "FRowType", "FMaterialID", "FUnitID", "FQty", "FPlanDeliveryDate", "FStockUnitID", "FStockQty",
            "FOwnerTypeID", "FOwnerID", "FOutLmtUnit", "FSrcType", "FSrcBillNo", "FOrderNo", "FSUMOUTQTY",
        ),
    ),
    "SAL_OUTSTOCK": FormKeys(
        "FID", "FBillNo", "FEntity", "FEntryID",
        _fields(
            "FMaterialID", "FUnitID", "FMustQty", "FRealQty", "FPrice", "FTaxPrice", "FEntryTaxRate", "FStockID",
            "FLot", "FSrcType", "FSrcBillNo", "FSoorDerno", "FSOEntryId", "FReturnQty", "FSignQty", "FArrivalStatus",
        ),
    ),
    "AR_RECEIVEBILL": FormKeys("FID", "FBillNo"),
}
_FORM_KEYS_CI = {name.lower(): keys for name, keys in FORM_KEYS.items()}


def form_keys(form_id: str) -> FormKeys | None:
    """The key table entry for ``form_id`` (form ids are case-insensitive on the server)."""
    return _FORM_KEYS_CI.get(form_id.lower())


def register_form_keys(form_id: str, pk: str, number_key: str, entry: str | None = None,
                       entry_pk: str | None = None) -> FormKeys:
    """Teach the key table a form from its mapping's ``target`` (pk, number) and ``entries`` (entity, entry pk).

    The flows register the target form of every mapping they load, so a new flow needs no entry in
    :data:`FORM_KEYS`; a form already listed keeps its entry (its entry-field list is richer).
    """
    known = form_keys(form_id)
    if known is not None:
        return known
    keys = FormKeys(check_field_name(pk), check_field_name(number_key),
                    check_field_name(entry) if entry else None, check_field_name(entry_pk) if entry_pk else None)
    _FORM_KEYS_CI[form_id.lower()] = keys
    return keys


def check_field_keys(field_keys: Sequence[str]) -> list[str]:
    if isinstance(field_keys, str):
        raise TypeError("field_keys must be a sequence of field keys, not one comma-separated string")
    keys = [check_field_name(k) for k in field_keys]
    if not keys:
        raise ValueError("field_keys must name at least one field")
    return keys


def _parse_order_item(item: str) -> tuple[str, str]:
    parts = item.split()
    if len(parts) == 1:
        return check_field_name(parts[0]), "ASC"
    if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
        return check_field_name(parts[0]), parts[1].upper()
    raise ValueError(f"invalid order_by item {item!r}: expected 'FField' or 'FField ASC|DESC'")


def stable_order(form_id: str, field_keys: Sequence[str], order_by: Sequence[str] | None) -> str:
    """An OrderString that is a total order: the caller's order, then the unique keys not yet in it.

    :raises ConfigError: for a form without a known key when no ``order_by`` is given.
    """
    if isinstance(order_by, str):
        raise TypeError("order_by must be a sequence like ['FDate DESC'], not a string")
    items = [_parse_order_item(i) for i in order_by or ()]
    keys = form_keys(form_id)
    if keys is None:
        if not items:
            raise ConfigError(
                f"form {form_id!r} has no known unique key; pass order_by naming a unique key (e.g. ['FID']) "
                "so that StartRow paging neither skips nor repeats rows"
            )
        return ", ".join(f"{f} {d}" for f, d in items)
    unique = [keys.pk]
    entry_pk_key = keys.entry_pk_key
    if entry_pk_key and any(keys.is_entry_key(k) for k in field_keys):
        unique.append(entry_pk_key)
    present = {f.lower() for f, _ in items}
    items += [(k, "ASC") for k in unique if k.lower() not in present]
    return ", ".join(f"{f} {d}" for f, d in items)


def check_page_size(page_size: int) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(
            f"page_size must be an int in 1..{MAX_PAGE_SIZE}, got {page_size!r}: K3Cloud returns at most "
            f"{MAX_PAGE_SIZE} rows per query call whatever Limit says, so a larger page would be cut short; "
            "the hook pages with StartRow, ask for ≤ 2000")
    return page_size


def maybe_capped(page_len: int, page_size: int) -> bool:
    """A short, non-empty page of a round length: possibly the server's own row cap, not the end of the rows."""
    return 0 < page_len < page_size and page_len % CAP_PROBE_MULTIPLE == 0


def paginate(
    call: Callable[[dict[str, Any]], Any],
    service: str,
    query: dict[str, Any],
    shape: Callable[[list[Any]], list[dict[str, Any]]],
    page_size: int,
    log: logging.Logger,
) -> Iterator[list[dict[str, Any]]]:
    """Yield pages of ``query`` with StartRow/Limit until a short page; ``call`` posts one page's ``data``.

    A short page of a round length may be a server cap below ``page_size`` (2000 on most servers, lower on
    some): one more call tells the end from a cap, and paging goes on with the cap — never a silent cut.
    """
    form_id = query.get("FormId")
    start, total, size, probing = 0, 0, page_size, False
    while True:
        body = call({**query, "StartRow": start, "Limit": size})
        if not isinstance(body, list):
            raise ValueError(f"{service} answered with {type(body).__name__}, expected a list of rows")
        page = shape(body)
        total += len(page)
        log.info("k3cloud %s %s: rows %s-%s", service, form_id, start, start + len(page))
        if probing and page:
            log.warning("k3cloud %s %s: the server caps pages at %s rows (asked %s); paging on with %s",
                        service, form_id, size, page_size, size)
        if page:
            yield page
        start += len(page)
        if maybe_capped(len(page), size):
            size, probing = len(page), True  # look once more: the end, or a cap lower than page_size
            continue
        if len(page) < size:
            break
        probing = False
    log.info("k3cloud %s %s: %s row(s) in total", service, form_id, total)


def rows_as_dicts(rows: Sequence[Any], field_keys: Sequence[str]) -> list[dict[str, Any]]:
    """ExecuteBillQuery rows (arrays in FieldKeys order) as dicts keyed by the requested keys."""
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(field_keys):
            raise ValueError(f"query row does not match the {len(field_keys)} requested field keys: {row!r:.200}")
        out.append(dict(zip(field_keys, row)))
    return out


def objects_as_dicts(rows: Sequence[Any], field_keys: Sequence[str]) -> list[dict[str, Any]]:
    """BillQuery rows (objects) keyed by exactly the requested keys; the server's key case may differ."""
    out = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise ValueError(f"BillQuery row is not an object: {row!r:.200}")
        by_lower = {str(k).lower(): v for k, v in row.items()}
        out.append({k: row[k] if k in row else by_lower.get(k.lower()) for k in field_keys})
    return out
