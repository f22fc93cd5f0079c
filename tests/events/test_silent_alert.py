"""The silent-watcher alert: a watcher that polled the K3Cloud simulator and then stopped is reported once per
silent spell to a Fxiaoke user (simulator, over HTTP), naming the watcher, its last poll, the audit waiting in
K3Cloud and what to do."""

from __future__ import annotations

import asyncio
import json

import pytest

from flows_deliveries.world import World
from fxiaoke_k3cloud import alerts
from fxiaoke_k3cloud.events import status
from fxiaoke_k3cloud.events.k3cloud import K3CloudAuditTrigger
from fxiaoke_k3cloud.events.status import watcher_states
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

ADMIN = "FSUID_0000000000000000000000000000A001"
NAME = "k3cloud_audited_delivery_notices"
TEN_MIN = 600_000


def poll(max_polls: int) -> None:
    async def go() -> None:
        async for _ in K3CloudAuditTrigger(pacing={"poll_s": 0.05, "off_hours_poll_s": 0.05}, max_polls=max_polls).run():
            pass

    asyncio.run(go())


@pytest.fixture
def world(k3cloud, fxiaoke, store, monkeypatch):
    for name in ("SYNC_K3CLOUD_EVENTS", "SYNC_K3CLOUD_POLL_S", "SYNC_WATCHER_SILENT_S", alerts.USERS_SETTING,
                 alerts.WEBHOOK_SETTING):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYNC_FXIAOKE_EVENTS", "schedule")  # only the K3Cloud watcher is expected to poll here
    # 5 s at any hour, so the threshold is 300 s whenever the test runs (off hours it was 10 × 60 s = 600 s, and
    # "silent for 600 s" was not past it: the test failed outside Shanghai business hours).
    monkeypatch.setenv("SYNC_K3CLOUD_OFF_HOURS_POLL_S", "5")
    # The delivery notices' watcher is the one under test; the receipt bills' (also K3Cloud, never polled here)
    # would be silent beside it.
    monkeypatch.setattr(status, "WATCHERS", tuple(w for w in status.WATCHERS if w.source == "fxiaoke" or w.name == NAME))
    return World(k3cloud, fxiaoke, store)


def alert(store, now_ms: int) -> list[str]:
    return alerts.alert_silent_watchers(store, k3cloud_hook=K3CloudHook(retry_wait_s=0), fxiaoke_hook=FxiaokeHook(retry_wait_s=0),
                                        to_users=[ADMIN], webhook_conn_id="", now_ms=now_ms)


def texts(fxiaoke) -> list[str]:
    return [m["text"]["content"] for m in fxiaoke._admin("GET", "messages") if m["toUser"] == [ADMIN]]


def test_silent_watcher_with_a_waiting_audit_is_reported_once_per_spell(world, store, fxiaoke):
    poll(1)  # no notice yet: position 0, one poll recorded
    polled = watcher_states(store)[0]["last_polled_ms"]
    assert alert(store, polled + 5_000) == [] and texts(fxiaoke) == []  # healthy: nothing sent

    waiting = world.audited_notice(world.order(sent_by_crm=False))  # audited while the watcher is silent
    assert alert(store, polled + TEN_MIN) == [NAME]
    [text] = texts(fxiaoke)
    assert NAME in text and "600 s ago" in text and "alert after 300 s" in text
    assert alerts._when(polled) in text
    assert f"{waiting} changed" in text  # the audit waiting in K3Cloud
    assert "triggerer" in text and "airflow jobs check --job-type TriggererJob" in text
    assert alert(store, polled + 2 * TEN_MIN) == [] and len(texts(fxiaoke)) == 1  # same spell: no storm

    poll(1)  # the watcher is back: it rings for the waiting audit and records a new poll
    back = watcher_states(store)[0]
    assert not back["silent"] and back["position_ms"] > 0
    assert alert(store, back["last_polled_ms"] + TEN_MIN) == [NAME]  # a new spell: a new alert
    assert "No change waiting" in texts(fxiaoke)[-1]


def test_a_watcher_that_never_polled_is_reported_and_push_mode_is_not(world, store, fxiaoke, monkeypatch):
    monkeypatch.setenv("SYNC_K3CLOUD_EVENTS", "push")
    assert alert(store, 10**13) == []
    monkeypatch.setenv("SYNC_K3CLOUD_EVENTS", "poll")
    assert alert(store, 10**13) == [NAME]
    assert "has never polled" in texts(fxiaoke)[0]
    assert alert(store, 10**13 + TEN_MIN) == []


def test_unreachable_source_is_said_and_nothing_configured_marks_nothing(world, store, fxiaoke, k3cloud, monkeypatch):
    poll(1)
    polled = watcher_states(store)[0]["last_polled_ms"]
    k3cloud.faults({"error_rate": 1.0})
    assert alert(store, polled + TEN_MIN) == [NAME]
    assert "Could not check the source" in texts(fxiaoke)[0]
    k3cloud.faults({})
    # No recipient: logged only, not marked, so a configured channel later still gets it.
    store.set_watermark("watch:k3cloud_audited_delivery_notices:polled", polled + 1, "ok")
    assert alerts.alert_silent_watchers(store, to_users=[], webhook_conn_id="", now_ms=polled + 2 * TEN_MIN) == []
    assert alert(store, polled + 2 * TEN_MIN) == [NAME]
    assert json.dumps(texts(fxiaoke), ensure_ascii=False).count(NAME) >= 2


def test_the_dags_task_reads_the_settings_and_alerts(world, store, fxiaoke, monkeypatch):
    monkeypatch.setenv(alerts.USERS_SETTING, ADMIN)
    monkeypatch.setenv("SYNC_WATCHER_SILENT_S", "120")
    store.set_watermark("watch:k3cloud_audited_delivery_notices:polled", 1_000, "ok")  # last poll long ago
    states = alerts.check_watchers()
    assert [s["name"] for s in states if s["silent"]] == [NAME]
    assert len(texts(fxiaoke)) == 1 and "alert after 120 s" in texts(fxiaoke)[0]
    alerts.check_watchers()  # the next 5-minute run: same spell, nothing more
    assert len(texts(fxiaoke)) == 1
