"""include/mappings/deliveries.yaml: K3Cloud SAL_DELIVERYNOTICE rows → CRM DeliveryNoteObj with lines (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fxiaoke_k3cloud.mapping import load_mapping, transform

MAPPING = Path(__file__).resolve().parents[2] / "include" / "mappings" / "deliveries.yaml"
LOOKUPS = {"orders": {"XSDD000001": "so-1"}, "accounts": {"CUST-000001": "acc-1"},
           "products": {"MAT-0001": "prod-1", "MAT-0002": "prod-2"}, "warehouses": {"CK001": "wh-1"},
           "order_lines": {"101": "sol-1", "102": "sol-2"}}


def row(fid: int, entry: int, material: str = "MAT-0001", **overrides):
    rec = {"FID": fid, "FBillNo": f"FHTZD{fid:06d}", "FDate": "2023-11-15T00:00:00", "FDocumentStatus": "C",
           "FApproveDate": "2023-11-15T10:00:00.123", "FCustomerID.FNumber": "CUST-000001", "FNote": "",
           "FEntity_FEntryID": entry, "FMaterialID.FNumber": material, "FQty": 2.0, "FSrcType": "SAL_SaleOrder",
           "FSrcBillNo": "XSDD000001", "FOrderNo": "XSDD000001"}
    rec.update(overrides)
    return rec


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(MAPPING)


def test_audited_notice_becomes_a_delivery_note_with_lines(mapping):
    flat = pd.DataFrame([row(1, 11), row(1, 12, "MAT-0002", FQty=3)])
    result = transform(mapping, flat.iloc[:1], lines=flat, lookups=LOOKUPS)
    assert result.counts["packages"] == 1, result.rejected
    package = result.packages[0]
    assert package.source_id == "1" and package.number == "FHTZD000001"
    model = package.model
    assert model["name"] == "FHTZD000001"
    assert model["sales_order_id"] == "so-1" and model["account_id"] == "acc-1"
    assert model["delivery_date"] == 1699977600000  # 2023-11-15 00:00 in Shanghai
    assert [(r["product_id"], r["delivery_num"], r["sales_order_id"]) for r in model["DeliveryNoteProductObj"]] == [
        ("prod-1", 2.0, "so-1"), ("prod-2", 3.0, "so-1")]
    assert mapping.source.object == "SAL_DELIVERYNOTICE" and "FApproveDate" in mapping.source.fields
    assert mapping.value_maps["order_status_on_delivery"] == {"C": "10"}


def test_warehouse_and_order_line_links_are_filled_and_left_out_when_the_notice_has_none(mapping):
    flat = pd.DataFrame([row(2, 21, FSOEntryId="101", **{"FStockID.FNumber": "CK001"}),
                         row(2, 22, "MAT-0002", FSOEntryId="102", **{"FStockID.FNumber": "CK001"})])
    model = transform(mapping, flat.iloc[:1], lines=flat, lookups=LOOKUPS).packages[0].model
    assert model["delivery_warehouse_id"] == "wh-1"
    assert [r["sales_order_product_id"] for r in model["DeliveryNoteProductObj"]] == ["sol-1", "sol-2"]
    bare = pd.DataFrame([row(3, 31, FSOEntryId=None, **{"FStockID.FNumber": None})])
    model = transform(mapping, bare, lines=bare, lookups=LOOKUPS).packages[0].model
    assert model["delivery_warehouse_id"] == "" and model["DeliveryNoteProductObj"][0]["sales_order_product_id"] == ""


def test_changed_quantity_changes_the_payload_hash_and_a_template_edit_does_not(mapping):
    first = transform(mapping, pd.DataFrame([row(1, 11)]), lines=pd.DataFrame([row(1, 11)]), lookups=LOOKUPS)
    more = transform(mapping, pd.DataFrame([row(1, 11)]), lines=pd.DataFrame([row(1, 11, FQty=5)]), lookups=LOOKUPS)
    assert first.packages[0].payload_hash != more.packages[0].payload_hash


@pytest.mark.parametrize(
    ("overrides", "kind", "text"),
    [
        ({"FMaterialID.FNumber": "MAT-0404"}, "parked", "CRM product for material MAT-0404"),
        ({"FQty": 0}, "rejected", "FQty"),
        ({"FDocumentStatus": "D"}, "reported", "FDocumentStatus='D'"),
        ({"FDocumentStatus": "A"}, "held", "FDocumentStatus='A'"),
        ({"FDate": None}, "rejected", "FDate"),
        ({"FSOEntryId": "999"}, "parked", "CRM order line for sale order entry 999"),
        ({"FStockID.FNumber": "CK404"}, "parked", "CRM warehouse for warehouse CK404"),
    ],
    ids=["unknown-product", "zero-qty", "unaudited", "draft", "no-date", "unknown-order-line", "unknown-warehouse"],
)
def test_bad_or_unready_notices_are_not_packages(mapping, overrides, kind, text):
    flat = pd.DataFrame([row(7, 71, **overrides)])
    result = transform(mapping, flat, lines=flat, lookups=LOOKUPS)
    found = getattr(result, kind)
    assert result.packages == [] and len(found) == 1
    assert text in (found[0].reason if not isinstance(found[0].reason, tuple) else " ".join(found[0].reason))
