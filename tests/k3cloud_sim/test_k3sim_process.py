"""The command line and the app factory: options, independent instances."""

from __future__ import annotations

import json

import pytest
import requests

from simproc import SimulatorProcess
from simulators.k3cloud import SimConfig, create_app

from .k3sim_helpers import AUTH, K3Http


def test_command_line_options_and_initial_faults() -> None:
    sim = SimulatorProcess("k3cloud", "--seed-demo", "3", "--password", "other-pass", "--acct-id", "acct2",
                           "--faults", json.dumps({"lock_conflict_rate": 1.0}),
                           "--protocol", json.dumps({"lock_conflict_shape": "msgcode13"})).start()
    try:
        banner = sim.log_path.read_text(encoding="utf-8")
        assert f"http://127.0.0.1:{sim.port}/k3cloud/" in banner and "other-pass" in banner
        client = K3Http(sim.base_url)
        login = {"acctID": "acct2", "username": "apiuser", "password": "other-pass", "lcid": 2052}
        body = client.post("ValidateUser", login, prefix=AUTH).json()
        assert body["LoginResultType"] == 1
        client.sid = body["KDSVCSessionId"]
        save = client.post("Save", {"formid": "BD_UNIT", "data": {"Model": {"FNumber": "X", "FName": "x"}}}).json()
        # the --faults profile is active from the start, with the --protocol switch's documented MsgCode 13 shape
        assert save["Result"]["ResponseStatus"]["MsgCode"] == 13
        materials = sim.records("BD_MATERIAL")  # a row per use org (100, 603), as K3Cloud keeps allocated base data
        assert len(materials) == 40 and len({m["FNumber"] for m in materials}) == 20
        assert requests.get(f"{sim.base_url}/k3cloud/anything", timeout=5).status_code == 404
    finally:
        sim.stop()


@pytest.mark.filterwarnings("ignore")
def test_app_instances_share_no_state() -> None:
    from fastapi.testclient import TestClient

    first, second = TestClient(create_app(SimConfig())), TestClient(create_app(SimConfig()))
    login = {"acctID": "65a1b2c3d4e5f6", "username": "apiuser", "password": "sim-k3-password", "lcid": 2052}
    url = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub."
    for client in (first, second):
        client.post(url + "AuthService.ValidateUser.common.kdsvc", json=login)
    first.post(url + "DynamicFormService.Save.common.kdsvc",
               json={"formid": "BD_UNIT", "data": {"Model": {"FNumber": "ONLY-1", "FName": "x"}}})
    assert any(r["FNumber"] == "ONLY-1" for r in first.get("/_sim/records/BD_UNIT").json())
    assert not any(r["FNumber"] == "ONLY-1" for r in second.get("/_sim/records/BD_UNIT").json())
    assert second.get("/_sim/stats").json()["calls"] == {"ValidateUser": 1}
