"""Paths and query bodies for Fxiaoke CRM objects (pure; no I/O).

Paging (spec §3.4, §3.5): offset paging is capped at offset 10000 and is unstable when rows share a
timestamp or move while paging. The default here is the documented deep-paging pattern instead: order by
``_id`` ascending, offset 0, and add ``_id GT <last _id>`` for the next page. ``_id`` is unique and never
changes, so ties and edits cannot skip or repeat a row, and there is no offset to cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from fxiaoke_k3cloud.errors import ConfigError

MAX_PAGE_SIZE = 100  # documented maximum `limit` (§3.2)
MAX_OFFSET = 10000  # offset beyond this answers 10013 (§3.4)

OPERATORS = frozenset(
    {
        "EQ", "N", "GT", "GTE", "LT", "LTE", "LIKE", "NLIKE", "IS", "ISN", "IN", "NIN",
        "BETWEEN", "NBETWEEN", "STARTWITH", "ENDWITH", "CONTAINS", "HASANYOF", "NHASANYOF",
    }
)  # fmt: skip

FilterSpec = Mapping[str, Any] | Sequence[Any]
OrderSpec = Mapping[str, Any] | tuple[str, bool]


def is_custom_object(object_api_name: str) -> bool:
    """Custom objects end with ``__c`` (§3.1); everything else is a preset object."""
    return object_api_name.endswith("__c")


def data_path(object_api_name: str, action: str) -> str:
    """The endpoint for a data ``action`` (query, get, create, …) on this object (§3.1 path matrix)."""
    if not object_api_name or not isinstance(object_api_name, str):
        raise ConfigError(f"object api name must be a non-empty string, got {object_api_name!r}")
    prefix = "/cgi/crm/custom/v2/data/" if is_custom_object(object_api_name) else "/cgi/crm/v2/data/"
    return prefix + action


DESCRIBE_PATH = "/cgi/crm/v2/object/describe"  # one path for preset and custom objects


def normalize_filter(spec: FilterSpec) -> dict[str, Any]:
    """A wire filter ``{field_name, operator, field_values: [...]}`` from a dict or a (field, op, value) triple.

    ``field_values`` must be a list even for one value (§3.2); a scalar is wrapped.
    """
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"field_name", "operator", "field_values"}
        if unknown:
            raise ConfigError(f"unknown filter keys {sorted(unknown)}; use field_name, operator, field_values")
        field_name, operator, values = spec.get("field_name"), spec.get("operator"), spec.get("field_values")
    elif isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 3:
        field_name, operator, values = spec
    else:
        raise ConfigError(f"a filter is a dict or a (field, operator, value) triple, got {spec!r}")
    if not field_name or not isinstance(field_name, str):
        raise ConfigError(f"filter field_name must be a non-empty string, got {field_name!r}")
    operator = str(operator or "").upper()
    if operator not in OPERATORS:
        raise ConfigError(f"unknown filter operator {operator!r}; allowed: {', '.join(sorted(OPERATORS))}")
    if values is None:
        values = []
    elif isinstance(values, (str, bytes, int, float, bool)) or not isinstance(values, Iterable):
        values = [values]
    return {"field_name": field_name, "operator": operator, "field_values": list(values)}


LIFE_STATUS = "life_status"
VOIDED = "invalid"
# Every life_status value of the platform's enum (spec §4.2). A filter naming them all asks for voided rows
# explicitly, like ``EQ invalid`` does, while keeping every other row: one pass instead of two.
LIFE_STATUSES = ("normal", "ineffective", "under_review", "in_change", VOIDED)
VOIDED_QUERIES = ("folded", "separate")


def every_life_status() -> dict[str, Any]:
    """The filter of a folded voided-rows query: ``life_status IN`` every value of the enum."""
    return {"field_name": LIFE_STATUS, "operator": "IN", "field_values": list(LIFE_STATUSES)}


def names_field(filters: Sequence[Mapping[str, Any]], field_name: str) -> bool:
    """Whether any (normalised) filter is on ``field_name``."""
    return any(f.get("field_name") == field_name for f in filters)


def with_voided(run: Callable[[list[dict[str, Any]]], Iterator[list[dict[str, Any]]]],
                filters: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Pages of ``run(filters)`` and then of ``run(filters + life_status EQ invalid)``, each row once.

    Whether a default query returns voided rows differs between tenants (spec §3.5, §10), so voided rows are
    asked for explicitly. Under a default that already includes them the second pass repeats them: a row of
    the second pass is skipped when the first pass returned it (only voided ids are remembered, so memory
    does not grow with the result). The first pass must project ``life_status``.
    """
    voided_seen: set[str] = set()
    for page in run(filters):
        voided_seen.update(str(r.get("_id")) for r in page if r.get(LIFE_STATUS) == VOIDED)
        yield page
    voided = {"field_name": LIFE_STATUS, "operator": "EQ", "field_values": [VOIDED]}
    for page in run([*filters, voided]):
        fresh = [r for r in page if str(r.get("_id")) not in voided_seen]
        if fresh:
            yield fresh


def normalize_order(spec: OrderSpec) -> dict[str, Any]:
    """A wire order ``{fieldName, isAsc}`` from a dict or a (field, ascending) pair."""
    if isinstance(spec, Mapping):
        field_name, is_asc = spec.get("fieldName"), spec.get("isAsc", True)
    elif isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 2:
        field_name, is_asc = spec
    else:
        raise ConfigError(f"an order is a dict {{fieldName, isAsc}} or a (field, ascending) pair, got {spec!r}")
    if not field_name or not isinstance(field_name, str):
        raise ConfigError(f"order fieldName must be a non-empty string, got {field_name!r}")
    return {"fieldName": field_name, "isAsc": bool(is_asc)}


def check_page_size(page_size: int) -> int:
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE} (the API's cap), got {page_size!r}")
    return page_size


def projection(fields: Sequence[str] | None) -> list[str]:
    """``fieldProjection``: empty = all fields; otherwise always including ``_id`` (the paging cursor)."""
    if not fields:
        return []
    wanted = list(dict.fromkeys(fields))
    return wanted if "_id" in wanted else ["_id", *wanted]


@dataclass
class IdCursorPaginator:
    """Deep paging by ``_id`` (dlt-style: ``update_request`` → call → ``update_state``; ``has_next_page``)."""

    page_size: int
    last_id: str | None = None
    has_next_page: bool = True
    pages: int = 0

    def update_request(self, filters: list[dict[str, Any]]) -> dict[str, Any]:
        cursor = [] if self.last_id is None else [{"field_name": "_id", "operator": "GT", "field_values": [self.last_id]}]
        return {
            "limit": self.page_size,
            "offset": 0,
            "filters": [*filters, *cursor],
            "orders": [{"fieldName": "_id", "isAsc": True}],
        }

    def update_state(self, records: list[dict[str, Any]], limit: int | None) -> None:
        self.pages += 1
        if records:
            new_last = str(records[-1].get("_id", ""))
            if not new_last or (self.last_id is not None and new_last <= self.last_id):
                # The server ignored the cursor filter or the order; stop rather than loop forever.
                raise ConfigError(
                    f"the _id cursor did not advance (last _id {self.last_id!r} → {new_last!r}); the server "
                    "ignored '_id GT' or the _id order — cannot page safely"
                )
            self.last_id = new_last
        self.has_next_page = bool(records) and len(records) >= (limit or self.page_size)


@dataclass
class OffsetPaginator:
    """Offset paging with the caller's explicit orders (+ ``_id`` as tie-breaker), capped at offset 10000."""

    page_size: int
    orders: list[dict[str, Any]]
    offset: int = 0
    has_next_page: bool = True
    pages: int = 0

    def update_request(self, filters: list[dict[str, Any]]) -> dict[str, Any]:
        if self.offset + self.page_size > MAX_OFFSET:  # §9.7: keep offset + limit ≤ 10000
            raise ConfigError(
                f"offset paging with explicit orders reached the API's offset cap ({MAX_OFFSET}); query without "
                "`orders` (the _id cursor has no cap) or split the window into smaller ones"
            )
        orders = list(self.orders)
        if not any(o["fieldName"] == "_id" for o in orders):
            orders.append({"fieldName": "_id", "isAsc": True})  # a unique last key makes pages deterministic
        return {"limit": self.page_size, "offset": self.offset, "filters": list(filters), "orders": orders}

    def update_state(self, records: list[dict[str, Any]], limit: int | None) -> None:
        self.pages += 1
        effective = limit or self.page_size
        self.offset += effective  # advance by the limit the server says it applied (§9.7)
        self.has_next_page = bool(records) and len(records) >= effective
