"""Sync state: id map upserts, watermarks that never rewind, parked records and their life cycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from fxiaoke_k3cloud.audit import AuditStore, IdMapConflictError, IdMapEntry

from .audit_helpers import T0, FakeClock


def _count(store: AuditStore, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


# ------------------------------------------------------------------ id map


def test_upsert_id_map_twice_keeps_one_row_with_the_new_values(store: AuditStore, clock: FakeClock) -> None:
    store.upsert_id_map("customer", [IdMapEntry(source_id="a1", target_id="100", target_number="C001", payload_hash="h1")])
    clock.advance(timedelta(minutes=5))
    written = store.upsert_id_map(
        "customer",
        [IdMapEntry(source_id="a1", target_id="100", target_number="C001", payload_hash="h2", source_modified_ms=42, run=7)],
    )

    assert written == 1
    assert _count(store, "id_map") == 1
    entry = store.get_id_map("customer", ["a1"])["a1"]
    assert (entry.target_id, entry.target_number, entry.payload_hash) == ("100", "C001", "h2")
    assert entry.source_modified_ms == 42 and entry.run == 7
    assert entry.synced_at == T0 + timedelta(minutes=5)


def test_get_id_map_by_ids_and_numbers_scopes_by_entity(store: AuditStore) -> None:
    store.upsert_id_map(
        "customer",
        [IdMapEntry(source_id=f"s{i}", target_id=str(1000 + i), target_number=f"C{i:04d}") for i in range(1200)],
    )
    store.upsert_id_map("order", [IdMapEntry(source_id="s1", target_id="9", target_number="SO1")])

    found = store.get_id_map("customer", [f"s{i}" for i in range(0, 1300, 2)] + ["s1"])
    assert len(found) == 601  # 600 even ids below 1200, plus s1; ids past 1199 are unknown
    assert found["s1"].target_number == "C0001"
    by_number = store.get_id_map_by_numbers("customer", ["C0005", "C9999"])
    assert list(by_number) == ["C0005"] and by_number["C0005"].source_id == "s5"
    assert store.get_id_map("order", ["s1"])["s1"].target_id == "9"
    assert store.get_id_map("customer", []) == {}


def test_upsert_id_map_last_entry_in_a_batch_wins(store: AuditStore) -> None:
    store.upsert_id_map(
        "customer",
        [IdMapEntry(source_id="a", target_id="1", payload_hash="old"), IdMapEntry(source_id="a", target_id="1", payload_hash="new")],
    )
    assert store.get_id_map("customer", ["a"])["a"].payload_hash == "new"


def test_target_number_owned_by_another_source_raises_conflict(store: AuditStore) -> None:
    store.upsert_id_map("customer", [IdMapEntry(source_id="a", target_id="1", target_number="C1")])
    with pytest.raises(IdMapConflictError, match="already mapped"):
        store.upsert_id_map(
            "customer",
            [IdMapEntry(source_id="ok", target_id="2", target_number="C2"), IdMapEntry(source_id="b", target_id="3", target_number="C1")],
        )
    # The whole batch is one transaction: nothing of it was written.
    assert store.get_id_map("customer", ["ok", "b"]) == {}


# ------------------------------------------------------------------ watermark


def test_watermark_moves_forward_but_never_backwards(store: AuditStore) -> None:
    assert store.get_watermark("customers") is None
    assert store.set_watermark("customers", 2_000, "run-1") == 2_000
    assert store.set_watermark("customers", 3_000, "run-2") == 3_000

    assert store.set_watermark("customers", 1_000, "backfill-old") == 3_000
    assert store.get_watermark("customers") == 3_000
    with store.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT run_id FROM watermark WHERE flow = 'customers'")).one()
    assert row.run_id == "run-2"

    assert store.set_watermark("customers", 1_000, "resync", force=True) == 1_000
    assert store.get_watermark("customers") == 1_000
    assert store.get_watermark("orders") is None


def test_watermark_keeps_a_readable_utc_timestamp(store: AuditStore) -> None:
    store.set_watermark("orders", 1_767_254_400_000, "r")  # 2026-01-01T08:00:00Z
    with store.engine.connect() as conn:
        from fxiaoke_k3cloud.audit.schema import watermark

        value_at = conn.execute(sa.select(watermark.c.value_at)).scalar_one()
    assert value_at == T0


@pytest.mark.parametrize("bad", [-1, 1.5, "1000", True])
def test_watermark_rejects_values_that_are_not_ms(store: AuditStore, bad: object) -> None:
    with pytest.raises(ValueError):
        store.set_watermark("customers", bad, "r")  # type: ignore[arg-type]


# ------------------------------------------------------------------ parked


def test_park_twice_increments_attempts_and_keeps_first_parked_at(store: AuditStore, clock: FakeClock) -> None:
    store.park("order", "orders", [("o1", "customer not in K3Cloud", "customer:a1"), ("o2", "material missing", "material:P9")])
    clock.advance(timedelta(hours=1))
    store.park("order", "orders", [("o1", "customer still missing", "customer:a1")])

    items = {p.source_id: p for p in store.list_parked("order")}
    assert set(items) == {"o1", "o2"}
    o1 = items["o1"]
    assert o1.attempts == 2 and o1.reason == "customer still missing" and o1.missing == "customer:a1"
    assert o1.first_parked_at == T0 and o1.last_tried_at == T0 + timedelta(hours=1)
    assert items["o2"].attempts == 1 and items["o2"].status == "parked"


def test_release_and_repark_after_release_starts_a_new_episode(store: AuditStore, clock: FakeClock) -> None:
    store.park("order", "orders", [("o1", "r", "customer:a1"), ("o2", "r", "customer:a2")])
    clock.advance(timedelta(minutes=10))

    assert store.release("order", ["o1", "unknown"]) == 1
    assert [p.source_id for p in store.list_parked("order")] == ["o2"]
    (released,) = store.list_parked("order", status="released")
    assert released.source_id == "o1" and released.released_at == T0 + timedelta(minutes=10)
    assert store.release("order", ["o1"]) == 0  # already released

    clock.advance(timedelta(minutes=10))
    store.park("order", "orders", [("o1", "customer deleted again", "customer:a1")])
    again = {p.source_id: p for p in store.list_parked("order")}["o1"]
    assert again.attempts == 1 and again.released_at is None and again.first_parked_at == T0 + timedelta(minutes=20)


def test_escalate_by_age_only_touches_old_parked_items(store: AuditStore, clock: FakeClock) -> None:
    store.park("order", "orders", [("old", "r", "m")])
    clock.advance(timedelta(days=2))
    store.park("order", "orders", [("new", "r", "m")])
    store.park("customer", "customers", [("other-entity", "r", "m")])
    clock.advance(timedelta(days=1, hours=1))

    escalated = store.escalate("order", older_than=timedelta(days=3))

    assert [p.source_id for p in escalated] == ["old"]
    assert escalated[0].status == "escalated"
    assert [p.source_id for p in store.list_parked("order")] == ["new"]
    assert store.escalate("order", older_than=timedelta(days=3)) == []  # already escalated
    # An escalated item keeps its status when retried, and can still be released.
    store.park("order", "orders", [("old", "r", "m")])
    assert store.list_parked("order", status="escalated")[0].attempts == 2
    assert store.release("order", ["old"]) == 1


def test_quarantined_items_are_not_released(store: AuditStore) -> None:
    store.park("order", "orders", [("o1", "r", "m")])
    assert store.quarantine("order", ["o1"]) == 1
    assert store.release("order", ["o1"]) == 0
    assert [p.status for p in store.list_parked("order", status=None)] == ["quarantined"]
    with pytest.raises(ValueError):
        store.list_parked("order", status="lost")
