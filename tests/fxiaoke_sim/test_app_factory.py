"""``create_app`` builds independent instances: no state is shared between two apps in one process."""

from __future__ import annotations

from fastapi.testclient import TestClient

from simulators.fxiaoke import SimConfig, create_app

from .client import CREDENTIALS, TOKEN_PATH


def test_two_apps_share_no_records_tokens_or_clock() -> None:
    one, two = TestClient(create_app()), TestClient(create_app(SimConfig(corp_id="FSCID_TWO")))
    one.post("/_sim/seed", json={"objects": {"AccountObj": [{"name": "only in one"}]}})
    one.post("/_sim/clock", json={"advance_s": 3600})
    assert len(one.get("/_sim/records/AccountObj").json()) == 1
    assert two.get("/_sim/records/AccountObj").json() == []
    assert abs(two.get("/_sim/clock").json()["offset_s"]) < 1
    token_one = one.post(TOKEN_PATH, json=CREDENTIALS).json()
    token_two = two.post(TOKEN_PATH, json=CREDENTIALS).json()
    assert token_two["corpId"] == "FSCID_TWO" and token_one["corpAccessToken"] != token_two["corpAccessToken"]
    body = {"corpAccessToken": token_one["corpAccessToken"], "corpId": "FSCID_TWO"}
    assert two.post("/cgi/department/list", json=body).json()["errorCode"] == 20016
