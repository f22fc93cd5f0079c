"""watcher_states: what the monitor shows per watcher — last poll, result, position, silent — from the store a
real watcher wrote while polling the K3Cloud simulator over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from flows_deliveries.world import NOTICE, World
from fxiaoke_k3cloud.events import assets
from fxiaoke_k3cloud.events.k3cloud import K3CloudAuditTrigger
from fxiaoke_k3cloud.events.status import WATCHERS, watcher_states
from fxiaoke_k3cloud.errors import ConfigError

FAST = {"poll_s": 0.05, "off_hours_poll_s": 0.05}
KEYS = {"name", "source", "form", "mode", "expected", "last_polled_ms", "last_result", "last_error", "position_ms",
        "position_record_id", "poll_s", "threshold_s", "seconds_since_poll", "silent"}


def poll(max_polls: int) -> list[dict]:
    async def collect() -> list[dict]:
        trigger = K3CloudAuditTrigger(pacing=FAST, max_polls=max_polls)
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def k3_state(store, **kwargs) -> dict:
    return next(s for s in watcher_states(store, **kwargs) if s["name"] == assets.K3CLOUD_AUDITED_DELIVERY_NOTICES)


@pytest.fixture(autouse=True)
def settings(monkeypatch):
    for name in ("SYNC_K3CLOUD_EVENTS", "SYNC_FXIAOKE_EVENTS", "SYNC_K3CLOUD_POLL_S", "SYNC_K3CLOUD_OFF_HOURS_POLL_S",
                 "SYNC_WATCHER_SILENT_S", "SYNC_BUSINESS_HOURS"):
        monkeypatch.delenv(name, raising=False)
    # The 5 s interval at any hour: the thresholds below hold whenever the suite runs (off hours it is 60 s).
    monkeypatch.setenv("SYNC_K3CLOUD_OFF_HOURS_POLL_S", "5")


def test_names_are_the_assets_watchers():
    from fxiaoke_k3cloud.flows.specs import FLOWS

    built = {}
    for flow in FLOWS:  # one asset per registry flow, its watcher on the flow's source form / object
        (watcher,) = assets.flow_asset(flow).watchers
        built[watcher.trigger.name] = getattr(watcher.trigger, "form_id", None) or watcher.trigger.object_api_name
    assert {w.name: w.form for w in WATCHERS} == built
    assert [w.name for w in WATCHERS] == [assets.K3CLOUD_AUDITED_DELIVERY_NOTICES, "k3cloud_audited_receipt_bills",
                                          assets.FXIAOKE_CHANGED_ACCOUNTS, assets.FXIAOKE_CHANGED_ORDERS,
                                          "fxiaoke_changed_contacts"]


def test_a_watcher_that_never_polled_is_silent_when_it_should_run(store, monkeypatch):
    states = watcher_states(store)
    assert [set(s) for s in states] == [KEYS] * len(WATCHERS)
    k3 = states[0]
    assert k3["expected"] and k3["silent"] and k3["last_polled_ms"] is None and k3["position_ms"] is None
    monkeypatch.setenv("SYNC_K3CLOUD_EVENTS", "push")
    k3 = k3_state(store)
    assert k3["mode"] == "push" and not k3["expected"] and not k3["silent"]


def test_state_after_real_polls_then_silence(k3cloud, fxiaoke, store, monkeypatch):
    world = World(k3cloud, fxiaoke, store)
    number = world.audited_notice(world.order(sent_by_crm=False))
    fid = str(world.k3.find_by_number(NOTICE, number)[0]["FID"])
    assert len(poll(2)) == 1
    k3 = k3_state(store)
    assert k3["last_result"] == "ok" and k3["last_error"] is None and not k3["silent"]
    assert k3["position_record_id"] == fid and k3["position_ms"] > 0
    assert 0 <= k3["seconds_since_poll"] < 30
    assert k3["threshold_s"] == 300.0  # max(300, 10 × 5 s)
    # Ten minutes on with no poll recorded: silent.
    later = k3_state(store, now_ms=k3["last_polled_ms"] + 600_000)
    assert later["silent"] and later["seconds_since_poll"] == 600.0
    monkeypatch.setenv("SYNC_WATCHER_SILENT_S", "900")
    assert not k3_state(store, now_ms=k3["last_polled_ms"] + 600_000)["silent"]
    monkeypatch.setenv("SYNC_WATCHER_SILENT_S", "soon")
    with pytest.raises(ConfigError, match="SYNC_WATCHER_SILENT_S"):
        watcher_states(store)


def test_failing_polls_are_errors_not_silence(k3cloud, store):
    k3cloud.faults({"error_rate": 1.0})
    assert poll(1) == []
    k3 = k3_state(store)
    assert k3["last_result"] == "error" and k3["last_error"] == "TransportError" and not k3["silent"]
