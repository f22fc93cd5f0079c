"""Reconciliation compares values as K3Cloud returns them: numbers, dates and references are normalised."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fxiaoke_k3cloud.ops.reconcile import normalise, parse_amount


@pytest.mark.parametrize(("crm", "erp", "reference", "same"), [
    ("2", 2.0, False, True),
    ("125.00", 125, False, True),
    ("2023-11-15", "2023-11-15T00:00:00", False, True),
    ("2023-11-15", "2023-11-16T00:00:00", False, False),
    ("MAT-0001", "mat-0001", True, True),
    ("MAT-0001", "mat-0001", False, False),
    ("", None, False, True),
    ("021-55550009", "021-55550009", False, True),
    ("4", 9.0, False, False),
    (True, "true", False, True),
])
def test_values_compare_as_k3cloud_returns_them(crm, erp, reference, same):
    assert (normalise(crm, reference=reference) == normalise(erp, reference=reference)) is same


@pytest.mark.parametrize(("text", "amount"), [("1,234.50", Decimal("1234.50")), ("250", Decimal(250)), ("", None),
                                              ("n/a", None)])
def test_crm_amounts_parse_currency_strings(text, amount):
    assert parse_amount(text) == amount
