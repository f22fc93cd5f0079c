"""scripts/demo_deliveries.py against the K3Cloud simulator."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from demo_deliveries import create_demo_deliveries  # noqa: E402

from .world import NOTICE  # noqa: E402


def test_demo_pushes_and_audits_existing_orders_once(world):
    orders = [world.order(), world.order(), world.order()]

    first = create_demo_deliveries(world.k3, 2)
    second = create_demo_deliveries(world.k3, 5)  # only the order not pushed yet has quantity left

    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)
    rows = [r for p in world.k3.execute_bill_query(NOTICE, ["FBillNo", "FDocumentStatus", "FSrcBillNo"]) for r in p]
    assert {r["FDocumentStatus"] for r in rows} == {"C"}
    assert {r["FSrcBillNo"] for r in rows} == {o.number for o in orders}
