"""A big window's rest is read by the load while it writes (flows/stream.py): every record lands once, with the
calls of a full read, also when the load fails halfway and is retried."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from mapping.crm_records import account

from .conftest import run_dag

DAG_ID = "fxiaoke_customers_to_k3cloud"
QUERY = "/cgi/crm/v2/data/query"
N = 450


@pytest.fixture
def small_hand_off(monkeypatch):
    from fxiaoke_k3cloud.flows import stream

    monkeypatch.setattr(stream, "HAND_OFF_ROWS", 200)  # the extract reads 2 pages, the load the other 3
    monkeypatch.setattr(stream, "STREAM_CHUNK", 100)
    monkeypatch.setattr(stream, "PREFETCH_PAGES", 2)


def seed(sims, n: int = N) -> None:
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(1, n + 1)]}})


def numbers(sims) -> Counter:
    return Counter(r["FNumber"] for r in sims.k3.records("BD_Customer"))


def context(run_id: str) -> dict:
    return {"params": {}, "data_interval_start": None, "data_interval_end": None,
            "dag_run": SimpleNamespace(run_id=run_id, run_type="manual", run_after=datetime.now(timezone.utc))}


def test_the_load_reads_the_rest_of_a_big_window_and_every_record_lands_once(dagbag, sims, store, small_hand_off):
    seed(sims)
    before = sims.fx.stats()["calls"].get(QUERY, 0)
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success" and set(states.values()) == {"success"}, states
    landed = numbers(sims)
    assert len(landed) == N and max(landed.values()) == 1
    # The calls of one full read: 5 pages of 100 (the continued query's total saves an empty last call) — plus
    # the write-back's: the 450 accounts it updates read by id (5) and one read-back.
    queries = sims.fx.stats()["calls"].get(QUERY, 0) - before
    assert 5 <= queries <= 5 + 6, queries
    run = store.recent_runs("customers", limit=1)[0]
    assert run["status"] == "success" and run["extracted"] == N and run["created"] == N, run
    ti = dr.get_task_instance("extract_customers")
    assert ti.xcom_pull(task_ids="extract_customers")["extracted"] == 200  # the extract read 2 pages itself
    assert ti.xcom_pull(task_ids="load_customers")["streamed"] == N - 200


def test_a_load_that_fails_while_reading_on_is_retried_and_nothing_is_lost_or_written_twice(
        sims, store, small_hand_off, monkeypatch):
    from fxiaoke_k3cloud.flows import steps, stream
    from fxiaoke_k3cloud.flows.stage import Stage

    seed(sims)
    ctx = context("manual__stream-retry")
    extracted = steps.extract("customers", ctx)
    assert extracted["extracted"] == 200 and extracted.get("read_on_in_load")
    transformed = steps.transform("customers", extracted, ctx)
    real = stream.Remainder._mapped
    mapped = []

    def fail_on_the_second_chunk(self, records, through_id):
        if mapped:
            raise RuntimeError("worker lost")
        mapped.append(len(records))
        return real(self, records, through_id)

    monkeypatch.setattr(stream.Remainder, "_mapped", fail_on_the_second_chunk)
    with pytest.raises(RuntimeError, match="worker lost"):
        steps.load("customers", transformed, ctx)
    written = numbers(sims)
    assert 200 <= len(written) < N and max(written.values()) == 1  # the staged part and the first chunk landed
    cursor = stream.staged_cursor(Stage(store), extracted["run_pk"])
    assert cursor is not None and cursor["after_id"] > account(200)["_id"]  # moved past the first mapped chunk

    monkeypatch.setattr(stream.Remainder, "_mapped", real)
    k3_before = sims.k3.stats()["calls"]
    loaded = steps.load("customers", transformed, ctx)  # the task's retry
    landed = numbers(sims)
    assert len(landed) == N and max(landed.values()) == 1, "nothing lost, nothing written twice"
    assert loaded["streamed"] == N - 300  # the retry read on after the chunk the failed attempt mapped
    saves = sims.k3.stats()["calls"].get("BatchSave", 0) - k3_before.get("BatchSave", 0)
    assert saves <= 4, "records written by the failed attempt are not sent again"
    assert stream.staged_cursor(Stage(store), extracted["run_pk"]) is None
    ctx["ti"] = SimpleNamespace(xcom_pull=lambda task_ids: {"extract_customers": extracted,
                                                            "load_customers": loaded}.get(task_ids))
    counts = steps.report("customers", ctx)
    # Every record counted once: those the failed attempt wrote are found unchanged by the retry.
    assert counts["extracted"] == N and counts["created"] + counts["unchanged"] == N, counts
    assert counts["created"] == N - 300, counts


def test_a_window_that_fits_is_read_by_the_extract_alone(sims, store, small_hand_off):
    from fxiaoke_k3cloud.flows import steps

    seed(sims, 150)
    ctx = context("manual__stream-small")
    extracted = steps.extract("customers", ctx)
    assert extracted["extracted"] == 150 and "read_on_in_load" not in extracted
    loaded = steps.load("customers", steps.transform("customers", extracted, ctx), ctx)
    assert "streamed" not in loaded and len(numbers(sims)) == 150
