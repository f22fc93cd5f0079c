"""Build K3Cloud FilterStrings without ever splicing raw text into them.

A FilterString is spliced into SQL on the K3Cloud server (spec §7.3), so every literal is escaped here and
every field name is checked against a strict pattern (and, when given, an allow-list)::

    from fxiaoke_k3cloud.hooks.k3cloud_filter import F

    expr = (F("FDocumentStatus") == "C") & (F("FModifyDate") >= since) & F("FNumber").isin(numbers)
    expr.render()   # "FDocumentStatus = 'C' AND FModifyDate >= '2025-01-01 08:00:00' AND FNumber IN ('0012', ...)"

Rules:

- strings are always quoted (``'0012'`` keeps its leading zeros), ``'`` is doubled;
- numbers are unquoted only for real ``int`` (not ``bool``) and finite ``Decimal``; ``float`` is refused
  (binary rounding would change the value) — pass a ``Decimal`` or a string;
- datetimes render as ``'yyyy-MM-dd HH:mm:ss'`` in K3Cloud server time: naive datetimes are taken as already in
  that local time (UTC+8), aware ones are converted to Asia/Shanghai explicitly; dates render ``'yyyy-MM-dd'``;
- ``F(x) == None`` renders ``x IS NULL`` (``!=`` → ``IS NOT NULL``);
- LIKE patterns escape ``[``, ``%`` and ``_`` as ``[[]``, ``[%]``, ``[_]`` (SQL Server bracket escapes).

Expressions are immutable and combine with ``&`` (AND) and ``|`` (OR).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

FIELD_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$")
K3CLOUD_TZ = ZoneInfo("Asia/Shanghai")  # K3Cloud stores and compares server-local time, UTC+8 in China
_DATETIME_FMT = "%Y-%m-%d %H:%M:%S"

Literal = str | int | Decimal | datetime | date


def check_field_name(name: str, allowed: Collection[str] | None = None) -> str:
    """Return ``name`` if it is a plain K3Cloud field key (optionally ``X.FNumber``) and, if given, allowed.

    :param allowed: an allow-list of field keys; compared case-insensitively because K3Cloud keys are.
    """
    if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
        raise ValueError(f"invalid K3Cloud field key {name!r}: expected letters/digits/_ with at most one '.'")
    if allowed is not None and name.lower() not in {a.lower() for a in allowed}:
        raise ValueError(f"field key {name!r} is not in the allowed list {sorted(allowed)}")
    return name


def render_literal(value: Any) -> str:
    """Render one literal for a FilterString (the only place a value becomes filter text)."""
    if isinstance(value, bool):
        # bool is an int subclass; K3Cloud has no boolean literal (flags are '1'/'0' or 'true'): be explicit.
        raise TypeError("boolean filter values are ambiguous in K3Cloud; compare with the stored string, e.g. '1'")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot use non-finite Decimal {value} in a filter")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("float filter values are refused (binary rounding); pass a Decimal or a string")
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(K3CLOUD_TZ)
        return _quote(value.strftime(_DATETIME_FMT))
    if isinstance(value, date):
        return _quote(value.isoformat())
    if isinstance(value, str):
        return _quote(value)
    raise TypeError(f"unsupported filter value type {type(value).__name__}; use str, int, Decimal, date or datetime")


def _quote(text: str) -> str:
    if "\x00" in text:
        raise ValueError("NUL characters are not allowed in filter values")
    return "'" + text.replace("'", "''") + "'"


def escape_like(text: str) -> str:
    """Escape LIKE wildcards the SQL Server way; ``[`` first so the brackets added later stay intact."""
    return text.replace("[", "[[]").replace("%", "[%]").replace("_", "[_]")


class Expr:
    """An immutable FilterString expression; render with ``render()`` (or ``str()``)."""

    __slots__ = ()

    def render(self) -> str:
        raise NotImplementedError

    def _grouped(self) -> str:
        return self.render()

    def __and__(self, other: Expr) -> Expr:
        return _combine("AND", self, other)

    def __or__(self, other: Expr) -> Expr:
        return _combine("OR", self, other)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.render()!r})"

    def __bool__(self) -> bool:
        # Stops `a == b and c` / chained comparisons from silently dropping a condition.
        raise TypeError("combine filter expressions with & and |, not 'and'/'or'/chained comparisons")


class _Leaf(Expr):
    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        object.__setattr__(self, "_text", text)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("filter expressions are immutable")

    def render(self) -> str:
        return self._text


class _Bool(Expr):
    __slots__ = ("_op", "_parts")

    def __init__(self, op: str, parts: tuple[Expr, ...]) -> None:
        object.__setattr__(self, "_op", op)
        object.__setattr__(self, "_parts", parts)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("filter expressions are immutable")

    def render(self) -> str:
        return f" {self._op} ".join(p._grouped() for p in self._parts)

    def _grouped(self) -> str:
        return f"({self.render()})"


def _combine(op: str, left: Any, right: Any) -> Expr:
    if not isinstance(left, Expr) or not isinstance(right, Expr):
        raise TypeError("only filter expressions can be combined with & and |")
    parts: list[Expr] = []
    for side in (left, right):
        # Flatten a AND (b AND c) so the rendering stays readable; mixed operators keep their parentheses.
        if isinstance(side, _Bool) and side._op == op:
            parts.extend(side._parts)
        else:
            parts.append(side)
    return _Bool(op, tuple(parts))


def all_of(exprs: Iterable[Expr]) -> Expr | None:
    """AND of the given expressions, or ``None`` when there are none."""
    result: Expr | None = None
    for expr in exprs:
        result = expr if result is None else result & expr
    return result


class F:
    """A checked field reference; comparisons on it produce expressions.

    :param name: the field key as used in FieldKeys (``FNumber``, ``FCustId.FNumber``, ``FSaleOrderEntry_FEntryID``).
    :param allowed: optional allow-list of field keys.
    """

    __slots__ = ("name",)
    __hash__ = None  # type: ignore[assignment]  # == builds an expression, so F cannot be a dict key

    def __init__(self, name: str, *, allowed: Collection[str] | None = None) -> None:
        object.__setattr__(self, "name", check_field_name(name, allowed))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("field references are immutable")

    def _cmp(self, op: str, value: Any) -> Expr:
        return _Leaf(f"{self.name} {op} {render_literal(value)}")

    def __eq__(self, value: Any) -> Expr:  # type: ignore[override]
        return self.is_null() if value is None else self._cmp("=", value)

    def __ne__(self, value: Any) -> Expr:  # type: ignore[override]
        return self.is_not_null() if value is None else self._cmp("<>", value)

    def __lt__(self, value: Literal) -> Expr:
        return self._cmp("<", value)

    def __le__(self, value: Literal) -> Expr:
        return self._cmp("<=", value)

    def __gt__(self, value: Literal) -> Expr:
        return self._cmp(">", value)

    def __ge__(self, value: Literal) -> Expr:
        return self._cmp(">=", value)

    def isin(self, values: Iterable[Literal]) -> Expr:
        rendered = [render_literal(v) for v in values]
        if not rendered:
            raise ValueError(f"isin() on {self.name} needs at least one value (an empty IN matches nothing)")
        return _Leaf(f"{self.name} IN ({','.join(rendered)})")

    def between(self, low: Literal, high: Literal) -> Expr:
        return _Leaf(f"{self.name} BETWEEN {render_literal(low)} AND {render_literal(high)}")

    def like_contains(self, text: str) -> Expr:
        return self._like("%" + escape_like(self._text(text)) + "%")

    def like_startswith(self, text: str) -> Expr:
        return self._like(escape_like(self._text(text)) + "%")

    def is_null(self) -> Expr:
        return _Leaf(f"{self.name} IS NULL")

    def is_not_null(self) -> Expr:
        return _Leaf(f"{self.name} IS NOT NULL")

    def _like(self, pattern: str) -> Expr:
        return _Leaf(f"{self.name} LIKE {_quote(pattern)}")

    @staticmethod
    def _text(text: Any) -> str:
        if not isinstance(text, str):
            raise TypeError("LIKE patterns take text")
        return text

    def __repr__(self) -> str:
        return f"F({self.name!r})"
