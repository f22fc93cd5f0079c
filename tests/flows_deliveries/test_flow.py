"""The deliveries flow end to end against both simulators over HTTP (steps called as the DAG calls them)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from .world import NOTICE, REP, run_flow


def outcomes(world, number):
    return [h["outcome"] for h in world.history(number)]


@pytest.mark.parametrize("via_id_map", [True, False], ids=["order-id-map", "FNetOrderBillNo"])
def test_notice_reaches_crm_once_with_one_message_when_its_window_is_rerun(world, via_id_map):
    order = world.order(id_map=via_id_map)
    number = world.audited_notice(order)
    creates_before = world.crm_calls("/data/create")

    window = world.window()
    for _ in range(3):
        run_flow(**window)

    notes = world.notes()
    assert [(n["name"], n["sales_order_id"]) for n in notes] == [(number, order.crm_id)]
    lines = world.note_lines()
    assert sorted(float(line["delivery_num"]) for line in lines) == [2.0, 3.0]
    assert {line["delivery_note_id"] for line in lines} == {notes[0]["_id"]}
    assert {line["sales_order_id"] for line in lines} == {order.crm_id}
    messages = world.messages()
    assert len(messages) == 1 and messages[0]["toUser"] == [REP] and number in str(messages[0])
    assert world.fx.get_record("SalesOrderObj", order.crm_id)["order_status"] == "10"
    assert world.crm_calls("/data/create") - creates_before == 1
    assert outcomes(world, number) == ["created", "unchanged", "unchanged"]
    entry = world.store.get_id_map("delivery", [str(world.k3.find_by_number(NOTICE, number)[0]["FID"])])
    assert [e.target_id for e in entry.values()] == [notes[0]["_id"]]


def test_notice_for_an_order_the_crm_never_sent_is_reported_not_dropped(world):
    crm_order = world.order()
    k3_only = world.order(sent_by_crm=False)
    synced, orphan = world.audited_notice(crm_order), world.audited_notice(k3_only)

    counts = run_flow()

    assert [n["name"] for n in world.notes()] == [synced]
    history = world.history(orphan)
    assert [h["outcome"] for h in history] == ["reported"]
    assert "was not sent by the CRM" in history[0]["reason"] and k3_only.number in history[0]["reason"]
    assert counts["created"] == 1 and len(world.messages()) == 1


def test_unaudit_after_sync_is_reported_and_nothing_is_sent_again(world):
    number = world.audited_notice(world.order())
    run_flow()
    world.k3.unaudit(NOTICE, numbers=[number])

    run_flow()

    history = world.history(number)
    assert [h["outcome"] for h in history] == ["created", "reported"]
    assert "un-audited" in history[-1]["reason"] and history[-1]["target_id"] == world.notes()[0]["_id"]
    assert len(world.notes()) == 1 and len(world.messages()) == 1

    world.k3.submit(NOTICE, numbers=[number])
    world.k3.audit(NOTICE, numbers=[number])
    run_flow()  # re-audited: the note is the same one, the owner is not told twice
    assert len(world.notes()) == 1 and len(world.messages()) == 1
    assert outcomes(world, number)[-1] in ("unchanged", "updated")


def test_deleted_notice_after_sync_is_reported_once(world):
    number = world.audited_notice(world.order())
    run_flow()
    world.k3.unaudit(NOTICE, numbers=[number])
    world.k3.delete(NOTICE, numbers=[number])

    run_flow()
    run_flow(since="2020-01-01T00:00:00")  # another window: the deletion is not reported again

    reasons = [h["reason"] for h in world.history(number) if h["outcome"] == "reported"]
    assert len(reasons) == 1 and "deleted in K3Cloud" in reasons[0]
    assert len(world.notes()) == 1


def test_a_run_with_ids_writes_exactly_those_notices_and_keeps_the_watermark(world):
    wanted, other = world.audited_notice(world.order()), world.audited_notice(world.order())
    fid = world.k3.find_by_number(NOTICE, wanted)[0]["FID"]

    counts = run_flow(ids=[str(fid)])  # as the trigger form's `ids` (strings) or a re-drive passes them

    assert [n["name"] for n in world.notes()] == [wanted]
    assert len(world.messages()) == 1 and wanted in str(world.messages()[0])
    assert counts["created"] == 1 and outcomes(world, other) == []
    assert world.store.get_watermark("deliveries") is None


def test_dry_run_writes_nothing_and_keeps_the_watermark(world):
    number = world.audited_notice(world.order())

    run_flow(dry_run=True)

    assert world.notes() == [] and world.messages() == []
    assert outcomes(world, number) == ["skipped"]
    assert world.store.get_watermark("deliveries") is None


def test_product_missing_in_crm_parks_the_notice_and_a_later_run_releases_it(world):
    order = world.order(materials=("MAT-0003",))
    number = world.audited_notice(order)
    product = next(p for p in world.fxsim.records("ProductObj") if p["product_code"] == "MAT-0003")
    world.fx.update_record("ProductObj", product["_id"], {"product_code": "MAT-0003-RENAMED"})

    run_flow()
    assert outcomes(world, number) == ["parked"] and world.notes() == []

    world.fx.update_record("ProductObj", product["_id"], {"product_code": "MAT-0003"})
    run_flow(since="2020-01-01T00:00:00", until="2020-01-01T01:00:00")  # an empty window: re-read as parked
    assert outcomes(world, number) == ["parked", "created"]
    assert [p.status for p in world.store.list_parked("delivery", None)] == ["released"]


def test_a_refused_owner_message_fails_the_report_without_duplicating_the_note(world):
    order = world.order()
    number = world.audited_notice(order)
    # An owner the directory does not know (a rep who left): /cgi/message/send answers 11016.
    stored = next(o for o in world.fxsim.records("SalesOrderObj") if o["_id"] == order.crm_id)
    world.fxsim.seed({"objects": {"SalesOrderObj": [{**stored, "owner": ["FSUID_GONE"]}]}})
    window = world.window()
    creates_before = world.crm_calls("/data/create")

    for _ in range(2):
        with pytest.raises(AirflowFailException):
            run_flow(**window)

    history = world.history(number)
    assert [h["outcome"] for h in history] == ["failed", "failed"]
    assert "owner message" in history[0]["reason"] and "11016" in history[0]["reason"]
    assert len(world.notes()) == 1 and world.messages() == []
    assert world.crm_calls("/data/create") - creates_before == 1
