"""The hook against the shapes real servers answer (issue 14 points 1, 3, 4, 5), over HTTP with exact call counts."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.errors import AuthenticationError, RetryableApiError
from fxiaoke_k3cloud.hooks.k3cloud_filter import F

from .helpers import calls, customer, make_hook, seed_customers

LOCK_SHAPES = ["msgcode0", "no_msgcode", "msgcode13"]
SESSION_LOST_SHAPES = ["msgcode1", "text_only", "bare_list"]


def protocol(sim, **switches) -> None:
    sim._admin("POST", "protocol", switches)


def numbers(sim, form: str = "BD_Customer") -> list[str]:
    return sorted(r["FNumber"] for r in sim.records(form))


# --- 1. lock / network-control conflicts ------------------------------------------------------------------
@pytest.mark.parametrize("shape", LOCK_SHAPES)
def test_a_lock_conflict_is_recognised_by_code_or_text_and_retried(k3cloud, shape):
    protocol(k3cloud, lock_conflict_shape=shape)
    hook = make_hook(max_attempts=3)
    hook.client.login()
    k3cloud.faults({"lock_conflict_rate": 1.0})
    with pytest.raises(RetryableApiError) as info:
        hook.save("BD_Customer", customer("LK0"))
    assert info.value.code == 13 and "冲突" in str(info.value)
    assert calls(k3cloud, "Save") == 3 and numbers(k3cloud) == []


@pytest.mark.parametrize("shape", LOCK_SHAPES)
def test_one_retry_usually_gets_past_a_conflict(k3cloud, shape):
    protocol(k3cloud, lock_conflict_shape=shape)
    hook = make_hook(max_attempts=6)
    hook.client.login()
    k3cloud.faults({"lock_conflict_rate": 0.5, "seed": 11})
    for n in range(4):
        assert hook.save("BD_Customer", customer(f"LK{n}")).number == f"LK{n}"
    assert numbers(k3cloud) == ["LK0", "LK1", "LK2", "LK3"]
    assert calls(k3cloud, "Save") > 4  # some were refused and retried, none saved twice


def test_batch_packages_refused_with_a_conflict_are_resent_not_recorded_as_failures(k3cloud):
    hook = make_hook(max_attempts=8)
    hook.client.login()
    k3cloud.faults({"lock_conflict_record_rate": 0.4, "seed": 5})
    models = [customer(f"BL{i:02d}") for i in range(12)]
    models[7] = customer("BL07", FTRADINGCURRID={"FNumber": "NOPE"})  # a real data error stays a data error
    # IsVerifyBaseDataField: real servers leave an unknown reference empty unless asked to check (issue 14 #6)
    outcomes = hook.batch_save("BD_Customer", models, IsVerifyBaseDataField=True)
    assert [o.index for o in outcomes] == list(range(12))
    assert [o.ok for o in outcomes] == [i != 7 for i in range(12)]
    assert outcomes[7].msg_code != 13 and "NOPE" in outcomes[7].errors[0].message
    assert all(o.number == f"BL{o.index:02d}" and o.id for o in outcomes if o.ok)
    assert numbers(k3cloud) == [f"BL{i:02d}" for i in range(12) if i != 7]  # each saved exactly once
    assert calls(k3cloud, "BatchSave") > 1


def test_packages_still_locked_after_the_last_attempt_are_conflicts_not_data_errors(k3cloud):
    hook = make_hook(max_attempts=2)
    hook.client.login()
    k3cloud.faults({"lock_conflict_record_rate": 1.0})
    outcomes = hook.batch_save("BD_Customer", [customer("BX1"), customer("BX2")])
    assert [(o.ok, o.msg_code) for o in outcomes] == [(False, 13), (False, 13)]
    assert "冲突" in outcomes[0].errors[0].message
    assert calls(k3cloud, "BatchSave") == 2 and numbers(k3cloud) == []


@pytest.mark.parametrize("shape", LOCK_SHAPES)
def test_a_whole_batch_refused_with_a_conflict_is_sent_again(k3cloud, shape):
    protocol(k3cloud, lock_conflict_shape=shape)
    hook = make_hook(max_attempts=3)
    hook.client.login()
    k3cloud.faults({"lock_conflict_rate": 1.0})  # one error for the whole call (DIndex 0)
    outcomes = hook.batch_save("BD_Customer", [customer("BW1"), customer("BW2")])
    assert [(o.ok, o.msg_code) for o in outcomes] == [(False, 13), (False, 13)]
    assert calls(k3cloud, "BatchSave") == 3 and numbers(k3cloud) == []
    k3cloud.faults({"lock_conflict_rate": 0.5, "seed": 2})
    assert all(o.ok for o in hook.batch_save("BD_Customer", [customer("BW1"), customer("BW2")]))
    assert numbers(k3cloud) == ["BW1", "BW2"]


# --- 3. sessions ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth_mode", ["password", "app_secret", "signed"])
def test_one_server_session_per_hook_in_every_auth_mode_and_logout_on_close(k3cloud, monkeypatch, auth_mode):
    seed_customers(k3cloud, 3)
    with make_hook(k3cloud, monkeypatch, auth_mode=auth_mode) as hook:
        for n in range(5):
            assert len(list(hook.execute_bill_query("BD_Customer", ["FNumber"], F("FNumber").like_startswith("CS")))[0]) == 3
            hook.save("BD_Customer", customer(f"SS{n}"))
        assert k3cloud.stats()["sessions"]["live"] == 1
    stats = k3cloud.stats()
    assert stats["sessions"] == {"live": 0, "opened": 1, "logged_out": 1}
    assert calls(k3cloud, "Logout") == 1
    assert calls(k3cloud, "ValidateUser") + calls(k3cloud, "LoginByAppSecret") == (0 if auth_mode == "signed" else 1)


def test_close_is_safe_twice_and_costs_nothing_for_an_unused_hook(k3cloud):
    make_hook().close()
    hook = make_hook()
    hook.client.login()
    hook.close()
    hook.close()
    assert calls(k3cloud, "Logout") == 1 and calls(k3cloud, "ValidateUser") == 1


def test_close_logs_out_even_when_the_task_failed(k3cloud):
    hook = make_hook(max_attempts=1)
    with pytest.raises(RetryableApiError):
        with hook:
            hook.client.login()
            k3cloud.faults({"lock_conflict_rate": 1.0})
            hook.save("BD_Customer", customer("FAIL1"))
    assert k3cloud.stats()["sessions"]["live"] == 0 and calls(k3cloud, "Logout") == 1


def test_the_session_limit_is_a_clear_login_error(k3cloud):
    protocol(k3cloud, max_sessions_per_user=1)
    first = make_hook()
    first.client.login()
    with pytest.raises(AuthenticationError, match="在线会话数已达到上限"):
        make_hook(max_attempts=1).client.login()
    first.close()
    second = make_hook()
    second.client.login()  # the slot the first hook gave back
    second.close()


def test_a_session_shared_by_two_clients_dies_with_the_first_logout(k3cloud):
    """Why sessions are per task, not shared: the first Logout ends it for every holder (measured)."""
    seed_customers(k3cloud, 2)
    a, b = make_hook(), make_hook()
    a.client.login()
    b.client._session_id = a.client._session_id  # what sharing one session across tasks would mean
    a.close()
    assert len(list(b.execute_bill_query("BD_Customer", ["FNumber"]))[0]) == 2  # only after a re-login
    assert calls(k3cloud, "ValidateUser") == 2 and calls(k3cloud, "ExecuteBillQuery") == 2
    b.close()


# --- 4. session-loss shapes -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SESSION_LOST_SHAPES)
def test_every_session_loss_shape_relogs_once_and_replays(k3cloud, shape):
    protocol(k3cloud, session_lost_shape=shape)
    seed_customers(k3cloud, 25)
    hook = make_hook()
    hook.client.login()
    k3cloud.faults({"session_loss_every": 3})
    pages = hook.execute_bill_query("BD_Customer", ["FNumber"], F("FNumber").like_startswith("CS"), page_size=10)
    assert sum(len(p) for p in pages) == 25
    assert calls(k3cloud, "ExecuteBillQuery") == 4 and calls(k3cloud, "ValidateUser") == 2
    k3cloud.faults({"session_loss_every": 1})  # every call loses it: one replay, then a clear error
    with pytest.raises(Exception, match="session lost"):
        hook.save("BD_Customer", customer("SLX"))
    assert calls(k3cloud, "Save") == 2 and "SLX" not in numbers(k3cloud)


@pytest.mark.parametrize("shape", SESSION_LOST_SHAPES)
def test_a_lost_session_on_a_write_is_replayed_once(k3cloud, shape):
    protocol(k3cloud, session_lost_shape=shape)
    hook = make_hook()
    hook.client.login()
    k3cloud.expire()
    assert hook.save("BD_Customer", customer("SLW")).number == "SLW"
    assert calls(k3cloud, "Save") == 2 and numbers(k3cloud) == ["SLW"]


def test_app_secret_login_answering_a_null_session_id_uses_the_cookie(k3cloud, monkeypatch):
    protocol(k3cloud, app_secret_null_session_id=True)
    with make_hook(k3cloud, monkeypatch, auth_mode="app_secret") as hook:
        assert hook.save("BD_Customer", customer("NULL1")).number == "NULL1"
        assert hook.client._session_id
    assert calls(k3cloud, "LoginByAppSecret") == 1 and calls(k3cloud, "Logout") == 1


# --- 5. empty keys omitted -------------------------------------------------------------------------------
def test_the_hook_accepts_success_answers_without_empty_keys(k3cloud):
    protocol(k3cloud, omit_empty_keys=True)
    with make_hook() as hook:
        saved = hook.save("SAL_SaleOrder", {
            "FBillTypeID": {"FNumber": "XSDD01_SYS"}, "FDate": "2025-01-02", "FSaleOrgId": {"FNumber": "100"},
            "FCustId": {"FNumber": hook.save("BD_Customer", customer("OE1"), IsAutoSubmitAndAudit=True).number},
            "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE001"}},
            "FSaleOrderEntry": [{"FMaterialId": {"FNumber": "MAT-0001"}, "FQty": 1, "FTaxPrice": 2}]})
        assert saved.id and saved.number and saved.need_return_data == []
        outcomes = hook.batch_save("BD_Customer", [customer("OE2"), customer("OE3")])
        assert all(o.ok and o.id for o in outcomes)
        assert [e.number for e in hook.submit("SAL_SaleOrder", numbers=[saved.number]).successes] == [saved.number]
        assert hook.audit("SAL_SaleOrder", numbers=[saved.number]).successes
        assert hook.view("SAL_SaleOrder", number=saved.number)["DocumentStatus"] == "C"
        assert [r["FNumber"] for r in hook.find_by_number("BD_Customer", "OE2")] == ["OE2"]


def test_the_ui_connection_check_leaves_no_session_behind(k3cloud):
    ok, message = make_hook().test_connection()
    assert ok, message
    assert k3cloud.stats()["sessions"] == {"live": 0, "opened": 1, "logged_out": 1}
