"""Path routing, filter/order normalisation and the paginators (pure)."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.hooks.fxiaoke_config import base_url_of
from fxiaoke_k3cloud.hooks.fxiaoke_query import (
    IdCursorPaginator,
    OffsetPaginator,
    check_page_size,
    data_path,
    normalize_filter,
    normalize_order,
    projection,
)


@pytest.mark.parametrize(
    ("api", "action", "path"),
    [
        ("AccountObj", "query", "/cgi/crm/v2/data/query"),
        ("SalesOrderObj", "create", "/cgi/crm/v2/data/create"),
        ("object_8W9cb__c", "query", "/cgi/crm/custom/v2/data/query"),
        ("object_8W9cb__c", "invalid", "/cgi/crm/custom/v2/data/invalid"),
        ("Obj__cx", "get", "/cgi/crm/v2/data/get"),  # only the exact suffix __c means custom
    ],
)
def test_path_is_chosen_by_the_custom_suffix(api, action, path):
    assert data_path(api, action) == path


def test_filters_accept_triples_and_wrap_scalars_in_a_list():
    assert normalize_filter(("last_modified_time", "gte", 5)) == {
        "field_name": "last_modified_time",
        "operator": "GTE",
        "field_values": [5],
    }
    assert normalize_filter({"field_name": "_id", "operator": "IN", "field_values": ("a", "b")})["field_values"] == ["a", "b"]


@pytest.mark.parametrize(
    "bad",
    [("x", "NE", [1]), {"field": "x", "operator": "EQ"}, ("", "EQ", [1]), "x EQ 1"],
)
def test_bad_filters_fail_loudly(bad):
    with pytest.raises(ConfigError):
        normalize_filter(bad)


def test_orders_and_projection():
    assert normalize_order(("name", False)) == {"fieldName": "name", "isAsc": False}
    assert projection(["name", "name", "tel"]) == ["_id", "name", "tel"]
    assert projection(None) == []


@pytest.mark.parametrize("size", [0, 101, "100"])
def test_page_size_above_the_api_cap_is_refused(size):
    with pytest.raises(ConfigError):
        check_page_size(size)


def test_id_cursor_adds_gt_filter_after_the_first_page_and_stops_on_a_short_page():
    pager = IdCursorPaginator(page_size=2)
    first = pager.update_request([{"field_name": "x", "operator": "EQ", "field_values": [1]}])
    assert first["offset"] == 0 and first["orders"] == [{"fieldName": "_id", "isAsc": True}] and len(first["filters"]) == 1
    pager.update_state([{"_id": "a"}, {"_id": "b"}], 2)
    second = pager.update_request([])
    assert second["filters"] == [{"field_name": "_id", "operator": "GT", "field_values": ["b"]}]
    assert pager.has_next_page
    pager.update_state([{"_id": "c"}], 2)
    assert not pager.has_next_page and pager.pages == 2


def test_id_cursor_that_does_not_advance_raises_instead_of_looping():
    pager = IdCursorPaginator(page_size=1)
    pager.update_state([{"_id": "b"}], 1)
    with pytest.raises(ConfigError, match="did not advance"):
        pager.update_state([{"_id": "b"}], 1)


def test_offset_paginator_adds_id_tiebreak_and_stops_before_the_cap():
    pager = OffsetPaginator(page_size=100, orders=[{"fieldName": "last_modified_time", "isAsc": True}])
    request = pager.update_request([])
    assert request["orders"][-1] == {"fieldName": "_id", "isAsc": True}
    pager.offset = 9900
    assert pager.update_request([])["offset"] == 9900
    pager.update_state([{"_id": str(i)} for i in range(100)], 100)
    with pytest.raises(ConfigError, match="offset cap"):
        pager.update_request([])


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, "https://open.fxiaoke.com"),
        ("open-hwcloud.fxiaoke.com", "https://open-hwcloud.fxiaoke.com"),
        ("http://127.0.0.1:18801/", "http://127.0.0.1:18801"),
    ],
)
def test_host_becomes_a_base_url(host, url):
    assert base_url_of(host) == url
