"""Fault profile and statistics of the admin API, exactly as shared/specs/simulators.md describes them."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from .k3sim_helpers import K3Http, customer_model

QUERY = {"FormId": "BD_Currency", "FieldKeys": "FCODE", "FilterString": "FNUMBER='PRE001'"}


def save_customer(k3: K3Http, number: str) -> requests.Response:
    return k3.post("Save", {"formid": "BD_Customer", "data": {"Model": customer_model(number)}})


def customer_numbers(k3cloud) -> list[str]:
    return [r["FNumber"] for r in k3cloud.records("BD_Customer")]


def test_error_rate_answers_502_before_doing_anything(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"error_rate": 1.0})
    r = save_customer(k3, "E1")
    assert r.status_code == 502
    assert customer_numbers(k3cloud) == []
    assert requests.get(f"{k3cloud.base_url}/_sim/health", timeout=5).json() == {"ok": True}  # never on /_sim/
    assert k3cloud.stats()["calls"]["Save"] == 1


def test_error_rate_is_reproducible_with_a_seed(k3: K3Http, k3cloud) -> None:
    runs = []
    for _ in range(2):
        k3cloud.faults({"seed": 7, "error_rate": 0.5})
        runs.append([k3.post("ExecuteBillQuery", {"data": QUERY}).status_code for _ in range(12)])
    assert runs[0] == runs[1] and {200, 502} == set(runs[0])


def test_latency_is_added_but_not_counted_as_service_time(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"latency_ms": 300})
    started = time.monotonic()
    assert k3.post("ExecuteBillQuery", {"data": QUERY}).json() == [["CNY"]]
    assert time.monotonic() - started >= 0.3
    assert k3cloud.stats()["service_seconds"] < 0.3


def test_timeout_does_the_work_then_answers_late(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"timeout_rate": 1.0, "timeout_delay_s": 3})
    url = k3.base + "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc"
    body = {"formid": "BD_Customer", "data": {"Model": customer_model("T1")}}
    errors: list[Exception] = []

    def slow_save() -> None:
        try:
            requests.post(url, json=body, headers={"kdservice-sessionid": k3.sid or ""}, timeout=(2, 0.5))
        except requests.ReadTimeout as exc:
            errors.append(exc)

    worker = threading.Thread(target=slow_save)
    worker.start()
    worker.join(5)
    assert len(errors) == 1  # the client gave up ...
    assert customer_numbers(k3cloud) == ["T1"]  # ... although the write happened
    k3cloud.faults({})
    started = time.monotonic()  # and the server stayed responsive meanwhile
    assert k3.post("ExecuteBillQuery", {"data": QUERY}).json() == [["CNY"]]
    assert time.monotonic() - started < 1.0


def test_session_loss_every_nth_business_call(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"session_loss_every": 3})
    assert save_customer(k3, "S1").json()["Result"]["ResponseStatus"]["IsSuccess"] is True
    assert save_customer(k3, "S2").json()["Result"]["ResponseStatus"]["IsSuccess"] is True
    lost = save_customer(k3, "S3").json()["Result"]["ResponseStatus"]
    assert lost["MsgCode"] == 1 and lost["Errors"][0]["Message"] == "会话信息已丢失，请重新登录"
    assert customer_numbers(k3cloud) == ["S1", "S2"]  # the lost call did nothing
    assert save_customer(k3, "S3").json()["Result"]["ResponseStatus"]["MsgCode"] == 1  # its session is gone
    k3.login()  # logins are not business calls: they neither count nor lose sessions
    assert save_customer(k3, "S3").json()["Result"]["ResponseStatus"]["IsSuccess"] is True


def test_rate_limit_per_service(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"rate_limit_per_20s": 2})
    assert [save_customer(k3, f"R{i}").json()["Result"]["ResponseStatus"]["MsgCode"] for i in range(3)] == [0, 0, 14]
    # another endpoint has its own cap
    assert [k3.post("ExecuteBillQuery", {"data": QUERY}).json() == [["CNY"]] for _ in range(3)] == [True, True, False]
    assert customer_numbers(k3cloud) == ["R0", "R1"]


def test_lock_conflict_on_writes_only(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"lock_conflict_rate": 1.0})
    status = save_customer(k3, "L1").json()["Result"]["ResponseStatus"]
    # Real servers answer a 网控 conflict with MsgCode 0 and the text (README "Protocol switches"), not 13.
    assert status["MsgCode"] == 0 and "冲突，请稍候再使用" in status["Errors"][0]["Message"]
    assert customer_numbers(k3cloud) == []
    assert k3.post("ExecuteBillQuery", {"data": QUERY}).json() == [["CNY"]]


def test_response_error_body(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"response_error_rate": 1.0})
    r = k3.post("ExecuteBillQuery", {"data": QUERY})
    assert r.status_code == 200 and r.text.startswith("response_error:")


@pytest.mark.parametrize("profile", [{"nonsense": 1}, {"error_rate": 2}, {"latency_ms": -1}, {"error_rate": "x"}])
def test_invalid_fault_profiles_are_refused(k3cloud, profile: dict) -> None:
    r = requests.post(f"{k3cloud.base_url}/_sim/faults", json=profile, timeout=5)
    assert r.status_code == 400


def test_stats_count_per_service_and_reset(k3: K3Http, k3cloud) -> None:
    k3cloud.reset()
    k3.login()
    for number in ("A1", "A2"):
        save_customer(k3, number)
    k3.call("BatchSave", "BD_Customer", {"Model": [customer_model("A3")]})
    k3.post("ExecuteBillQuery", {"data": QUERY})
    requests.get(f"{k3cloud.base_url}/_sim/records/BD_Customer", timeout=5)  # admin calls are not counted
    stats = k3cloud.stats()
    assert stats["calls"] == {"ValidateUser": 1, "Save": 2, "BatchSave": 1, "ExecuteBillQuery": 1}
    assert stats["total"] == 5 and stats["service_seconds"] > 0
    k3cloud.reset()
    assert k3cloud.stats() == {"calls": {}, "total": 0, "service_seconds": 0.0, "modelled_seconds": 0.0, "max_in_flight_seen": 0,
                               "sessions": {"live": 0, "opened": 0, "logged_out": 0}}


def test_reset_drops_data_sessions_and_faults(k3: K3Http, k3cloud) -> None:
    save_customer(k3, "X1")
    k3cloud.faults({"lock_conflict_rate": 1.0})
    k3cloud.reset()
    assert customer_numbers(k3cloud) == []
    assert save_customer(k3, "X2").json()["Result"]["ResponseStatus"]["MsgCode"] == 1
    k3.login()
    assert save_customer(k3, "X2").json()["Result"]["ResponseStatus"]["IsSuccess"] is True


def test_waf_blocks_angle_brackets_when_enabled(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"waf_angle_brackets": 1})
    blocked = k3.post("Save", {"formid": "BD_Customer", "data": {"Model": customer_model("W1", FName="<b>x</b>")}}).json()
    assert blocked[0]["actionname"] == "showConfirm" and "caller_in_less_Point_Bracket" in blocked[0]["params"][0]["msg"]
    assert customer_numbers(k3cloud) == []
    assert save_customer(k3, "W2").json()["Result"]["ResponseStatus"]["IsSuccess"] is True


def test_error_status_can_be_504(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"error_rate": 1, "error_status": 504})
    assert k3.post("ExecuteBillQuery", {"data": QUERY}).status_code == 504
