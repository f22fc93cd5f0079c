"""The third-party client fxiaoke-python 0.0.3 works unchanged; only its hard-coded host is redirected.

The redirect is a requests transport adapter mounted on the client's own session for
``https://open.fxiaoke.com``: it rewrites the URL's scheme and host and leaves method, headers and payload alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from requests.adapters import HTTPAdapter

from fxiaoke.AccountObj import AccountObj
from fxiaoke.api import FxiaokeApi
from fxiaoke.baseObj import baseObj

from .client import ADMIN, APP_ID, APP_SECRET, CORP_ID, PERMANENT_CODE, Api

REAL_HOST = "https://open.fxiaoke.com"


class RedirectAdapter(HTTPAdapter):
    """Send requests meant for the real gateway to the simulator instead."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def send(self, request: requests.PreparedRequest, **kwargs):  # type: ignore[override]
        request.url = self.target + request.url[len(REAL_HOST):]
        return super().send(request, **kwargs)


@pytest.fixture
def client(api: Api) -> Iterator[FxiaokeApi]:
    fx = FxiaokeApi.init(app_id=APP_ID, app_secret=APP_SECRET, permanent_code=PERMANENT_CODE, open_user_id=ADMIN,
                         timeout=10)
    fx._session.requests.mount(REAL_HOST, RedirectAdapter(api.base_url))
    yield fx
    FxiaokeApi.set_default_api(None)


def test_token_paged_query_and_describe_through_fxiaoke_python(api: Api, client: FxiaokeApi) -> None:
    api.seed(AccountObj=[{"name": f"客户{i:03d}", "last_modified_time": 1700000000000} for i in range(260)])
    token = client._session.fresh_token()
    assert token["corpId"] == CORP_ID and len(token["corpAccessToken"]) == 32

    # AccountObj() overwrites its class-level apiName with None in __init__ (a client bug), so name it.
    accounts = AccountObj(api=client, dataObjectApiName="AccountObj")
    cursor = accounts.query(limit=100, orders=[{"fieldName": "_id", "isAsc": True}])
    names = [row["name"] for row in cursor]
    assert len(names) == len(set(names)) == 260 and cursor.total() == 260
    assert api.admin("GET", "stats")["calls"]["/cgi/crm/v2/data/query"] == 3

    described = accounts.describe()
    assert described["describe"]["fields"]["field_fnfcA__c"]["label"] == "K3客户编码"


def test_custom_object_create_and_query_through_fxiaoke_python(api: Api, client: FxiaokeApi) -> None:
    custom = baseObj(api=client, dataObjectApiName="object_demo__c")
    created = custom.create(object_data={"name": "via client", "field_num1__c": "7"})
    assert re.fullmatch(r"[0-9a-f]{32}", created["dataId"])  # the default id_format
    rows = list(custom.query(filters=[{"field_name": "field_num1__c", "operator": "GTE",
                                       "field_values": [5]}]))
    assert [r["name"] for r in rows] == ["via client"]
    assert api.admin("GET", "stats")["calls"]["/cgi/crm/custom/v2/data/query"] == 1
