"""Voided rows are asked for explicitly (issue 14, point 14): the hook finds them under either simulator default,
and no code assumes an ``_id`` length (point 13)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from fxiaoke_hook.helpers import QUERY, accounts, calls

from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.fxiaoke_query import LIFE_STATUSES, with_voided
from simproc import fxiaoke_conn

TIE_MS = 1_700_000_000_000
DEFAULTS = pytest.mark.parametrize("includes", [True, False], ids=["default-includes-voided", "default-excludes-voided"])


def hook() -> FxiaokeHook:
    return FxiaokeHook(retry_wait_s=0)


def seed(sim, normal: int, voided: int) -> tuple[set[str], set[str]]:
    rows = accounts(normal, prefix="LIVE", last_modified_time=TIE_MS) + \
        accounts(voided, prefix="VOID", last_modified_time=TIE_MS, life_status="invalid")
    ids = sim.seed({"objects": {"AccountObj": rows}})["ids"]["AccountObj"]
    return set(ids[:normal]), set(ids[normal:])


@DEFAULTS
@pytest.mark.parametrize("mode", ["folded", "separate"])
def test_a_window_read_returns_voided_rows_once_whatever_the_tenant_default(fxiaoke, includes, mode, monkeypatch):
    if mode == "separate":
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(fxiaoke, voided_query="separate"))
    fxiaoke._admin("POST", "config", {"query_includes_invalid": includes})
    live, voided = seed(fxiaoke, 130, 120)
    seen = Counter(r["_id"] for page in hook().query_window("AccountObj", "last_modified_time", TIE_MS, TIE_MS + 1,
                                                             fields=["name"]) for r in page)
    assert set(seen) == live | voided and set(seen.values()) == {1}
    if mode == "folded":  # one query naming every life_status: 250 rows in 3 pages, under either default
        assert calls(fxiaoke, QUERY) == 3
        return
    # pass 1 (the default query): 3 pages, or 2 when voided rows are hidden; pass 2 (life_status EQ invalid): 2
    assert calls(fxiaoke, QUERY) == (3 if includes else 2) + 2


def test_the_folded_query_keeps_every_life_status(fxiaoke):
    fxiaoke._admin("POST", "config", {"query_includes_invalid": False})
    rows = [r for status in LIFE_STATUSES
            for r in accounts(2, prefix=f"S-{status}-", last_modified_time=TIE_MS, life_status=status)]
    fxiaoke.seed({"objects": {"AccountObj": rows}})
    got = [r for page in hook().query_window("AccountObj", "last_modified_time", TIE_MS, TIE_MS + 1,
                                             fields=["name"]) for r in page]
    assert Counter(r["life_status"] for r in got) == {s: 2 for s in LIFE_STATUSES}
    assert calls(fxiaoke, QUERY) == 1


def test_an_unknown_voided_query_mode_is_a_config_error(fxiaoke, monkeypatch):
    from fxiaoke_k3cloud.errors import ConfigError

    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(fxiaoke, voided_query="twice"))
    with pytest.raises(ConfigError, match="voided_query"):
        list(hook().query_window("AccountObj", "last_modified_time", TIE_MS, TIE_MS + 1))


@DEFAULTS
def test_query_records_leaves_the_default_alone_unless_voided_rows_are_asked_for(fxiaoke, includes):
    fxiaoke._admin("POST", "config", {"query_includes_invalid": includes})
    live, voided = seed(fxiaoke, 5, 3)
    h = hook()
    plain = {r["_id"] for page in h.query_records("AccountObj") for r in page if r["name"][:4] in ("LIVE", "VOID")}
    assert plain == (live | voided if includes else live)
    asked = [r for page in h.query_records("AccountObj", filters=[("_id", "IN", sorted(live | voided))],
                                           fields=["_id"], include_voided=True) for r in page]
    assert {r["_id"] for r in asked} == live | voided and len(asked) == 8
    # a caller's own life_status filter is sent as given, once
    before = calls(fxiaoke, QUERY)
    only = {r["_id"] for page in h.query_records("AccountObj", filters=[("life_status", "EQ", "invalid")],
                                                 include_voided=True) for r in page}
    assert only == voided and calls(fxiaoke, QUERY) == before + 1


def test_with_voided_skips_only_the_voided_rows_the_first_pass_returned():
    first = [[{"_id": "a", "life_status": "normal"}, {"_id": "b", "life_status": "invalid"}]]
    second = [[{"_id": "b", "life_status": "invalid"}, {"_id": "c", "life_status": "invalid"}]]
    sent: list[list[dict]] = []

    def run(filters):
        sent.append(filters)
        return iter(first if len(sent) == 1 else second)

    pages = list(with_voided(run, [{"field_name": "name", "operator": "EQ", "field_values": ["x"]}]))
    assert [[r["_id"] for r in p] for p in pages] == [["a", "b"], ["c"]]
    assert sent[1][-1] == {"field_name": "life_status", "operator": "EQ", "field_values": ["invalid"]}


@pytest.mark.parametrize("fmt, length", [("hex32", 32), ("hex24", 24)])
def test_create_get_update_and_cursor_paging_work_with_either_id_shape(fxiaoke, fmt, length):
    fxiaoke._admin("POST", "config", {"id_format": fmt})
    h = hook()
    ids = [h.create_record("AccountObj", {"name": f"SHAPE-{i:03d}"}) for i in range(25)]
    assert {len(i) for i in ids} == {length} and all(re.fullmatch(r"[0-9a-f]+", i) for i in ids)
    h.update_record("AccountObj", ids[3], {"remark": "edited"})
    assert h.get_record("AccountObj", ids[3])["remark"] == "edited"
    paged = [r["_id"] for page in h.query_records("AccountObj", filters=[("name", "STARTWITH", "SHAPE-")],
                                                  page_size=10) for r in page]
    assert paged == sorted(ids) and calls(fxiaoke, QUERY) == 3
