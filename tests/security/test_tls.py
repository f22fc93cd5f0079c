"""TLS verification is on by default: a private CA is refused unless the connection's ``ca_bundle`` names it."""

from __future__ import annotations

import json

import pytest

from simproc import FX, K3

from .tlsproxy import TlsProxy, make_ca_and_server_cert


@pytest.fixture
def tls(tmp_path, k3cloud, fxiaoke):
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    proxies = {"k3": TlsProxy(k3cloud.port, cert, key), "fx": TlsProxy(fxiaoke.port, cert, key)}
    yield ca, proxies
    for p in proxies.values():
        p.close()


def _k3_conn(url: str, **extra) -> str:
    return json.dumps({"conn_type": "k3cloud", "host": f"{url}/k3cloud/", "login": K3["username"], "password": K3["password"],
                       "extra": {"acct_id": K3["acct_id"], "lcid": 2052, "org_number": "100", "timeout": 5, **extra}})


def _fx_conn(url: str, **extra) -> str:
    return json.dumps({"conn_type": "fxiaoke", "host": url, "login": FX["app_id"], "password": FX["app_secret"],
                       "extra": {"permanent_code": FX["permanent_code"], "open_user_id": FX["open_user_id"], "timeout": 5,
                                 **extra}})


CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _k3_refused_then_accepted(ca, proxy, monkeypatch):
    from fxiaoke_k3cloud.errors import TransportError
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", _k3_conn(proxy.base_url))
    with pytest.raises(TransportError) as err:
        list(K3CloudHook(retry_wait_s=0).execute_bill_query("BD_Customer", ["FNumber"]))
    text = str(err.value)
    assert "TLS" in text and f"127.0.0.1:{proxy.port}" in text and "ca_bundle" in text
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", _k3_conn(proxy.base_url, ca_bundle=str(ca)))
    assert [r for page in K3CloudHook(retry_wait_s=0).execute_bill_query("BD_Customer", ["FNumber"]) for r in page] == []


def _fx_token(url: str, monkeypatch, **extra):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.fxiaoke_token import clear_process_caches

    clear_process_caches()
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", _fx_conn(url, **extra))
    try:
        return FxiaokeHook(retry_wait_s=0).get_token()
    finally:
        clear_process_caches()


def test_k3cloud_refuses_an_unknown_ca_and_works_with_ca_bundle(tls, monkeypatch):
    for name in CA_ENV:
        monkeypatch.delenv(name, raising=False)
    ca, proxies = tls
    _k3_refused_then_accepted(ca, proxies["k3"], monkeypatch)


def test_k3cloud_ca_bundle_wins_over_requests_ca_bundle_env(tls, monkeypatch):
    import certifi

    for name in CA_ENV:
        monkeypatch.setenv(name, certifi.where())
    ca, proxies = tls
    _k3_refused_then_accepted(ca, proxies["k3"], monkeypatch)


def test_fxiaoke_refuses_an_unknown_ca_and_works_with_ca_bundle(tls, monkeypatch):
    from fxiaoke_k3cloud.errors import TransportError

    for name in CA_ENV:
        monkeypatch.delenv(name, raising=False)
    ca, proxies = tls
    with pytest.raises(TransportError) as err:
        _fx_token(proxies["fx"].base_url, monkeypatch)
    assert f"127.0.0.1:{proxies['fx'].port}" in str(err.value) and "SSL" in str(err.value)
    # The error says what to do about it.
    assert "certificate" in str(err.value).lower() and "ca_bundle" in str(err.value)
    assert _fx_token(proxies["fx"].base_url, monkeypatch, ca_bundle=str(ca)).access_token


def test_fxiaoke_ca_bundle_wins_over_requests_ca_bundle_env(tls, monkeypatch):
    import certifi

    for name in CA_ENV:
        monkeypatch.setenv(name, certifi.where())
    ca, proxies = tls
    assert _fx_token(proxies["fx"].base_url, monkeypatch, ca_bundle=str(ca)).access_token
