"""The load step overlaps its database work with the K3Cloud calls, nothing lost on errors — here with one request
in flight (connection extra ``max_in_flight: 1``); N in flight: test_in_flight.py.

The calls go over HTTP to the K3Cloud simulator through a real K3CloudHook; the wrappers below only watch (and,
where a test says so, slow down or break) the hook's ``batch_save`` and the audit store's writes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from mapping.crm_records import account

from .conftest import run_dag

N = 30
CHUNK = 7  # 30 packages: chunks of 7, 7, 7, 7, 2
CHUNKS = [[f"CUST-{i:06d}" for i in range(start, min(start + CHUNK, N + 1))] for start in range(1, N + 1, CHUNK)]
SLOW_S = 0.2
RUNS = itertools.count(1)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr("fxiaoke_k3cloud.flows.load.LOAD_CHUNK", CHUNK)


@pytest.fixture
def one_in_flight(sims, monkeypatch):
    """The K3Cloud connection allows one request in flight (``max_in_flight: 1``)."""
    from simproc import k3cloud_conn

    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(sims.k3, max_in_flight=1))


class WatchedHook:
    """A real K3CloudHook (HTTP to the simulator) whose BatchSave calls are timed and counted while in flight."""

    def __init__(self, *, slow_s: float = 0.0, fail_call: int | None = None) -> None:
        from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

        self.hook = K3CloudHook(retry_wait_s=0)
        self.slow_s = slow_s
        self.fail_call = fail_call  # this BatchSave call (1-based) raises RuntimeError instead of being sent
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = self.http_in_flight = self.max_http_in_flight = 0
        self.calls: list[SimpleNamespace] = []  # start, end, numbers, thread
        self.threads: set[int] = set()
        post = self.hook.client._post

        def counted_post(*args: Any, **kwargs: Any) -> Any:  # every HTTP request the hook sends
            with self.lock:
                self.http_in_flight += 1
                self.max_http_in_flight = max(self.max_http_in_flight, self.http_in_flight)
                self.threads.add(threading.get_ident())
            try:
                return post(*args, **kwargs)
            finally:
                with self.lock:
                    self.http_in_flight -= 1

        self.hook.client._post = counted_post

    def __getattr__(self, name: str) -> Any:
        return getattr(self.hook, name)

    def batch_save(self, form_id: str, models: Any, **options: Any) -> Any:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            call = SimpleNamespace(start=time.perf_counter(), end=None, numbers=[m.get("FNumber") for m in models],
                                   thread=threading.get_ident())
            self.calls.append(call)
        try:
            if len(self.calls) == self.fail_call:
                raise RuntimeError("the hook broke (not an API answer)")
            time.sleep(self.slow_s)
            return self.hook.batch_save(form_id, models, **options)
        finally:
            with self.lock:
                call.end = time.perf_counter()
                self.in_flight -= 1


class WatchedStore:
    """The real audit store; its writes are timed, can be slowed down, and one of them can fail once."""

    def __init__(self, store: Any, *, slow_s: float = 0.0, fail: tuple[str, int] | None = None) -> None:
        self.store = store
        self.slow_s = slow_s
        self.fail = fail  # (method, call number) that raises once
        self.counts: Counter = Counter()
        self.writes: list[SimpleNamespace] = []  # method, start, end, numbers, thread

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _call(self, method: str, numbers: list[str], *args: Any) -> Any:
        self.counts[method] += 1
        write = SimpleNamespace(method=method, start=time.perf_counter(), end=None, numbers=numbers,
                                thread=threading.get_ident())
        self.writes.append(write)
        try:
            if self.fail == (method, self.counts[method]):
                raise sa.exc.OperationalError(f"{method}", {}, Exception("audit database went away"))
            time.sleep(self.slow_s)
            return getattr(self.store, method)(*args)
        finally:
            write.end = time.perf_counter()

    def get_id_map(self, entity: str, source_ids: Any) -> Any:
        return self._call("get_id_map", [], entity, source_ids)

    def upsert_id_map(self, entity: str, entries: Any) -> Any:
        entries = list(entries)
        return self._call("upsert_id_map", [e.target_number for e in entries], entity, entries)

    def record_outcomes(self, run_pk: int, rows: Any) -> Any:
        return self._call("record_outcomes", [r.target_number for r in rows], run_pk, rows)


def seed(sims: Any, n: int = N) -> None:
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(1, n + 1)]}})


def stage_customers(n: int = N) -> int:
    """Extract and transform the CRM accounts (the steps the DAG runs, full resync); returns the run pk."""
    from fxiaoke_k3cloud.flows import steps

    # The window ends a little after now: a CRM edit made just before must be inside it whatever the clocks say.
    run_after = datetime.now(timezone.utc) + timedelta(seconds=5)
    context = {"params": {"full_resync": True}, "data_interval_start": None, "data_interval_end": None,
               "dag_run": SimpleNamespace(run_id=f"manual__load_pipeline_{next(RUNS)}", run_type="manual",
                                          run_after=run_after)}
    extracted = steps.extract("customers", context)
    transformed = steps.transform("customers", extracted, context)
    assert transformed.get("packages", n) == n, transformed
    return extracted["run_pk"]


def load(store: Any, hook: Any, run_pk: int) -> dict[str, int]:
    from fxiaoke_k3cloud.flows.load import load_staged
    from fxiaoke_k3cloud.flows.specs import flow_spec

    return load_staged(flow_spec("customers"), store, hook, run_pk)


def k3_numbers(k3: Any) -> Counter:
    return Counter(r["FNumber"] for r in k3.records("BD_Customer"))


def outcomes_by_number(store: Any, run_pk: int) -> Counter:
    from fxiaoke_k3cloud.flows.queries import run_records

    return Counter(r["target_number"] for r in run_records(store, run_pk))


def id_map_numbers(store: Any) -> Counter:
    from fxiaoke_k3cloud.audit.schema import id_map

    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(id_map.c.target_number).where(id_map.c.entity == "customer"))
        return Counter(n for (n,) in rows)


def flat(chunks: list[list[str]]) -> list[str]:
    return sorted(n for chunk in chunks for n in chunk)


def overlaps(a: SimpleNamespace, b: SimpleNamespace) -> bool:
    return a.start < b.end and b.start < a.end


def test_a_run_spanning_several_chunks_lands_every_record_once(dagbag, sims, store, small_chunks):
    from .test_customers_flow import last_run

    seed(sims)
    dr, states = run_dag(dagbag, "fxiaoke_customers_to_k3cloud", {"full_resync": True})
    assert dr.state == "success", states
    assert k3_numbers(sims.k3) == Counter(flat(CHUNKS))
    assert sims.k3.stats()["calls"].get("BatchSave") == len(CHUNKS)  # 5 chunks of ≤ 7: one BatchSave each
    run = last_run(store)
    assert (run["created"], run["status"]) == (N, "success")
    assert outcomes_by_number(store, run["id"]) == Counter(flat(CHUNKS))  # one outcome per record
    assert id_map_numbers(store) == Counter(flat(CHUNKS))  # one id-map row per record

    dr, _ = run_dag(dagbag, "fxiaoke_customers_to_k3cloud", {"full_resync": True})
    assert dr.state == "success"
    assert dict(store.run_summary(last_run(store)["id"])["records"]) == {"unchanged": N}
    assert k3_numbers(sims.k3) == Counter(flat(CHUNKS))


def test_never_two_k3cloud_requests_in_flight(sims, store, small_chunks, one_in_flight):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    seed(sims)
    hook = WatchedHook(slow_s=SLOW_S)
    assert load(WatchedStore(store, slow_s=0.05), hook, stage_customers()) == {"created": N}
    # Some edits in the CRM, the next run: updates (UnAudit, BatchSave, Submit/Audit) and unchanged records.
    fx = FxiaokeHook(retry_wait_s=0)
    for i in (3, 10, 17, 24):
        fx.update_record("AccountObj", account(i)["_id"], {"name": f"改名有限公司{i}"})
    counts = load(WatchedStore(store, slow_s=0.05), hook, stage_customers())
    assert counts == {"updated": 4, "unchanged": N - 4}
    assert hook.max_in_flight == 1
    assert hook.max_http_in_flight == 1  # every K3Cloud request, not only BatchSave
    assert sims.k3.stats()["max_in_flight_seen"] == 1  # as the simulator saw them
    assert threading.get_ident() not in hook.threads  # the worker thread sends them all


def test_persisting_a_chunk_overlaps_the_next_chunks_calls(sims, store, small_chunks, one_in_flight):
    seed(sims)
    run_pk = stage_customers()
    hook, watched = WatchedHook(slow_s=SLOW_S), WatchedStore(store, slow_s=0.05)
    assert load(watched, hook, run_pk) == {"created": N}
    saves = hook.calls
    persists = [w for w in watched.writes if w.method == "record_outcomes"]
    assert [sorted(c.numbers) for c in saves] == CHUNKS
    assert [sorted(p.numbers) for p in persists] == CHUNKS
    for k in range(len(CHUNKS) - 1):
        assert overlaps(persists[k], saves[k + 1]), f"chunk {k} was persisted while no BatchSave was in flight"
        assert persists[k].thread != saves[k + 1].thread
    plans = [w for w in watched.writes if w.method == "get_id_map"]
    assert any(overlaps(plan, save) for plan in plans for save in saves)  # reading the next chunk overlaps too
    # No wall-clock bound here (it failed on a busy CI machine with or without the claims): the overlaps above
    # prove the pipelining; how much it saves is measured by `make bench`, side by side.


def test_a_failed_persist_still_persists_the_chunk_in_flight_and_raises(sims, store, small_chunks, one_in_flight):
    seed(sims)
    run_pk = stage_customers()
    watched = WatchedStore(store, fail=("record_outcomes", 2))  # chunk 1's outcomes
    with pytest.raises(sa.exc.OperationalError, match="audit database went away"):
        load(watched, WatchedHook(), run_pk)
    written = flat(CHUNKS[:3])  # chunk 2 was in flight when persisting chunk 1 failed
    assert k3_numbers(sims.k3) == Counter(written)
    assert id_map_numbers(store) == Counter(written)  # chunk 1's id map went first; chunk 2's after the error
    assert outcomes_by_number(store, run_pk) == Counter(CHUNKS[0] + CHUNKS[2])


def test_an_unexpected_error_in_a_chunks_calls_keeps_the_finished_chunks_and_raises(sims, store, small_chunks, one_in_flight):
    seed(sims)
    run_pk = stage_customers()
    with pytest.raises(RuntimeError, match="the hook broke"):
        load(WatchedStore(store), WatchedHook(fail_call=3), run_pk)  # chunk 2's BatchSave
    done = flat(CHUNKS[:2])
    assert k3_numbers(sims.k3) == Counter(done)
    assert outcomes_by_number(store, run_pk) == Counter(done)
    assert id_map_numbers(store) == Counter(done)


def test_an_error_reading_the_next_chunk_still_persists_the_chunk_in_flight(sims, store, small_chunks, one_in_flight):
    seed(sims)
    run_pk = stage_customers()
    watched = WatchedStore(store, fail=("get_id_map", 3))  # planning chunk 2, while chunk 1 is in flight
    with pytest.raises(sa.exc.OperationalError):
        load(watched, WatchedHook(slow_s=SLOW_S), run_pk)
    done = flat(CHUNKS[:2])
    assert k3_numbers(sims.k3) == Counter(done)
    assert outcomes_by_number(store, run_pk) == Counter(done)
    assert id_map_numbers(store) == Counter(done)
