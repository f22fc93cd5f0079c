"""Auth modes, session reuse and re-login against the K3Cloud simulator over HTTP."""

from __future__ import annotations

import pytest
from simproc import k3cloud_conn

from fxiaoke_k3cloud.errors import AuthenticationError, SessionExpiredError
from fxiaoke_k3cloud.hooks.k3cloud_filter import F

from .helpers import calls, customer, make_hook, seed_customers


def test_password_login_is_done_once_and_reused(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("C0001"))
    assert hook.find_by_number("BD_Customer", "C0001")[0]["FNumber"] == "C0001"
    assert hook.view("BD_Customer", number="C0001") is not None
    assert calls(k3cloud, "ValidateUser") == 1
    assert calls(k3cloud, "LoginByAppSecret") == 0


def test_app_secret_login(k3cloud, monkeypatch):
    hook = make_hook(k3cloud, monkeypatch, auth_mode="app_secret")
    result = hook.save("BD_Customer", customer("C0002"))
    assert result.id and result.number == "C0002"
    assert calls(k3cloud, "LoginByAppSecret") == 1
    assert calls(k3cloud, "ValidateUser") == 0


def test_signed_headers_need_no_login(k3cloud, monkeypatch):
    hook = make_hook(k3cloud, monkeypatch, auth_mode="signed")
    hook.save("BD_Customer", customer("C0003"))
    rows = [r for page in hook.execute_bill_query("BD_Customer", ["FNumber"], F("FNumber") == "C0003") for r in page]
    assert rows == [{"FNumber": "C0003"}]
    assert calls(k3cloud, "ValidateUser") + calls(k3cloud, "LoginByAppSecret") == 0


def test_signed_headers_with_a_wrong_secret_are_refused(k3cloud, monkeypatch):
    hook = make_hook(k3cloud, monkeypatch, auth_mode="signed", app_secret="ffffffffffffffffffffffffffffffff")
    with pytest.raises(SessionExpiredError, match="app_id"):
        hook.save("BD_Customer", customer("C0004"))
    assert calls(k3cloud, "Save") == 2  # the first call and the one replay, no more
    assert k3cloud.records("BD_Customer") == []


def test_wrong_password_fails_with_an_actionable_message(k3cloud, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(k3cloud).replace("sim-k3-password", "pw-XYZZY-bad"))
    hook = make_hook()
    with pytest.raises(AuthenticationError) as info:
        hook.save("BD_Customer", customer("C0005"))
    message = str(info.value)
    assert "LoginResultType=" in message and "password" in message and "IP whitelist" in message
    assert "pw-XYZZY-bad" not in message  # the password itself is never echoed
    assert calls(k3cloud, "ValidateUser") == 1  # a refused login is not retried
    assert calls(k3cloud, "Save") == 0


def test_session_loss_between_pages_relogs_once_and_continues(k3cloud):
    numbers = seed_customers(k3cloud, 25)
    hook = make_hook()
    seen: list[str] = []
    for n, page in enumerate(hook.execute_bill_query("BD_Customer", ["FNumber"], F("FNumber").like_startswith("CS"), page_size=10)):
        seen += [r["FNumber"] for r in page]
        if n == 0:
            k3cloud.expire()
    assert seen == numbers
    assert calls(k3cloud, "ValidateUser") == 2
    assert calls(k3cloud, "ExecuteBillQuery") == 4  # page 1, page 2 refused, page 2 replayed, page 3


def test_session_loss_before_a_write_replays_it_once(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("C0010"))
    k3cloud.expire()
    hook.save("BD_Customer", customer("C0011"))
    assert calls(k3cloud, "ValidateUser") == 2
    assert calls(k3cloud, "Save") == 3
    assert sorted(r["FNumber"] for r in k3cloud.records("BD_Customer")) == ["C0010", "C0011"]


def test_session_lost_again_after_relogin_raises(k3cloud):
    hook = make_hook()
    k3cloud.faults({"session_loss_every": 1})
    with pytest.raises(SessionExpiredError):
        hook.save("BD_Customer", customer("C0012"))
    assert calls(k3cloud, "ValidateUser") == 2
    assert calls(k3cloud, "Save") == 2
    assert k3cloud.records("BD_Customer") == []


def test_test_connection(k3cloud, monkeypatch):
    ok, message = make_hook().test_connection()
    assert ok, message
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(k3cloud).replace("sim-k3-password", "pw-XYZZY-bad"))
    ok, message = make_hook().test_connection()
    assert not ok and "AuthenticationError" in message and "LoginResultType" in message


def test_wrong_app_secret_fails_login_with_the_server_codes(k3cloud, monkeypatch):
    hook = make_hook(k3cloud, monkeypatch, auth_mode="app_secret", app_secret="ffffffffffffffffffffffffffffffff")
    with pytest.raises(AuthenticationError) as info:
        hook.client.login()
    message = str(info.value)
    assert "LoginResultType=" in message and "MessageCode=" in message and "app id / app secret" in message
    assert "ffffffffffffffffffffffffffffffff" not in message
    assert calls(k3cloud, "LoginByAppSecret") == 1
