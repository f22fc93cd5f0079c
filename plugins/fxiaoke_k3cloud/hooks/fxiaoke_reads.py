"""The read verbs of :class:`~fxiaoke_k3cloud.hooks.fxiaoke.FxiaokeHook`: paged queries, window reads, get, describe.

A mixin over the hook's one request path (``_call``) and envelope check (``_data``); paging objects, filters and
the voided-row passes live in :mod:`.fxiaoke_query`.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.hooks.fxiaoke_config import FxiaokeSettings
from fxiaoke_k3cloud.hooks.fxiaoke_pages import CursorPages
from fxiaoke_k3cloud.hooks.fxiaoke_query import (
    DESCRIBE_PATH,
    LIFE_STATUS,
    FilterSpec,
    OffsetPaginator,
    OrderSpec,
    check_page_size,
    data_path,
    every_life_status,
    names_field,
    normalize_filter,
    normalize_order,
    projection,
    with_voided,
)

_GATE_LOCK = threading.Lock()


class FxiaokeReads:
    """Reads of CRM objects; mixed into :class:`FxiaokeHook`, which supplies the attributes below."""

    if TYPE_CHECKING:
        settings: FxiaokeSettings
        log: logging.Logger

        def _call(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]: ...

        def _data(self, envelope: dict[str, Any], path: str) -> dict[str, Any]: ...

    def query_records(
        self,
        object_api_name: str,
        filters: Sequence[FilterSpec] | None = None,
        orders: Sequence[OrderSpec] | None = None,
        fields: Sequence[str] | None = None,
        page_size: int = 100,
        *,
        include_voided: bool = False,
        after_id: str | None = None,
        max_rows: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages (lists of records) of every row matching all ``filters`` (AND).

        Without ``orders`` (recommended) it pages by the ``_id`` cursor: no offset cap, immune to equal
        timestamps and to rows changing while paging. With ``orders`` it uses offset paging with ``_id`` as
        tie-breaker and stops with :class:`ConfigError` before the 10000 offset cap.

        :param filters: dicts ``{field_name, operator, field_values}`` or ``(field, operator, value)`` triples.
        :param orders: dicts ``{fieldName, isAsc}`` or ``(field, ascending)`` pairs.
        :param fields: field projection (``_id`` is always added); ``None`` = all fields.
        :param include_voided: also return voided (``life_status invalid``) rows whatever the tenant's default
            query returns, asked for with a ``life_status`` filter: by default in the same query (``life_status
            IN`` every value of the enum, one pass); with the connection extra ``voided_query: separate``, a
            second pass after the default query (:func:`with_voided`). Without it, the tenant's default decides.
            Ignored when a filter already names ``life_status``.
        :param after_id: start the ``_id`` cursor after this id (resume a read that stopped at ``max_rows``).
        :param max_rows: stop after the page that reaches this many rows, with no call beyond it (the caller
            resumes with ``after_id`` = the last row's ``_id``). Only for ``_id``-cursor reads in one pass:
            not with ``orders`` nor with the connection extra ``voided_query: separate``.
        """
        check_page_size(page_size)
        cursor = {"after_id": after_id, "max_rows": max_rows}
        if (after_id is not None or max_rows is not None) and (
                orders or (include_voided and self.settings.voided_query != "folded"
                           and not names_field([normalize_filter(f) for f in filters or []], LIFE_STATUS))):
            raise ConfigError("after_id / max_rows resume an _id-cursor read in one pass: not with explicit "
                              "orders, nor with the connection extra voided_query: separate")
        base_filters = [normalize_filter(f) for f in filters or []]
        wire_orders = [normalize_order(o) for o in orders or []]
        wanted = list(fields) if fields else None
        if not include_voided or names_field(base_filters, LIFE_STATUS):
            return self._query_pass(object_api_name, base_filters, wire_orders, wanted, page_size, **cursor)
        if wanted and LIFE_STATUS not in wanted:
            wanted.append(LIFE_STATUS)
        if self.settings.voided_query == "folded":
            return self._query_pass(object_api_name, [*base_filters, every_life_status()], wire_orders, wanted,
                                    page_size, **cursor)
        return with_voided(lambda flt: self._query_pass(object_api_name, flt, wire_orders, wanted, page_size),
                           base_filters)

    @property
    def reads_in_flight(self) -> int:
        """Query requests this hook has in flight at most: its ``max_in_flight``, else the connection's."""
        return getattr(self, "_max_in_flight", None) or self.settings.max_in_flight

    def _reads_gate(self) -> threading.BoundedSemaphore:
        """Held by every query request while it is sent: queries read side by side (``flows.paging.pages_in``'s
        batches, each a cursor query with readers of its own) still have ``reads_in_flight`` requests out at most."""
        gate = self.__dict__.get("_query_gate")
        if gate is None:
            with _GATE_LOCK:
                gate = self.__dict__.get("_query_gate")
                if gate is None:
                    getattr(self, "_transport", None)  # built once, here, when the first queries start side by side
                    gate = self.__dict__["_query_gate"] = threading.BoundedSemaphore(self.reads_in_flight)
        return gate

    def _query_pass(self, object_api_name: str, base_filters: list[dict[str, Any]], wire_orders: list[dict[str, Any]],
                    fields: Sequence[str] | None, page_size: int, *, after_id: str | None = None,
                    max_rows: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """One paged query (the pages of :meth:`query_records` for one filter set)."""
        path = data_path(object_api_name, "query")
        field_projection = projection(fields)
        gate = self._reads_gate()

        def fetch(search: dict[str, Any], with_total: bool) -> dict[str, Any]:
            if field_projection:
                search["fieldProjection"] = field_projection
            payload = {
                "data": {
                    "dataObjectApiName": object_api_name,
                    # A total saves the empty call after a full last page, and lets a cursor query read the rest
                    # of a block by offset with several requests in flight (:mod:`.fxiaoke_pages`).
                    "find_explicit_total_num": with_total,
                    "search_query_info": search,
                }
            }
            with gate:
                return self._data(self._call(path, payload), path)

        if not wire_orders or wire_orders == [{"fieldName": "_id", "isAsc": True}]:
            pages = CursorPages(fetch, base_filters, page_size, self.reads_in_flight, self.log, object_api_name,
                                after_id=after_id, max_rows=max_rows)
            yield from pages
            self.log.info("Queried %s: %s rows in %s pages%s", object_api_name, pages.rows, pages.pages,
                          f" ({pages.fallbacks} block(s) re-read by the cursor)" if pages.fallbacks else "")
            return
        paginator = OffsetPaginator(page_size, wire_orders)
        rows = 0
        while paginator.has_next_page:
            data = fetch(paginator.update_request(base_filters), False)
            records = data.get("dataList") or []
            paginator.update_state(records, data.get("limit"))
            rows += len(records)
            if records:
                yield records
        self.log.info("Queried %s: %s rows in %s pages", object_api_name, rows, paginator.pages)

    def query_window(
        self,
        object_api_name: str,
        field: str,
        start_ms: int,
        end_ms: int,
        filters: Sequence[FilterSpec] | None = None,
        fields: Sequence[str] | None = None,
        page_size: int = 100,
        *,
        include_voided: bool = True,
        after_id: str | None = None,
        max_rows: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows with ``start_ms <= field < end_ms`` (half-open, so adjacent windows never overlap).

        A window read syncs changes, and a void is one: voided rows are included by default, asked for
        explicitly (see ``include_voided`` of :meth:`query_records`), so the flows see them on every tenant.
        """
        if not isinstance(start_ms, int) or not isinstance(end_ms, int) or start_ms >= end_ms:
            raise ConfigError(f"window must be integer ms with start < end, got [{start_ms!r}, {end_ms!r})")
        window = [(field, "GTE", [start_ms]), (field, "LT", [end_ms])]
        return self.query_records(object_api_name, [*window, *(filters or [])], fields=fields, page_size=page_size,
                                  include_voided=include_voided, after_id=after_id, max_rows=max_rows)

    def get_record(self, object_api_name: str, record_id: str) -> dict[str, Any]:
        """One record by ``_id``."""
        path = data_path(object_api_name, "get")
        payload = {"data": {"dataObjectApiName": object_api_name, "objectDataId": record_id}}
        return self._data(self._call(path, payload), path)

    def describe(self, object_api_name: str, include_detail: bool = True) -> dict[str, Any]:
        """The object's describe (``api_name``, ``fields`` keyed by field apiName, …)."""
        payload = {"apiName": object_api_name, "includeDetail": include_detail}
        data = self._data(self._call(DESCRIBE_PATH, payload), DESCRIBE_PATH)
        describe = data.get("describe")
        return describe if isinstance(describe, dict) else data
