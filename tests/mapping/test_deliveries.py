"""K3Cloud SAL_OUTSTOCK rows → CRM DeliveryNoteObj with lines (the reverse direction) with deliveries.yaml."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fxiaoke_k3cloud.mapping import load_mapping, transform

MAPPING = Path(__file__).resolve().parents[2] / "include" / "mappings" / "deliveries.yaml"
LOOKUPS = {"orders": {"XSDD000001": "so-1"}, "accounts": {"CUST-000001": "acc-1"},
           "products": {"MAT-0001": "prod-1", "MAT-0002": "prod-2"}}


def row(fid: int, entry: int, material: str = "MAT-0001", **overrides):
    rec = {"FID": fid, "FBillNo": f"XSCKD{fid:06d}", "FDate": "2023-11-15T00:00:00", "FDocumentStatus": "C",
           "FCustomerID.FNumber": "CUST-000001", "FCarriageNO": "SF123", "FNote": "", "FEntity_FEntryID": entry,
           "FMaterialID.FNumber": material, "FRealQty": 2.0, "FSoorDerno": "XSDD000001"}
    rec.update(overrides)
    return rec


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(MAPPING)


def test_audited_out_stock_becomes_a_delivery_note_with_lines(mapping):
    flat = pd.DataFrame([row(1, 11), row(1, 12, "MAT-0002", FRealQty=3)])
    result = transform(mapping, flat, lines=flat, lookups=LOOKUPS)
    assert result.counts["packages"] == 1, result.rejected
    package = result.packages[0]
    assert package.source_id == "1" and package.number == "XSCKD000001"
    model = package.model
    assert model["sales_order_id"] == "so-1" and model["account_id"] == "acc-1"
    assert model["delivery_date"] == 1699977600000  # 2023-11-15 00:00 in Shanghai
    assert [(r["product_id"], r["delivery_num"]) for r in model["DeliveryNoteProductObj"]] == [("prod-1", 2.0), ("prod-2", 3.0)]
    assert model["DeliveryNoteProductObj"][0]["sales_order_id"] == "so-1"
    update = package.update_model("dn-1")
    assert update["_id"] == "dn-1" and "status" not in update
    assert result.save_options == {}


def test_unknown_order_parks_and_unaudit_is_reported(mapping):
    flat = pd.DataFrame([row(1, 11, FSoorDerno="XSDD999999"), row(2, 21, FDocumentStatus="D"),
                         row(3, 31, FDocumentStatus="A")])
    result = transform(mapping, flat, lines=flat, lookups=LOOKUPS)
    assert result.parked[0].missing == ("CRM order for sale order XSDD999999",)
    assert "has no CRM order in the CRM yet" in result.parked[0].reason
    assert [s.status for s in result.reported] == ["D"] and [s.status for s in result.held] == ["A"]
