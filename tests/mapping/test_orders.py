"""SalesOrderObj + SalesOrderProductObj → SAL_SaleOrder: entries grouped by order, lookups that park, line checks."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from .crm_records import line, order

from fxiaoke_k3cloud.errors import MappingError
from fxiaoke_k3cloud.mapping import transform

LOOKUPS = {
    "customers": {"acc-1": "CUST-000001", "acc-2": "CUST-000002"},
    "materials": {"prod-1": "MAT-0001", "prod-2": "MAT-0002"},
}


def run(mapping, orders, lines, lookups=LOOKUPS):
    return transform(mapping, pd.DataFrame(orders), lines=pd.DataFrame(lines), lookups=lookups)


def test_order_with_lines_fills_header_and_entries(orders_mapping):
    result = run(orders_mapping, [order(1)], [line("l-2", "so-1", "prod-2", quantity="3", sales_price="1,234.50", unit="箱"),
                                              line("l-1", "so-1")])
    assert result.counts["packages"] == 1, result.rejected
    package = result.packages[0]
    model = package.model
    assert package.number == "SO000001"
    assert model["FID"] == 0
    assert model["FBillTypeID"] == {"FNumber": "XSDD01_SYS"}
    assert model["FDate"] == "2023-11-15"  # 2023-11-14 22:13 UTC is already the 15th in Shanghai
    assert model["FSaleOrgId"] == {"FNumber": "100"}
    assert model["FCustId"] == {"FNumber": "CUST-000001"}
    assert model["FSalerId"] == {"FNumber": "SM001"}
    assert model["FNetOrderBillNo"] == "so-1"
    assert model["FSaleOrderFinance"]["FSettleCurrId"] == {"FNumber": "PRE001"}
    rows = model["FSaleOrderEntry"]
    assert [r["FMaterialId"]["FNumber"] for r in rows] == ["MAT-0001", "MAT-0002"]  # stable order by line id
    assert rows[1]["FQty"] == 3.0 and rows[1]["FTaxPrice"] == 1234.5 and rows[1]["FUnitID"] == {"FNumber": "box"}
    assert rows[0]["FUnitID"] == {"FNumber": "Pcs"}
    assert rows[0]["FDeliveryDate"] == "2023-11-22"  # master.delivery_date
    assert rows[0]["FEntryTaxRate"] == 13 and rows[0]["FOwnerTypeId"] == "BD_OwnerOrg"
    assert rows[0]["FStockOrgId"] == {"FNumber": "100"}
    assert set(rows[0]) == set(orders_mapping.entries.template)


def test_lines_are_grouped_by_their_order(orders_mapping):
    orders = [order(1), order(2, account_id="acc-2"), order(3)]
    lines = [line("a", "so-2"), line("b", "so-1"), line("c", "so-2", "prod-2"), line("d", "so-3"), line("z", "so-404")]
    result = run(orders_mapping, orders, lines)
    by_order = {p.source_id: [r["FMaterialId"]["FNumber"] for r in p.model["FSaleOrderEntry"]] for p in result.packages}
    assert by_order == {"so-1": ["MAT-0001"], "so-2": ["MAT-0001", "MAT-0002"], "so-3": ["MAT-0001"]}
    assert result.ignored_lines == 1


def test_missing_customer_or_material_parks_the_order(orders_mapping):
    orders = [order(1, account_id="acc-new"), order(2), order(3)]
    lines = [line("a", "so-1"), line("b", "so-2", "prod-9999", product_code="MAT-9999"), line("c", "so-3")]
    result = run(orders_mapping, orders, lines)
    assert [p.source_id for p in result.packages] == ["so-3"]
    parked = {p.source_id: p for p in result.parked}
    assert parked["so-1"].missing == ("customer for account 客户1",)
    assert parked["so-2"].missing == ("material for product MAT-9999",)
    assert "line b: product_id='prod-9999' has no material in K3Cloud yet (FMaterialId.FNumber)" in parked["so-2"].reason
    assert parked["so-2"].reason.startswith("SalesOrderObj so-2/'SO000002': ")


def test_bad_line_rejects_the_whole_order_naming_the_line(orders_mapping):
    lines = [line("a", "so-1"), line("b", "so-1", quantity="-1", sales_price="abc")]
    result = run(orders_mapping, [order(1)], lines)
    assert not result.packages
    rejection = result.rejected[0]
    assert rejection.source_field == "quantity" and rejection.target == "FSaleOrderEntry[].FQty"
    assert "line b: quantity='-1' must be > 0 (FQty)" in rejection.reason
    assert "line b: sales_price='abc' is not a number (FTaxPrice)" in rejection.reason


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"quantity": "0"}, "quantity='0' must be > 0"),
    ({"quantity": "1,2,3"}, "quantity='1,2,3' is not a number"),
    ({"sales_price": "-0.01"}, "sales_price='-0.01' must be >= 0"),
    ({"sales_price": None}, "sales_price is required but empty"),
    ({"product_id": None}, "product_id is required but empty"),
])
def test_line_value_checks(orders_mapping, overrides, fragment):
    result = run(orders_mapping, [order(1)], [line("a", "so-1", **overrides)])
    assert not result.packages
    assert fragment in result.rejected[0].reason


@pytest.mark.parametrize("quantities", [("2", 3), (Decimal("2"), "3"), (2.5, Decimal("3"))],
                         ids=["text-and-int", "decimal-and-text", "float-and-decimal"])
def test_mixed_number_types_in_one_line_column_all_map(orders_mapping, quantities):
    # A column of mixed types is an object column: its Decimals once failed the single-value check.
    result = run(orders_mapping, [order(1), order(2)],
                 [line("a", "so-1", quantity=quantities[0]), line("b", "so-2", quantity=quantities[1])])
    assert not result.rejected, result.rejected
    got = [p.model["FSaleOrderEntry"][0]["FQty"] for p in result.packages]
    assert got == [Decimal(str(q)) for q in quantities] and {type(q) for q in got} == {Decimal}


@pytest.mark.parametrize(("where", "overrides", "says"), [
    ("header", {"account_id": ["acc-1"]}, "account_id=['acc-1'] is a list, not a single value"),
    ("header", {"owner": [["FSUID_0000000000000000000000000000A003"]]}, "owner=[['FSUID_"),
    ("line", {"unit": ["个"]}, "line a: unit=['个'] is a list, not a single value"),
    ("line", {"product_id": {"id": "prod-1"}}, "line a: product_id={'id': 'prod-1'} is a dict, not a single value"),
], ids=["lookup-list", "value-map-nested-list", "line-value-map-list", "line-lookup-dict"])
def test_a_list_or_dict_in_a_mapped_or_looked_up_column_rejects_only_its_order(orders_mapping, where, overrides, says):
    header = overrides if where == "header" else {}
    lines = [line("a", "so-1", **(overrides if where == "line" else {})), line("b", "so-2")]
    result = run(orders_mapping, [order(1, **header), order(2)], lines)
    assert [p.source_id for p in result.packages] == ["so-2"] and not result.parked
    [rejection] = result.rejected
    assert rejection.source_id == "so-1" and says in rejection.reason, rejection.reason


def test_rejection_wins_over_parking(orders_mapping):
    result = run(orders_mapping, [order(1, account_id="acc-new", order_time="yesterday")], [line("a", "so-1")])
    assert not result.parked
    assert "order_time='yesterday' is not a millisecond timestamp (FDate)" in result.rejected[0].reason


def test_order_without_lines_is_rejected(orders_mapping):
    result = run(orders_mapping, [order(1)], [])
    assert "has 0 SalesOrderProductObj line(s); at least 1 required" in result.rejected[0].reason


def test_unknown_owner_leaves_salesman_empty_via_default_entry(orders_mapping):
    result = run(orders_mapping, [order(1, owner=["FSUID_somebody"])], [line("a", "so-1")])
    assert result.packages[0].model["FSalerId"] == {"FNumber": ""}


def test_voided_order_is_reported(orders_mapping):
    result = run(orders_mapping, [order(1, life_status="invalid"), order(2)], [line("a", "so-1"), line("b", "so-2")])
    assert [s.source_id for s in result.reported] == ["so-1"] and [p.source_id for p in result.packages] == ["so-2"]


def test_order_hash_covers_lines_and_ignores_line_order(orders_mapping):
    lines = [line("a", "so-1"), line("b", "so-1", "prod-2")]
    h1 = run(orders_mapping, [order(1)], lines).packages[0].payload_hash
    h2 = run(orders_mapping, [order(1)], list(reversed(lines))).packages[0].payload_hash
    h3 = run(orders_mapping, [order(1)], [lines[0], line("b", "so-1", "prod-2", quantity="5")]).packages[0].payload_hash
    assert h1 == h2 != h3


def test_order_update_model_carries_entries_with_ids(orders_mapping):
    package = run(orders_mapping, [order(1)], [line("a", "so-1"), line("b", "so-1", "prod-2")]).packages[0]
    update = package.update_model(5001, entry_ids={"FSaleOrderEntry": [11, 12]})
    assert update["FID"] == 5001
    assert "FBillTypeID" not in update and "FSaleOrderFinance" not in update
    assert update["FSaleOrderEntry"][1] == {"FMaterialId": {"FNumber": "MAT-0002"}, "FUnitID": {"FNumber": "Pcs"},
                                            "FQty": 2.0, "FTaxPrice": 12.5, "FDeliveryDate": "2023-11-22",
                                            "FEntryNote": "", "FEntryID": 12}
    assert package.need_update_fields[:6] == ["FBillNo", "FDate", "FCustId", "FSalerId", "FNetOrderBillNo", "FNote"]
    assert {"FSaleOrderEntry", "FEntryID", "FMaterialId", "FQty"} <= set(package.need_update_fields)


def test_missing_lookup_table_is_a_configuration_error(orders_mapping):
    with pytest.raises(MappingError) as caught:
        transform(orders_mapping, pd.DataFrame([order(1)]), lines=pd.DataFrame([line("a", "so-1")]),
                  lookups={"customers": {}})
    assert "materials" in str(caught.value) and caught.value.key == "lookups"


def test_a_voided_line_leaves_the_package_and_changes_its_hash(orders_mapping):
    lines = [line("a", "so-1", life_status="normal"), line("b", "so-1", "prod-2", life_status="normal")]
    before = run(orders_mapping, [order(1)], lines).packages[0]
    after = run(orders_mapping, [order(1)], [lines[0], {**lines[1], "life_status": "invalid"}]).packages[0]
    assert before.row_ids == ("a", "b") and after.row_ids == ("a",)
    assert [r["FMaterialId"]["FNumber"] for r in after.model["FSaleOrderEntry"]] == ["MAT-0001"]
    assert after.payload_hash != before.payload_hash


def test_an_order_whose_lines_are_all_voided_is_rejected(orders_mapping):
    result = run(orders_mapping, [order(1)], [line("a", "so-1", life_status="invalid")])
    assert result.packages == [] and "at least 1 required" in result.rejected[0].reason


def test_update_model_leaves_new_rows_without_an_entry_id(orders_mapping):
    package = run(orders_mapping, [order(1)], [line("a", "so-1"), line("b", "so-1", "prod-2")]).packages[0]
    rows = package.update_model(5001, entry_ids={"FSaleOrderEntry": [None, 12]})["FSaleOrderEntry"]
    assert "FEntryID" not in rows[0] and rows[1]["FEntryID"] == 12
