"""Several K3Cloud writes in flight (connection extra ``max_in_flight``, default 4), over HTTP to the simulator with
its service-time model: every record gets exactly one outcome and lands once, also under lock conflicts, timeouts
and a session lost mid-load; the simulator never sees more requests at once than allowed (the connection's figure,
capped by the load task's ``k3cloud_api`` pool slots). One request in flight: test_load_pipeline.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from mapping.crm_records import account
from simproc import k3cloud_conn

from .conftest import run_dag
from .test_load_pipeline import id_map_numbers, k3_numbers, load, outcomes_by_number, seed, small_chunks, stage_customers

__all__ = ["small_chunks"]  # the fixture, imported for the tests below

N = 30  # chunks of 7 (small_chunks): 5 chunks
NUMBERS = [f"CUST-{i:06d}" for i in range(1, N + 1)]


def hook(**kwargs: Any) -> Any:
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    return K3CloudHook(retry_wait_s=0, **kwargs)


def connection(sims: Any, monkeypatch: Any, **extra: Any) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(sims.k3, **extra))


def one_outcome_each(store: Any, run_pk: int) -> None:
    from fxiaoke_k3cloud.flows.queries import run_records

    assert Counter(r["source_id"] for r in run_records(store, run_pk)) == Counter(account(i)["_id"] for i in range(1, N + 1))


def k3_matches_id_map(sims: Any, store: Any) -> None:
    """Each number once in K3Cloud, and the id map links each record to the document K3Cloud has."""
    from fxiaoke_k3cloud.flows.queries import id_map_rows

    docs = sims.k3.records("BD_Customer")
    assert k3_numbers(sims.k3) == Counter(NUMBERS)
    by_number = {d["FNumber"]: str(d["FCUSTID"]) for d in docs}
    rows = id_map_rows(store, "customer")
    assert {r["target_number"]: str(r["target_id"]) for r in rows} == by_number
    assert id_map_numbers(store) == Counter(NUMBERS)


def test_four_writes_in_flight_land_every_record_once(sims, store, small_chunks):
    seed(sims)
    run_pk = stage_customers()
    sims.k3.faults({"latency_ms": 40, "per_record_ms": 20, "max_in_flight": 4})
    k3 = hook()
    assert k3.max_in_flight == 4  # the default
    assert load(store, k3, run_pk) == {"created": N}
    one_outcome_each(store, run_pk)
    assert outcomes_by_number(store, run_pk) == Counter(NUMBERS)
    k3_matches_id_map(sims, store)
    seen = sims.k3.stats()["max_in_flight_seen"]
    assert 2 <= seen <= 4, seen  # several at once, never more than allowed

    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    fx = FxiaokeHook(retry_wait_s=0)
    for i in range(1, N + 1, 3):
        fx.update_record("AccountObj", account(i)["_id"], {"name": f"改名有限公司{i}"})
    run_pk = stage_customers()
    assert load(store, k3, run_pk) == {"updated": 10, "unchanged": N - 10}
    one_outcome_each(store, run_pk)
    k3_matches_id_map(sims, store)
    assert {d["FNumber"]: d["FName"] for d in sims.k3.records("BD_Customer")}["CUST-000004"] == "改名有限公司4"
    assert sims.k3.stats()["max_in_flight_seen"] <= 4


def test_the_load_task_s_pool_slots_cap_the_connection_s_figure(dagbag, sims, store, small_chunks, monkeypatch):
    from .test_customers_flow import last_run

    load_task = dagbag.get_dag("fxiaoke_customers_to_k3cloud").get_task("load_customers")
    assert (load_task.pool, load_task.pool_slots) == ("k3cloud_api", 4)
    connection(sims, monkeypatch, max_in_flight=8)
    seed(sims, 60)  # 9 chunks of 7
    profile = {"latency_ms": 60, "per_record_ms": 40}  # ≈ 0.3 s per call: planning keeps up with 8 writers
    # Outside a task (no pool) the connection's 8 apply: more than 4 at once.
    run_pk = stage_customers(60)
    sims.k3.faults(profile)
    assert load(store, hook(), run_pk) == {"created": 60}
    assert sims.k3.stats()["max_in_flight_seen"] > 4
    # In the DAG the load task holds 4 slots of k3cloud_api: 4 at most, whatever the connection says.
    sims.k3.reset()
    store.engine.dispose()
    from fxiaoke_k3cloud.audit.schema import id_map, sync_claim

    with store.engine.begin() as conn:  # K3Cloud is empty again: so must the id map be
        conn.execute(id_map.delete())
        conn.execute(sync_claim.delete())
    sims.k3.faults(profile)
    dr, states = run_dag(dagbag, "fxiaoke_customers_to_k3cloud", {"full_resync": True})
    assert dr.state == "success", states
    assert last_run(store)["created"] == 60
    assert Counter(r["FNumber"] for r in sims.k3.records("BD_Customer")) == Counter(
        f"CUST-{i:06d}" for i in range(1, 61))
    assert sims.k3.stats()["max_in_flight_seen"] <= 4


def test_four_in_flight_under_faults_write_each_document_once(sims, store, small_chunks, monkeypatch):
    """Lock conflicts (whole calls and single packages), timeouts (outcome unknown: read back before any resend)
    and lost sessions, with four writes in flight: no document twice; the next run completes the rest."""
    connection(sims, monkeypatch, timeout=1)
    seed(sims)
    run_pk = stage_customers()
    sims.k3.faults({"seed": 19, "latency_ms": 20, "max_in_flight": 4, "lock_conflict_rate": 0.15,
                    "lock_conflict_record_rate": 0.1, "timeout_rate": 0.15, "timeout_delay_s": 1.5,
                    "session_loss_every": 9})
    counts = load(store, hook(), run_pk)
    assert sum(counts.values()) == N, counts
    one_outcome_each(store, run_pk)
    assert max(k3_numbers(sims.k3).values()) == 1  # nothing written twice, whatever the faults did
    from fxiaoke_k3cloud.flows.queries import id_map_rows

    docs = {d["FNumber"]: str(d["FCUSTID"]) for d in sims.k3.records("BD_Customer")}
    for row in id_map_rows(store, "customer"):  # what the id map links is there, with that id
        assert docs.get(row["target_number"]) == str(row["target_id"]), row
    faults_seen = sims.k3.stats()["max_in_flight_seen"]
    assert faults_seen <= 4

    sims.k3.faults({"latency_ms": 20})
    run_pk = stage_customers()
    counts = load(store, hook(), run_pk)
    assert set(counts) <= {"created", "updated", "unchanged"} and sum(counts.values()) == N, counts
    one_outcome_each(store, run_pk)
    k3_matches_id_map(sims, store)
    assert sims.k3.stats()["max_in_flight_seen"] <= 4


class ExpiringHook:
    """A real K3CloudHook; the session is expired in the simulator just before its ``at``-th BatchSave is sent,
    while other writers' calls are in flight."""

    def __init__(self, sims: Any, at: int) -> None:
        self.hook, self.sims, self.at = hook(), sims, at
        self.calls = 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.hook, name)

    def batch_save(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.calls += 1
            expire = self.calls == self.at
        if expire:
            self.sims.k3.expire()
        return self.hook.batch_save(*args, **kwargs)


def test_a_session_lost_mid_load_costs_one_login_and_no_duplicate(sims, store, small_chunks):
    from k3cloud_hook.helpers import calls

    seed(sims)
    run_pk = stage_customers()
    sims.k3.faults({"latency_ms": 80, "max_in_flight": 4})
    k3 = ExpiringHook(sims, at=3)
    k3.hook.client.login()  # the session exists when the third BatchSave expires it
    before = calls(sims.k3, "ValidateUser")
    assert load(store, k3, run_pk) == {"created": N}
    assert calls(sims.k3, "ValidateUser") - before == 1  # one re-login for all the writers that lost it
    one_outcome_each(store, run_pk)
    k3_matches_id_map(sims, store)
    assert sims.k3.stats()["max_in_flight_seen"] <= 4


def test_a_long_load_renews_its_claims_while_writes_are_in_flight(sims, store, small_chunks, monkeypatch):
    """The heartbeat renews the run's claims (so no other run takes a record over mid-load)."""
    import fxiaoke_k3cloud.flows.load_inflight as inflight

    monkeypatch.setattr(inflight, "HEARTBEAT_EVERY_S", 0.0)
    renewed: list[int] = []
    renew = store.renew_claims
    monkeypatch.setattr(store, "renew_claims", lambda *a, **k: renewed.append(renew(*a, **k)) or renewed[-1])
    seed(sims)
    run_pk = stage_customers()
    sims.k3.faults({"latency_ms": 40})
    assert load(store, hook(), run_pk) == {"created": N}
    assert renewed and max(renewed) >= 1  # claims held in flight had their lease pushed
    from fxiaoke_k3cloud.audit.schema import sync_claim

    with store.engine.connect() as conn:
        assert conn.execute(sync_claim.select()).fetchall() == []  # all released at the end


@pytest.mark.parametrize("bad", [0, "many"])
def test_a_bad_max_in_flight_fails_the_load_naming_the_connection_extra(sims, store, small_chunks, monkeypatch, bad):
    from fxiaoke_k3cloud.errors import ConfigError

    seed(sims, 3)
    run_pk = stage_customers(3)
    connection(sims, monkeypatch, max_in_flight=bad)
    with pytest.raises(ConfigError, match="max_in_flight"):
        load(store, hook(), run_pk)
    assert sims.k3.records("BD_Customer") == [] or k3_numbers(sims.k3).get("CUST-000001") is None
