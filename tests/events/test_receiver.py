"""The push receiver over HTTP, recording real asset events in Airflow's metadata DB: a signed push rings the
deliveries DAG's asset; a bad, missing or stale signature is refused and records nothing; a replay is harmless;
the K3Cloud simulator's Audit/UnAudit callback (the stand-in for a service plug-in) reaches it."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import uvicorn

from flows.conftest import airflow_db  # noqa: F401
from flows_deliveries.world import NOTICE, World
from fxiaoke_k3cloud.events import receiver
from fxiaoke_k3cloud.events.signing import sign
from simproc import SimulatorProcess, free_port, k3cloud_conn
from test_dag_integrity import ROOT

SECRET = "test-push-secret-0123456789"
ASSET = "k3cloud_audited_delivery_notices"
DAG_ID = "k3cloud_deliveries_to_fxiaoke"


@pytest.fixture(scope="module")
def known_asset(airflow_db):
    """The deliveries DAG parsed into the metadata DB (asset active), unpaused, as the dag-processor leaves it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(DagBag(dag_folder=str(ROOT / "dags" / "k3cloud_deliveries_to_fxiaoke.py")), "dags-folder", None)
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == DAG_ID).values(is_paused=False))
    return ASSET


def events(asset: str = ASSET) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetEvent.extra).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                               .where(AssetModel.name == asset).order_by(AssetEvent.id)).all()
    return [r.extra for r in rows]


def queued_runs() -> list[str]:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(session.scalars(select(AssetDagRunQueue.target_dag_id)))


@pytest.fixture
def clean_events(known_asset):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(AssetDagRunQueue))
        session.execute(delete(AssetEvent))


@pytest.fixture
def server(clean_events, monkeypatch):
    """The receiver app on a real port, its secret in the Airflow connection sync_push_k3cloud."""
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_PUSH_K3CLOUD", json.dumps({"conn_type": "generic", "password": SECRET}))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(receiver.create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/k3cloud/audit"
    srv.should_exit = True
    thread.join(10)


def push(url: str, body: dict, *, secret: str = SECRET, ts: int | None = None, signature: str | None = None) -> requests.Response:
    raw = json.dumps(body).encode()
    ts = int(time.time()) if ts is None else ts
    headers = {"Content-Type": "application/json", "X-Sync-Timestamp": str(ts),
               "X-Sync-Signature": signature or sign(secret, ts, raw)}
    return requests.post(url, data=raw, headers=headers, timeout=10)


AUDIT = {"form_id": "SAL_DELIVERYNOTICE", "operation": "Audit", "numbers": ["FHTZD000123"], "ids": [100123], "event_id": "e1"}


def test_signed_push_records_one_asset_event_and_queues_the_dag(server):
    answer = push(server, AUDIT)
    assert answer.status_code == 200 and answer.json()["recorded"] is True
    (extra,) = events()
    assert extra["numbers"] == ["FHTZD000123"] and extra["operation"] == "Audit" and extra["source"] == "push"
    assert queued_runs() == [DAG_ID]


@pytest.mark.parametrize("how", ["wrong secret", "tampered body", "stale", "future", "missing"])
def test_bad_signatures_are_refused_and_record_nothing(server, how):
    raw = json.dumps(AUDIT).encode()
    ts = int(time.time())
    if how == "wrong secret":
        answer = push(server, AUDIT, secret="not-the-secret")
    elif how == "tampered body":
        answer = push(server, {**AUDIT, "numbers": ["OTHER"]}, signature=sign(SECRET, ts, raw), ts=ts)
    elif how == "stale":
        answer = push(server, AUDIT, ts=ts - 301)
    elif how == "future":
        answer = push(server, AUDIT, ts=ts + 301)
    else:
        answer = requests.post(server, data=raw, headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 401, answer.text
    assert SECRET not in answer.text
    assert events() == [] and queued_runs() == []


def test_replay_is_harmless(server):
    ts = int(time.time())
    raw = json.dumps(AUDIT).encode()
    first = push(server, AUDIT, ts=ts, signature=sign(SECRET, ts, raw))
    again = push(server, AUDIT, ts=ts, signature=sign(SECRET, ts, raw))
    assert first.json()["recorded"] is True
    assert again.status_code == 200 and again.json() == {"recorded": False, "replay": True, "asset": ASSET}
    assert len(events()) == 1


def test_bad_fields_are_named(server):
    answer = push(server, {**AUDIT, "form_id": "SAL_SaleOrder"})
    assert answer.status_code == 422 and "form_id" in answer.json()["detail"]
    answer = push(server, {**AUDIT, "operation": "Delete"})
    assert answer.status_code == 422 and "operation" in answer.json()["detail"]
    assert events() == []


def test_receiver_without_its_connection_refuses_everything(server, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SYNC_PUSH_K3CLOUD")
    url = server.replace("/k3cloud/audit", "/fxiaoke/change")
    answer = push(url, {"object_api_name": "AccountObj", "data_id": "x"})
    assert answer.status_code == 503 and "sync_push_fxiaoke" in answer.json()["detail"]


@pytest.fixture
def calling_sim(server, monkeypatch):
    """A K3Cloud simulator whose Audit/UnAudit call the receiver (K3SIM_OUTBOUND_URL / _SECRET)."""
    monkeypatch.setenv("K3SIM_OUTBOUND_URL", server)
    monkeypatch.setenv("K3SIM_OUTBOUND_SECRET", SECRET)
    sim = SimulatorProcess("k3cloud").start()
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(sim))
    yield sim
    sim.stop()


def wait_for_events(count: int, timeout: float = 10.0, asset: str = ASSET) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(asset)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    return events(asset)


def test_simulator_audit_and_unaudit_callbacks_reach_the_receiver(calling_sim):
    world = World(calling_sim, None, None)
    number = world.audited_notice(world.order(sent_by_crm=False))
    (audit,) = wait_for_events(1)
    assert audit["operation"] == "Audit" and audit["numbers"] == [number] and audit["form_id"] == NOTICE
    world.k3.unaudit(NOTICE, numbers=[number])
    found = wait_for_events(2)
    assert [e["operation"] for e in found] == ["Audit", "UnAudit"]
    assert queued_runs() == [DAG_ID]  # two bells, one queued run


def test_simulator_receipt_bill_audit_rings_the_receipts_asset(calling_sim):
    """AR_RECEIVEBILL audits reach the receiver too, and wake the receipts DAG (its asset from the registry)."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    from flows_receipts.world import RECEIPT, ReceiptWorld

    sync_bag_to_db(DagBag(dag_folder=str(ROOT / "dags" / "k3cloud_receipts_to_fxiaoke.py")), "dags-folder", None)
    world = ReceiptWorld(calling_sim, None, None)
    number = world.pushed_receipt(world.order(sent_by_crm=False))
    (audit,) = wait_for_events(1, asset="k3cloud_audited_receipt_bills")
    assert audit["form_id"] == RECEIPT and audit["operation"] == "Audit" and audit["numbers"] == [number]
    assert events() == []  # the delivery notices' asset heard nothing
    assert queued_runs() == ["k3cloud_receipts_to_fxiaoke"]


def test_audit_succeeds_when_the_receiver_is_down(clean_events, monkeypatch):
    monkeypatch.setenv("K3SIM_OUTBOUND_URL", f"http://127.0.0.1:{free_port()}/k3cloud/audit")
    monkeypatch.setenv("K3SIM_OUTBOUND_SECRET", SECRET)
    sim = SimulatorProcess("k3cloud").start()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(sim))
        world = World(sim, None, None)
        number = world.audited_notice(world.order(sent_by_crm=False))
        assert world.k3.find_by_number(NOTICE, number, ["FDocumentStatus"])[0]["FDocumentStatus"] == "C"
    finally:
        sim.stop()


def test_fxiaoke_push_rings_the_orders_asset(known_asset, clean_events, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    sync_bag_to_db(DagBag(dag_folder=str(ROOT / "dags" / "fxiaoke_orders_to_k3cloud.py")), "dags-folder", None)
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_PUSH_FXIAOKE", json.dumps({"conn_type": "generic", "password": SECRET}))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(receiver.create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        while not srv.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/fxiaoke/change"
        answer = push(url, {"object_api_name": "SalesOrderObj", "data_id": "6b1000000000000000000001", "event_id": "f1"})
        assert answer.status_code == 200, answer.text
        (extra,) = events("fxiaoke_changed_sales_orders")
        assert extra["ids"] == ["6b1000000000000000000001"] and extra["object_api_name"] == "SalesOrderObj"
        assert push(url, {"object_api_name": "LeadsObj", "data_id": "x"}).status_code == 422  # no flow reads it
        sync_bag_to_db(DagBag(dag_folder=str(ROOT / "dags" / "fxiaoke_contacts_to_k3cloud.py")), "dags-folder", None)
        answer = push(url, {"object_api_name": "contactobj", "data_id": "6c1000000000000000000001", "event_id": "f2"})
        assert answer.status_code == 200 and answer.json()["asset"] == "fxiaoke_changed_contacts", answer.text
        assert [e["ids"] for e in events("fxiaoke_changed_contacts")] == [["6c1000000000000000000001"]]
        assert events() == []  # the deliveries asset heard nothing
    finally:
        srv.should_exit = True
        thread.join(10)


def test_airflow_api_server_serves_the_receiver_without_an_airflow_login(clean_events, monkeypatch):
    """The plugin mounts the receiver in Airflow's own api-server app: the signature is its only authentication."""
    from airflow.api_fastapi.app import create_app as create_airflow_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW_CONN_SYNC_PUSH_K3CLOUD", json.dumps({"conn_type": "generic", "password": SECRET}))
    client = TestClient(create_airflow_app("core"))
    raw = json.dumps(AUDIT).encode()
    ts = int(time.time())
    ok = client.post("/sync-hooks/k3cloud/audit", content=raw,
                     headers={"X-Sync-Timestamp": str(ts), "X-Sync-Signature": sign(SECRET, ts, raw)})
    assert ok.status_code == 200 and ok.json()["recorded"] is True, ok.text
    bad = client.post("/sync-hooks/k3cloud/audit", content=raw,
                      headers={"X-Sync-Timestamp": str(ts), "X-Sync-Signature": sign("guess", ts, raw)})
    assert bad.status_code == 401
    assert len(events()) == 1
