"""The console's pages and actions over HTTP (no browser), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from fxiaoke_k3cloud.monitor.app import create_app

from .fill import CRM_ID, SECRET, Filled

ORIGIN = {"Origin": "http://testserver"}


def client_for(store) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(lambda: store, dependencies=[]))


def ids_in(html: str) -> list[str]:
    return re.findall(r'name="sel" value="[a-z]+\|([^"]+)"', html)


def test_default_view_lists_every_record_needing_attention_across_flows(filled: Filled) -> None:
    html = client_for(filled.store).get("/records").text
    assert sorted(ids_in(html)) == ["66000000000000000000c001", "66000000000000000000c002",
                                    "66000000000000000000c003", "77000000000000000000d002"]
    assert SECRET not in html
    # The quarantined one (parked table only) has its own filter.
    assert ids_in(client_for(filled.store).get("/records", params={"outcome": "quarantined"}).text) == [
        "77000000000000000000d003"]


@pytest.mark.parametrize("query, expected", [
    ("cust-000123", [CRM_ID]),              # K3 number, lower case
    ("ＣＵＳＴ－０００１２３", [CRM_ID]),     # full width
    ("000000a1", [CRM_ID]),                 # part of the CRM id
    ("缺税号", ["66000000000000000000c001"]),  # part of the name
])
def test_search_is_partial_and_case_and_width_insensitive(filled: Filled, query: str, expected: list[str]) -> None:
    html = client_for(filled.store).get("/records", params={"outcome": "any", "q": query}).text
    assert ids_in(html) == expected


def test_filters_by_flow_outcome_and_time(filled: Filled) -> None:
    c = client_for(filled.store)
    assert ids_in(c.get("/records", params={"flow": "customers", "outcome": "failed"}).text) == [
        "66000000000000000000c003"]
    assert ids_in(c.get("/records", params={"flow": "orders", "outcome": "parked"}).text) == [
        "77000000000000000000d002"]
    assert ids_in(c.get("/records", params={"until": "2026-01-05T00:01"}).text) == []


def test_csv_export_has_the_filtered_rows(filled: Filled) -> None:
    r = client_for(filled.store).get("/records.csv", params={"flow": "customers", "outcome": "rejected"})
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert sorted(x["source_id"] for x in rows) == ["66000000000000000000c001", "66000000000000000000c002"]
    assert {x["reason"] for x in rows} == {"tax_id is required (FTAXREGISTERCODE)"}
    assert 'filename="sync-records.csv"' in r.headers["content-disposition"]


def test_ignore_quarantines_with_reason_who_and_when(filled: Filled) -> None:
    c = client_for(filled.store)
    r = c.post("/records/action", headers=ORIGIN, data={"action": "ignore", "reason": "duplicate test customer",
                                                         "sel": "customers|66000000000000000000c003"})
    assert r.status_code == 200 and "local (no authentication)" in r.text  # after the redirect
    assert "66000000000000000000c003" not in ids_in(c.get("/records").text)
    html = c.get("/records", params={"outcome": "quarantined"}).text
    assert "66000000000000000000c003" in ids_in(html)
    assert "ignored by local (no authentication)" in html and "duplicate test customer" in html
    assert "duplicate test customer" in c.get("/").text  # console actions on the overview
    # A redrive queue reads the latest outcome: it is skipped/Quarantined now.
    history = c.get("/record", params={"q": "66000000000000000000c003"}).text
    assert "skipped" in history


def test_actions_need_a_selection_a_reason_and_the_same_origin(filled: Filled) -> None:
    c = client_for(filled.store)
    assert "select at least one record" in c.post("/records/action", headers=ORIGIN, data={"action": "ignore"}).text
    assert "Ignore needs a reason" in c.post("/records/action", headers=ORIGIN,
                                             data={"action": "ignore", "sel": "customers|x"}).text
    foreign = c.post("/records/action", headers={"Origin": "https://evil.example"},
                     data={"action": "ignore", "reason": "x", "sel": "customers|66000000000000000000c003"})
    assert foreign.status_code == 403
    # Every registry flow is re-driven, K3Cloud → CRM ones too: a delivery's Retry goes to Airflow (absent here),
    # it is not refused as a flow Retry cannot handle.
    retried = c.post("/records/action", headers=ORIGIN, data={"action": "retry", "sel": "deliveries|n1"},
                     follow_redirects=False).headers["location"]
    assert "error=" in retried and "Retry%20re-drives" not in retried  # the Airflow call failed; not refused
    assert "Retry re-drives the flows customers, orders, contacts, deliveries, receipts;" in c.get("/records").text


def test_errors_page_groups_by_cause_with_hints_and_shows_invalid_mappings(filled: Filled, tmp_path, monkeypatch) -> None:
    c = client_for(filled.store)
    html = c.get("/errors").text
    data = html.split('id="data"')[1]
    assert "tax_id is required" in data and ">2</a>" in data  # two records, one cause
    assert "Retry" in data
    assert "Every mapping file validates." in html.split('id="data"')[0]
    from fxiaoke_k3cloud.flows.specs import mappings_dir

    for f in mappings_dir().glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "deliveries.yaml").write_text("not: [valid", encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(tmp_path))
    config = c.get("/errors").text.split('id="data"')[0]
    assert "deliveries.yaml" in config and "mapping file does not validate" in config
    assert "deliveries.yaml: mapping file does not validate" in c.get("/").text  # the overview says it first


def test_labels_follow_the_browser_language(filled: Filled) -> None:
    c = client_for(filled.store)
    zh = c.get("/records", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).text
    assert '<html lang="zh-CN">' in zh and "重试所选" in zh
    en = c.get("/records", headers={"Accept-Language": "de-DE,en;q=0.5"}).text
    assert '<html lang="en">' in en and "Retry selected" in en


def test_overview_links_runs_to_airflow_and_names_states_as_airflow_does(filled: Filled) -> None:
    html = client_for(filled.store).get("/").text
    assert 'href="../dags/fxiaoke_customers_to_k3cloud/runs/scheduled__2026-01-05T00%3A15%3A00%2B00%3A00"' in html
    assert "failed</span> <span class=\"muted\">(partial)" in html
    assert "records per run" in html and "run start (UTC)" in html
    assert "need attention" in html


def test_fix_hints_are_translated(filled: Filled) -> None:
    c = client_for(filled.store)
    zh = c.get("/errors", headers={"Accept-Language": "zh-CN"}).text
    assert "CRM 数据不符合映射" in zh
    assert "The CRM data does not fit the mapping" in c.get("/errors").text
