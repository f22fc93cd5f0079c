"""QUERY invoke mode: beginmethod/querymethod and QueryAsyncResult (k3cloud-webapi.md §3.11)."""

from __future__ import annotations

import json

import pytest

from .k3sim_helpers import K3Http
from simulators.k3cloud import SimConfig, create_app

BEGIN = {"beginmethod": "BeginQueryImpl", "querymethod": "QueryAsyncResult"}


def test_begin_query_completes_and_can_be_polled(k3: K3Http) -> None:
    body = {"formid": "BD_UNIT", "data": {"Model": [{"FNumber": "U-A1", "FName": "甲"}]}, **BEGIN}
    started = k3.post("BatchSave", body).json()
    assert started["Status"] == 2 and started["TaskId"]
    assert started["Result"]["Result"]["ResponseStatus"]["IsSuccess"] is True
    # Python SDK style: queryInfo is a JSON string; Java SDK style: parameters array with the object
    by_string = k3.post("QueryAsyncResult", {"queryInfo": json.dumps({"TaskId": started["TaskId"], "Cancelled": False})}).json()
    by_params = k3.post("QueryAsyncResult", {"parameters": [{"TaskId": started["TaskId"], "Cancelled": False}]}).json()
    assert by_string == by_params == started
    unknown = k3.post("QueryAsyncResult", {"queryInfo": json.dumps({"TaskId": "nope"})}).json()
    assert unknown["IsFaulted"] is True


@pytest.mark.filterwarnings("ignore")
def test_pending_polls_exercise_client_polling() -> None:
    from fastapi.testclient import TestClient

    client = TestClient(create_app(SimConfig(query_pending_polls=2)))
    base = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub."
    login = {"acctID": "65a1b2c3d4e5f6", "username": "apiuser", "password": "sim-k3-password", "lcid": 2052}
    assert client.post(base + "AuthService.ValidateUser.common.kdsvc", json=login).json()["LoginResultType"] == 1
    query = {"data": {"FormId": "BD_Currency", "FieldKeys": "FCODE", "FilterString": "FNUMBER='PRE001'"}, **BEGIN}
    started = client.post(base + "DynamicFormService.ExecuteBillQuery.common.kdsvc", json=query).json()
    assert started["Status"] == 1
    poll = {"queryInfo": json.dumps({"TaskId": started["TaskId"], "Cancelled": False})}
    url = base + "DynamicFormService.QueryAsyncResult.common.kdsvc"
    states = [client.post(url, json=poll).json() for _ in range(2)]
    assert [s["Status"] for s in states] == [1, 2] and states[-1]["Result"] == [["CNY"]]
