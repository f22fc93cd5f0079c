"""The payload hash: sha256 of the mapped values as canonical JSON (sorted keys, no spaces, ASCII escapes).

:func:`payload_hash` is the definition. :func:`column_hashes` computes exactly the same digests for a whole
batch of flat records ~5x faster: it JSON-encodes column by column with the C encoder functions the ``json``
module itself uses (a text column is one ``map`` over ``encode_basestring_ascii``; a mixed column is encoded as
one list and split into tokens), instead of paying the encoder's per-call overhead once per record.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # A value a float holds exactly hashes as that float did before numbers became Decimal, so audit stores
        # written by earlier versions still see unchanged records as unchanged; any other value by all its digits.
        as_float = float(value)
        if math.isfinite(as_float) and Decimal(repr(as_float)) == value:
            return as_float
        return "#" + _plain(value)
    if hasattr(value, "item"):  # numpy scalars a caller's lookup table may carry
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=True, separators=(",", ":"), allow_nan=False,
                            check_circular=False, default=_json_default)
# One JSON scalar inside a top-level list: a string (with escapes) or a bare number/true/false/null.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^,\[\]"]+')


def _plain(d: Decimal) -> str:
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def canonical_json(mapped: dict[str, Any]) -> str:
    return _ENCODER.encode(mapped)


def payload_hash(mapped: dict[str, Any]) -> str:
    """sha256 hex digest of ``canonical_json(mapped)``."""
    return hashlib.sha256(_ENCODER.encode(mapped).encode("ascii")).hexdigest()


def column_hashes(texts: Sequence[str], columns: Sequence[list[Any]]) -> list[str]:
    """``payload_hash(dict(zip(texts, row)))`` for every row of ``columns`` (scalar values only)."""
    if not columns:
        return []
    n = len(columns[0])
    order = sorted(range(len(texts)), key=lambda i: texts[i])
    # The record's JSON as one %-format with a %s per value: one C-level format call per record builds it.
    form = "{" + ",".join(_ENCODER.encode(texts[i]).replace("%", "%%") + ":%s" for i in order) + "}"
    tokens = [_encode_column(columns[i], n) for i in order]
    sha = hashlib.sha256
    return [sha(text.encode("ascii")).hexdigest() for text in map(form.__mod__, zip(*tokens))]


def _encode_column(values: list[Any], n: int) -> list[str]:
    """The JSON text of each value, identical to what ``_ENCODER`` writes for it inside a dict."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return list(map(encode_basestring_ascii, values))
    if kinds == {int}:
        return list(map(int.__repr__, values))
    encoded = _ENCODER.encode(values)
    tokens = _TOKEN.findall(encoded, 1, len(encoded) - 1)
    if len(tokens) != n:  # a nested value: tokens do not line up, encode one by one
        tokens = [_ENCODER.encode(v) for v in values]
    return tokens
