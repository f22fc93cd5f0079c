"""The event is only a doorbell: runs woken by the watcher (run_type asset_triggered) read from the watermark,
so a repeated event writes nothing twice and a lost one is made up by the next run (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from flows.conftest import airflow_db, audit_url, sims, store  # noqa: F401
from flows_deliveries.world import World
from fxiaoke_k3cloud.events.k3cloud import K3CloudAuditTrigger
from sync_state.flowrun import run_flow

FAST = {"poll_s": 0.05, "off_hours_poll_s": 0.05}


def ring(max_polls: int = 1) -> list[dict]:
    async def collect() -> list[dict]:
        trigger = K3CloudAuditTrigger(pacing=FAST, max_polls=max_polls)
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def woken_run(n: int) -> dict:
    result = run_flow("deliveries", run_id=f"asset_triggered__{n}", run_type="asset_triggered")
    assert result["ok"], result
    return result


@pytest.fixture
def world(sims, store):
    from fxiaoke_k3cloud.hooks.fxiaoke_throttle import clear_shared_throttles
    from fxiaoke_k3cloud.hooks.fxiaoke_token import clear_process_caches

    clear_process_caches()
    clear_shared_throttles()
    return World(sims.k3, sims.fx, store)


def test_repeated_and_lost_events_change_nothing(world, store):
    ring()  # the watcher starts: position recorded
    first = world.audited_notice(world.order())
    assert len(ring()) == 1
    woken_run(1)
    assert [n["name"] for n in world.notes()] == [first] and len(world.messages()) == 1
    window = store.get_watermark("deliveries")
    assert window is not None

    woken_run(2)  # the same event delivered twice (or a push and a poll for one audit)
    assert len(world.notes()) == 1 and len(world.messages()) == 1

    lost = world.audited_notice(world.order())  # its event is lost: no run
    third = world.audited_notice(world.order())
    assert len(ring()) == 1  # two audits between polls merge into one bell
    woken_run(3)
    assert sorted(n["name"] for n in world.notes()) == sorted([first, lost, third])
    assert len(world.messages()) == 3
    assert store.get_watermark("deliveries") >= window
