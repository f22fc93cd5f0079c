"""deliveries.resolve_order_numbers compares sale order numbers as K3Cloud does (case- and width-insensitive), both
through the orders flow's id map and through the K3Cloud order's FNetOrderBillNo."""

from __future__ import annotations

from fxiaoke_k3cloud.flows import deliveries


def test_order_numbers_resolve_whatever_their_case_or_width(world):
    mapped = world.order()  # in the order id map
    net_only = world.order(id_map=False)  # only FNetOrderBillNo on the K3Cloud order names the CRM order
    k3_only = world.order(sent_by_crm=False)
    asked = [mapped.number.lower(), "ＳＯ" + net_only.number[2:], k3_only.number]  # full-width "SO"

    found = deliveries.resolve_order_numbers(world.store, world.k3, asked)

    assert found == {
        mapped.number.lower(): {"crm_id": mapped.crm_id, "via": "order id map"},
        "ＳＯ" + net_only.number[2:]: {"crm_id": net_only.crm_id, "via": "FNetOrderBillNo"},
    }
