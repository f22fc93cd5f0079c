"""What the orders flow adds to the generic steps: lines, dependencies (customers, materials) and parking.

* Extract: orders changed in the window, orders whose *lines* changed in the window (a line edit may not
  move the order's timestamp), parked orders (retried first, every run) and earlier failures; then every
  line of those orders, and the products the lines use (for their ``product_code``). See
  :func:`extract_orders` for how lines are read in full pages.
* Customers first: declared in ``sales_orders.yaml`` (``lookups.customers.flow: customers``) and done by the
  generic ``sync_dependencies`` step and :mod:`.lookups` — nothing here.
* Materials (this module's ``lookups`` hook): CRM product → K3 material number by ``product_code``, only when
  usable in the selling org (the mapping's ``FSaleOrgId``): allocated to it, audited and not forbidden there —
  K3Cloud keeps a row per use org, each with its own state (see :mod:`.base_data`). Anything missing or
  unusable parks the order; a later run releases it.

The pipeline calls this module's hooks by name (``FlowSpec.module``): ``extract``, ``staged_lines``, ``lookups``,
``read_all``, ``reconcile_extras``, ``reconcile_drifts``.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from fxiaoke_k3cloud.flows.base_data import usable_numbers
from fxiaoke_k3cloud.flows.echoes import Echoes
from fxiaoke_k3cloud.flows.extract import check_presence, new_records, pages_in, prefetched, retry_source_ids
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.window import Window
from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.numbers import number_key
from fxiaoke_k3cloud.ops.reconcile_amounts import compare_amounts

log = logging.getLogger(__name__)

LINES_OBJECT = "SalesOrderProductObj"
PRODUCT_OBJECT = "ProductObj"


LINE_SKEW_MS = 60_000  # a line is stamped no earlier than its order; a minute's margin for server clocks


def _ms(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def extract_orders(spec: FlowSpec, hook: Any, store: Any, stage: Any, run_pk: int, window: Window, *,
                   ids: list[str], presence: bool = True) -> tuple[int, int]:
    """Stage orders (kind ``raw``), their lines (kind ``lines``, keyed by order id) and the products the
    lines use (kind ``products``: ``_id`` and ``product_code``), page by page.

    Lines are read with the fewest calls that still give every order all of its lines:

    * an order *created* in the window (``create_time >= start``) can only have lines stamped after the
      window started, so one `_id`-cursor stream of the lines modified since then (no upper bound: a line
      edited during the run is read too) holds all of its lines, in full pages. That stream is needed anyway
      to find older orders whose lines changed. On a first sync or full resync every order is such an order
      (a new order the stream gave no line is asked for by order id, in case its lines carry older stamps);
    * every other order (created before the window, re-read by id, parked, failed) gets its lines by
      ``order_id IN`` queries (100 orders per query).

    Products are looked up once at the end (``_id IN``, 100 per query), not per page. Window runs with
    ``presence`` also stage the synced orders deleted in the CRM (at most hourly, see :mod:`.source_changes`).
    An everyday window skips orders whose only change is the flow's own write-back (:mod:`.echoes`; a line
    changed in the window still brings the order back). Returns (orders staged, parked/failed orders re-read).
    """
    for kind in ("raw", "lines", "products"):
        stage.clear_kind(run_pk, kind)
    seen: set[str] = set()  # orders staged
    fresh: set[str] = set()  # staged orders whose lines come from the lines stream
    older: list[str] = []  # staged orders whose lines are read by order_id
    products: set[str] = set()
    counts = {"orders": 0, "lines": 0}

    def take_orders(pages: Iterable[list[dict[str, Any]]], *, may_be_fresh: bool) -> None:
        for page in prefetched(pages):
            orders = new_records(page, seen)
            counts["orders"] += stage.append(run_pk, "raw", orders)
            for order in orders:
                created = _ms(order.get("create_time"))
                if may_be_fresh and created is not None and created >= window.start_ms:
                    fresh.add(str(order["_id"]))
                else:
                    older.append(str(order["_id"]))

    def take_lines(lines: list[dict[str, Any]]) -> None:
        products.update(str(line["product_id"]) for line in lines if line.get("product_id"))
        counts["lines"] += stage.append(run_pk, "lines", lines, key="order_id")

    retried = 0
    if ids:
        take_orders(pages_in(hook, spec.source_object, "_id", ids, include_voided=True), may_be_fresh=False)
    else:
        ours = Echoes.for_window(spec, store, window)
        take_orders(ours.filtered(hook.query_window(spec.source_object, spec.modified_field, window.start_ms,
                                                    window.end_ms)), may_be_fresh=True)
        ours.log(spec)
        line_orders: set[str] = set()  # orders with a line changed in the window
        since = max(0, window.start_ms - LINE_SKEW_MS)
        # Voided lines too, asked for explicitly: a tenant's default query may hide them, and a voided line must
        # bring its order back so the K3Cloud order loses that line.
        changed = hook.query_records(LINES_OBJECT, filters=[(spec.modified_field, "GTE", [since])],
                                     include_voided=True)
        with_lines: set[str] = set()
        for page in prefetched(changed):
            mine = [line for line in page if str(line.get("order_id")) in fresh]
            with_lines.update(str(line["order_id"]) for line in mine)
            take_lines(mine)
            for line in page:
                modified = _ms(line.get(spec.modified_field))
                if (line.get("order_id") and modified is not None
                        and window.start_ms <= modified < window.end_ms):
                    line_orders.add(str(line["order_id"]))
        # A new order with no line in the stream is odd (lines stamped before their order?): ask by order id.
        older.extend(sorted(fresh - with_lines))
        # Parked orders, earlier failures, and orders held for their life_status (an approval need not touch
        # last_modified_time): the same retry set as every flow's.
        retry = set(retry_source_ids(spec, store))
        again = sorted((line_orders | retry) - seen)
        retried = len(retry - seen)
        take_orders(pages_in(hook, spec.source_object, "_id", again, include_voided=True), may_be_fresh=False)
        if presence:
            check_presence(spec, hook, store, stage, run_pk)
    for page in prefetched(pages_in(hook, LINES_OBJECT, "order_id", older)):
        take_lines(page)
    codes = [{"_id": str(p["_id"]), "product_code": p.get("product_code")}
             for page in prefetched(pages_in(hook, PRODUCT_OBJECT, "_id", products, fields=["product_code"]))
             for p in page]
    stage.append(run_pk, "products", codes)
    log.info("orders: %s orders (%s parked/failed retried; lines of %s read by order id), %s lines, %s products",
             counts["orders"], retried, len(older), counts["lines"], len(codes))
    return counts["orders"], retried


def with_product_codes(lines: list[dict[str, Any]], products: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each line with its product's ``product_code`` (None when the product is unknown to the CRM)."""
    codes = {str(p["_id"]): p.get("product_code") for p in products}
    for line in lines:
        line["product_code"] = codes.get(str(line.get("product_id")))
    return lines


def staged_lines(stage: Any, run_pk: int, order_ids: list[str]) -> list[dict[str, Any]]:
    """The staged lines of these orders, each with its ``product_code``."""
    lines = stage.by_source(run_pk, "lines", order_ids)
    product_ids = sorted({str(line["product_id"]) for line in lines if line.get("product_id")})
    return with_product_codes(lines, stage.by_source(run_pk, "products", product_ids))


def lookups(spec: FlowSpec, mapping: Any, store: Any, k3_hook: Any, orders: list[dict[str, Any]],
            lines: list[dict[str, Any]], *, org: str) -> dict[str, dict[str, Any]]:
    """Hook ``lookups``: CRM product _id → K3Cloud material number (its ``product_code``), only materials usable
    in ``org`` (the selling org). The customers lookup is declared with ``flow: customers`` and built generically."""
    codes = {str(line["product_id"]): line.get("product_code") for line in lines if line.get("product_id")}
    wanted = sorted({str(c) for c in codes.values() if c})
    usable = usable_numbers(k3_hook, "BD_MATERIAL", "FMATERIALID", wanted, org) if wanted else set()
    return {"materials": {pid: code for pid, code in codes.items() if code and number_key(code) in usable}}


class _ListSink:
    """A stage stand-in that keeps rows in lists (for readers that want every order at once)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {"raw": [], "lines": [], "products": []}

    def clear_kind(self, run_pk: int, kind: str) -> None:
        self.rows[kind] = []

    def append(self, run_pk: int, kind: str, rows: Iterable[dict[str, Any]], *, key: str = "_id") -> int:
        rows = list(rows)
        self.rows[kind].extend(rows)
        return len(rows)


def read_orders(spec: FlowSpec, hook: Any, store: Any, window: Window) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every order of the window and all their lines, in memory (reconciliation compares whole sets)."""
    sink = _ListSink()
    extract_orders(spec, hook, store, sink, 0, window, ids=[], presence=False)
    return sink.rows["raw"], with_product_codes(sink.rows["lines"], sink.rows["products"])


# Hooks the shared pipeline calls (see FlowSpec.module): the orders' own extract (lines, products) and reads.
extract = extract_orders
read_all = read_orders


def reconcile_extras() -> Any:
    """Hook ``reconcile_extras``: K3Cloud orders carrying a CRM order id, ours or not (``FNetOrderBillNo``)."""
    return F("FNetOrderBillNo") != ""


def reconcile_drifts(spec: FlowSpec, packages: list[Any], records: list[dict[str, Any]], docs: dict[str, Any],
                     extras: list[str]) -> list[Any]:
    """Hook ``reconcile_drifts``: CRM order amounts against the K3Cloud lines, per order and per day."""
    return compare_amounts(spec.name, packages, {str(r["_id"]): r for r in records}, docs, extras)
