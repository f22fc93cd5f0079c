"""Crash safety: a load task SIGKILLed mid-batch, then the flow run again.

Extract and transform run in-process (the step functions the DAG calls); the load step runs in a separate Python
process — a task process of its own, as under LocalExecutor — while the K3Cloud simulator answers slowly, and is
SIGKILLed once some ``BatchSave`` chunks landed and others did not. Nothing in the process gets to clean up: no
``finally``, no outcome rows, no id map for the chunks already written. Then the whole flow runs again like the
scheduler would, and the simulators' state is checked: every CRM record in K3Cloud exactly once, a final good
outcome in the audit store for each, and the watermark held back until that second run finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Callable

import pytest

from simproc import k3cloud_conn

from .runner import CUSTOMERS, ORDERS, FakeTI, Scheduler, fast_backoff
from .verify import GOOD, final_outcomes

# The load task's process: the DAG's load step, fed the XCom of transform, nothing else.
LOAD_SCRIPT = """
import json, sys
from datetime import datetime, timezone
from types import SimpleNamespace
from fxiaoke_k3cloud.flows import steps
flow, run_id, transformed = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ctx = {"params": {}, "dag_run": SimpleNamespace(run_id=run_id, run_type="manual", run_after=datetime.now(timezone.utc))}
print(json.dumps(steps.load(flow, transformed, ctx)))
"""
BATCH = 50  # FlowSpec.batch_size: one BatchSave per 50 packages
POLL_S = 0.01
KILL_DEADLINE_S = 60.0
SERVER_DRAIN_S = 0.6  # > latency_ms: the last request sent before the kill has landed
HELD_ANSWER_S = 3  # below the client's 10 s read timeout: only the kill ends the call


def _context(run_id: str) -> dict[str, Any]:
    return {"params": {"since": None, "until": None, "ids": [], "full_resync": False, "dry_run": False},
            "dag_run": SimpleNamespace(run_id=run_id, run_type="manual", run_after=datetime.now(timezone.utc)),
            "ti": FakeTI()}


def _upto_transform(flow: str, run_id: str) -> dict[str, Any]:
    """extract (+ sync_customers for orders) and transform in-process; returns transform's XCom."""
    from fxiaoke_k3cloud.flows import steps

    ctx = _context(run_id)
    up = steps.extract(flow, ctx)
    if flow == ORDERS:
        up = steps.sync_customers(flow, up, ctx)
    return steps.transform(flow, up, ctx)


def _batch_saves(k3: Any) -> int:
    return int(k3.stats()["calls"].get("BatchSave", 0))


def _kill_load_when(flow: str, transformed: dict[str, Any], ready: Callable[[], bool]) -> float:
    """Start the load step in its own process, SIGKILL it as soon as ``ready()``; returns seconds until the kill."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", LOAD_SCRIPT, flow, f"manual__crash_{flow}",
                             json.dumps(transformed)], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        while time.monotonic() - started < KILL_DEADLINE_S:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the load process ended (rc {proc.returncode}) before the kill point:\n{err.decode()[-3000:]}")
            if ready():
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                assert proc.returncode == -signal.SIGKILL
                killed_after = time.monotonic() - started
                time.sleep(SERVER_DRAIN_S)  # a request the dead process had sent is still carried out by the server
                return killed_after
            time.sleep(POLL_S)
        pytest.fail("kill point not reached in time")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.communicate()
    raise AssertionError("unreachable")


def _assert_customers_once(world: Any) -> None:
    accounts = world.fx.records("AccountObj")
    per_number = Counter(c["FNumber"] for c in world.k3.records("BD_Customer"))
    expected = {a["field_fnfcA__c"] for a in accounts}
    assert {n: c for n, c in per_number.items() if c > 1} == {}, "duplicates in K3Cloud"
    assert set(per_number) == expected, f"lost: {sorted(expected - set(per_number))[:10]}"
    finals = final_outcomes(world.store, CUSTOMERS)
    assert {a["_id"] for a in accounts} <= set(finals)
    assert {i: o for i, o in finals.items() if o not in GOOD} == {}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crash_world(request, chaos_world, monkeypatch):
    """chaos_world with a 10 s K3Cloud read timeout (the kill, not the client, ends the slow calls), on a SQLite
    or a PostgreSQL audit store shared by the test and the load process."""
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(chaos_world.k3))
    if request.param == "sqlite":
        yield chaos_world
        return
    from fxiaoke_k3cloud.audit import AuditStore

    server = request.getfixturevalue("pg_server")
    url = server.new_database()
    monkeypatch.setenv("SYNC_AUDIT_URL", url)
    store = AuditStore(url)
    store.migrate()
    try:
        yield SimpleNamespace(fx=chaos_world.fx, k3=chaos_world.k3, store=store)
    finally:
        store.dispose()
        server.drop_database(url)


@pytest.mark.parametrize("in_flight", ["between_chunks", "write_applied_answer_pending"])
def test_customers_load_killed_mid_batch_then_rerun_loses_and_duplicates_nothing(crash_world, in_flight):
    world, size = crash_world, 300
    world.fx.seed({"demo": size})
    transformed = _upto_transform(CUSTOMERS, "manual__crash_1")
    assert transformed["extracted"] == size
    world.k3.faults({"latency_ms": 150})
    if in_flight == "between_chunks":
        # Kill after two chunks were answered, while later chunks are still to come.
        killed_after = _kill_load_when(CUSTOMERS, transformed, lambda: _batch_saves(world.k3) >= 3)
    else:
        # From the third chunk on, writes are applied and their answers held back (a timeout in the making);
        # kill once such a chunk's records exist in K3Cloud but the client has had no answer.
        held: list[bool] = []

        def ready() -> bool:
            calls = _batch_saves(world.k3)
            if calls >= 2 and not held:
                world.k3.faults({"latency_ms": 150, "timeout_rate": 1.0, "timeout_delay_s": HELD_ANSWER_S})
                held.append(True)
            return calls >= 3 and len(world.k3.records("BD_Customer")) >= 3 * BATCH

        killed_after = _kill_load_when(CUSTOMERS, transformed, ready)
    world.k3.faults({})
    written = len(world.k3.records("BD_Customer"))
    assert BATCH <= written < size, f"the kill must fall mid-load: {written} of {size} written"
    assert world.store.get_watermark(CUSTOMERS) is None, "the watermark moved although the load never finished"

    with fast_backoff():
        assert Scheduler(max_runs=1).run_once(CUSTOMERS), "the re-run's report must be green"
    _assert_customers_once(world)
    assert len(world.k3.records("BD_Customer")) == size
    # What the killed process wrote is found by number (duplicate-number answer) and linked, not created again.
    assert Counter(final_outcomes(world.store, CUSTOMERS).values()) == {"created": size - written, "updated": written}
    assert world.store.get_watermark(CUSTOMERS) is not None
    print(f"\n{in_flight}: killed after {killed_after:.1f} s with {written}/{size} customers written")


def test_orders_load_killed_mid_batch_then_rerun_loses_and_duplicates_nothing(crash_world, monkeypatch):
    world = crash_world
    # One request in flight here: the simulator spends ~0.5 s of CPU per order BatchSave and serves them one at
    # a time (the test's polls wait behind them too), so with 4 in flight every chunk lands before a poll sees the
    # midpoint. Kills with 4 in flight: the customers tests above.
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(world.k3, max_in_flight=1))
    world.fx.seed({"demo": 80})
    orders = [o for o in world.fx.records("SalesOrderObj") if o.get("life_status") == "normal"]
    assert len(orders) > 2 * BATCH, "need more than two BatchSave chunks of orders"
    transformed = _upto_transform(ORDERS, "manual__crash_orders_1")
    world.k3.faults({"latency_ms": 150})
    killed_after = _kill_load_when(ORDERS, transformed, lambda: _batch_saves(world.k3) >= 2
                    and len(world.k3.records("SAL_SaleOrder")) >= BATCH)
    world.k3.faults({})
    written = len(world.k3.records("SAL_SaleOrder"))
    assert BATCH <= written < len(orders)
    assert world.store.get_watermark(ORDERS) is None

    with fast_backoff():
        assert Scheduler(max_runs=1).run_once(ORDERS)
    per_bill = Counter(o["FBillNo"] for o in world.k3.records("SAL_SaleOrder"))
    assert {b: n for b, n in per_bill.items() if n > 1} == {}
    assert set(per_bill) == {o["name"] for o in orders}
    finals = final_outcomes(world.store, ORDERS)
    assert {o["_id"]: finals.get(o["_id"]) for o in orders if finals.get(o["_id"]) not in GOOD} == {}
    assert world.store.get_watermark(ORDERS) is not None
    print(f"\norders: killed after {killed_after:.1f} s with {written}/{len(orders)} orders written")
