"""The service-time model (simulators/service_time.py) on the Fxiaoke side: per record written, per row read."""

from __future__ import annotations

from .client import Api


def _create(api: Api, name: str) -> str:
    return api.ok("create", {"object_data": {"dataObjectApiName": "AccountObj", "name": name}})["dataId"]


def test_writes_and_query_rows_are_modelled_and_the_fast_profile_models_nothing(api: Api) -> None:
    api.token()
    for i in range(3):
        _create(api, f"服务时间测试{i}")
    assert api.admin("GET", "stats")["modelled_seconds"] == 0.0
    api.admin("POST", "faults", {"per_record_ms": 40, "per_row_ms": 5})
    _create(api, "服务时间测试X")
    assert abs(api.admin("GET", "stats")["modelled_seconds"] - 0.040) < 1e-6
    rows = api.rows("AccountObj", limit=100)
    assert len(rows) >= 4
    assert abs(api.admin("GET", "stats")["modelled_seconds"] - 0.040 - 0.005 * len(rows)) < 1e-6
    failed = api.crm("create", {"object_data": {"dataObjectApiName": "AccountObj"}})  # no name: refused
    assert failed["errorCode"] != 0
    assert abs(api.admin("GET", "stats")["modelled_seconds"] - 0.040 - 0.005 * len(rows)) < 1e-6


def test_the_profile_keys_are_validated(api: Api) -> None:
    r = api.http.post(f"{api.base_url}/_sim/faults", json={"per_row_ms": -1}, timeout=5)
    assert r.status_code == 400
