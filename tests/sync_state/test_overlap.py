"""Two runs of one flow at once, as two *processes* (two Celery workers, a backfill beside the schedule, a
manual run during a scheduled one): at most one target document, CRM note and owner message per source record.

Asserted on what lands in the simulators, on SQLite and PostgreSQL. The simulators answer slowly enough that
the two loads overlap.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from flows.test_orders_flow import REP, k3_orders, line, order, products, seed
from mapping.crm_records import account

from .procs import run_together

SLOW = {"latency_ms": 40}
T = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # two adjacent 15-minute backfill intervals from here
MIN = 60_000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _final(store, flow: str) -> Counter:
    """Final outcome per record over every run of the flow (a record counts once per run)."""
    from fxiaoke_k3cloud.flows.queries import run_records

    out: Counter = Counter()
    for run in store.recent_runs(flow, limit=50):
        out.update(r["outcome"] for r in run_records(store, run["id"]))
    return out


def test_customers_scheduled_and_manual_run_at_once_write_each_customer_once(sims, store):
    accounts = [account(i, last_modified_time=_ms(T) + i) for i in range(1, 121)]
    sims.fx.seed({"objects": {"AccountObj": accounts}})
    sims.k3.faults(SLOW)
    scheduled, manual = run_together(
        ("customers", {"run_id": "scheduled__a", "run_type": "scheduled", "interval": [T - timedelta(minutes=15), T]}),
        ("customers", {"run_id": "manual__b", "run_type": "manual"}))
    assert scheduled["ok"] and manual["ok"], (scheduled, manual)
    numbers = Counter(r["FNumber"] for r in sims.k3.records("BD_Customer"))
    assert len(numbers) == 120 and set(numbers.values()) == {1}
    final = _final(store, "customers")
    assert final["created"] == 120 and final["failed"] == 0, final


def test_orders_two_backfills_of_adjacent_intervals_share_customers_and_write_each_once(sims, store):
    p = products(sims.fx)
    accs = [account(i, last_modified_time=_ms(T)) for i in range(1, 4)]
    orders, lines = [], []
    for i in range(1, 25):  # 12 orders in each interval, all of them on the same 3 customers
        modified = _ms(T) + (i - 1) // 12 * 15 * MIN + i * 1000
        o = order(i, accs[i % 3]["_id"], last_modified_time=modified)
        orders.append(o)
        lines.append(line(o["_id"], 1, p["MAT-0001"], last_modified_time=modified))
    seed(sims.fx, accs, orders, lines)
    sims.k3.faults(SLOW)
    first, second = run_together(
        ("orders", {"run_id": "backfill__1", "run_type": "backfill", "interval": [T, T + timedelta(minutes=15)]}),
        ("orders", {"run_id": "backfill__2", "run_type": "backfill",
                    "interval": [T + timedelta(minutes=15), T + timedelta(minutes=30)]}))
    assert first["ok"] and second["ok"], (first, second)
    assert first["xcom"]["extract_orders"]["extracted"] == 12 == second["xcom"]["extract_orders"]["extracted"]
    assert sorted(k3_orders(sims.k3)) == [f"SO{i:06d}" for i in range(1, 25)]
    customers = Counter(r["FNumber"] for r in sims.k3.records("BD_Customer"))
    assert customers == Counter({"CUST-000001": 1, "CUST-000002": 1, "CUST-000003": 1})
    assert store.get_watermark("orders") is None  # backfills leave it alone


def test_deliveries_backfill_beside_a_manual_run_writes_one_note_and_one_message_per_notice(sims, store):
    from flows_deliveries.world import World

    world = World(sims.k3, sims.fx, store)
    notices = [world.audited_notice(world.order()) for _ in range(12)]
    sims.fx.faults({"latency_ms": 30})
    now = datetime.now(timezone.utc)
    backfill, manual = run_together(
        ("deliveries", {"run_id": "backfill__d", "run_type": "backfill",
                        "interval": [now - timedelta(hours=1), now + timedelta(minutes=5)]}),
        ("deliveries", {"run_id": "manual__d", "run_type": "manual"}))
    assert backfill["ok"] and manual["ok"], (backfill, manual)
    notes = Counter(n["name"] for n in world.notes())
    assert notes == Counter({number: 1 for number in notices}), notes
    sent = Counter(number for m in world.messages() for number in notices if number in str(m))
    assert sent == Counter({number: 1 for number in notices}), sent
    assert all(REP in str(m) for m in world.messages())


def test_orders_syncing_their_customers_beside_the_customers_flow_write_each_customer_once(sims, store):
    """The orders flow syncs missing customers first (as a 'customers' dependency run) while the customers flow
    runs in another process: both write entity 'customer' and must take turns."""
    p = products(sims.fx)
    accs = [account(i, last_modified_time=_ms(T) + i) for i in range(1, 41)]
    orders = [order(i, accs[i - 1]["_id"], last_modified_time=_ms(T) + i) for i in range(1, 41)]
    lines = [line(o["_id"], 1, p["MAT-0001"], last_modified_time=_ms(T) + 1) for o in orders]
    seed(sims.fx, accs, orders, lines)
    sims.k3.faults(SLOW)
    ords, custs = run_together(("orders", {"run_id": "manual__o", "run_type": "manual"}),
                               ("customers", {"run_id": "manual__c", "run_type": "manual"}))
    assert ords["ok"] and custs["ok"], (ords, custs)
    customers = Counter(r["FNumber"] for r in sims.k3.records("BD_Customer"))
    assert len(customers) == 40 and set(customers.values()) == {1}
    assert len(k3_orders(sims.k3)) == 40
