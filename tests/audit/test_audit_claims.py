"""Write claims: one holder per record at a time, across processes; leases, retries and killed holders."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import sqlalchemy as sa

from fxiaoke_k3cloud.audit.claims import holder_name
from fxiaoke_k3cloud.audit.schema import sync_claim


def test_a_claimed_record_is_refused_to_another_run_until_released(store):
    a, b = holder_name(1), "run 2 on other-host:1"
    assert store.claim("customer", ["x", "y"], holder=a, run=1) == (["x", "y"], {})
    assert store.claim("customer", ["y", "z"], holder=b, run=2) == (["z"], {"y": a})
    assert store.release_claims("customer", ["x", "y"], holder=a) == 2
    assert store.claim("customer", ["y"], holder=b, run=2) == (["y"], {})
    assert store.claim("order", ["y"], holder=a, run=1) == (["y"], {})  # another entity: another key space


def test_an_expired_claim_is_taken_over(store, clock):
    store.claim("customer", ["x"], holder="run 1 on other-host:1", run=1, lease=timedelta(minutes=15))
    clock.advance(timedelta(minutes=16))
    assert store.claim("customer", ["x"], holder="run 2 on other-host:2", run=2) == (["x"], {})


def test_a_retry_of_the_same_run_takes_its_own_claims_back(store):
    """A task retry is a new process of the same run: what the killed attempt claimed is its own."""
    store.claim("customer", ["x"], holder="run 7 on other-host:111", run=7)
    assert store.claim("customer", ["x"], holder="run 7 on other-host:222", run=7) == (["x"], {})


def test_claims_of_a_process_gone_from_this_host_are_taken_over_at_once(store):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = holder_name(1).rsplit(":", 1)[0] + f":{int(proc.stdout)}"
    store.claim("customer", ["x"], holder=gone, run=1)
    assert store.claim("customer", ["x"], holder=holder_name(2), run=2) == (["x"], {})
    alive = holder_name(3)  # this process: alive
    store.claim("customer", ["y"], holder=alive, run=3)
    assert store.claim("customer", ["y"], holder="run 4 on other-host:4", run=4) == ([], {"y": alive})


def test_claim_waiting_gets_the_record_once_the_other_run_releases_it(store):
    store.claim("customer", ["x"], holder="run 1 on other-host:1", run=1)
    calls = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        store.release_claims("customer", ["x"], holder="run 1 on other-host:1")

    assert store.claim_waiting("customer", ["x"], holder="run 2 on other-host:2", run=2, timeout=5,
                               sleep=sleep) == (["x"], {})
    assert len(calls) == 1


def test_close_abandoned_closes_runs_airflow_says_are_over_and_frees_their_claims(store, clock):
    from fxiaoke_k3cloud.flows.stage import Stage

    dead = store.start_run("customers", "scheduled__dead", "scheduled", clock.now, clock.now)
    live = store.start_run("customers", "scheduled__live", "scheduled", clock.now, clock.now)
    store.claim("customer", ["x"], holder="run dead on other-host:1", run=dead)
    Stage(store).put(dead, "raw", [{"_id": "x"}])
    closed = store.close_abandoned("customers", is_alive=lambda run_id: run_id == "scheduled__live")
    assert [c["id"] for c in closed] == [dead]
    assert store.run_summary(dead)["status"] == "abandoned" and store.run_summary(live)["status"] == "running"
    assert Stage(store).count(dead, "raw") == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sync_claim)).scalar_one() == 0


def test_runs_airflow_is_not_asked_about_are_abandoned_only_after_silence(store, clock):
    run = store.start_run("customers", "x:redrive:customers:1", "redrive", clock.now, clock.now)
    assert store.close_abandoned("customers") == []
    clock.advance(timedelta(hours=3))
    assert [c["id"] for c in store.close_abandoned("customers")] == [run]


def test_renewing_keeps_a_long_load_s_claims_past_their_first_lease(store, clock):
    """A load renews its claims with its heartbeat: another run cannot take them over mid-load."""
    a, b = "run 1 on other-host:1", "run 2 on other-host:2"
    store.claim("customer", ["x", "y"], holder=a, run=1, lease=timedelta(minutes=15))
    store.claim("order", ["x"], holder=a, run=1, lease=timedelta(minutes=15))
    clock.advance(timedelta(minutes=14))
    assert store.renew_claims("customer", holder=a, run=1) == 2  # this entity's claims only
    clock.advance(timedelta(minutes=14))  # 28 min after the claim, 14 after the renewal
    assert store.claim("customer", ["x", "y"], holder=b, run=2) == ([], {"x": a, "y": a})
    assert store.claim("order", ["x"], holder=b, run=2) == (["x"], {})  # not renewed: expired, taken over


def test_renewing_does_not_take_back_a_claim_another_run_took_over(store, clock):
    a, b = "run 1 on other-host:1", "run 2 on other-host:2"
    store.claim("customer", ["x"], holder=a, run=1, lease=timedelta(minutes=15))
    clock.advance(timedelta(minutes=16))  # run 1 went silent past its lease
    assert store.claim("customer", ["x"], holder=b, run=2) == (["x"], {})
    assert store.renew_claims("customer", holder=a, run=1) == 0
    assert store.claim("customer", ["x"], holder=a, run=1) == ([], {"x": b})
