"""The CRM change watcher against the Fxiaoke simulator over HTTP: a create or an edit rings once; a restart
(new trigger instance) does not ring again for the same change."""

from __future__ import annotations

import asyncio
import time

import pytest

from fxiaoke_k3cloud.events.fxiaoke import FxiaokeChangeTrigger
from fxiaoke_k3cloud.events.position import PositionStore
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

FAST = {"poll_s": 0.05, "off_hours_poll_s": 0.05}


def poll(max_polls: int, object_api_name: str = "AccountObj") -> list[dict]:
    async def collect() -> list[dict]:
        trigger = FxiaokeChangeTrigger(name=f"crm_{object_api_name}", object_api_name=object_api_name, pacing=FAST,
                                       max_polls=max_polls)
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


@pytest.fixture
def crm(fxiaoke, store):
    from fxiaoke_k3cloud.hooks.fxiaoke_throttle import clear_shared_throttles
    from fxiaoke_k3cloud.hooks.fxiaoke_token import clear_process_caches

    clear_process_caches()
    clear_shared_throttles()
    return FxiaokeHook(retry_wait_s=0)


def test_created_then_edited_account_rings_once_each(crm, fxiaoke, store):
    assert poll(1) == []  # nothing in the CRM changed: records position 0, rings nothing
    account = crm.create_record("AccountObj", {"name": "客户 watcher"})
    events = poll(3)
    assert [e["record_id"] for e in events] == [account]
    assert events[0]["object_api_name"] == "AccountObj"
    assert poll(2) == []  # new instance, same change: no second bell
    time.sleep(0.01)
    crm.update_record("AccountObj", account, {"name": "客户 watcher 2"})
    assert [e["record_id"] for e in poll(2)] == [account]
    stored = PositionStore(store).get("crm_AccountObj")
    assert stored.record_id == account


def test_each_poll_is_one_query_call(crm, fxiaoke, store):
    poll(1)
    before = sum(n for path, n in fxiaoke.stats()["calls"].items() if path.endswith("/data/query"))
    poll(5)
    after = sum(n for path, n in fxiaoke.stats()["calls"].items() if path.endswith("/data/query"))
    assert after - before == 5
