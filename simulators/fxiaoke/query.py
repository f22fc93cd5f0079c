"""The query engine behind data/query, findOne and findSimple (spec §3.2–3.4).

Filters are AND-combined; each is compiled once into a predicate over stored records, typed by the field:
numbers, currency and ms timestamps compare as decimals (ints or numeric strings), everything else, ``_id``
included, as strings; list-valued fields (owner, select_many, …) use membership semantics.
"""

from __future__ import annotations

import bisect
import itertools
import json
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from .envelope import OFFSET_OUT_OF_RANGE, ApiError, param_error
from .schema import BOOL_TYPES, LIST_TYPES, NUMERIC_TYPES, ObjectDef

MAX_LIMIT = 100
MAX_OFFSET = 10000

Predicate = Callable[[dict[str, Any]], bool]

SINGLE = frozenset({"EQ", "N", "GT", "GTE", "LT", "LTE", "LIKE", "NLIKE", "STARTWITH", "ENDWITH"})
MULTI = frozenset({"IN", "NIN", "CONTAINS", "HASANYOF", "NHASANYOF"})
RANGE = frozenset({"BETWEEN", "NBETWEEN"})
EMPTINESS = frozenset({"IS", "ISN"})
TEXTUAL = frozenset({"LIKE", "NLIKE", "STARTWITH", "ENDWITH"})
OPERATORS = SINGLE | MULTI | RANGE | EMPTINESS


def _kind(obj: ObjectDef, field: str) -> str:
    t = obj.fields[field].type
    if field == "_id":
        return "str"
    if t in NUMERIC_TYPES:
        return "num"
    if t in LIST_TYPES:
        return "list"
    if t in BOOL_TYPES:
        return "bool"
    return "str"


def _to_num(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).lower()
    return True if text == "true" else False if text == "false" else None


def _scalar(kind: str, value: Any) -> Any:
    """A record value in comparable form; None means empty."""
    if kind == "num":
        return _to_num(value)
    if kind == "bool":
        return _to_bool(value)
    if value is None or value == "":
        return None
    return str(value)


def _filter_value(kind: str, field: str, op: str, value: Any) -> Any:
    if kind == "num":
        num = _to_num(value)
        if num is None:
            raise param_error(f"filter {field} {op}: {value!r} is not a number")
        return num
    if kind == "bool":
        b = _to_bool(value)
        if b is None:
            raise param_error(f"filter {field} {op}: {value!r} is not true/false")
        return b
    return str(value)


def compile_filter(obj: ObjectDef, spec: Any) -> Predicate:
    if not isinstance(spec, dict):
        raise param_error(f"filter must be an object, got {spec!r}")
    field, op, values = spec.get("field_name"), spec.get("operator"), spec.get("field_values", [])
    if not isinstance(field, str) or field not in obj.fields:
        raise param_error(f"filter field {field!r} does not exist on {obj.api_name}")
    if op not in OPERATORS:
        raise param_error(f"filter operator {op!r} is not supported; use one of {sorted(OPERATORS)}")
    if not isinstance(values, list):
        values = [values]  # lenient: some clients send a bare value (spec §3.2, PHP1)
    kind = _kind(obj, field)
    if op in SINGLE and not values:
        raise param_error(f"filter {field} {op} needs one value in field_values")
    if op in MULTI and not values:
        raise param_error(f"filter {field} {op} needs at least one value in field_values")
    if op in RANGE and len(values) != 2:
        raise param_error(f"filter {field} {op} needs exactly two values [low, high]")
    if op in EMPTINESS:
        def is_empty(rec: dict[str, Any]) -> bool:
            v = rec.get(field)
            return v is None or v == "" or v == []
        return is_empty if op == "IS" else (lambda rec: not is_empty(rec))
    if op in TEXTUAL or (op == "CONTAINS" and kind != "list"):
        return _textual(field, kind, "LIKE" if op == "CONTAINS" else op, str(values[0]))
    if kind == "list":
        return _listual(field, op, [str(v) for v in values])
    if kind == "bool" and op not in ("EQ", "N", "IN", "NIN", "HASANYOF", "NHASANYOF"):
        raise param_error(f"filter operator {op} does not apply to true_or_false field {field}")
    typed = [_filter_value(kind, field, op, v) for v in values]
    return _scalar_predicate(field, kind, op, typed)


def _textual(field: str, kind: str, op: str, needle: str) -> Predicate:
    def text(rec: dict[str, Any]) -> list[str]:
        v = rec.get(field)
        if v is None or v == "":
            return []
        return [str(x) for x in v] if isinstance(v, list) else [str(v)]

    if op == "LIKE":
        return lambda rec: any(needle in t for t in text(rec))
    if op == "NLIKE":
        return lambda rec: not any(needle in t for t in text(rec))
    if op == "STARTWITH":
        return lambda rec: any(t.startswith(needle) for t in text(rec))
    return lambda rec: any(t.endswith(needle) for t in text(rec))


def _listual(field: str, op: str, values: list[str]) -> Predicate:
    wanted = set(values)

    def members(rec: dict[str, Any]) -> set[str]:
        v = rec.get(field)
        if v is None:
            return set()
        return {str(x) for x in v} if isinstance(v, list) else {str(v)}

    if op == "EQ":
        return lambda rec: values[0] in members(rec)
    if op == "N":
        return lambda rec: values[0] not in members(rec)
    if op in ("IN", "HASANYOF"):
        return lambda rec: bool(members(rec) & wanted)
    if op in ("NIN", "NHASANYOF"):
        return lambda rec: not (members(rec) & wanted)
    if op == "CONTAINS":
        return lambda rec: wanted <= members(rec)
    raise param_error(f"filter operator {op} does not apply to list field {field}")


def _scalar_predicate(field: str, kind: str, op: str, vals: list[Any]) -> Predicate:
    v0 = vals[0]

    if kind == "num":
        def get(rec: dict[str, Any]) -> Any:
            value = rec.get(field)
            # An int compares with the filter's Decimal exactly: no conversion (a query tests every row).
            return value if type(value) is int else _to_num(value)
    elif kind == "str":
        def get(rec: dict[str, Any]) -> Any:
            value = rec.get(field)
            return value if type(value) is str and value else _scalar(kind, value)
    else:
        def get(rec: dict[str, Any]) -> Any:
            return _scalar(kind, rec.get(field))

    table: dict[str, Predicate] = {
        "EQ": lambda r: (x := get(r)) is not None and x == v0,
        "N": lambda r: (x := get(r)) is None or x != v0,  # ≠ matches empty values too (spec §3.2)
        "GT": lambda r: (x := get(r)) is not None and x > v0,
        "GTE": lambda r: (x := get(r)) is not None and x >= v0,
        "LT": lambda r: (x := get(r)) is not None and x < v0,
        "LTE": lambda r: (x := get(r)) is not None and x <= v0,
        "IN": lambda r: (x := get(r)) is not None and x in vals,
        "HASANYOF": lambda r: (x := get(r)) is not None and x in vals,
        "NIN": lambda r: (x := get(r)) is None or x not in vals,
        "NHASANYOF": lambda r: (x := get(r)) is None or x not in vals,
        # BETWEEN is inclusive at both ends (spec §3.2 assumption).
        "BETWEEN": lambda r: (x := get(r)) is not None and vals[0] <= x <= vals[1],
        "NBETWEEN": lambda r: (x := get(r)) is not None and not (vals[0] <= x <= vals[1]),
    }
    return table[op]


def _sort(obj: ObjectDef, rows: list[dict[str, Any]], orders: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Stable multi-key sort; empty values last when ascending, first when descending; ``_id`` breaks ties."""
    keys = list(orders)
    if not any(f == "_id" for f, _ in keys):
        keys.append(("_id", True))
    for field, asc in reversed(keys):
        kind = _kind(obj, field)
        zero: Any = Decimal(0) if kind == "num" else False if kind == "bool" else ""

        def key(rec: dict[str, Any], field: str = field, kind: str = kind, zero: Any = zero) -> tuple[int, Any]:
            raw = rec.get(field)
            v = ",".join(map(str, raw)) if kind == "list" and raw else _scalar(kind, raw) if kind != "list" else None
            return (1, zero) if v is None else (0, v)

        rows.sort(key=key, reverse=not asc)
    return rows


def parse_orders(obj: ObjectDef, orders: Any) -> list[tuple[str, bool]]:
    if orders in (None, []):
        return [("last_modified_time", False), ("_id", True)]  # deterministic default (spec §8.6)
    if not isinstance(orders, list):
        raise param_error("orders must be a list of {fieldName, isAsc}")
    out = []
    for o in orders:
        name = o.get("fieldName") if isinstance(o, dict) else None
        if not isinstance(name, str) or name not in obj.fields:
            raise param_error(f"order field {name!r} does not exist on {obj.api_name}")
        out.append((name, _to_bool(o.get("isAsc", True)) is not False))
    return out


def search_info(data: dict[str, Any]) -> dict[str, Any]:
    sqi = data.get("search_query_info", {})
    if isinstance(sqi, str):  # some doc pages show it as a JSON string
        try:
            sqi = json.loads(sqi)
        except ValueError:
            raise param_error("search_query_info is not valid JSON") from None
    if not isinstance(sqi, dict):
        raise param_error("search_query_info must be an object")
    return sqi


def matching(obj: ObjectDef, records: dict[str, dict[str, Any]], sqi: dict[str, Any]) -> list[dict[str, Any]]:
    filters = sqi.get("filters") or []
    if not isinstance(filters, list):
        raise param_error("filters must be a list")
    predicates = [compile_filter(obj, f) for f in filters]
    orders = parse_orders(obj, sqi.get("orders"))
    rows = [r for r in records.values() if all(p(r) for p in predicates)]
    return _sort(obj, rows, orders)


def id_page(obj: ObjectDef, records: dict[str, dict[str, Any]], sqi: dict[str, Any], keep: Predicate, *,
            offset: int, limit: int, with_total: bool, cache: dict[Any, Any] | None = None,
            version: int = 0) -> tuple[list[dict[str, Any]], int] | None:
    """:func:`matching` for the deep-paging pattern (order by ``_id`` ascending, usually ``_id GT <cursor>``):
    the same rows, found the way the real service's index finds them — from the cursor on, and without a total
    only until the page is full. ``keep`` applies what :func:`matching`'s caller filtered out beforehand (its
    visibility must not change within one data ``version`` when a ``cache`` is given).
    Returns (the page's rows, the total or 0), or None when the query is not of that shape."""
    filters = sqi.get("filters") or []
    if not isinstance(filters, list) or parse_orders(obj, sqi.get("orders")) != [("_id", True)]:
        return None
    after: str | None = None
    predicates = []
    for f in filters:
        predicates.append(compile_filter(obj, f))  # validates every filter, as matching() does
        if isinstance(f, dict) and f.get("field_name") == "_id" and f.get("operator") == "GT":
            values = f.get("field_values")
            value = values[0] if isinstance(values, list) and values else values
            if isinstance(value, str) and (after is None or value > after):
                after = value
    # The store keys every table by the row's _id (and keeps them sorted: store.Table).
    ids = records.sorted_ids() if hasattr(records, "sorted_ids") else sorted(records)
    start = 0 if after is None else bisect.bisect_right(ids, after)
    if with_total and cache is not None:
        # A parallel reader asks for a block's pages by offset, each with its total: the same filters (and
        # cursor) page after page. The matched ids are kept for the data's version (store.Store.version).
        key = (obj.api_name, json.dumps(filters, sort_keys=True, default=str))
        hit = cache.get(key)
        if hit is None or hit[0] != version:
            matched = [rid for rid in itertools.islice(ids, start, None)
                       if keep(records[rid]) and all(p(records[rid]) for p in predicates)]
            if len(cache) >= 16:
                cache.clear()
            cache[key] = hit = (version, matched)
        return [records[rid] for rid in hit[1][offset:offset + limit]], len(hit[1])
    page: list[dict[str, Any]] = []
    total = 0
    need = offset + limit
    for rid in itertools.islice(ids, start, None):
        rec = records[rid]
        if not keep(rec) or not all(p(rec) for p in predicates):
            continue
        total += 1
        if offset < total <= need:
            page.append(rec)
        elif total > need and not with_total:
            break
    return page, (total if with_total else 0)


def page_bounds(sqi: dict[str, Any], *, strict_limit: bool) -> tuple[int, int]:
    """Validate and return (offset, effective limit) per §3.2/§3.4."""
    limit, offset = sqi.get("limit"), sqi.get("offset", 0)
    if isinstance(limit, bool) or not isinstance(limit, (int, str)) or not str(limit).isdigit() or int(limit) <= 0:
        raise param_error(f"search_query_info.limit is required and must be a positive integer, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, (int, str)) or not str(offset).isdigit():
        raise param_error(f"search_query_info.offset must be a non-negative integer, got {offset!r}")
    limit, offset = int(limit), int(offset)
    if limit > MAX_LIMIT:
        if strict_limit:
            raise param_error(f"limit {limit} exceeds the maximum of {MAX_LIMIT}")
        limit = MAX_LIMIT
    if offset > MAX_OFFSET:
        raise ApiError(OFFSET_OUT_OF_RANGE, "offset out of range 10000", "offset 不能超过10000")
    if offset % limit:
        raise param_error(f"offset {offset} must be a multiple of limit {limit}")
    return offset, limit


def projection_of(value: Any) -> list[str] | None:
    if value in (None, []):
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise param_error("fieldProjection must be a list of field api names")
    return value
