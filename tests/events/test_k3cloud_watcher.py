"""The K3Cloud audit watcher against the simulator over HTTP: rings on a new audit, not on an old one, and its
position survives a new trigger instance (a triggerer restart)."""

from __future__ import annotations

import asyncio

import pytest

from flows_deliveries.world import NOTICE, World
from fxiaoke_k3cloud.events.k3cloud import K3CloudAuditTrigger
from fxiaoke_k3cloud.events.position import Position, PositionStore

FAST = {"poll_s": 0.05, "off_hours_poll_s": 0.05}


def poll(max_polls: int, **kwargs) -> list[dict]:
    """Run a fresh trigger instance (as a triggerer would after a restart) for ``max_polls`` polls."""

    async def collect() -> list[dict]:
        trigger = K3CloudAuditTrigger(pacing=FAST, max_polls=max_polls, **kwargs)
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


@pytest.fixture
def world(k3cloud, fxiaoke, store):
    return World(k3cloud, fxiaoke, store)


def audited(world: World) -> tuple[str, int]:
    number = world.audited_notice(world.order(sent_by_crm=False))
    fid = world.k3.find_by_number(NOTICE, number)[0]["FID"]
    return number, int(fid)


def test_first_start_rings_once_for_what_came_before_and_stores_it(world, store):
    _, fid = audited(world)
    assert [e["record_id"] for e in poll(3)] == [str(fid)]
    stored = PositionStore(store).get("k3cloud_audited_delivery_notices")
    assert stored is not None and stored.at_ms > 0 and stored.record_id == str(fid)
    assert poll(2) == []


def test_a_receipt_bill_audit_rings_the_receipts_watcher_only(world, store):
    from flows_receipts.world import RECEIPT, ReceiptWorld

    receipts = {"form_id": RECEIPT, "name": "k3cloud_audited_receipt_bills"}
    assert poll(1, **receipts) == [] and poll(1) == []
    number = ReceiptWorld(world.k3sim, world.fxsim, store).pushed_receipt(world.order(sent_by_crm=False))
    fid = str(world.k3.find_by_number(RECEIPT, number)[0]["FID"])
    events = poll(3, **receipts)
    assert [(e["record_id"], e["form_id"], e["watcher"]) for e in events] == [(fid, RECEIPT, receipts["name"])]
    assert poll(2) == []  # the delivery-notice watcher heard nothing
    assert PositionStore(store).get("k3cloud_audited_receipt_bills").record_id == fid


def test_new_audit_rings_once_and_old_one_never_again(world, store):
    assert poll(1) == []  # no notice yet: position (0, "")
    number, fid = audited(world)
    events = poll(3)
    assert [e["record_id"] for e in events] == [str(fid)]
    assert events[0]["form_id"] == NOTICE and events[0]["watcher"] == "k3cloud_audited_delivery_notices"
    # A new instance (triggerer restart) reads the stored position: the same audit rings no second bell.
    assert poll(3) == []
    _, fid2 = audited(world)
    assert [e["record_id"] for e in poll(2)] == [str(fid2)]
    assert PositionStore(store).get("k3cloud_audited_delivery_notices").record_id == str(fid2)


def test_unaudited_then_reaudited_notice_rings_again(world, store):
    poll(1)
    number, fid = audited(world)
    assert len(poll(1)) == 1
    world.k3.unaudit(NOTICE, numbers=[number])
    assert poll(1) == []  # the un-audit leaves the result; nothing newer
    world.k3.submit(NOTICE, numbers=[number])
    world.k3.audit(NOTICE, numbers=[number])
    assert [e["record_id"] for e in poll(1)] == [str(fid)]  # newer FApproveDate, same FID


def test_errors_back_off_and_never_end_the_watcher(world, store, k3cloud):
    poll(1)
    k3cloud.faults({"error_rate": 1.0})
    assert poll(3) == []
    polled = PositionStore(store).last_poll("k3cloud_audited_delivery_notices")
    assert polled is not None and polled[1] == "TransportError"
    k3cloud.faults({})
    _, fid = audited(world)
    assert [e["record_id"] for e in poll(2)] == [str(fid)]
    assert PositionStore(store).last_poll("k3cloud_audited_delivery_notices")[1] == "ok"


def test_signed_mode_watcher_rings(world, store, k3cloud, monkeypatch):
    from simproc import k3cloud_conn

    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_SIGNED", k3cloud_conn(k3cloud, auth_mode="signed"))
    poll(1, k3cloud_conn_id="k3cloud_signed", name="signed_watch")
    _, fid = audited(world)
    assert [e["record_id"] for e in poll(1, k3cloud_conn_id="k3cloud_signed", name="signed_watch")] == [str(fid)]


def test_position_orders_by_time_then_numeric_id():
    assert Position(1, "9") < Position(1, "10") < Position(2, "1")
    assert not Position(5, "3") < Position(5, "3")


def test_session_loss_is_answered_by_one_relogin(world, store, k3cloud):
    poll(1)
    _, fid = audited(world)
    logins = lambda: sum(n for k, n in k3cloud.stats()["calls"].items() if "validateuser" in k.lower())  # noqa: E731
    before = logins()
    k3cloud.faults({"session_loss_every": 2})  # every second business call finds its session lost
    events = poll(4)
    k3cloud.faults({})
    assert [e["record_id"] for e in events] == [str(fid)]
    assert logins() - before >= 2  # the first login, and one more after each lost session
    assert PositionStore(store).last_poll("k3cloud_audited_delivery_notices")[1] == "ok"


def test_refused_login_is_logged_by_class_without_the_secret(world, store, k3cloud, monkeypatch, caplog, capfd):
    import logging

    from simproc import K3, k3cloud_conn

    wrong = "WRONG-pass-9f8e7d6c"
    conn = k3cloud_conn(k3cloud).replace(K3["password"], wrong)
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_WRONG", conn)
    with caplog.at_level(logging.DEBUG):
        assert poll(2, k3cloud_conn_id="k3cloud_wrong", name="wrong_watch") == []
    out, err = capfd.readouterr()
    logged = caplog.text + out + err  # Airflow's structlog writes the trigger's log lines to the stream
    assert "AuthenticationError" in logged
    assert wrong not in logged and K3["password"] not in logged
    assert PositionStore(store).last_poll("wrong_watch")[1] == "AuthenticationError"
