"""Runs and per-record outcomes: idempotent start, counters, bulk writes, summaries and history."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from .audit_helpers import T0, FakeClock
from fxiaoke_k3cloud.audit import AuditStore, RecordOutcome
from fxiaoke_k3cloud.errors import BusinessRuleError

W0 = datetime(2025, 12, 31, tzinfo=timezone.utc)
W1 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _outcome(source_id: str, outcome: str, **kw: object) -> RecordOutcome:
    return RecordOutcome(flow="customers", entity="customer", source_id=source_id, outcome=outcome, **kw)  # type: ignore[arg-type]


def test_start_run_is_keyed_on_the_airflow_run_and_reopened_by_its_retries(store: AuditStore, clock: FakeClock) -> None:
    first = store.start_run("customers", "scheduled__2026-01-01", "scheduled", W0, W1)
    store.record_outcomes(first, [_outcome("a", "failed")])
    store.finish_run(first, "failed", {"failed": 3}, "K3Cloud down", api_calls={"k3cloud.BatchSave": 1})
    clock.advance(timedelta(minutes=5))

    retry = store.start_run("customers", "scheduled__2026-01-01", "scheduled", W0, W1)  # a task retry
    rerun = store.start_run("customers", "manual__2026-01-01T09", "manual", W0, W1)  # same window, new run
    other_flow = store.start_run("orders", "scheduled__2026-01-01", "scheduled", W0, W1)

    assert retry == first
    assert len({first, rerun, other_flow}) == 3
    run = store.run_summary(first)
    assert (run["run_id"], run["run_type"], run["status"]) == ("scheduled__2026-01-01", "scheduled", "running")
    assert run["finished_at"] is None and run["message"] is None and run["api_calls"] is None
    assert run["counts"]["failed"] == 0  # counters restart with the retry
    assert run["records"] == {"failed": 1}  # its records stay
    assert run["started_at"] == T0 + timedelta(minutes=5)
    assert (run["window_start"], run["window_end"]) == (W0, W1)
    assert store.run_summary(rerun)["records"] == {}


def test_start_run_refuses_naive_or_inverted_windows(store: AuditStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.start_run("customers", "r", "manual", datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="before"):
        store.start_run("customers", "r", "manual", W1, W0)


def test_windows_in_other_timezones_are_stored_as_utc(store: AuditStore) -> None:
    shanghai = timezone(timedelta(hours=8))
    run = store.start_run("deliveries", "r", "scheduled", W0.astimezone(shanghai), W1.astimezone(shanghai))
    summary = store.run_summary(run)
    assert summary["window_start"] == W0 and summary["window_start"].utcoffset() == timedelta(0)


def test_finish_run_stores_counts_status_message_and_api_calls(store: AuditStore, clock: FakeClock) -> None:
    run = store.start_run("customers", "r1", "scheduled", W0, W1)
    clock.advance(timedelta(seconds=90))
    store.finish_run(
        run,
        "partial",
        {"extracted": 10, "created": 6, "updated": 2, "rejected": 2},
        "2 rejected; token=abcdef123 expired",
        api_calls={"k3cloud.BatchSave": 2, "fxiaoke./cgi/corpAccessToken/get/V2": 1},
    )
    summary = store.run_summary(run)
    assert summary["status"] == "partial" and summary["finished_at"] == T0 + timedelta(seconds=90)
    assert summary["counts"] == {
        "extracted": 10, "created": 6, "updated": 2, "unchanged": 0, "rejected": 2, "failed": 0, "parked": 0, "skipped": 0,
    }
    assert summary["api_calls"] == {"k3cloud.BatchSave": 2, "fxiaoke./cgi/corpAccessToken/get/V2": 1}
    assert "abcdef123" not in summary["message"]


def test_finish_run_validates_status_keys_and_run(store: AuditStore) -> None:
    run = store.start_run("customers", "r1", "scheduled", W0, W1)
    with pytest.raises(ValueError, match="finish status"):
        store.finish_run(run, "running", {})
    with pytest.raises(ValueError, match="unknown count keys"):
        store.finish_run(run, "success", {"creted": 1})
    with pytest.raises(KeyError):
        store.finish_run(run + 999, "success", {})


def test_finish_run_without_counts_counts_each_record_by_its_last_outcome(store: AuditStore) -> None:
    run = store.start_run("customers", "r1", "scheduled", W0, W1)
    store.record_outcomes(run, [_outcome("a", "failed", error_class=TimeoutError), _outcome("b", "created")])
    store.record_outcomes(run, [_outcome("a", "updated", attempt=2), _outcome("c", "rejected", reason="no name")])
    store.finish_run(run, "partial")

    summary = store.run_summary(run)
    assert summary["counts"]["updated"] == 1 and summary["counts"]["failed"] == 0
    assert summary["records"] == {"created": 1, "updated": 1, "rejected": 1}
    assert summary["by_entity"] == {"customer": {"created": 1, "updated": 1, "rejected": 1}}
    assert summary["rows"] == 4
    assert {"outcome": "rejected", "reason": "no name", "count": 1} in summary["top_reasons"]


def test_record_outcomes_bulk_5000_rows(store: AuditStore, backend: str) -> None:
    run = store.start_run("orders", "bulk", "backfill", W0, W1)
    outcomes = ["created", "updated", "unchanged", "rejected", "parked"]
    rows = [
        RecordOutcome(
            flow="orders",
            entity="order",
            source_id=f"SO{i:05d}",
            source_name=f"订单 {i}",
            outcome=outcomes[i % 5],
            target_number=f"XSDD{i:06d}",
            payload_hash=f"{i:064x}",
            reason={"rejected": "FName required", "parked": "customer missing"}.get(outcomes[i % 5]),
            request={"formid": "SAL_SaleOrder", "data": {"Model": {"FBillNo": f"XSDD{i:06d}", "lines": list(range(20))}}},
            response={"Result": {"ResponseStatus": {"IsSuccess": True}, "Id": i}},
        )
        for i in range(5000)
    ]
    started = time.perf_counter()
    written = store.record_outcomes(run, rows)
    elapsed = time.perf_counter() - started
    print(f"\nrecord_outcomes: 5000 rows on {backend} in {elapsed:.2f} s")

    assert written == 5000
    summary = store.run_summary(run)
    assert summary["rows"] == 5000
    assert summary["records"] == {o: 1000 for o in outcomes}
    assert summary["top_reasons"] == [
        {"outcome": "parked", "reason": "customer missing", "count": 1000},
        {"outcome": "rejected", "reason": "FName required", "count": 1000},
    ]


def test_record_outcomes_validates_before_writing_anything(store: AuditStore) -> None:
    run = store.start_run("customers", "r1", "scheduled", W0, W1)
    with pytest.raises(ValueError, match="outcome 'exploded'"):
        store.record_outcomes(run, [_outcome("a", "created"), _outcome("b", "exploded")])
    with pytest.raises(ValueError, match="attempt"):
        store.record_outcomes(run, [_outcome("a", "created", attempt=0)])
    assert store.run_summary(run)["rows"] == 0
    assert store.record_outcomes(run, []) == 0


def test_record_outcomes_needs_an_existing_run(store: AuditStore) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        store.record_outcomes(12345, [_outcome("a", "created")])


def test_record_history_by_source_id_and_target_number(store: AuditStore, clock: FakeClock) -> None:
    r1 = store.start_run("customers", "r1", "scheduled", W0, W1)
    store.record_outcomes(
        r1,
        [
            _outcome("a", "rejected", reason="FName required", error_class=BusinessRuleError("x", system="k3cloud")),
            _outcome("b", "created", target_id="101", target_number="C002"),
        ],
    )
    clock.advance(timedelta(hours=1))
    r2 = store.start_run("customers", "r2", "scheduled", W1, W1 + timedelta(days=1))  # the next window
    store.record_outcomes(r2, [_outcome("a", "created", target_id="100", target_number="C001")])

    history = store.record_history(source_id="a")
    assert [(h["outcome"], h["run_id"]) for h in history] == [("created", "r2"), ("rejected", "r1")]
    assert history[1]["error_class"] == "BusinessRuleError" and history[1]["window_start"] == W0
    assert [h["source_id"] for h in store.record_history(target_number="C001")] == ["a"]
    assert store.record_history(source_id="a", target_number="C002") == []
    assert store.record_history(source_id="a", flow="orders") == []
    with pytest.raises(ValueError):
        store.record_history()


def test_recent_runs_newest_first_per_flow(store: AuditStore, clock: FakeClock) -> None:
    for i in range(3):
        store.start_run("customers", f"r{i}", "scheduled", W0 + timedelta(days=i), W1 + timedelta(days=i))
        clock.advance(timedelta(hours=1))
    store.start_run("orders", "o", "scheduled", W0, W1)

    assert [r["run_id"] for r in store.recent_runs("customers", limit=2)] == ["r2", "r1"]
    assert [r["run_id"] for r in store.recent_runs("orders")] == ["o"]


def test_run_summary_of_unknown_run_raises(store: AuditStore) -> None:
    with pytest.raises(KeyError):
        store.run_summary(999)
