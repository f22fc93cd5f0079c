"""An idle run skips its later tasks (issue 19: cheap everyday runs) and still moves the watermark; work resumes."""

from __future__ import annotations

from mapping.crm_records import account

from .conftest import run_dag

DAG_ID = "fxiaoke_customers_to_k3cloud"


def k3_writes(sim) -> int:
    return sum(n for name, n in sim.stats()["calls"].items() if name.lower() in {"save", "batchsave", "audit"})


def test_an_idle_run_runs_extract_and_report_only_and_the_next_change_lands(dagbag, sims, store):
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(1, 6)]}})
    dr, states = run_dag(dagbag, DAG_ID)  # first manual run: no watermark yet, reads everything
    assert dr.state == "success" and set(states.values()) == {"success"}, states
    assert len(sims.k3.records("BD_Customer")) == 5
    first_mark = store.get_watermark("customers")

    writes, fx_before = k3_writes(sims.k3), sims.fx.stats()["total"]
    k3_before = sims.k3.stats()["total"]
    dr, states = run_dag(dagbag, DAG_ID)  # nothing changed in the CRM
    assert dr.state == "success", states
    assert states == {"extract_customers": "success", "transform_customers": "skipped",
                      "load_customers": "skipped", "write_back_customers": "success", "report": "success"}
    assert k3_writes(sims.k3) == writes and sims.k3.stats()["total"] == k3_before  # no K3Cloud call at all
    assert sims.fx.stats()["total"] - fx_before <= 2  # a token and one query page at most
    assert store.get_watermark("customers") >= first_mark  # moved by extract, never back
    run = store.recent_runs("customers", limit=1)[0]
    assert run["status"] == "success"

    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    FxiaokeHook(retry_wait_s=0).update_record("AccountObj", account(3)["_id"], {"name": "空转之后修改有限公司"})
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success" and set(states.values()) == {"success"}, states
    names = {r["FNumber"]: r["FName"] for r in sims.k3.records("BD_Customer")}
    assert names["CUST-000003"] == "空转之后修改有限公司"


def test_a_full_resync_with_nothing_changed_is_not_short_circuited(dagbag, sims, store):
    """A full resync checks every target still exists in K3Cloud: its load must run even when all is unchanged."""
    sims.fx.seed({"objects": {"AccountObj": [account(i) for i in range(1, 4)]}})
    run_dag(dagbag, DAG_ID)
    dr, states = run_dag(dagbag, DAG_ID, {"full_resync": True})
    assert dr.state == "success" and states["load_customers"] == "success", states


def test_a_record_modified_in_the_future_is_reported_and_a_big_run_defers_the_check_to_the_next(
        dagbag, sims, store, monkeypatch):
    """The hourly future-modified check (one extra query) is left for the next run by a run that already sent
    many calls, so a backlog run does not open a throttle window for it; the next run does it, and reports."""
    import time

    from fxiaoke_k3cloud.flows import extract

    future_ms = int(time.time() * 1000) + 3 * 86_400_000  # a bad import: three days ahead
    sims.fx.seed({"objects": {"AccountObj": [account(1), account(2, last_modified_time=future_ms)]}})

    def future_rejections():
        return [h for h in store.record_history(source_id=account(2)["_id"]) if h.get("error_class") == "FutureModifiedTime"]

    monkeypatch.setattr(extract, "FUTURE_CHECK_DEFER_CALLS", 1)  # this run counts as big
    dr, _ = run_dag(dagbag, DAG_ID)
    assert dr.state == "success"
    assert future_rejections() == []  # deferred, not done
    monkeypatch.setattr(extract, "FUTURE_CHECK_DEFER_CALLS", 50)
    dr, _ = run_dag(dagbag, DAG_ID)  # an everyday run: the check is due, and done
    found = future_rejections()
    assert len(found) == 1 and "in the future" in found[0]["reason"], found
