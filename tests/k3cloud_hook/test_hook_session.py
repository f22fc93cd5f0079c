"""Session handling under faults and threads, TLS settings, and secrets kept out of logs."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from simproc import K3

from fxiaoke_k3cloud.hooks.k3cloud_filter import F

from .helpers import calls, customer, make_hook, seed_customers


def _all_numbers(hook, page_size: int = 10) -> list[str]:
    pages = hook.execute_bill_query("BD_Customer", ["FNumber"], F("FNumber").like_startswith("CS"), page_size=page_size)
    return [r["FNumber"] for page in pages for r in page]


def test_every_third_call_losing_its_session_costs_one_login_each(k3cloud):
    numbers = seed_customers(k3cloud, 25)
    hook = make_hook()
    hook.client.login()
    k3cloud.faults({"session_loss_every": 3})
    assert _all_numbers(hook) == numbers
    assert calls(k3cloud, "ExecuteBillQuery") == 4  # pages 1, 2, 3 (lost), 3 again
    assert calls(k3cloud, "ValidateUser") == 2


def test_signed_mode_replays_a_lost_session_without_logging_in(k3cloud, monkeypatch):
    numbers = seed_customers(k3cloud, 25)
    hook = make_hook(k3cloud, monkeypatch, auth_mode="signed")
    k3cloud.faults({"session_loss_every": 3})
    assert _all_numbers(hook) == numbers
    assert calls(k3cloud, "ExecuteBillQuery") == 4
    assert calls(k3cloud, "ValidateUser") + calls(k3cloud, "LoginByAppSecret") == 0


def test_signed_mode_is_stateless_across_session_expiry(k3cloud, monkeypatch):
    seed_customers(k3cloud, 5)
    hook = make_hook(k3cloud, monkeypatch, auth_mode="signed")
    assert len(_all_numbers(hook)) == 5
    k3cloud.expire()
    assert len(_all_numbers(hook)) == 5
    assert calls(k3cloud, "ExecuteBillQuery") == 2


def test_concurrent_callers_share_one_relogin(k3cloud):
    seed_customers(k3cloud, 5)
    hook = make_hook()
    hook.client.login()
    k3cloud.expire()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: len(_all_numbers(hook)), range(16)))
    assert results == [5] * 16
    assert calls(k3cloud, "ValidateUser") == 2  # the first login and exactly one re-login


def test_tls_settings_come_from_the_connection(k3cloud, monkeypatch, tmp_path):
    assert make_hook().client.session.verify is True
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    hook = make_hook(k3cloud, monkeypatch, ca_bundle=str(bundle), timeout=7)
    assert hook.client.session.verify == str(bundle)
    assert hook.client.settings.timeout == (10.0, 7.0)


def test_secrets_and_session_ids_never_reach_the_log(k3cloud, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    hook = make_hook(k3cloud, monkeypatch, auth_mode="app_secret")
    hook.save("BD_Customer", customer("LOG01"))
    k3cloud.expire()
    hook.save("BD_Customer", customer("LOG02"))
    session_id = hook.client._session_id
    assert session_id
    captured = capsys.readouterr()  # Airflow's task-SDK logger writes to stdout/stderr, the stdlib ones to caplog
    text = caplog.text + captured.out + captured.err
    for secret in (K3["app_secret"], K3["password"], session_id):
        assert secret not in text
    assert "session lost" in text and "logged in" in text


def test_password_app_secret_and_session_id_are_registered_with_the_masker(k3cloud, monkeypatch):
    from airflow.sdk.log import _secrets_masker

    hook = make_hook(k3cloud, monkeypatch, auth_mode="password")
    hook.client.login()
    session_id = hook.client._session_id
    redacted = _secrets_masker().redact(f"pw={K3['password']} secret={K3['app_secret']} sid={session_id}")
    assert K3["password"] not in redacted and K3["app_secret"] not in redacted and session_id not in redacted
