"""The deliveries DAG is scheduled on its asset OR its 15-minute timetable; the asset carries the watcher
(poll) or none (push / schedule); the pacing slows down outside business hours and backs off with jitter."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.events import assets
from fxiaoke_k3cloud.events.k3cloud import K3CloudAuditTrigger
from fxiaoke_k3cloud.events.pacing import Pacing


def test_deliveries_dag_runs_on_the_asset_or_every_15_minutes():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable

    from test_dag_integrity import ROOT

    dag = DagBag(dag_folder=str(ROOT / "dags" / "k3cloud_deliveries_to_fxiaoke.py")).dags["k3cloud_deliveries_to_fxiaoke"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert isinstance(dag.timetable.timetable, CronDataIntervalTimetable)
    assert dag.max_active_runs == 1
    (asset,) = dag.timetable.asset_condition.objects
    assert asset.name == "k3cloud_audited_delivery_notices"
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, K3CloudAuditTrigger)
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "fxiaoke_k3cloud.events.k3cloud.K3CloudAuditTrigger"
    assert kwargs["pacing"]["poll_s"] == 5.0 and kwargs["k3cloud_conn_id"] == "k3cloud_default"
    assert not any("secret" in k or "password" in k for k in kwargs)
    assert K3CloudAuditTrigger(**kwargs).serialize() == (classpath, kwargs)  # the triggerer re-inflates it


@pytest.mark.parametrize("mode", ["push", "schedule"])
def test_push_and_schedule_modes_have_no_watcher(monkeypatch, mode):
    monkeypatch.setenv("SYNC_K3CLOUD_EVENTS", mode)
    assert assets.k3cloud_audited_delivery_notices().watchers == []


def test_poll_interval_and_bad_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("SYNC_K3CLOUD_POLL_S", "2")
    (watcher,) = assets.k3cloud_audited_delivery_notices().watchers
    assert watcher.trigger.pacing.poll_s == 2.0
    monkeypatch.setenv("SYNC_K3CLOUD_EVENTS", "sometimes")
    with pytest.raises(ConfigError, match="SYNC_K3CLOUD_EVENTS"):
        assets.k3cloud_audited_delivery_notices()
    monkeypatch.setenv("SYNC_K3CLOUD_EVENTS", "poll")
    monkeypatch.setenv("SYNC_K3CLOUD_POLL_S", "fast")
    with pytest.raises(ConfigError, match="SYNC_K3CLOUD_POLL_S"):
        assets.k3cloud_audited_delivery_notices()


@pytest.mark.parametrize("flow", ["customers", "orders", "contacts", "deliveries", "receipts"])
def test_every_flow_dag_runs_on_its_registry_asset_or_every_15_minutes(flow):
    """The asset and its watcher come from the registry entry: the flow's source form (K3Cloud audits) or CRM object."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AssetOrTimeSchedule

    from fxiaoke_k3cloud.events.fxiaoke import FxiaokeChangeTrigger
    from fxiaoke_k3cloud.flows.specs import event_asset, flow_spec
    from test_dag_integrity import ROOT

    spec = flow_spec(flow)
    dag = DagBag(dag_folder=str(ROOT / "dags" / f"{spec.dag_id}.py")).dags[spec.dag_id]
    assert isinstance(dag.timetable, AssetOrTimeSchedule) and dag.max_active_runs == 1
    (asset,) = dag.timetable.asset_condition.objects
    assert asset.name == event_asset(spec) == assets.flow_asset(flow).name
    (watcher,) = asset.watchers
    trigger = watcher.trigger
    if spec.direction == "k3_to_crm":
        assert isinstance(trigger, K3CloudAuditTrigger) and trigger.form_id == spec.source_object
    else:
        assert isinstance(trigger, FxiaokeChangeTrigger) and trigger.object_api_name == spec.source_object
    assert trigger.name == asset.name  # the position key


def test_registry_assets_keep_their_names():
    assert [assets.flow_asset(f).name for f in ("deliveries", "receipts", "customers", "orders", "contacts")] == [
        "k3cloud_audited_delivery_notices", "k3cloud_audited_receipt_bills", "fxiaoke_changed_accounts",
        "fxiaoke_changed_sales_orders", "fxiaoke_changed_contacts"]
    (watcher,) = assets.k3cloud_audited_delivery_notices().watchers
    assert watcher.name == "k3cloud_delivery_notice_audits"  # the AssetWatcher name Airflow already knows
    with pytest.raises(ConfigError, match="LeadsObj"):
        assets.fxiaoke_changed("LeadsObj")


def test_a_flow_whose_source_is_not_watched_has_no_asset_and_no_watcher(monkeypatch):
    import dataclasses

    from fxiaoke_k3cloud.flows import specs

    invoices = dataclasses.replace(specs.FLOWS["receipts"], name="invoices", source_object="AR_RECEIVABLE")
    monkeypatch.setitem(specs.FLOWS, "invoices", invoices)
    with pytest.raises(ConfigError, match="AR_RECEIVABLE has no change event.*EVENT_ASSETS"):
        assets.flow_asset("invoices")
    assert "AR_RECEIVABLE" not in {form for _, form, _ in specs.event_sources()}  # nothing polls, nothing alerts
    monkeypatch.setitem(specs.EVENT_ASSETS, "AR_RECEIVABLE", "k3cloud_audited_receivables")
    assert assets.flow_asset("invoices").watchers[0].trigger.form_id == "AR_RECEIVABLE"
    assert ("k3cloud", "AR_RECEIVABLE", "k3cloud_audited_receivables") in specs.event_sources()


def test_crm_assets_watch_accounts_and_orders():
    accounts, orders = assets.fxiaoke_changed("AccountObj"), assets.fxiaoke_changed("SalesOrderObj")
    assert accounts.name == "fxiaoke_changed_accounts" and orders.name == "fxiaoke_changed_sales_orders"
    assert orders.watchers[0].trigger.object_api_name == "SalesOrderObj"
    assert orders.watchers[0].trigger.pacing.poll_s == 20.0


def test_pacing_business_hours_off_hours_and_jittered_backoff():
    pacing = Pacing(poll_s=5, off_hours_poll_s=60, max_backoff_s=120)
    tuesday_10 = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
    tuesday_22 = datetime(2026, 12, 1, 14, 0, tzinfo=timezone.utc)  # 22:00
    sunday_10 = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)
    assert pacing.delay(0, tuesday_10) == 5 and pacing.delay(0, tuesday_22) == 60 and pacing.delay(0, sunday_10) == 60
    rng = random.Random(7)
    waits = [pacing.delay(3, tuesday_10, rng) for _ in range(200)]
    assert all(5 <= w <= 40 for w in waits) and len({round(w, 3) for w in waits}) > 150  # jittered, capped at 5·2³
    assert max(pacing.delay(30, tuesday_10, rng) for _ in range(50)) <= 120
    with pytest.raises(ConfigError, match="business_hours"):
        Pacing(business_hours="morning")
