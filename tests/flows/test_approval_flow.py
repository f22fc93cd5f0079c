"""Mandatory CRM approval flows (issue 14, point 11), end to end over HTTP through the customers DAG.

A tenant whose AccountObj has a mandatory approval flow creates accounts ``under_review``. The flow holds them
(nothing reaches K3Cloud); once the approval passes the next run sends each exactly once, whether or not the
approval moved ``last_modified_time`` (both shapes: the simulator's ``approval_touches`` switch).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from mapping.crm_records import account

from .conftest import run_dag
from .test_customers_flow import DAG_ID, last_run, run_rows, write_calls

DAY_MS = 86_400_000


def k3_numbers(k3) -> Counter:
    return Counter(r["FNumber"] for r in k3.records("BD_Customer"))


@pytest.mark.parametrize("touches", [True, False], ids=["approval-touches", "approval-keeps-modified-time"])
def test_an_account_under_review_is_held_then_sent_once_after_approval(dagbag, sims, store, touches):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    sims.fx._admin("POST", "config", {"approval_objects": {"AccountObj": "under_review"},
                                      "approval_touches": touches})
    # One account entered two days ago and still waiting, one created now through the API (which the approval
    # switch puts under review as a rep's UI entry would be).
    old = account(1, life_status="under_review", last_modified_time=int(time.time() * 1000) - 2 * DAY_MS)
    sims.fx.seed({"objects": {"AccountObj": [old]}})
    fresh = {k: v for k, v in account(2).items() if k not in ("_id", "life_status", "last_modified_time")}
    fresh_id = FxiaokeHook(retry_wait_s=0).create_record("AccountObj", fresh)
    assert FxiaokeHook(retry_wait_s=0).get_record("AccountObj", fresh_id)["life_status"] == "under_review"

    dr, states = run_dag(dagbag, DAG_ID)  # the first incremental run reads from the epoch
    assert dr.state == "success", states
    assert k3_numbers(sims.k3) == Counter()
    held = {r["source_id"]: r for r in run_rows(store)}
    assert {sid: r["outcome"] for sid, r in held.items()} == {old["_id"]: "skipped", fresh_id: "skipped"}
    assert "life_status='under_review' is held" in held[old["_id"]]["reason"]

    dr, _ = run_dag(dagbag, DAG_ID)  # still in approval: held again, nothing written
    assert dr.state == "success" and k3_numbers(sims.k3) == Counter()

    sims.fx._admin("POST", "approve", {"object": "AccountObj", "ids": [old["_id"], fresh_id]})
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success", states
    assert k3_numbers(sims.k3) == Counter({"CUST-000001": 1, "CUST-000002": 1})
    assert {r["source_id"]: r["outcome"] for r in run_rows(store)} == {old["_id"]: "created", fresh_id: "created"}
    assert last_run(store)["created"] == 2

    writes = write_calls(sims.k3)
    dr, _ = run_dag(dagbag, DAG_ID)  # sent once: a later run writes nothing
    assert dr.state == "success" and write_calls(sims.k3) == writes
    assert k3_numbers(sims.k3) == Counter({"CUST-000001": 1, "CUST-000002": 1})
    assert all(r["outcome"] == "unchanged" for r in run_rows(store))


def test_a_rejected_approval_keeps_the_account_out_of_k3cloud(dagbag, sims, store):
    sims.fx._admin("POST", "config", {"approval_objects": {"AccountObj": "under_review"}})
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    data = {k: v for k, v in account(3).items() if k not in ("_id", "life_status", "last_modified_time")}
    account_id = FxiaokeHook(retry_wait_s=0).create_record("AccountObj", data)
    run_dag(dagbag, DAG_ID)
    sims.fx._admin("POST", "approve", {"object": "AccountObj", "ids": [account_id], "result": "reject"})
    dr, _ = run_dag(dagbag, DAG_ID)
    assert dr.state == "success" and k3_numbers(sims.k3) == Counter()
    [row] = [r for r in run_rows(store) if r["source_id"] == account_id]
    assert row["outcome"] == "skipped" and "'ineffective' is held" in row["reason"]


@pytest.mark.parametrize("touches", [True, False],
                         ids=["approval-touches", "approval-keeps-modified-time"])
def test_an_order_under_review_is_sent_once_after_approval(dagbag, sims, store, touches):
    from .test_orders_flow import DAG_ID as ORDERS_DAG
    from .test_orders_flow import k3_orders, line, order, products, seed

    sims.fx._admin("POST", "config", {"approval_touches": touches})
    p = products(sims.fx)
    acc = account(5)
    waiting = order(5, acc["_id"], life_status="under_review",
                    last_modified_time=int(time.time() * 1000) - 2 * DAY_MS)
    seed(sims.fx, [acc], [waiting], [line(waiting["_id"], 1, p["MAT-0001"], life_status="under_review")])
    assert run_dag(dagbag, ORDERS_DAG)[0].state == "success"
    assert k3_orders(sims.k3) == {}

    sims.fx._admin("POST", "approve", {"object": "SalesOrderObj", "ids": [waiting["_id"]]})
    assert run_dag(dagbag, ORDERS_DAG)[0].state == "success"
    assert list(k3_orders(sims.k3)) == ["SO000005"]
    run_dag(dagbag, ORDERS_DAG)
    assert list(k3_orders(sims.k3)) == ["SO000005"]
