"""Fill an audit store with known runs, records and parked items (what the flows would have written)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from fxiaoke_k3cloud.audit import AuditStore, RecordOutcome

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)
SECRET = "hunter2-SECRET-TOKEN-value"
XSS_NAME = '<script>alert("x")</script> 上海精密机械'
CRM_ID = "6600000000000000000000a1"
K3_NUMBER = "CUST-000123"


class StepClock:
    """A clock the test moves: every run and record gets a distinct, known time."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int = 1) -> None:
        self.now += timedelta(minutes=minutes)


@dataclass
class Filled:
    store: AuditStore
    ok_run: int
    bad_run: int
    order_run: int


def fill(url: str) -> Filled:
    """Two customer runs (one clean, one with rejections and failures) and one orders run with parking."""
    clock = StepClock()
    store = AuditStore(url, clock=clock)
    store.migrate()
    w = timedelta(minutes=15)

    ok = store.start_run("customers", "scheduled__2026-01-05T00:00:00+00:00", "scheduled", T0, T0 + w)
    store.record_outcomes(ok, [
        RecordOutcome(flow="customers", entity="customer", source_id=CRM_ID, source_name=XSS_NAME,
                      outcome="created", target_id="100001", target_number=K3_NUMBER),
        *(RecordOutcome(flow="customers", entity="customer", source_id=f"66000000000000000000b{i:03d}",
                        source_name=f"客户{i}", outcome="created", target_number=f"CUST-{i:06d}") for i in range(4)),
    ])
    store.finish_run(ok, "success", {"extracted": 5, "created": 5})
    clock.advance(15)

    bad = store.start_run("customers", "scheduled__2026-01-05T00:15:00+00:00", "scheduled", T0 + w, T0 + 2 * w)
    store.record_outcomes(bad, [
        RecordOutcome(flow="customers", entity="customer", source_id=CRM_ID, source_name=XSS_NAME,
                      outcome="updated", target_id="100001", target_number=K3_NUMBER),
        RecordOutcome(flow="customers", entity="customer", source_id="66000000000000000000c001",
                      source_name="缺税号客户", outcome="rejected", reason="tax_id is required (FTAXREGISTERCODE)"),
        RecordOutcome(flow="customers", entity="customer", source_id="66000000000000000000c002",
                      source_name="另一个", outcome="rejected", reason="tax_id is required (FTAXREGISTERCODE)"),
        RecordOutcome(flow="customers", entity="customer", source_id="66000000000000000000c003",
                      source_name="失败客户", outcome="failed", reason=f"K3Cloud refused: password={SECRET}"),
    ])
    store.finish_run(bad, "partial", {"extracted": 4, "updated": 1, "rejected": 2, "failed": 1},
                     "3 record(s) rejected or failed")
    clock.advance(15)

    orders = store.start_run("orders", "manual__2026-01-05T00:30:00+00:00", "manual", T0, T0 + 2 * w)
    store.record_outcomes(orders, [
        RecordOutcome(flow="orders", entity="order", source_id="77000000000000000000d001", source_name="订单1",
                      outcome="created", target_number="XSDD000001"),
        RecordOutcome(flow="orders", entity="order", source_id="77000000000000000000d002", source_name="订单2",
                      outcome="parked", reason="customer not in K3Cloud yet"),
    ])
    store.park("order", "orders", [("77000000000000000000d002", "customer not in K3Cloud yet", f"customer:{CRM_ID}")])
    store.park("order", "orders", [("77000000000000000000d003", "material MAT-9999 missing", "material:MAT-9999")])
    store.quarantine("order", ["77000000000000000000d003"])
    store.finish_run(orders, "success", {"extracted": 2, "created": 1, "parked": 1})
    return Filled(store=store, ok_run=ok, bad_run=bad, order_run=orders)


def fill_history(url: str, runs: int = 12) -> AuditStore:
    """``fill`` plus a day of quarter-hourly runs per flow with varied counts (for the chart and screenshot)."""
    data = fill(url)
    store, clock = data.store, StepClock(T0 + timedelta(hours=1))
    store._clock = clock  # continue the same store's timeline after ``fill``
    w = timedelta(minutes=15)
    for flow, entity in (("customers", "customer"), ("orders", "order")):
        for i in range(runs):
            start = T0 + timedelta(hours=1) + i * w
            pk = store.start_run(flow, f"scheduled__{start.isoformat()}", "scheduled", start, start + w)
            created, updated = (i * 7) % 11 + 2, (i * 5) % 9
            rejected, failed = (2 if i % 4 == 1 else 0), (1 if i % 5 == 3 else 0)
            parked = (i % 3) if flow == "orders" else 0
            rows = [RecordOutcome(flow=flow, entity=entity, source_id=f"{flow}-{i}-r{j}", outcome="rejected",
                                  reason="tax_id is required (FTAXREGISTERCODE)" if flow == "customers"
                                  else "product MAT-9999 has no K3 material")
                    for j in range(rejected)]
            rows += [RecordOutcome(flow=flow, entity=entity, source_id=f"{flow}-{i}-f", outcome="failed",
                                   reason="K3Cloud: 单据编号重复 (duplicate bill number)")] * failed
            store.record_outcomes(pk, rows)
            total = created + updated + rejected + failed + parked
            status = "partial" if rejected or failed else "success"
            store.finish_run(pk, status, {"extracted": total, "created": created, "updated": updated,
                                          "rejected": rejected, "failed": failed, "parked": parked},
                             f"{rejected + failed} record(s) rejected or failed" if status == "partial" else None)
            clock.advance(15)
    return store
