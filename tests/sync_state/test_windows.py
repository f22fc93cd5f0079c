"""The window model over HTTP against the simulators: what an operator's failed run, UI trigger or odd
params leave in K3Cloud (cases 1–3 of the sync-state issue)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pendulum
from flows.conftest import run_dag
from mapping.crm_records import account

from .flowrun import run_flow

DAG_ID = "fxiaoke_customers_to_k3cloud"
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
SLOT = timedelta(minutes=15)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _numbers(k3) -> Counter:
    return Counter(r["FNumber"] for r in k3.records("BD_Customer"))


def _create_account(i: int) -> None:
    """A customer created in the CRM now, through the OpenAPI (the CRM sets its id and modification time)."""
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    data = {k: v for k, v in account(i).items() if k not in ("_id", "last_modified_time")}
    FxiaokeHook(retry_wait_s=0).create_record("AccountObj", data)


def test_a_failed_scheduled_interval_is_covered_by_the_next_run(sims, store, monkeypatch):
    """Before: the interval whose extract failed was never read again (4 of 8 customers never arrived)."""
    from reliability.runner import fast_backoff

    store.set_watermark("customers", _ms(T0), "earlier")
    # customers 1-4 changed in the first interval, 5-8 in the second
    sims.fx.seed({"objects": {"AccountObj": [account(i, last_modified_time=_ms(T0 + SLOT * ((i - 1) // 4)) + i * 1000)
                                             for i in range(1, 9)]}})
    sims.fx.faults({"error_rate": 1.0})  # the CRM is down for the whole first run
    with fast_backoff():
        failed = run_flow("customers", run_id="scheduled__1", interval=(T0, T0 + SLOT))
    assert not failed["ok"] and failed["failed_task"] == "extract_customers"
    assert store.get_watermark("customers") == _ms(T0)
    sims.fx.faults({})
    ok = run_flow("customers", run_id="scheduled__2", interval=(T0 + SLOT, T0 + 2 * SLOT))
    assert ok["ok"], ok
    assert sorted(_numbers(sims.k3)) == [f"CUST-{i:06d}" for i in range(1, 9)]
    assert store.get_watermark("customers") == _ms(T0 + 2 * SLOT)


def test_a_gap_left_by_catchup_false_is_covered(sims, store):
    """The scheduler skipped two hours (catchup=False after downtime): the next run reads from the watermark."""
    store.set_watermark("customers", _ms(T0), "earlier")
    sims.fx.seed({"objects": {"AccountObj": [account(i, last_modified_time=_ms(T0 + timedelta(minutes=10 * i)))
                                             for i in range(1, 13)]}})
    later = T0 + timedelta(hours=2)
    ok = run_flow("customers", run_id="scheduled__after_gap", interval=(later, later + SLOT))
    assert ok["ok"], ok
    assert len(_numbers(sims.k3)) == 12


def test_ui_trigger_with_the_prefilled_logical_date_reads_what_is_new(dagbag, sims, store):
    """Before: the run got the previous 15-minute slot and read nothing new — green, 0 extracted."""
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(1, 4)]}})
    dr, states = run_dag(dagbag, DAG_ID, {"full_resync": True})
    assert dr.state == "success", states
    _create_account(777)
    slot = pendulum.now("UTC").subtract(minutes=15).replace(second=0, microsecond=0)
    slot = slot.subtract(minutes=slot.minute % 15)  # what the trigger form pre-fills
    dr, states = run_dag(dagbag, DAG_ID, logical_date=slot)
    assert dr.state == "success", states
    run = store.recent_runs("customers", limit=1)[0]
    assert run["created"] == 1, run
    assert len(_numbers(sims.k3)) == 4


def test_until_in_the_future_is_clamped_and_later_runs_still_work(dagbag, sims, store):
    """Before: until=2030-01-01 moved the watermark there; every later manual run failed with 'empty window'."""
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(1, 3)]}})
    dr, states = run_dag(dagbag, DAG_ID, {"until": "2030-01-01T00:00:00Z"})
    assert dr.state == "success", states
    assert store.get_watermark("customers") <= _ms(datetime.now(timezone.utc))
    _create_account(889)
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success", states
    assert "CUST-000889" in _numbers(sims.k3)
