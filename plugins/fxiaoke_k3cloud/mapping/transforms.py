"""The registry of named, vectorised value transforms a mapping file may use.

A transform receives the *present* values of one column (empty values never reach it) as a pandas Series and
returns a :class:`Transformed`: the new values plus, for the rows it cannot convert, one short message each
("is not a number", "must be > 0"). The engine turns those messages into rejections of exactly those records,
so a bad value never crashes the batch.

Adding a transform = one function decorated with :func:`register` plus its test. Mapping files can only name
what is registered here; there is no expression language on purpose.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

REQUIRED = object()


class TransformArgError(ValueError):
    """A transform call in a mapping file has a bad argument; ``key`` names it (None = the call itself)."""

    def __init__(self, key: str | None, message: str) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TransformContext:
    """Settings a transform may need that come from the mapping's ``defaults`` block."""

    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Transformed:
    """The output of one transform: ``values`` aligned to the input; ``errors`` indexed by the bad rows only."""

    values: pd.Series
    errors: pd.Series | None = None


TransformFunc = Callable[..., Transformed]


@dataclass(frozen=True, slots=True)
class TransformDef:
    """A registered transform: its function, its keyword parameters (type, default) and a one-line summary."""

    name: str
    func: TransformFunc
    params: dict[str, tuple[type, Any]] = field(default_factory=dict)
    summary: str = ""

    def check_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate call arguments from a mapping file; return them with defaults filled."""
        unknown = sorted(set(args) - set(self.params))
        if unknown:
            allowed = ", ".join(["name", *self.params]) or "name"
            raise TransformArgError(unknown[0], f"unknown argument of transform {self.name!r}; allowed: {allowed}")
        out: dict[str, Any] = {}
        for pname, (ptype, default) in self.params.items():
            if pname not in args:
                if default is REQUIRED:
                    raise TransformArgError(None, f"transform {self.name!r} needs argument {pname!r} ({ptype.__name__})")
                out[pname] = default
                continue
            value = args[pname]
            if not isinstance(value, ptype) or isinstance(value, bool) and ptype is not bool:
                raise TransformArgError(pname, f"must be {ptype.__name__}, got {type(value).__name__} {value!r}")
            if ptype is int and value <= 0:
                raise TransformArgError(pname, f"must be a positive integer, got {value!r}")
            out[pname] = value
        return out


REGISTRY: dict[str, TransformDef] = {}


def register(name: str, summary: str, **params: tuple[type, Any]) -> Callable[[TransformFunc], TransformFunc]:
    """Add a transform to :data:`REGISTRY` under ``name`` with keyword ``params`` = ``(type, default|REQUIRED)``."""

    def wrap(func: TransformFunc) -> TransformFunc:
        REGISTRY[name] = TransformDef(name=name, func=func, params=dict(params), summary=summary)
        return func

    return wrap


def _errors(values: pd.Series, bad: pd.Series, message: str | Callable[[Any], str]) -> pd.Series | None:
    """Messages for the rows flagged in ``bad`` (None when there are none)."""
    if not bad.any():
        return None
    picked = values[bad]
    if callable(message):
        return picked.map(message).astype(object)
    return pd.Series(message, index=picked.index, dtype=object)


def _merge(*parts: pd.Series | None) -> pd.Series | None:
    kept = [p for p in parts if p is not None and len(p)]
    if not kept:
        return None
    merged = pd.concat(kept)
    return merged[~merged.index.duplicated(keep="first")]


def _text(values: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """Values as Python ``str``; numbers are written out, lists/dicts/bools are errors (they are not text)."""
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        return values.astype(object), None
    kinds = values.map(type)
    is_str = kinds.eq(str)
    if is_str.all():
        return values.astype(object), None
    numeric = kinds.isin([int, float, Decimal])
    bad = ~(is_str | numeric)
    out = values.astype(object).copy()
    if numeric.any():
        out[numeric] = values[numeric].map(_number_text)
    return out, _errors(values, bad, lambda v: f"is a {type(v).__name__}, not text")


def _number_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, Decimal):
        return format(v, "f")
    return str(v)


def _to_decimal(v: Any) -> tuple[Decimal | None, str | None]:
    """One value as an exact Decimal, or the reason it is not a finite number."""
    if isinstance(v, bool):
        return None, "is a bool, not a number"
    if isinstance(v, Decimal):
        d = v
    elif isinstance(v, int):
        d = Decimal(v)
    elif isinstance(v, float):
        d = Decimal(repr(v))  # the shortest text that reads back as this float: what the JSON said
    elif isinstance(v, str):
        text = v.strip()
        if not _DECIMAL_FULL.fullmatch(text):
            low = text.lower().lstrip("+-")
            return None, ("is not a finite number" if low in ("nan", "inf", "infinity", "snan") else "is not a number")
        try:
            d = Decimal(text.replace(",", ""))
        except InvalidOperation:
            return None, "is not a number"
    else:
        return None, "is not a number"
    if not d.is_finite():
        return None, "is not a finite number"
    return d, None


def decimals(values: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """Values as exact ``Decimal`` (never through float64); garbage, NaN and infinity are errors."""
    parsed = [_to_decimal(v) for v in values.tolist()]
    nums = pd.Series([d for d, _ in parsed], index=values.index, dtype=object)
    messages = pd.Series([m for _, m in parsed], index=values.index, dtype=object)
    bad = messages.notna()
    return nums, (messages[bad] if bad.any() else None)


def _numbers(values: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """Values as float64, for epoch-millisecond timestamps only (exact in a float); amounts go through
    :func:`decimals`. Currency strings like ``"1,234.50"`` are accepted, anything else is an error."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        nums = values.astype("float64")
        bad = ~pd.Series(map(math.isfinite, nums), index=nums.index, dtype=bool)
        return nums, _errors(values, bad, "is not a finite number")
    kinds = values.map(type)
    is_str = kinds.eq(str)
    is_num = kinds.isin([int, float, Decimal])
    text = values.where(is_str, "").astype(str).str.strip()
    well_formed = text.str.fullmatch(_DECIMAL_RE)
    cleaned = text.str.replace(",", "", regex=False).where(is_str & well_formed)
    nums = pd.to_numeric(cleaned, errors="coerce").astype("float64")
    if is_num.any():
        given = values.where(is_num)
        try:
            converted = pd.to_numeric(given, errors="coerce")
        except (TypeError, OverflowError):  # a signalling-NaN Decimal (unhashable) or an int beyond float
            converted = pd.Series(list(map(_float_or_nan, given.tolist())), index=given.index, dtype="float64")
        nums = nums.where(~is_num, converted)
    finite = pd.Series(map(math.isfinite, nums), index=nums.index, dtype=bool)
    bad = ~finite
    return nums, _errors(values, bad, lambda v: "is not a number" if not isinstance(v, bool) else "is a bool, not a number")


def _float_or_nan(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError, OverflowError):
        return math.nan


# Plain decimals with optional sign and either no grouping or correct 3-digit comma groups ("1,234.50").
_DECIMAL_RE = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+"
_DECIMAL_FULL = re.compile(_DECIMAL_RE)


@register("strip", "Trim whitespace at both ends of text.")
def strip(values: pd.Series, ctx: TransformContext) -> Transformed:
    text, errors = _text(values)
    return Transformed(text.str.strip() if len(text) else text, errors)


@register("upper", "Upper-case text.")
def upper(values: pd.Series, ctx: TransformContext) -> Transformed:
    text, errors = _text(values)
    return Transformed(text.str.upper() if len(text) else text, errors)


@register("lower", "Lower-case text.")
def lower(values: pd.Series, ctx: TransformContext) -> Transformed:
    text, errors = _text(values)
    return Transformed(text.str.lower() if len(text) else text, errors)


@register("truncate", "Cut text to at most `max` characters (code points; emoji count as one).", max=(int, REQUIRED))
def truncate(values: pd.Series, ctx: TransformContext, *, max: int) -> Transformed:  # noqa: A002 - YAML name
    text, errors = _text(values)
    return Transformed(text.str.slice(0, max) if len(text) else text, errors)


@register("digits_only", "Keep only the digits 0-9 (e.g. a tax id typed with spaces or dashes).")
def digits_only(values: pd.Series, ctx: TransformContext) -> Transformed:
    text, errors = _text(values)
    return Transformed(text.str.replace(r"[^0-9]", "", regex=True) if len(text) else text, errors)


_PHONE_RE = re.compile(r"\+?[0-9 ()\-./]+(?:\s*(?:ext\.?|x|转|-)\s*[0-9]{1,6})?", re.IGNORECASE)
_NON_DIGITS = str.maketrans("", "", "0123456789")


@register("phone", "Loose phone check: digits with + ( ) - . / spaces and an optional extension; 5 to 20 digits.")
def phone(values: pd.Series, ctx: TransformContext) -> Transformed:
    text, errors = _text(values)
    if not len(text):
        return Transformed(text, errors)
    # One C-level regex match and one str.translate per value; pandas' .str.count is a Python findall per value.
    # A phone: 5 to 20 digits (the characters str.translate drops) and the pattern; tested inline, as a function
    # call per value would cost as much as the test.
    items = text.tolist()
    stripped = (list(map(str.strip, items)) if set(map(type, items)) == {str}
                else [t.strip() if isinstance(t, str) else "" for t in items])
    full, non_digits = _PHONE_RE.fullmatch, _NON_DIGITS
    ok = pd.Series([5 <= len(t) - len(t.translate(non_digits)) <= 20 and full(t) is not None for t in stripped],
                   index=text.index, dtype=bool)
    bad = ~ok
    if errors is not None:
        bad = bad & ~bad.index.isin(errors.index)
    return Transformed(pd.Series(stripped, index=text.index, dtype=object),
                       _merge(errors, _errors(values, bad, "is not a phone number")))


@register("decimal", "Number or currency string ('1,234.50') to an exact Decimal; garbage, NaN and infinity are rejected.")
def decimal(values: pd.Series, ctx: TransformContext) -> Transformed:
    nums, errors = decimals(values)
    return Transformed(nums, errors)


def _compare(nums: pd.Series, test: Callable[[Decimal], bool]) -> pd.Series:
    return pd.Series([d is not None and not test(d) for d in nums.tolist()], index=nums.index, dtype=bool)


@register("positive", "A number that must be > 0 (currency strings accepted), as an exact Decimal.")
def positive(values: pd.Series, ctx: TransformContext) -> Transformed:
    nums, errors = decimals(values)
    return Transformed(nums, _merge(errors, _errors(values, _compare(nums, lambda d: d > 0), "must be > 0")))


@register("non_negative", "A number that must be >= 0 (currency strings accepted), as an exact Decimal.")
def non_negative(values: pd.Series, ctx: TransformContext) -> Transformed:
    nums, errors = decimals(values)
    return Transformed(nums, _merge(errors, _errors(values, _compare(nums, lambda d: d >= 0), "must be >= 0")))


@register("int", "A whole number ('12', 12.0); fractions and garbage are rejected.")
def to_int(values: pd.Series, ctx: TransformContext) -> Transformed:
    nums, errors = decimals(values)
    bad = _compare(nums, lambda d: d == d.to_integral_value() and abs(d) < 2**63)
    out = pd.Series([int(d) if d is not None and not b else 0 for d, b in zip(nums.tolist(), bad.tolist())],
                    index=nums.index, dtype=object)
    return Transformed(out, _merge(errors, _errors(values, bad, "is not a whole number")))


_TRUE = {"true", "1", "yes", "y", "t", "是"}
_FALSE = {"false", "0", "no", "n", "f", "否"}


def _to_bool_str(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)) and v in (0, 1) or isinstance(v, Decimal) and v.is_finite() and v in (0, 1):
        return "true" if v else "false"
    if isinstance(v, str):
        t = v.strip().lower()
        if t in _TRUE:
            return "true"
        if t in _FALSE:
            return "false"
    return None


@register("bool_str", "Boolean-ish (true/false, 1/0, yes/no, 是/否) to K3Cloud's 'true'/'false' text.")
def bool_str(values: pd.Series, ctx: TransformContext) -> Transformed:
    out = values.map(_to_bool_str)
    bad = out.isna()
    return Transformed(out.astype(object), _errors(values, bad, "is not true/false"))


def _first(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return v[0] if v else None
    return v


@register("first", "First element of a list (owner, department and other employee fields are lists); scalars pass.")
def first(values: pd.Series, ctx: TransformContext) -> Transformed:
    return Transformed(values.map(_first).astype(object))


def _epoch_ms(values: pd.Series, ctx: TransformContext) -> tuple[pd.Series, pd.Series | None]:
    nums, _ = _numbers(values)
    stamps = pd.to_datetime(nums, unit="ms", utc=True, errors="coerce")
    local = stamps.dt.tz_convert(ctx.timezone)
    return local, _errors(values, stamps.isna(), "is not a millisecond timestamp")


@register("ms_to_date", "Epoch milliseconds to 'yyyy-MM-dd' in the mapping's timezone (Asia/Shanghai by default).")
def ms_to_date(values: pd.Series, ctx: TransformContext) -> Transformed:
    local, errors = _epoch_ms(values, ctx)
    return Transformed(local.dt.strftime("%Y-%m-%d").astype(object), errors)


@register("ms_to_datetime", "Epoch milliseconds to 'yyyy-MM-dd HH:mm:ss' in the mapping's timezone.")
def ms_to_datetime(values: pd.Series, ctx: TransformContext) -> Transformed:
    local, errors = _epoch_ms(values, ctx)
    return Transformed(local.dt.strftime("%Y-%m-%d %H:%M:%S").astype(object), errors)


@register("datetime_to_ms", "K3Cloud local date/datetime text ('2024-03-01T10:00:00') to epoch milliseconds.")
def datetime_to_ms(values: pd.Series, ctx: TransformContext) -> Transformed:
    text, errors = _text(values)
    parsed = pd.to_datetime(text.str.strip().str.replace("T", " ", regex=False), errors="coerce", format="mixed")
    bad = parsed.isna()
    if errors is not None:
        bad = bad & ~bad.index.isin(errors.index)
    localized = parsed.dt.tz_localize(ctx.timezone, nonexistent="shift_forward", ambiguous="NaT")
    ms = (localized.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    out = ms.where(~bad, 0).astype("int64").astype(object)
    return Transformed(out, _merge(errors, _errors(values, bad, "is not a date/datetime")))
