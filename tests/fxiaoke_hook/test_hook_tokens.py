"""Tokens, 20016 handling and the acting user, against the Fxiaoke simulator over HTTP."""

from __future__ import annotations

import json
import logging

import pytest
import requests
from simproc import FX, fxiaoke_conn
from simproc import free_port
from fxiaoke_hook.helpers import GET, QUERY, TOKEN, advance_clock, calls, seed_accounts

from fxiaoke_k3cloud.errors import AuthenticationError, ConfigError, SessionExpiredError, TransportError
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.fxiaoke_transport import never_sent


def hook(**kwargs) -> FxiaokeHook:
    return FxiaokeHook(retry_wait_s=0, **kwargs)


def test_token_expiry_mid_paging_refreshes_once_and_misses_nothing(fxiaoke):
    ids = set(seed_accounts(fxiaoke, 350))
    h = hook(max_in_flight=1)  # one page at a time; pages in flight when the token dies: test_parallel_reads.py
    seen: list[str] = []
    for page_no, page in enumerate(h.query_records("AccountObj", filters=[("name", "STARTWITH", "ACC-")], fields=["name"])):
        seen += [r["_id"] for r in page]
        if page_no == 0:
            advance_clock(fxiaoke, 7300)  # the server's token dies; the hook's own clock has not moved
    assert len(seen) == len(set(seen)) == 350 and set(seen) == ids
    assert calls(fxiaoke, TOKEN) == 2  # first token + one refresh after the 20016
    assert calls(fxiaoke, QUERY) == 4 + 1  # four pages (100,100,100,50) + one replay of the refused page


def test_token_refused_every_third_call_is_replayed_and_paging_continues(fxiaoke):
    ids = set(seed_accounts(fxiaoke, 250))
    fxiaoke.faults({"token_expire_every": 3})
    h = hook()
    seen = [r["_id"] for page in h.query_records("AccountObj", filters=[("name", "STARTWITH", "ACC-")]) for r in page]
    assert sorted(seen) == sorted(ids)
    assert calls(fxiaoke, QUERY) == 4  # pages 1, 2, refused 3rd, replayed 3rd
    assert h.calls.by_path[TOKEN] == 2


def test_token_refused_twice_raises_session_expired_after_exactly_two_calls(fxiaoke):
    (record_id,) = seed_accounts(fxiaoke, 1)
    fxiaoke.faults({"token_expire_every": 1})
    h = hook()
    with pytest.raises(SessionExpiredError, match="20016"):
        h.get_record("AccountObj", record_id)
    assert calls(fxiaoke, GET) == 2  # one call, one replay with a fresh token — not a loop
    assert calls(fxiaoke, TOKEN) == 2


def test_token_is_refreshed_before_expiry_by_its_age(fxiaoke):
    (record_id,) = seed_accounts(fxiaoke, 1)
    now = [0.0]
    h = hook(clock=lambda: now[0])
    h.get_record("AccountObj", record_id)
    first = h.get_token().access_token
    now[0] += 6600
    advance_clock(fxiaoke, 6600)  # the server now hands out a new token
    h.get_record("AccountObj", record_id)
    assert h.get_token().access_token != first
    assert calls(fxiaoke, TOKEN) == 2 and calls(fxiaoke, GET) == 2  # refreshed up front: no 20016, no replay


def test_token_cache_is_shared_by_hook_instances(fxiaoke):
    (record_id,) = seed_accounts(fxiaoke, 1)
    a, b = hook(), hook()
    a.get_record("AccountObj", record_id)
    b.get_record("AccountObj", record_id)
    assert calls(fxiaoke, TOKEN) == 1
    assert a.calls.total == 2 and b.calls.total == 1


def test_open_user_id_is_resolved_from_the_mobile_once(fxiaoke, monkeypatch):
    (record_id,) = seed_accounts(fxiaoke, 1)
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(fxiaoke, open_user_id="", mobile=FX["mobile"]))
    first, second = hook(), hook()
    assert first.get_open_user_id() == FX["open_user_id"]
    first.get_record("AccountObj", record_id)
    second.get_record("AccountObj", record_id)
    assert calls(fxiaoke, "/cgi/user/getByMobile") == 1


def test_unknown_mobile_is_a_config_error(fxiaoke, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(fxiaoke, open_user_id="", mobile="13999999999"))
    with pytest.raises(ConfigError, match="open_user_id"):
        hook().get_open_user_id()


def test_wrong_app_secret_names_the_credential_and_is_not_retried(fxiaoke, monkeypatch):
    conn = json.loads(fxiaoke_conn(fxiaoke))
    conn["password"] = "wrong-secret-value"
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
    with pytest.raises(AuthenticationError, match="app secret"):
        hook().get_token()
    assert calls(fxiaoke, TOKEN) == 1


def test_test_connection_reports_ok_and_failure(fxiaoke, monkeypatch):
    ok, message = hook().test_connection()
    assert ok and "AccountObj" in message and FX["corp_id"] in message
    conn = json.loads(fxiaoke_conn(fxiaoke))
    conn["extra"]["permanent_code"] = "WRONGPERMANENTCODE"
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
    ok, message = hook().test_connection()
    assert not ok and "permanent_code" in message and "WRONGPERMANENTCODE" not in message


def test_a_host_that_is_not_the_gateway_is_a_transport_error_naming_it(fxiaoke, monkeypatch):
    conn = json.loads(fxiaoke_conn(fxiaoke))
    conn["host"] = f"{fxiaoke.base_url}/not-the-gateway"
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
    with pytest.raises(TransportError, match="127.0.0.1") as err:
        hook(max_attempts=3).get_token()
    assert err.value.status == 404 and "gateway" in str(err.value)
    assert fxiaoke.stats()["total"] == 0  # not retried


def test_refused_connection_is_known_not_to_have_been_sent():
    with pytest.raises(requests.ConnectionError) as err:
        requests.post(f"http://127.0.0.1:{free_port()}/cgi/crm/v2/data/create", json={}, timeout=2)
    assert never_sent(err.value)


def test_secrets_and_tokens_never_reach_the_logs(fxiaoke, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    (record_id,) = seed_accounts(fxiaoke, 1)
    fxiaoke.faults({"token_expire_every": 2})
    h = hook()
    h.get_record("AccountObj", record_id)
    h.get_record("AccountObj", record_id)  # refused once, refreshed, replayed
    token = h.get_token().access_token
    out = caplog.text + capsys.readouterr().out
    assert "Fetched a Fxiaoke corpAccessToken" in out and "20016" in out  # the logs were captured
    for secret in (FX["app_secret"], FX["permanent_code"], token):
        assert secret not in out


def test_airflow_resolves_the_fxiaoke_connection_type_to_this_hook(fxiaoke):
    from airflow.sdk import BaseHook

    assert isinstance(BaseHook.get_hook("fxiaoke_default"), FxiaokeHook)


def test_constructor_does_no_io_and_bad_connections_fail_on_first_use(monkeypatch):
    h = FxiaokeHook("fxiaoke_missing_conn")  # no connection exists: still fine to build
    assert h.calls.total == 0
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_NOPERM", json.dumps({"conn_type": "fxiaoke", "login": "FSAID_1", "password": "s"}))
    with pytest.raises(ConfigError, match="permanent_code"):
        FxiaokeHook("fxiaoke_noperm").get_token()
