"""Retries, rate limits, quota, budget and lost answers against the simulator, with zero wait and exact counts."""

from __future__ import annotations

import pytest
from simproc import fxiaoke_conn
from fxiaoke_hook.helpers import GET, TOKEN, advance_clock, calls, seed_accounts

from fxiaoke_k3cloud.errors import (
    OutcomeUnknownError,
    QuotaExhaustedError,
    RateLimitedError,
    TransportError,
)
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

CREATE = "/cgi/crm/v2/data/create"
UPDATE = "/cgi/crm/v2/data/update"


def hook(**kwargs) -> FxiaokeHook:
    return FxiaokeHook(retry_wait_s=0, **kwargs)


def test_rate_limit_is_retried_with_backoff_then_raised_with_exact_call_counts(fxiaoke):
    (record_id,) = seed_accounts(fxiaoke, 1)
    fxiaoke.faults({"rate_limit_per_20s": 2})
    h = hook(max_attempts=3)
    h.get_record("AccountObj", record_id)
    h.get_record("AccountObj", record_id)
    with pytest.raises(RateLimitedError, match="30004"):
        h.get_record("AccountObj", record_id)
    assert calls(fxiaoke, GET) == 2 + 3  # two answered, then three refused attempts
    advance_clock(fxiaoke, 20)  # the gateway's window slides
    assert h.get_record("AccountObj", record_id)["_id"] == record_id
    assert calls(fxiaoke, GET) == 6


def test_rate_limited_create_is_replayed_because_nothing_was_done(fxiaoke):
    h = hook(max_attempts=2)
    h.get_token()
    fxiaoke.faults({"rate_limit_per_20s": 1})
    h.create_record("AccountObj", {"name": "first"})
    with pytest.raises(RateLimitedError):
        h.create_record("AccountObj", {"name": "second"})
    assert calls(fxiaoke, CREATE) == 1 + 2
    assert [r["name"] for r in fxiaoke.records("AccountObj") if r["name"] in ("first", "second")] == ["first"]


def test_daily_quota_used_up_is_a_clear_permanent_error(fxiaoke):
    (record_id,) = seed_accounts(fxiaoke, 1)
    fxiaoke.faults({"quota": 3})
    h = hook()
    h.get_record("AccountObj", record_id)  # quota: token call + this call
    h.get_record("AccountObj", record_id)
    with pytest.raises(QuotaExhaustedError, match=r"daily quota used up \(resets 00:00 Asia/Shanghai\)") as err:
        h.get_record("AccountObj", record_id)
    assert err.value.code == 30002 and err.value.trace_id
    assert calls(fxiaoke, GET) == 3  # the refused call is not retried


def test_no_quota_purchased_fails_fast_with_the_fix(fxiaoke):
    fxiaoke.faults({"quota": 0})
    ok, message = hook().test_connection()
    assert not ok and "no API quota purchased — buy an OpenAPI resource pack" in message and "30003" in message
    assert calls(fxiaoke, TOKEN) == 1


def test_call_budget_stops_a_backfill_before_the_next_call(fxiaoke, monkeypatch):
    (record_id,) = seed_accounts(fxiaoke, 1)
    h = hook(call_budget=3)
    h.get_record("AccountObj", record_id)
    h.get_record("AccountObj", record_id)
    with pytest.raises(QuotaExhaustedError, match="call budget of 3"):
        h.get_record("AccountObj", record_id)
    assert calls(fxiaoke, GET) == 2 and h.calls.total == 3
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(fxiaoke, call_budget=1))
    from_extra = hook()
    from_extra.get_record("AccountObj", record_id)  # the shared token is cached: this get is call 1 of 1
    with pytest.raises(QuotaExhaustedError, match="call budget of 1"):
        from_extra.get_record("AccountObj", record_id)
    assert calls(fxiaoke, GET) == 3


def test_http_502_on_reads_is_retried_a_bounded_number_of_times(fxiaoke):
    (record_id,) = seed_accounts(fxiaoke, 1)
    h = hook(max_attempts=3)
    h.get_token()
    fxiaoke.faults({"error_rate": 1})
    with pytest.raises(TransportError) as err:
        h.get_record("AccountObj", record_id)
    assert err.value.status == 502 and "127.0.0.1" in str(err.value)
    assert calls(fxiaoke, GET) == 3


def test_create_whose_answer_is_lost_is_not_replayed(fxiaoke, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(fxiaoke, timeout=0.3))
    h = hook()
    h.get_token()
    fxiaoke.faults({"timeout_rate": 1, "timeout_delay_s": 1})
    with pytest.raises(OutcomeUnknownError, match="read it back"):
        h.create_record("AccountObj", {"name": "maybe-created"})
    assert calls(fxiaoke, CREATE) == 1
    assert any(r["name"] == "maybe-created" for r in fxiaoke.records("AccountObj"))  # it was applied


def test_create_answered_502_is_outcome_unknown_not_replayed(fxiaoke):
    h = hook()
    h.get_token()
    fxiaoke.faults({"error_rate": 1})
    with pytest.raises(OutcomeUnknownError):
        h.create_record("AccountObj", {"name": "x"})
    assert calls(fxiaoke, CREATE) == 1


def test_update_timeouts_are_retried_because_updates_are_idempotent(fxiaoke, monkeypatch):
    (record_id,) = seed_accounts(fxiaoke, 1)
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(fxiaoke, timeout=0.3))
    h = hook(max_attempts=2)
    h.get_token()
    fxiaoke.faults({"timeout_rate": 1, "timeout_delay_s": 1})
    with pytest.raises(TransportError) as err:
        h.update_record("AccountObj", record_id, {"remark": "same data twice"})
    assert not isinstance(err.value, OutcomeUnknownError) and "timed out" in str(err.value)
    assert calls(fxiaoke, UPDATE) == 2
