"""Delivery-note prerequisites of real tenants (issue 14, point 12), end to end over HTTP: a warehouse and links to
the order's lines, required by the CRM (the simulator's ``required_fields`` switch) and filled by the mapping from
K3Cloud's FStockID and the order-line id map."""

from __future__ import annotations

import pytest

from .world import run_flow

REQUIRED = {"DeliveryNoteObj": ["delivery_warehouse_id"], "DeliveryNoteProductObj": ["sales_order_product_id"]}


def require(world, fields=REQUIRED) -> None:
    world.fxsim._admin("POST", "config", {"required_fields": fields})


def warehouse_ids(world) -> dict[str, str]:
    return {w["number"]: w["_id"] for w in world.fxsim.records("WarehouseObj")}


def outcomes(world, number):
    return [(h["outcome"], h["reason"]) for h in world.history(number)]


@pytest.mark.parametrize("line_map", [True, False], ids=["order-line-id-map", "only-line-of-the-product"])
def test_a_tenant_requiring_warehouse_and_order_lines_gets_both_filled(world, line_map):
    require(world)
    order = world.order(line_map=line_map, materials=("MAT-0001", "MAT-0002", "MAT-0003"))
    number = world.audited_notice(order, stocks=("CK002", "CK002", "CK002"))

    run_flow()

    [note] = world.notes()
    assert note["name"] == number and note["delivery_warehouse_id"] == warehouse_ids(world)["CK002"]
    assert note["delivery_warehouse_id__r"] == "备件仓"
    crm_lines = {r["_id"]: r for r in world.fxsim.records("SalesOrderProductObj") if r["order_id"] == order.crm_id}
    delivered = world.note_lines()
    assert len(delivered) == 3
    for line in delivered:  # each delivery line names the CRM order line of its own product
        assert crm_lines[line["sales_order_product_id"]]["product_id"] == line["product_id"]
    assert len({line["sales_order_product_id"] for line in delivered}) == 3
    assert [o for o, _ in outcomes(world, number)] == ["created"]


def test_without_the_tenant_rule_a_notice_without_warehouse_lands_and_with_it_fails_with_the_crm_reason(world):
    bare = world.audited_notice(world.order())  # no FStockID on its lines
    run_flow()
    assert [n["name"] for n in world.notes()] == [bare] and "delivery_warehouse_id" not in world.notes()[0]

    require(world)
    good, missing = world.order(), world.order()
    good_no = world.audited_notice(good, stocks=("CK001", "CK001"))
    missing_no = world.audited_notice(missing)
    with pytest.raises(Exception, match="failed"):  # report fails visibly after the good notice landed
        run_flow()

    assert sorted(n["name"] for n in world.notes()) == sorted([bare, good_no])
    [(kind, reason)] = outcomes(world, missing_no)
    assert kind == "failed" and missing_no in reason and "发货仓库" in reason and "delivery_warehouse_id" in reason


def test_a_line_whose_order_line_is_unknown_parks_its_notice_with_the_reason_and_others_still_land(world):
    require(world)
    known = world.order()
    # Two CRM lines of one product and no line id map: which CRM line a K3Cloud line delivers is not knowable.
    twin = world.order(line_map=False, materials=("MAT-0004", "MAT-0004"))
    known_no = world.audited_notice(known, stocks=("CK001", "CK001"))
    twin_no = world.audited_notice(twin, stocks=("CK001", "CK001"))

    run_flow()

    assert [n["name"] for n in world.notes()] == [known_no]
    [(kind, reason)] = outcomes(world, twin_no)
    assert kind == "parked" and "CRM order line for sale order entry" in reason and "FSOEntryId" in reason
    assert [p.source_id for p in world.store.list_parked("delivery", None)] != []


def test_lines_from_two_warehouses_are_reported_not_merged(world):
    order = world.order()
    number = world.audited_notice(order, stocks=("CK001", "CK002"))
    run_flow()
    assert world.notes() == []
    [(kind, reason)] = outcomes(world, number)
    assert kind == "reported" and "2 warehouses (CK001, CK002)" in reason


def test_a_warehouse_the_crm_does_not_know_parks_the_notice(world):
    world.k3.save("BD_STOCK", {"FStockId": 0, "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                               "FNumber": "CK009", "FName": "外租仓", "FStockProperty": "1"}, IsAutoSubmitAndAudit=True)
    number = world.audited_notice(world.order(), stocks=("CK009", "CK009"))
    run_flow()
    [(kind, reason)] = outcomes(world, number)
    assert kind == "parked" and "CRM warehouse for warehouse CK009" in reason
    assert world.notes() == []
