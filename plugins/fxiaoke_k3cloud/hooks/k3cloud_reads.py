"""The read verbs of :class:`~fxiaoke_k3cloud.hooks.k3cloud.K3CloudHook`: View, the two bill-query services, find by number.

A mixin over the hook's client (``self.client.call``); FilterStrings come only from ``k3cloud_filter.F``, form keys
and the stable paging order from ``k3cloud_query``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fxiaoke_k3cloud.errors import BusinessRuleError, ConfigError
from fxiaoke_k3cloud.hooks.k3cloud_filter import Expr, F
from fxiaoke_k3cloud.hooks.k3cloud_options import VIEW_OPTIONS, check_options
from fxiaoke_k3cloud.hooks.k3cloud_query import (
    check_field_keys,
    check_page_size,
    form_keys,
    objects_as_dicts,
    paginate,
    rows_as_dicts,
    stable_order,
)
from fxiaoke_k3cloud.hooks.k3cloud_response import MSG_DATA_NOT_FOUND

if TYPE_CHECKING:
    from fxiaoke_k3cloud.hooks.k3cloud_transport import K3CloudClient


class K3CloudReads:
    """Reads of K3Cloud documents; mixed into :class:`K3CloudHook`, which supplies ``client`` and ``log``."""

    if TYPE_CHECKING:
        client: K3CloudClient
        log: logging.Logger

    def view(self, form_id: str, number: str | None = None, id: int | None = None, **options: Any) -> dict[str, Any] | None:
        """One document in View shape (ORM names, not Save keys), or None when it does not exist."""
        if (number is None) == (id is None):
            raise ValueError("pass exactly one of number= or id=")
        data = {**check_options(options, VIEW_OPTIONS, "View"), "Number": number or "", "Id": "" if id is None else str(int(id))}
        try:
            body = self.client.call("View", {"formid": form_id, "data": data}, write=False)
        except BusinessRuleError as exc:
            if exc.code == MSG_DATA_NOT_FOUND:
                return None
            raise
        document = (body.get("Result") or {}).get("Result")
        return dict(document) if isinstance(document, Mapping) and document else None

    def execute_bill_query(
        self,
        form_id: str,
        field_keys: Sequence[str],
        filter: Expr | None = None,
        *,
        order_by: Sequence[str] | None = None,
        page_size: int = 2000,
        raw_filter: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of rows (dicts keyed by ``field_keys``) from ExecuteBillQuery.

        Ordered by ``order_by`` then the form's unique keys (PK, plus the entry PK when entry fields are
        requested), paged with StartRow, stopping on a short page. ``page_size`` is at most 2000, the rows K3Cloud
        returns per call whatever Limit says; a short page of a round length (a lower server cap) is followed
        by one more call, so rows are never cut off silently.

        :param filter: an expression built with ``k3cloud_filter.F``; a plain string is refused.
        :param raw_filter: a trusted FilterString **constant** written in code (never data from users or the CRM);
            ANDed with ``filter``.
        """
        yield from self._paged("ExecuteBillQuery", form_id, field_keys, filter, order_by, page_size, raw_filter)

    def bill_query(
        self,
        form_id: str,
        field_keys: Sequence[str],
        filter: Expr | None = None,
        *,
        order_by: Sequence[str] | None = None,
        page_size: int = 2000,
        raw_filter: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Like ``execute_bill_query`` through the BillQuery service (rows come back as objects)."""
        yield from self._paged("BillQuery", form_id, field_keys, filter, order_by, page_size, raw_filter)

    def _paged(
        self,
        service: str,
        form_id: str,
        field_keys: Sequence[str],
        filter: Expr | None,
        order_by: Sequence[str] | None,
        page_size: int,
        raw_filter: str | None,
    ) -> Iterator[list[dict[str, Any]]]:
        keys = check_field_keys(field_keys)
        check_page_size(page_size)
        if filter is not None and not isinstance(filter, Expr):
            raise TypeError(
                "filter must be built with k3cloud_filter.F (e.g. F('FNumber') == value); "
                "raw strings are accepted only as raw_filter= for trusted constants"
            )
        if raw_filter is not None and not isinstance(raw_filter, str):
            raise TypeError("raw_filter must be a str constant")
        parts = [f"({raw_filter})" if raw_filter and filter is not None else raw_filter or "", filter.render() if filter is not None else ""]
        filter_string = " AND ".join(p for p in parts if p)
        query = {
            "FormId": form_id,
            "FieldKeys": ",".join(keys),
            "FilterString": filter_string,
            "OrderString": stable_order(form_id, keys, order_by),
            "TopRowCount": 0,
            "StartRow": 0,
            "Limit": page_size,
            "SubSystemId": "",
        }
        shape = rows_as_dicts if service == "ExecuteBillQuery" else objects_as_dicts
        call = lambda data: self.client.call(service, {"data": data}, write=False)  # noqa: E731
        yield from paginate(call, service, query, lambda body: shape(body, keys), page_size, self.log)

    def find_by_number(
        self, form_id: str, number: str, field_keys: Sequence[str] | None = None, *, number_key: str | None = None
    ) -> list[dict[str, Any]]:
        """Rows of the document with this number ([] when there is none); one row per entry line if entry keys are asked.

        Used to resolve writes whose outcome is unknown and duplicate-number refusals.

        :param field_keys: defaults to the form's PK and number key.
        :param number_key: the number field when the form is not in the key table (``FNumber`` / ``FBillNo``).
        """
        if not isinstance(number, str):
            raise TypeError("number must be a string (numbers keep their leading zeros)")
        keys_info = form_keys(form_id)
        key = number_key or (keys_info.number_key if keys_info else None)
        if key is None:
            raise ConfigError(f"form {form_id!r} is not in the key table; pass number_key= ('FNumber' or 'FBillNo')")
        keys = list(field_keys) if field_keys else [keys_info.pk if keys_info else key, key]
        order_by = None if keys_info else [key]
        return [row for page in self.execute_bill_query(form_id, keys, F(key) == number, order_by=order_by) for row in page]
