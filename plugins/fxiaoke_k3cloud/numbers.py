"""Business numbers as K3Cloud compares them.

K3Cloud keeps numbers in SQL Server under its default collation (``Chinese_PRC_CI_AS``: case- and
width-insensitive), so ``so000001`` and ``SO000001`` are one number there, and so are full- and half-width
forms. The flows compare numbers by :func:`number_key` (blanks stripped, NFKC, casefold) and never by raw text.
"""

from __future__ import annotations

import unicodedata
from typing import Any


def number_key(number: Any) -> str:
    """The form of a number two numbers share when K3Cloud would take them for the same one ('' for none)."""
    if number is None:
        return ""
    return unicodedata.normalize("NFKC", str(number)).strip().casefold()
