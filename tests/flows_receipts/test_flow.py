"""The receipts flow end to end against both simulators over HTTP (steps called as the DAG calls them)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fxiaoke_k3cloud.audit import IdMapEntry

from .world import RECEIPT, run_flow


def test_pushed_receipt_lands_once_as_a_payment_with_its_order_line_and_the_order_shows_paid_and_owed(world):
    order = world.order()  # two lines: 2 × 10 + 3 × 10 = 50
    number = world.pushed_receipt(order, amount=30)
    creates_before = world.crm_calls("/data/create")

    window = world.window()
    for _ in range(3):
        run_flow(**window)

    [payment] = world.payments()
    assert payment["name"] == number and float(payment["payment_amount"]) == 30.0
    assert payment["order_id"] == order.crm_id and payment["payment_term"] == "3"  # 电汇 → 银行转账
    [line] = world.payment_lines()
    assert (line["payment_id"], line["order_id"], float(line["payment_amount"])) == (payment["_id"], order.crm_id, 30.0)
    assert world.paid_owed(order.crm_id) == (30.0, 20.0)
    assert world.crm_calls("/data/create") - creates_before == 1
    assert world.outcomes(number) == ["created", "unchanged", "unchanged"]
    fid = str(world.k3_doc(RECEIPT, number)["FID"])
    assert world.store.get_id_map("receipt", [fid])[fid].target_id == payment["_id"]


def test_hand_entered_receipt_pays_two_orders_matched_as_k3cloud_compares_numbers(world):
    first, second = world.order(), world.order()
    # typed in lower case on the second line: K3Cloud numbers are case-insensitive, so it is the same order
    number = world.hand_receipt(first.customer, [(first.number, 12.5), (second.number.lower(), 7.5)])

    run_flow()

    [payment] = world.payments()
    assert payment["name"] == number and float(payment["payment_amount"]) == 20.0 and "order_id" not in payment
    assert payment["remark"] == "手工收款"
    lines = sorted((line["order_id"], float(line["payment_amount"])) for line in world.payment_lines())
    assert lines == sorted([(first.crm_id, 12.5), (second.crm_id, 7.5)])
    assert world.paid_owed(first.crm_id) == (12.5, 37.5) and world.paid_owed(second.crm_id) == (7.5, 42.5)


def test_unaudit_voids_the_payment_and_a_reaudit_writes_it_again(world):
    order = world.order()
    number = world.pushed_receipt(order)
    run_flow()
    assert world.paid_owed(order.crm_id) == (50.0, 0.0)
    world.k3.unaudit(RECEIPT, numbers=[number])

    run_flow()
    run_flow()  # nothing more to void

    assert world.payments() == [] and world.payment_lines() == []
    assert [p["life_status"] for p in world.payments(live=False)] == ["invalid"]
    assert world.paid_owed(order.crm_id) == (0.0, 50.0)
    history = world.history(number)
    assert [h["outcome"] for h in history] == ["created", "updated"]
    assert "un-audited" in history[-1]["reason"] and "voided" in history[-1]["reason"]

    world.audit(number)
    run_flow()
    [payment] = world.payments()
    assert payment["name"] == number and world.paid_owed(order.crm_id) == (50.0, 0.0)
    assert world.outcomes(number)[-1] == "created"


def test_receipt_for_an_order_not_synced_yet_is_parked_and_lands_once_the_order_is(world):
    order = world.order(sent_by_crm=False)  # in K3Cloud only: no id map entry, no FNetOrderBillNo
    number = world.pushed_receipt(order)

    run_flow()
    history = world.history(number)
    assert [h["outcome"] for h in history] == ["parked"] and world.payments() == []
    assert order.number in history[0]["reason"] and "orders id map" in history[0]["reason"]

    crm_id, account_id = world.crm_order(order.number)  # the orders flow syncs the order: CRM twin + id map
    world.store.upsert_id_map("order", [IdMapEntry(source_id=crm_id, target_id=str(order.fid), target_number=order.number)])
    run_flow(since="2020-01-01T00:00:00", until="2020-01-01T01:00:00")  # an empty window: re-read as parked

    [payment] = world.payments()
    assert payment["order_id"] == crm_id and payment["account_id"] == account_id
    assert world.outcomes(number) == ["parked", "created"]
    assert [p.status for p in world.store.list_parked("receipt", None)] == ["released"]


def test_an_entry_without_a_sale_order_is_reported_not_dropped(world):
    order = world.order()
    number = world.hand_receipt(order.customer, [(order.number, 10), (None, 5)])

    run_flow()

    history = world.history(number)
    assert [h["outcome"] for h in history] == ["reported"] and "FSALEORDERNO is empty" in history[0]["reason"]
    assert world.payments() == []


def test_two_runs_at_once_write_each_bill_once(world):
    bills = [world.pushed_receipt(world.order()) for _ in range(3)]
    window = world.window()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: run_flow(**window), range(2)))

    assert sorted(p["name"] for p in world.payments(live=False)) == sorted(bills)
    assert len(world.payment_lines(live=False)) == 3
    for number in bills:
        assert world.outcomes(number).count("created") == 1


def test_dry_run_writes_nothing_and_keeps_the_watermark(world):
    number = world.pushed_receipt(world.order())

    run_flow(dry_run=True)

    assert world.payments(live=False) == []
    assert world.outcomes(number) == ["skipped"]
    assert world.store.get_watermark("receipts") is None


def test_reaudited_with_another_amount_replaces_the_payment_and_the_order_follows(world):
    order = world.order()
    number = world.pushed_receipt(order, amount=20)
    run_flow()
    [old] = world.payments()
    world.k3.unaudit(RECEIPT, numbers=[number])
    doc = world.k3_doc(RECEIPT, number)
    world.k3.save(RECEIPT, {"FID": doc["FID"], "FRECEIVEBILLENTRY": [
        {"FEntryID": doc["FRECEIVEBILLENTRY"][0]["FEntryID"], "FRECAMOUNTFOR_E": 45}]}, IsDeleteEntry=False)
    world.audit(number)  # un-audited and re-audited between two runs: the flow sees only the new amount

    run_flow()
    run_flow()

    [new] = world.payments()
    assert new["_id"] != old["_id"] and float(new["payment_amount"]) == 45.0
    assert {p["_id"]: p["life_status"] for p in world.payments(live=False)}[old["_id"]] == "invalid"
    assert world.paid_owed(order.crm_id) == (45.0, 5.0)
    assert world.outcomes(number) == ["created", "updated", "unchanged"]
    assert "voided" in world.history(number)[1]["reason"]


def test_a_receipt_deleted_after_sync_voids_its_payment_once(world):
    order = world.order()
    number = world.pushed_receipt(order)
    run_flow()
    world.k3.unaudit(RECEIPT, numbers=[number])
    world.k3.delete(RECEIPT, numbers=[number])

    run_flow(since="2020-01-01T00:00:00", until="2020-01-01T01:00:00")  # the un-audit is outside this window
    run_flow(since="2020-01-01T00:00:00", until="2020-01-01T01:00:00")

    assert world.payments() == [] and world.paid_owed(order.crm_id) == (0.0, 50.0)
    history = world.history(number)
    assert [h["outcome"] for h in history] == ["created", "updated"] and "deleted in K3Cloud" in history[1]["reason"]
