"""Raw-HTTP client and model builders for the K3Cloud simulator tests."""

from __future__ import annotations

import json
from typing import Any

import requests

# Development defaults of the simulator (simulators/README.md); not secrets.
K3 = {
    "acct_id": "65a1b2c3d4e5f6",
    "username": "apiuser",
    "password": "sim-k3-password",
    "app_id": "123456_AQIGAFMFDg9aBlNRV1dSXlMCCldUAVML",
    "app_secret": "00112233445566778899aabbccddeeff",
}

AUTH = "Kingdee.BOS.WebApi.ServicesStub.AuthService."
DFS = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService."


class K3Http:
    """A deliberately thin client: posts bodies as given and keeps the session id it was handed."""

    def __init__(self, base_url: str) -> None:
        self.base = f"{base_url}/k3cloud/"
        self.http = requests.Session()
        self.sid: str | None = None

    def post(self, service: str, body: Any = None, *, raw: bytes | None = None, headers: dict[str, str] | None = None,
             prefix: str = DFS) -> requests.Response:
        url = self.base + prefix + service + ".common.kdsvc"
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if self.sid:
            hdrs.setdefault("Cookie", f"kdservice-sessionid={self.sid}")
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        return requests.post(url, data=data, headers=hdrs, timeout=10)

    def login(self) -> dict[str, Any]:
        r = self.post("ValidateUser", {"acctID": K3["acct_id"], "username": K3["username"],
                                       "password": K3["password"], "lcid": 2052}, prefix=AUTH)
        body = r.json()
        assert body["LoginResultType"] == 1, body
        self.sid = body["KDSVCSessionId"]
        return body

    def call(self, service: str, formid: str | None = None, data: Any = None, **extra: Any) -> Any:
        body: dict[str, Any] = {"data": data if data is not None else {}, **extra}
        if formid is not None:
            body["formid"] = formid
        r = self.post(service, body)
        assert r.status_code == 200, r.text
        return r.json()

    def save(self, formid: str, model: dict[str, Any], **options: Any) -> dict[str, Any]:
        return self.call("Save", formid, {"Model": model, **options})["Result"]

    def query(self, formid: str, keys: str, filter_string: Any = "", **extra: Any) -> Any:
        return self.call("ExecuteBillQuery", data={"FormId": formid, "FieldKeys": keys, "FilterString": filter_string, **extra})


def customer_model(number: str = "C0001", org: str = "603", **extra: Any) -> dict[str, Any]:
    return {"FCUSTID": 0, "FCreateOrgId": {"FNumber": org}, "FUseOrgId": {"FNumber": org}, "FNumber": number,
            "FName": f"客户{number}", "FTRADINGCURRID": {"FNumber": "PRE001"}, **extra}


def order_model(customer: str = "C0001", org: str = "603", lines: tuple[tuple[str, float], ...] = (("MAT-0001", 5),),
                **extra: Any) -> dict[str, Any]:
    return {"FID": 0, "FBillTypeID": {"FNumber": "XSDD01_SYS"}, "FDate": "2025-01-02", "FSaleOrgId": {"FNumber": org},
            "FCustId": {"FNumber": customer}, "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE001"}},
            "FSaleOrderEntry": [{"FMaterialId": {"FNumber": m}, "FQty": q, "FTaxPrice": 100} for m, q in lines], **extra}


def ok(result: dict[str, Any]) -> dict[str, Any]:
    status = result["ResponseStatus"]
    assert status["IsSuccess"] is True, status
    return status
