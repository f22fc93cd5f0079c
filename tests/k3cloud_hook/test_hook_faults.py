"""Retry policy against injected faults, with zero wait and exact call counts from /_sim/stats."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.errors import OutcomeUnknownError, RateLimitedError, RetryableApiError, TransportError
from fxiaoke_k3cloud.hooks.k3cloud_filter import F

from .helpers import calls, customer, make_hook, seed_customers


def test_lock_conflict_is_retried_then_raised(k3cloud):
    hook = make_hook(max_attempts=3)
    hook.client.login()
    k3cloud.faults({"lock_conflict_rate": 1.0})
    with pytest.raises(RetryableApiError) as info:
        hook.save("BD_Customer", customer("LK001"))
    assert info.value.code == 13
    assert calls(k3cloud, "Save") == 3
    assert k3cloud.records("BD_Customer") == []
    k3cloud.faults({})
    hook.save("BD_Customer", customer("LK001"))
    assert calls(k3cloud, "Save") == 4
    assert calls(k3cloud, "ValidateUser") == 1


def test_lock_conflict_retry_succeeds_within_attempts(k3cloud):
    hook = make_hook(max_attempts=10)
    hook.client.login()
    k3cloud.faults({"lock_conflict_rate": 0.5, "seed": 7})
    outcomes = hook.batch_save("BD_Customer", [customer("LK100"), customer("LK101")])
    assert all(o.ok for o in outcomes)
    assert calls(k3cloud, "BatchSave") >= 1
    assert sorted(r["FNumber"] for r in k3cloud.records("BD_Customer")) == ["LK100", "LK101"]


def test_call_limit_is_retried_then_raised(k3cloud):
    seed_customers(k3cloud, 1)
    hook = make_hook(max_attempts=3)
    hook.client.login()
    k3cloud.faults({"rate_limit_per_20s": 1})
    assert list(hook.execute_bill_query("BD_Customer", ["FNumber"]))  # the one allowed call
    with pytest.raises(RateLimitedError):
        list(hook.execute_bill_query("BD_Customer", ["FNumber"]))
    assert calls(k3cloud, "ExecuteBillQuery") == 4


def test_502_on_a_read_is_retried(k3cloud):
    hook = make_hook(max_attempts=3)
    hook.client.login()
    before = k3cloud.stats()["total"]
    k3cloud.faults({"error_rate": 1.0})
    with pytest.raises(TransportError) as info:
        next(hook.execute_bill_query("BD_Currency", ["FCODE"], F("FNUMBER") == "PRE001"))
    assert info.value.status == 502 and not isinstance(info.value, OutcomeUnknownError)
    assert k3cloud.stats()["total"] - before == 3


def test_502_on_a_write_is_not_replayed(k3cloud):
    hook = make_hook(max_attempts=3)
    hook.client.login()
    before = k3cloud.stats()["total"]
    k3cloud.faults({"error_rate": 1.0})
    with pytest.raises(OutcomeUnknownError) as info:
        hook.save("BD_Customer", customer("E5001"))
    assert info.value.status == 502
    assert k3cloud.stats()["total"] - before == 1


def test_timeout_after_write_is_outcome_unknown_and_the_record_exists(k3cloud, monkeypatch):
    hook = make_hook(k3cloud, monkeypatch, max_attempts=3, timeout=1)
    hook.client.login()
    k3cloud.faults({"timeout_rate": 1.0, "timeout_delay_s": 3})
    with pytest.raises(OutcomeUnknownError, match="find_by_number"):
        hook.save("BD_Customer", customer("TO001"))
    assert calls(k3cloud, "Save") == 1  # never replayed blindly
    k3cloud.faults({})
    assert [r["FNumber"] for r in k3cloud.records("BD_Customer")] == ["TO001"]
    assert [r["FNumber"] for r in hook.find_by_number("BD_Customer", "TO001")] == ["TO001"]


def test_connection_refused_is_retried_and_reported(k3cloud, monkeypatch):
    from conftest import k3cloud_conn
    from simproc import free_port

    conn = k3cloud_conn(k3cloud).replace(k3cloud.base_url, f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", conn)
    with pytest.raises(TransportError) as info:
        make_hook(max_attempts=2).save("BD_Customer", customer("CR001"))
    assert not isinstance(info.value, OutcomeUnknownError)  # never sent: safe, not "unknown"
    assert "127.0.0.1" in str(info.value)


def test_server_exception_is_retried_for_reads_only(k3cloud):
    hook = make_hook(max_attempts=3)
    hook.client.login()
    k3cloud.faults({"response_error_rate": 1.0})
    with pytest.raises(RetryableApiError) as info:
        next(hook.execute_bill_query("BD_Currency", ["FCODE"]))
    assert info.value.code == "response_error"
    assert calls(k3cloud, "ExecuteBillQuery") == 3
    with pytest.raises(RetryableApiError):
        hook.save("BD_Customer", customer("RE001"))
    assert calls(k3cloud, "Save") == 1


@pytest.mark.parametrize("status", [503, 504])
def test_gateway_statuses_follow_the_read_write_rule(k3cloud, status):
    hook = make_hook(max_attempts=2)
    hook.client.login()
    k3cloud.faults({"error_rate": 1.0, "error_status": status})
    before = k3cloud.stats()["total"]
    with pytest.raises(TransportError) as info:
        next(hook.execute_bill_query("BD_Currency", ["FCODE"]))
    assert info.value.status == status and not isinstance(info.value, OutcomeUnknownError)
    with pytest.raises(OutcomeUnknownError):
        hook.save("BD_Customer", customer("GW001"))
    assert k3cloud.stats()["total"] - before == 3  # two read attempts, one write
