"""Typed values of a Save package: booleans as bools or strings, numbers, dates, base-data references."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .metadata import Field
from .wire import K3Error

_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S",
                 "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d")
EMPTY_DATE = "1900-01-01T00:00:00"


def parse_datetime(value: Any) -> datetime | None:
    """Parse the date spellings clients send (``yyyy-MM-dd``, ``yyyy-MM-dd HH:mm:ss``, ISO with/without ms)."""
    text = str(value).strip()
    if not text:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def format_datetime(dt: datetime) -> str:
    if dt.microsecond:
        return dt.isoformat(timespec="milliseconds")
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return str(value).strip().lower() in ("true", "1", "yes", "y")


def normalize(f: Field, value: Any, where: str = "") -> Any:
    """Convert a package value to its stored form; raises K3Error (MsgCode 8) for values of the wrong type."""
    kind = f.kind
    if kind == "x":
        return value
    if kind == "r":
        return normalize_ref(value)
    if value is None:
        return None
    if kind == "b":
        return to_bool(value)
    if kind in ("n", "i"):
        if value == "":
            return 0 if kind == "i" else 0.0
        try:
            number = float(value)
            exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
        except (TypeError, ValueError, InvalidOperation):
            raise K3Error(f"{where}字段“{f.caption}”的值“{value}”不是有效的数字。", 8, f.key) from None
        if not exact.is_finite():
            raise K3Error(f"{where}字段“{f.caption}”的值“{value}”不是有效的数字。", 8, f.key)
        if kind == "i":
            return int(number)
        # K3Cloud keeps decimal(23,10): a Decimal sent with more digits than a float holds is kept exactly.
        return exact if exact.is_finite() and exact != Decimal(repr(number)) else number
    if kind == "d":
        if value == "":
            return None
        dt = parse_datetime(value)
        if dt is None:
            raise K3Error(f"{where}字段“{f.caption}”的值“{value}”不是有效的日期。", 8, f.key)
        return format_datetime(dt)
    if isinstance(value, (dict, list)):
        raise K3Error(f"{where}字段“{f.caption}”的值类型不正确。", 8, f.key)
    return str(value) if not isinstance(value, bool) else str(value).lower()


def normalize_ref(value: Any) -> dict[str, Any] | None:
    """``{"FNumber": "X"}`` with any lookup key spelling; an empty value means "no value"."""
    if value is None:
        return None
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if v not in (None, "", 0)]
        if not items:
            return None
        key, v = items[0]
        return {key: v if not isinstance(v, str) else v.strip()}
    if isinstance(value, (str, int, float)) and str(value).strip() not in ("", "0"):
        return {"FNumber": str(value).strip()}
    return None


def is_empty(value: Any) -> bool:
    return value in (None, "", False, 0, 0.0, EMPTY_DATE) or value == {} or value == []
