"""The fault profile of simulators.md and the call statistics; faults never touch /_sim/."""

from __future__ import annotations

import time

import pytest
import requests

from .client import CREDENTIALS, TOKEN_PATH, Api

LIST = "/cgi/crm/v2/object/list"


def test_stats_count_api_calls_per_path_and_not_admin_calls(api: Api) -> None:
    api.token()
    for _ in range(3):
        api.authed(LIST, {})
    api.admin("GET", "health")
    stats = api.admin("GET", "stats")
    assert stats["calls"] == {TOKEN_PATH: 1, LIST: 3} and stats["total"] == 4
    assert 0 < stats["service_seconds"] < 1


def test_latency_is_added_but_not_counted_as_service_time(api: Api) -> None:
    api.token()
    api.admin("POST", "faults", {"latency_ms": 300})
    started = time.monotonic()
    api.authed(LIST, {})
    assert time.monotonic() - started >= 0.3
    assert api.admin("GET", "stats")["service_seconds"] < 0.3
    assert api.admin("GET", "health") == {"ok": True}


def test_error_rate_answers_502_and_does_nothing(api: Api) -> None:
    api.token()
    api.admin("POST", "faults", {"error_rate": 1.0})
    r = api.raw("/cgi/crm/v2/data/create", {"corpAccessToken": api.token(), "data": {"object_data": {
        "dataObjectApiName": "AccountObj", "name": "never"}}})
    assert r.status_code == 502
    api.admin("POST", "faults", {})
    assert api.admin("GET", "records/AccountObj") == []


def test_error_rate_is_replayable_with_a_seed(api: Api) -> None:
    def run() -> list[int]:
        api.admin("POST", "faults", {"seed": 7, "error_rate": 0.5})
        return [api.raw(TOKEN_PATH, CREDENTIALS).status_code for _ in range(12)]

    first = run()
    assert first == run() and {200, 502} == set(first)


def test_timeout_rate_does_the_work_then_answers_late_while_the_server_stays_responsive(api: Api) -> None:
    api.token()
    api.admin("POST", "faults", {"timeout_rate": 1.0, "timeout_delay_s": 2})
    with pytest.raises(requests.ReadTimeout):
        api.authed("/cgi/crm/v2/data/create", {"data": {"object_data": {
            "dataObjectApiName": "AccountObj", "name": "written anyway"}}}, timeout=0.5)
    started = time.monotonic()
    assert [r["name"] for r in api.admin("GET", "records/AccountObj")] == ["written anyway"]
    assert time.monotonic() - started < 0.5


def test_token_expire_every_nth_data_call_answers_20016_and_does_nothing(api: Api) -> None:
    api.admin("POST", "faults", {"token_expire_every": 3})
    codes = []
    for i in range(6):
        body = api.authed("/cgi/crm/v2/data/create", {"data": {"object_data": {
            "dataObjectApiName": "AccountObj", "name": f"a{i}"}}})
        codes.append(body["errorCode"])
    assert codes == [0, 0, 20016, 0, 0, 20016]  # the token call itself is not a data call
    assert sorted(r["name"] for r in api.admin("GET", "records/AccountObj")) == ["a0", "a1", "a3", "a4"]


def test_rate_limit_is_per_endpoint_per_20s(api: Api) -> None:
    api.token()
    api.admin("POST", "faults", {"rate_limit_per_20s": 2})
    codes = [api.authed(LIST, {})["errorCode"] for _ in range(3)]
    assert codes == [0, 0, 30004]
    assert api.authed("/cgi/department/list", {})["errorCode"] == 0  # another endpoint has its own budget
    api.advance(20)
    assert api.authed(LIST, {})["errorCode"] == 0


def test_quota_runs_out_with_30002_and_zero_quota_is_30003(api: Api) -> None:
    api.admin("POST", "faults", {"quota": 2})
    api.token()  # the token call spends quota too
    assert api.authed(LIST, {})["errorCode"] == 0
    assert api.authed(LIST, {})["errorCode"] == 30002
    api.advance(86400)  # a new day refills the quota (and the old token has expired)
    api.token(fresh=True)
    assert api.authed(LIST, {})["errorCode"] == 0
    api.admin("POST", "faults", {"quota": 0})
    body = api.post(TOKEN_PATH, CREDENTIALS)
    assert body["errorCode"] == 30003 and body["errorMessage"] == "simcorp has no openapi quote currently!"


def test_unknown_fault_keys_are_rejected_and_reset_clears_faults(api: Api) -> None:
    r = api.http.post(api.base_url + "/_sim/faults", json={"error_rat": 1})
    assert r.status_code == 400
    api.admin("POST", "faults", {"error_rate": 1.0})
    api.admin("POST", "reset")
    assert api.raw(TOKEN_PATH, CREDENTIALS).status_code == 200


@pytest.mark.parametrize(("profile", "code"), [
    ({"app_unauthorised": True}, 20020),
    ({"app_disabled": True}, 20021),
    ({"busy_rate": 1.0}, -1),
])
def test_app_state_and_busy_faults_answer_their_codes_and_do_nothing(api: Api, profile: dict, code: int) -> None:
    api.token()
    api.admin("POST", "faults", profile)
    body = api.authed("/cgi/crm/v2/data/create", {"data": {"object_data": {
        "dataObjectApiName": "AccountObj", "name": "never"}}})
    assert body["errorCode"] == code
    api.admin("POST", "faults", {})
    assert api.admin("GET", "records/AccountObj") == []


def test_token_endpoint_throttle_per_minute(api: Api) -> None:
    api.admin("POST", "faults", {"token_calls_per_min": 2})
    codes = [api.post(TOKEN_PATH, CREDENTIALS)["errorCode"] for _ in range(3)]
    assert codes == [0, 0, 14001]
    api.advance(60)
    assert api.post(TOKEN_PATH, CREDENTIALS)["errorCode"] == 0


def test_index_lag_hides_fresh_writes_from_queries_but_not_from_get(api: Api) -> None:
    api.admin("POST", "faults", {"index_lag_s": 120})
    created = api.authed("/cgi/crm/v2/data/create", {"data": {"object_data": {
        "dataObjectApiName": "AccountObj", "name": "fresh"}}})["dataId"]
    assert api.rows("AccountObj") == []
    assert api.crm("get", {"dataObjectApiName": "AccountObj", "objectDataId": created})["errorCode"] == 0
    api.advance(121)
    assert [r["name"] for r in api.rows("AccountObj")] == ["fresh"]
