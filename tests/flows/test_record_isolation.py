"""No record can stop a flow (issue 13, case 8): a NUL or other control character in one CRM record becomes that
record's outcome, named by record and field, before anything reaches K3Cloud; the good records of the same chunk
land, the watermark moves and the next run is fine. On SQLite and PostgreSQL (PostgreSQL refuses NUL in text)."""

from __future__ import annotations

from mapping.crm_records import account

from .conftest import run_dag
from .test_orders_flow import outcomes_of

DAG_ID = "fxiaoke_customers_to_k3cloud"


def _reason(store, flow: str, source_id: str) -> str:
    import sqlalchemy as sa

    from fxiaoke_k3cloud.audit.schema import sync_record

    query = (sa.select(sync_record.c.reason, sync_record.c.source_name)
             .where(sync_record.c.flow == flow, sync_record.c.source_id == source_id)
             .order_by(sync_record.c.id.desc()).limit(1))
    with store.engine.connect() as conn:
        reason, name = conn.execute(query).one()
    return f"{reason}|{name}"


def test_a_nul_in_one_customer_name_rejects_only_that_customer_and_the_flow_goes_on(dagbag, sims, store):
    good = [account(i) for i in (1, 2, 3)]
    bad = account(4, name="上海\x00坏名字有限公司")
    esc = account(5, field_zW12m__c="陈\x1b[31m明")  # an ESC sequence in the contact name
    sims.fx.seed({"objects": {"AccountObj": [*good, bad, esc]}})

    run_dag(dagbag, DAG_ID)
    finals = outcomes_of(store, "customers")
    assert all(finals[g["_id"]] == "created" for g in good), finals
    landed = {c["FNumber"]: c for c in sims.k3.records("BD_Customer")}
    assert set(landed) == {"CUST-000001", "CUST-000002", "CUST-000003"}  # nothing with a control character went out
    for rec, field in ((bad, "name"), (esc, "field_zW12m__c")):
        assert finals[rec["_id"]] == "rejected"
        text = _reason(store, "customers", rec["_id"])
        assert rec["_id"] in text and field in text and "control character" in text, text
        assert "\x00" not in text
    assert "\\x00" in _reason(store, "customers", bad["_id"])  # the NUL is named, escaped
    mark = store.get_watermark("customers")
    assert mark is not None and mark >= good[-1]["last_modified_time"]

    # The CRM user fixes the name: the next run creates it; nothing else is written again.
    import time

    fixed = {**bad, "name": "上海好名字有限公司", "last_modified_time": int(time.time() * 1000)}
    sims.fx.seed({"objects": {"AccountObj": [*good, fixed, esc]}})
    dr, states = run_dag(dagbag, DAG_ID)
    assert states.get("load_customers") == "success", states
    landed = {c["FNumber"]: c for c in sims.k3.records("BD_Customer")}
    assert landed["CUST-000004"]["FName"] == "上海好名字有限公司"
    assert len(landed) == 4
    assert store.get_watermark("customers") >= mark


def test_control_chars_strip_option_sends_the_cleaned_text(dagbag, sims, store, audit_url, tmp_path, monkeypatch):
    import shutil

    import pytest

    if not audit_url.startswith("sqlite"):
        pytest.skip("a mapping option: the audit backend plays no part, SQLite is enough (keeps the suite fast)")
    from fxiaoke_k3cloud.flows.specs import mappings_dir

    target = tmp_path / "mappings"
    shutil.copytree(mappings_dir(), target)
    path = target / "customers.yaml"
    text = path.read_text(encoding="utf-8")
    assert "defaults:\n" in text
    path.write_text(text.replace("defaults:\n", "defaults:\n  control_chars: strip\n", 1), encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(target))

    rec = account(1, name="华创\x00机械\x07有限公司")
    sims.fx.seed({"objects": {"AccountObj": [rec]}})
    dr, states = run_dag(dagbag, DAG_ID)
    assert dr.state == "success", states
    [customer] = sims.k3.records("BD_Customer")
    assert customer["FName"] == "华创机械有限公司"


def test_an_outcome_the_audit_store_refuses_costs_only_that_record(tmp_path):
    """A value the store refuses (here: a fake refusal of one row) leaves the chunk's other outcomes recorded and
    the refused record recorded without the offending text, its reason saying so."""
    from collections import Counter

    from fxiaoke_k3cloud.audit import RecordOutcome
    from fxiaoke_k3cloud.flows.load import LoadResult, persist
    from fxiaoke_k3cloud.flows.specs import flow_spec

    class PickyStore:
        def __init__(self):
            self.rows = []

        def record_outcomes(self, run_pk, rows):
            if any(r.source_name and "BAD" in r.source_name for r in rows):
                raise ValueError("A string literal cannot contain NUL (0x00) characters.")
            self.rows.extend(rows)

        def release(self, entity, ids):
            pass

    spec = flow_spec("customers")
    rows = [RecordOutcome(flow="customers", entity=spec.entity, source_id=f"id-{i}", outcome="created",
                          source_name="BAD" if i == 2 else f"ok {i}") for i in range(4)]
    store = PickyStore()
    persist(spec, store, 1, LoadResult(outcomes=rows, counts=Counter(created=4)))
    assert [r.source_id for r in store.rows] == ["id-0", "id-1", "id-2", "id-3"]
    refused = store.rows[2]
    assert refused.outcome == "created" and refused.source_name is None
    assert "id-2" in refused.reason and "refused" in refused.reason
