"""FilterString builder: rendering, escaping and field-name checks (pure, table-driven)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from fxiaoke_k3cloud.hooks.k3cloud_filter import F, all_of, check_field_name, escape_like, render_literal


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (F("FNumber") == "C0001", "FNumber = 'C0001'"),
        (F("FNumber") == "0012", "FNumber = '0012'"),  # leading zeros survive: strings are always quoted
        (F("FNumber") == "x' or '1'='1", "FNumber = 'x'' or ''1''=''1'"),
        (F("FName") != "O'Brien", "FName <> 'O''Brien'"),
        (F("FID") > 100, "FID > 100"),
        (F("FQty") <= Decimal("2.50"), "FQty <= 2.50"),
        (F("FQty") < Decimal("1E+2"), "FQty < 100"),
        (F("FDate") >= date(2025, 1, 2), "FDate >= '2025-01-02'"),
        (F("FModifyDate") >= datetime(2025, 1, 2, 3, 4, 5), "FModifyDate >= '2025-01-02 03:04:05'"),
        # aware datetimes are converted to Asia/Shanghai (UTC+8) explicitly
        (F("FModifyDate") >= datetime(2025, 1, 1, 20, 0, tzinfo=timezone.utc), "FModifyDate >= '2025-01-02 04:00:00'"),
        (F("FModifyDate") < datetime(2025, 1, 2, 9, 30, tzinfo=timezone(timedelta(hours=9))), "FModifyDate < '2025-01-02 08:30:00'"),
        (F("FCustId.FNumber").isin(["001", "a'b"]), "FCustId.FNumber IN ('001','a''b')"),
        (F("FID").isin([1, 2, 3]), "FID IN (1,2,3)"),
        (F("FDate").between(date(2025, 1, 1), date(2025, 1, 31)), "FDate BETWEEN '2025-01-01' AND '2025-01-31'"),
        (F("FName").like_contains("50%_[x]'"), "FName LIKE '%50[%][_][[]x]''%'"),
        (F("FName").like_startswith("AB_"), "FName LIKE 'AB[_]%'"),
        (F("FApproveDate") == None, "FApproveDate IS NULL"),  # noqa: E711 - builds an expression
        (F("FApproveDate") != None, "FApproveDate IS NOT NULL"),  # noqa: E711
        ((F("A") == "1") & (F("B") == "2") & (F("C") == "3"), "A = '1' AND B = '2' AND C = '3'"),
        ((F("A") == "1") | (F("B") == "2") & (F("C") == "3"), "A = '1' OR (B = '2' AND C = '3')"),
        (((F("A") == "1") | (F("B") == "2")) & (F("C") == "3"), "(A = '1' OR B = '2') AND C = '3'"),
        (F("FSaleOrderEntry_FEntryID") == 7, "FSaleOrderEntry_FEntryID = 7"),
    ],
)
def test_renders_expressions(expr, expected):
    assert expr.render() == expected
    assert str(expr) == expected


@pytest.mark.parametrize(
    "name",
    ["", "1F", "F Number", "FNumber;--", "FNumber'", "a.b.c", "F.", ".F", "F-1", "FName)", "FNumber OR 1=1", "中文"],
)
def test_rejects_bad_field_names(name):
    with pytest.raises(ValueError):
        F(name)


def test_allow_list_is_case_insensitive_and_strict():
    assert F("fnumber", allowed={"FNumber"}).name == "fnumber"
    with pytest.raises(ValueError, match="not in the allowed list"):
        F("FName", allowed={"FNumber"})
    assert check_field_name("FCustId.FNumber") == "FCustId.FNumber"


@pytest.mark.parametrize(
    ("value", "error"),
    [(True, TypeError), (1.5, TypeError), (Decimal("NaN"), ValueError), (["a"], TypeError), ("a\x00b", ValueError), (object(), TypeError)],
)
def test_refuses_ambiguous_literals(value, error):
    with pytest.raises(error):
        render_literal(value)


def test_empty_isin_is_refused():
    with pytest.raises(ValueError, match="at least one value"):
        F("FNumber").isin([])


def test_expressions_are_immutable_and_refuse_truthiness():
    expr = F("A") == "1"
    with pytest.raises(AttributeError):
        expr._text = "1=1"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        F("A").name = "B"  # type: ignore[misc]
    with pytest.raises(TypeError, match="combine filter expressions"):
        bool(expr)
    with pytest.raises(TypeError):
        _ = expr & "B = 1"  # type: ignore[operator]


def test_escape_like_escapes_brackets_first():
    assert escape_like("[%]") == "[[][%]]"


def test_all_of():
    assert all_of([]) is None
    assert all_of([F("A") == "1", F("B") == 2]).render() == "A = '1' AND B = 2"
