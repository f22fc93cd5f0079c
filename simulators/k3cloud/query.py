"""ExecuteBillQuery / BillQuery: FieldKeys, header×entry flattening, FilterString, OrderString, paging (§4)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Callable

from . import filterstring
from .config import MAX_LIMIT
from .forms import get_form
from .metadata import Entity, Field, Form
from .store import Doc, Store, ref_number
from .wire import K3Error

Context = dict[str, tuple[dict[str, Any], int]]  # multi-entity key -> (row, seq)


@dataclass
class Column:
    entity: Entity | None  # the multi-row entity this key walks, or None for header-level keys
    fetch: Callable[[Doc, Context], Any]
    kind: str


def unknown_field(key: str) -> K3Error:
    return K3Error(f"元数据中标识为{key}的字段不存在", 9, None)


class Resolver:
    """Turns field keys of one form into value accessors (cached per query)."""

    def __init__(self, store: Store, form: Form) -> None:
        self.store = store
        self.form = form
        self.cache: dict[str, Column] = {}

    def column(self, key: str) -> Column:
        low = key.strip().lower()
        if low not in self.cache:
            self.cache[low] = self._build(key.strip())
        return self.cache[low]

    def _build(self, key: str) -> Column:
        form = self.form
        head, _, sub = key.partition(".")
        if key.lower() == form.pk.lower():
            return Column(None, lambda d, c: d.id, "i")
        for ent in form.entities.values():  # <Entity>_<EntryPk> / <Entity>_FSeq
            if ent.multi and head.lower().startswith(ent.key.lower() + "_") and not sub:
                rest = head[len(ent.key) + 1:].lower()
                if rest == ent.pk.lower():
                    return Column(ent, lambda d, c, e=ent: c[e.key][0].get(e.pk) if e.key in c else None, "i")
                if rest == "fseq":
                    return Column(ent, lambda d, c, e=ent: c[e.key][1] if e.key in c else None, "i")
        if head.upper().startswith("F_") and not sub:  # customer extension fields on the header
            return Column(None, lambda d, c: d.data.get(head), "t")
        found = form.lookup(head)
        if found is None:
            raise unknown_field(key)
        ent, f = found
        if ent is None:
            getter: Callable[[Doc, Context], Any] = lambda d, c: d.data.get(f.key)
            owner = None
        elif not ent.multi:
            getter = lambda d, c: (d.data.get(ent.key) or {}).get(f.key)
            owner = None
        else:
            getter = lambda d, c: c[ent.key][0].get(f.key) if ent.key in c else None
            owner = ent
        return self._typed(key, f, sub, owner, getter)

    def _typed(self, key: str, f: Field, sub: str, owner: Entity | None, getter: Callable[[Doc, Context], Any]) -> Column:
        if f.kind != "r":
            if sub:
                raise unknown_field(key)
            return Column(owner, getter, "t" if f.kind in "tms" else f.kind)
        store = self.store
        ref_form = get_form(f.ref or "")

        org_ref = ref_form is not None and ref_form.org_controlled

        def ref(d: Doc, c: Context) -> Doc | None:
            # Allocated base data is a row per use org: a document references the copy of its own org.
            org = None
            if org_ref:
                row = c[owner.key][0] if owner is not None and owner.key in c else {}
                org = ref_number(row.get("FStockOrgId")) or (ref_number(d.data.get(d.form.org_key))
                                                             if d.form.org_key else None)
            return store.ref_doc(f.ref, getter(d, c), f.ref_category, org)

        if not sub:  # a base-data field alone returns its internal id
            return Column(owner, lambda d, c: (r.id if (r := ref(d, c)) else 0), "i")
        sub_low = sub.lower()
        if sub_low == "fnumber":
            return Column(owner, lambda d, c: (r.number if (r := ref(d, c)) else None), "t")
        if sub_low == "fname":
            return Column(owner, lambda d, c: (r.name if (r := ref(d, c)) else None), "t")
        target = ref_form.lookup(sub) if ref_form else None
        if target is None or target[0] is not None:
            raise unknown_field(key)
        sub_field = target[1]
        if sub_field.key.lower() == (ref_form.pk.lower() if ref_form else ""):
            return Column(owner, lambda d, c: (r.id if (r := ref(d, c)) else 0), "i")
        return Column(owner, lambda d, c: (r.data.get(sub_field.key) if (r := ref(d, c)) else None),
                      "t" if sub_field.kind in "tms" else sub_field.kind)


_ORDER_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*(ASC|DESC)?\s*$", re.IGNORECASE)
_COMPARE_CODES = {"67": "=", "=": "=", "<>": "<>", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def filter_list_to_string(items: list[Any]) -> str:
    """The list form ``[{"Left","FieldName","Compare","Value","Right","Logic"}]``; only documented codes."""
    parts: list[str] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise filterstring.syntax_error("列表形式的过滤条件每一项必须是对象")
        low = {k.lower(): v for k, v in item.items()}
        op = _COMPARE_CODES.get(str(low.get("compare", "")).strip())
        field = str(low.get("fieldname", "")).strip()
        if op is None:
            raise filterstring.syntax_error(f"不支持的比较符代码“{low.get('compare')}”")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", field):
            raise filterstring.syntax_error(f"字段名“{field}”无效")
        left = "".join(c for c in str(low.get("left") or "") if c == "(")
        right = "".join(c for c in str(low.get("right") or "") if c == ")")
        value = str(low.get("value", "")).replace("'", "''")
        if n:
            parts.append("OR" if str(items[n - 1].get("Logic", items[n - 1].get("logic", 0))) == "1" else "AND")
        parts.append(f"{left}{field} {op} '{value}'{right}")
    return " ".join(parts)


def run_query(store: Store, data: dict[str, Any], limit_policy: str) -> tuple[list[str], list[list[Any]]]:
    """Evaluate a query; returns (field keys, rows). Raises K3Error on bad input."""
    low = {k.lower(): v for k, v in data.items()}
    form_id = str(low.get("formid") or "").strip()
    if not form_id:
        raise K3Error("单据标识(FormId)为空。", 5, "FormId")
    form = get_form(form_id)
    if form is None:
        raise K3Error(f"业务对象“{form_id}”不存在。", 4, "FormId")
    keys = [k.strip() for k in str(low.get("fieldkeys") or "").split(",") if k.strip()]
    if not keys:
        raise K3Error("查询字段(FieldKeys)不能为空。", 8, "FieldKeys")
    resolver = Resolver(store, form)
    columns = [resolver.column(k) for k in keys]

    raw_filter = low.get("filterstring")
    filter_text = filter_list_to_string(raw_filter) if isinstance(raw_filter, list) else str(raw_filter or "")
    tree = filterstring.parse(filter_text, lambda k: resolver.column(k) and None)
    order = _order(resolver, str(low.get("orderstring") or ""))
    start, limit, top = _int(low.get("startrow")), _int(low.get("limit")), _int(low.get("toprowcount"))
    if start < 0 or limit < 0:
        raise K3Error("StartRow 和 Limit 不能为负数。", 8, "Limit")
    if limit > MAX_LIMIT:
        if limit_policy != "clamp":
            raise K3Error(f"Limit 不能超过{MAX_LIMIT}。", 8, "Limit")
        limit = MAX_LIMIT

    referenced = [k for k in keys] + _field_names(tree) + [k for k, _ in order]
    entities: list[Entity] = []
    for k in referenced:
        ent = resolver.column(k).entity
        if ent is not None and ent not in entities:
            entities.append(ent)

    matched: list[tuple[Doc, Context]] = []
    for doc in store.all(form):
        row_sets = [_rows(doc, ent) for ent in entities]
        for combo in itertools.product(*row_sets):
            ctx: Context = {ent.key: pair for ent, pair in zip(entities, combo) if pair is not None}

            def get(key: str, d: Doc = doc, c: Context = ctx) -> tuple[Any, str]:
                col = resolver.column(key)
                return col.fetch(d, c), col.kind

            if filterstring.evaluate(tree, get):
                matched.append((doc, ctx))
    for key, desc in reversed(order):
        col = resolver.column(key)
        matched.sort(key=lambda m, col=col: _sort_key(col.fetch(*m)), reverse=desc)
    if top > 0:
        matched = matched[:top]
    matched = matched[start:start + limit] if limit else matched[start:]
    return keys, [[col.fetch(doc, ctx) for col in columns] for doc, ctx in matched]


def _rows(doc: Doc, ent: Entity) -> list[tuple[dict[str, Any], int] | None]:
    rows = doc.data.get(ent.key) or []
    return [(row, n) for n, row in enumerate(rows, start=1)] or [None]  # header without lines: left join


def _order(resolver: Resolver, text: str) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for part in (p for p in text.split(",") if p.strip()):
        m = _ORDER_ITEM.match(part)
        if m is None:
            raise filterstring.syntax_error(f"排序条件(OrderString)“{part.strip()}”无效")
        resolver.column(m.group(1))
        order.append((m.group(1), (m.group(2) or "ASC").upper() == "DESC"))
    return order


def _field_names(node: Any) -> list[str]:
    if not isinstance(node, tuple):
        return []
    if node and node[0] == "field":
        return [node[1]]
    return [name for child in node[1:] for name in _field_names(child)]


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (1, value.casefold())
    return (1, value)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise K3Error(f"参数值“{value}”不是整数。", 8, None) from None
