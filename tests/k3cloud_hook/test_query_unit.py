"""Stable ordering, page-size bounds and row shaping for queries (pure)."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.hooks.k3cloud_query import check_field_keys, check_page_size, objects_as_dicts, rows_as_dicts, stable_order


@pytest.mark.parametrize(
    ("form", "keys", "order_by", "expected"),
    [
        ("BD_Customer", ["FNumber", "FName"], None, "FCUSTID ASC"),
        ("bd_customer", ["FNumber"], ["FModifyDate DESC"], "FModifyDate DESC, FCUSTID ASC"),
        ("BD_MATERIAL", ["FNumber"], ["FMATERIALID"], "FMATERIALID ASC"),
        ("SAL_SaleOrder", ["FBillNo", "FCustId.FNumber"], None, "FID ASC"),
        ("SAL_SaleOrder", ["FBillNo", "FMaterialId.FNumber", "FQty"], None, "FID ASC, FSaleOrderEntry_FEntryID ASC"),
        ("SAL_SaleOrder", ["FSaleOrderEntry_FSeq"], None, "FID ASC, FSaleOrderEntry_FEntryID ASC"),
        ("SAL_DELIVERYNOTICE", ["FBillNo", "FEntity_FEntryID"], None, "FID ASC, FEntity_FEntryID ASC"),
        ("SAL_OUTSTOCK", ["FBillNo", "FSoorDerno"], None, "FID ASC, FEntity_FEntryID ASC"),
        ("SAL_OUTSTOCK", ["FBillNo", "FApproveDate"], None, "FID ASC"),
        ("XY_Custom", ["FBillNo"], ["FID"], "FID ASC"),
    ],
)
def test_stable_order_appends_unique_keys(form, keys, order_by, expected):
    assert stable_order(form, keys, order_by) == expected


def test_unknown_form_without_order_is_a_config_error():
    with pytest.raises(ConfigError, match="order_by"):
        stable_order("XY_Custom", ["FBillNo"], None)


@pytest.mark.parametrize("order_by", [["FID; DROP"], ["FID DESCENDING"], "FID"])
def test_order_by_is_validated(order_by):
    with pytest.raises((ValueError, TypeError)):
        stable_order("BD_Customer", ["FNumber"], order_by)


@pytest.mark.parametrize("size", [0, 2001, 10000, True, 2.5])
def test_page_size_bounds(size):
    with pytest.raises(ValueError, match="page_size"):
        check_page_size(size)
    assert check_page_size(2000) == 2000


def test_field_keys_checked():
    with pytest.raises(TypeError):
        check_field_keys("FNumber,FName")
    with pytest.raises(ValueError):
        check_field_keys(["FNumber", "FName) --"])


def test_row_shaping():
    assert rows_as_dicts([["C1", 7]], ["FNumber", "FCUSTID"]) == [{"FNumber": "C1", "FCUSTID": 7}]
    with pytest.raises(ValueError):
        rows_as_dicts([["C1"]], ["FNumber", "FCUSTID"])
    assert objects_as_dicts([{"FNUMBER": "C1"}], ["FNumber"]) == [{"FNumber": "C1"}]
