"""A thin raw-HTTP client for the simulator tests: builds legacy-protocol bodies, returns parsed envelopes."""

from __future__ import annotations

from typing import Any

import requests

# Development defaults of the simulator (simulators/README.md); not secrets.
APP_ID = "FSAID_131b579"
APP_SECRET = "sim-app-secret-0123456789abcdef"
PERMANENT_CODE = "SIMPERMANENTCODE0123456789ABCDEF"
CORP_ID = "FSCID_00000000000000000000000000C0FFEE"
ADMIN = "FSUID_0000000000000000000000000000A001"
REP = "FSUID_0000000000000000000000000000A002"
MOBILE = "13800000000"
TOKEN_PATH = "/cgi/corpAccessToken/get/V2"
CREDENTIALS = {"appId": APP_ID, "appSecret": APP_SECRET, "permanentCode": PERMANENT_CODE}


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self._token: str | None = None

    def raw(self, path: str, body: Any, *, timeout: float = 10, **params: Any) -> requests.Response:
        return self.http.post(self.base_url + path, json=body, params=params or None, timeout=timeout)

    def post(self, path: str, body: Any, **kw: Any) -> dict[str, Any]:
        r = self.raw(path, body, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def token(self, fresh: bool = False) -> str:
        if fresh or self._token is None:
            body = self.post(TOKEN_PATH, CREDENTIALS)
            assert body["errorCode"] == 0, body
            self._token = body["corpAccessToken"]
        return self._token

    def authed(self, path: str, body: dict[str, Any] | None = None, *, user: str | None = ADMIN,
               **kw: Any) -> dict[str, Any]:
        full = {"corpAccessToken": self.token(), "corpId": CORP_ID, **(body or {})}
        if user:
            full["currentOpenUserId"] = user
        return self.post(path, full, **kw)

    def crm(self, op: str, data: dict[str, Any], *, custom: bool = False, **top: Any) -> dict[str, Any]:
        prefix = "/cgi/crm/custom/v2/data/" if custom else "/cgi/crm/v2/data/"
        return self.authed(prefix + op, {"data": data, **top})

    def ok(self, op: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        body = self.crm(op, data, **kw)
        assert body["errorCode"] == 0, body
        return body

    def query(self, obj: str, filters: list | None = None, *, orders: list | None = None, limit: int = 100,
              offset: int = 0, projection: list | None = None, **extra: Any) -> dict[str, Any]:
        sqi: dict[str, Any] = {"limit": limit, "offset": offset, "filters": filters or []}
        if orders is not None:
            sqi["orders"] = orders
        if projection is not None:
            sqi["fieldProjection"] = projection
        return self.crm("query", {"dataObjectApiName": obj, "search_query_info": sqi, **extra})

    def rows(self, obj: str, filters: list | None = None, **kw: Any) -> list[dict[str, Any]]:
        body = self.query(obj, filters, **kw)
        assert body["errorCode"] == 0, body
        return body["data"]["dataList"]

    # --- admin -------------------------------------------------------------------------------------
    def admin(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, f"{self.base_url}/_sim/{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    def advance(self, seconds: float) -> None:
        self.admin("POST", "clock", {"advance_s": seconds})

    def seed(self, **objects: list[dict[str, Any]]) -> dict[str, list[str]]:
        return self.admin("POST", "seed", {"objects": objects})["ids"]


def flt(field: str, op: str, *values: Any) -> dict[str, Any]:
    return {"field_name": field, "operator": op, "field_values": list(values)}
