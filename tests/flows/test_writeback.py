"""Write-back (issue 16, 4c): K3Cloud number and status back to the CRM order, K3Cloud number to the CRM account.

Through the real DAGs over HTTP against both simulators, audit store on SQLite and PostgreSQL. What is asserted
is what the CRM simulator holds, the calls each simulator counted, and the audit store.
"""

from __future__ import annotations

import pytest
from mapping.crm_records import account

from .conftest import run_dag
from .test_orders_flow import line, order, products, seed

ORDERS = "fxiaoke_orders_to_k3cloud"
CUSTOMERS = "fxiaoke_customers_to_k3cloud"
UPDATE = "/cgi/crm/v2/data/update"
BILL_NO, STATUS, CUST_NO = "field_k3_bill_no__c", "field_k3_status__c", "field_k3_number__c"


def crm(fx, obj: str) -> dict[str, dict]:
    return {r["_id"]: r for r in fx.records(obj)}


def crm_updates(fx) -> int:
    return fx.stats()["calls"].get(UPDATE, 0)


def k3_writes(k3) -> int:
    return sum(n for name, n in k3.stats()["calls"].items()
               if name.lower() in {"save", "batchsave", "submit", "audit", "excuteoperation"})


def k3_calls(k3, service: str) -> int:
    return sum(n for name, n in k3.stats()["calls"].items() if name.lower() == service.lower())


def last_run(store, flow: str = "orders") -> dict:
    return store.recent_runs(flow, limit=1)[0]


def assert_echo_run(dagbag, sims, store, dag_id: str = ORDERS, flow: str = "orders") -> None:
    """A run whose window holds only our own write-back's echoes: 0 extracted, 0 K3Cloud writes, 0 CRM updates."""
    writes, updates = k3_writes(sims.k3), crm_updates(sims.fx)
    dr, states = run_dag(dagbag, dag_id)
    assert dr.state == "success", states
    assert last_run(store, flow)["extracted"] == 0, "our own write-back came back as a change"
    assert k3_writes(sims.k3) == writes, "the write-back caused a K3Cloud write"
    assert crm_updates(sims.fx) == updates, "a run updated the CRM although nothing changed in K3Cloud"


class Clock:
    """The write-back's clock (``writeback.clock_ms``) held still half past an hour, moved by hand: the status
    refresh period (``refresh_every_minutes``, 60 in the shipped mapping) elapses without sleeping."""

    HOUR_MS = 3_600_000

    def __init__(self, monkeypatch) -> None:
        from fxiaoke_k3cloud.flows import writeback

        real = writeback.clock_ms()
        self.ms = (real // self.HOUR_MS + 1) * self.HOUR_MS + self.HOUR_MS // 2  # past any refresh already stamped
        monkeypatch.setattr(writeback, "clock_ms", lambda: self.ms)

    def advance(self, minutes: int) -> None:
        self.ms += minutes * 60_000


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def writeback_rows(store, flow: str) -> list[dict]:
    from fxiaoke_k3cloud.flows.queries import run_records

    run = store.recent_runs(flow, limit=1)[0]
    return [r for r in run_records(store, run["id"]) if r["entity"].endswith("_writeback")]


def test_order_gets_number_and_status_then_later_audit_and_close_reach_the_crm(dagbag, sims, store, clock):
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    p = products(sims.fx)
    acc = account(1)
    o = order(1, acc["_id"])
    seed(sims.fx, [acc], [o], [line(o["_id"], 1, p["MAT-0001"])])
    dr, states = run_dag(dagbag, ORDERS)
    assert dr.state == "success" and states["write_back_orders"] == "success", states
    got = crm(sims.fx, "SalesOrderObj")[o["_id"]]
    assert (got[BILL_NO], got[STATUS]) == ("SO000001", "已保存")  # saved: orders are not auto-audited
    # The customer's number is held by the CRM already (field_fnfcA__c = CUST-000001): nothing written there.
    assert CUST_NO not in crm(sims.fx, "AccountObj")[acc["_id"]]

    # The write-back moved the order's last_modified_time; the time it left is its echo, and run 2 skips it:
    # nothing extracted, nothing sent to K3Cloud, nothing written to the CRM again.
    from fxiaoke_k3cloud.flows.writeback import pending, written_back

    echo = written_back(store, "order")[o["_id"]]["echo_ms"]
    assert echo == crm(sims.fx, "SalesOrderObj")[o["_id"]]["last_modified_time"] > o["last_modified_time"]
    assert_echo_run(dagbag, sims, store)

    # A CRM user edits the order after the write-back: a later time than the echo, so it is synced to K3Cloud.
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    FxiaokeHook(retry_wait_s=0).update_record("SalesOrderObj", o["_id"], {"remark": "请周五前发货"})
    dr, states = run_dag(dagbag, ORDERS)
    assert dr.state == "success", states
    assert last_run(store)["extracted"] == 1 and last_run(store)["updated"] == 1
    assert [(so["FBillNo"], so["FNote"]) for so in sims.k3.records("SAL_SaleOrder")] == [("SO000001", "请周五前发货")]
    assert crm(sims.fx, "SalesOrderObj")[o["_id"]][BILL_NO] == "SO000001"
    # (The next run reads the edited order once more — its time is inside the 10-minute look-back, and no echo:
    # the write-back had nothing new to write — and finds it unchanged.)

    # A K3Cloud user submits and audits the order. Nothing changed in the CRM: the runs of this hour ask K3Cloud
    # nothing (the loading run above refreshed the statuses); the first run of the next hour tells the CRM.
    k3 = K3CloudHook(retry_wait_s=0)
    k3.submit("SAL_SaleOrder", numbers=["SO000001"])
    k3.audit("SAL_SaleOrder", numbers=["SO000001"])
    refreshed = store.get_watermark("orders:write_back_refresh")
    assert refreshed == clock.ms  # by the run that loaded the edit
    clock.advance(29)  # 59 minutes past the hour
    dr, states = run_dag(dagbag, ORDERS)
    assert dr.state == "success", states
    assert crm(sims.fx, "SalesOrderObj")[o["_id"]][STATUS] == "已保存"
    assert store.get_watermark("orders:write_back_refresh") == refreshed  # no status read
    clock.advance(2)  # 1 minute past the next hour
    dr, states = run_dag(dagbag, ORDERS)
    assert dr.state == "success", states
    assert crm(sims.fx, "SalesOrderObj")[o["_id"]][STATUS] == "已审核"
    assert store.get_watermark("orders:write_back_refresh") == clock.ms
    queries = k3_calls(sims.k3, "ExecuteBillQuery")
    assert_echo_run(dagbag, sims, store)  # the status update's echo: not read again either
    assert k3_calls(sims.k3, "ExecuteBillQuery") == queries  # nor the status, in that hour

    # Closed in K3Cloud: the next hour's first run tells the CRM; closed is final, so later runs ask K3Cloud
    # nothing about it.
    k3.execute_operation("SAL_SaleOrder", "CloseBill", numbers=["SO000001"])
    clock.advance(60)
    dr, states = run_dag(dagbag, ORDERS)
    assert crm(sims.fx, "SalesOrderObj")[o["_id"]][STATUS] == "已关闭"
    assert pending(store, "order", track_status=True) == []  # nothing left for the write-back to read in K3Cloud
    writes, updates = k3_writes(sims.k3), crm_updates(sims.fx)
    dr, states = run_dag(dagbag, ORDERS)
    assert dr.state == "success" and states["write_back_orders"] == "success", states
    assert k3_writes(sims.k3) == writes and crm_updates(sims.fx) == updates

    row = written_back(store, "order")[o["_id"]]
    assert row["final"] and row["status_written"] == "已关闭" and row["number_written"] == "SO000001"
    assert [so["FCloseStatus"] for so in sims.k3.records("SAL_SaleOrder")] == ["B"]
    assert writeback_rows(store, "orders") == []


def test_the_shipped_orders_write_back_is_on(dagbag, sims, store):
    from fxiaoke_k3cloud.flows.specs import mappings_dir

    assert "write_back:\n  enabled: true\n" in (mappings_dir() / "sales_orders.yaml").read_text(encoding="utf-8")


def test_customer_number_is_written_only_where_the_crm_field_is_empty(dagbag, sims, store):
    fresh = account(1, field_fnfcA__c="cust-000001")  # K3Cloud number CUST-000001 (upper): not held by the CRM
    legacy = account(2, field_fnfcA__c="cust-000002", field_k3_number__c="LEGACY-2")  # the CRM holds a value
    held = account(3)  # field_fnfcA__c = CUST-000003 is exactly the K3Cloud number
    sims.fx.seed({"objects": {"AccountObj": [fresh, legacy, held]}})
    before = crm(sims.fx, "AccountObj")
    dr, states = run_dag(dagbag, CUSTOMERS)
    assert dr.state == "success" and states["write_back_customers"] == "success", states
    assert sorted(c["FNumber"] for c in sims.k3.records("BD_Customer")) == ["CUST-000001", "CUST-000002", "CUST-000003"]
    after = crm(sims.fx, "AccountObj")
    assert after[fresh["_id"]][CUST_NO] == "CUST-000001"
    assert after[legacy["_id"]][CUST_NO] == "LEGACY-2"  # never overwritten
    assert CUST_NO not in after[held["_id"]]
    assert after[held["_id"]]["last_modified_time"] == before[held["_id"]]["last_modified_time"]  # no update call
    assert crm_updates(sims.fx) == 1
    rows = writeback_rows(store, "customers")
    assert [(r["source_id"], r["outcome"]) for r in rows] == [(legacy["_id"], "reported")]
    assert "LEGACY-2" in rows[0]["reason"] and CUST_NO in rows[0]["reason"] and legacy["_id"] in rows[0]["reason"]

    # The written account's last_modified_time moved; later runs know it as our echo: they read nothing, and send
    # K3Cloud and the CRM nothing.
    for _ in range(2):
        assert_echo_run(dagbag, sims, store, CUSTOMERS, "customers")
    assert crm_updates(sims.fx) == 1
    assert writeback_rows(store, "customers") == []  # the legacy value was reported once, not every run


def test_a_refused_or_voided_write_back_is_an_outcome_and_the_orders_still_land(dagbag, sims, store, clock):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    p = products(sims.fx)
    acc = account(5)
    refused = order(5, acc["_id"])  # lacks ship_to_add, which the tenant makes required below
    fine = order(6, acc["_id"], ship_to_add="上海市工业园区6号")
    voided = order(7, acc["_id"], ship_to_add="上海市工业园区7号")
    deleted = order(8, acc["_id"], ship_to_add="上海市工业园区8号")
    four = (refused, fine, voided, deleted)
    seed(sims.fx, [acc], list(four), [line(x["_id"], 1, p["MAT-0001"]) for x in four])
    run_dag(dagbag, ORDERS)  # lands all four, writes back all four
    numbers = ["SO000005", "SO000006", "SO000007", "SO000008"]
    assert {r[BILL_NO] for r in crm(sims.fx, "SalesOrderObj").values()} == set(numbers)

    # Later: K3Cloud audits all four; meanwhile the tenant made ship_to_add required, voided order 7 and deleted 8.
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    k3 = K3CloudHook(retry_wait_s=0)
    k3.submit("SAL_SaleOrder", numbers=numbers)
    k3.audit("SAL_SaleOrder", numbers=numbers)
    sims.fx._admin("POST", "config", {"required_fields": {"SalesOrderObj": ["ship_to_add"]}})
    fx = FxiaokeHook(retry_wait_s=0)
    for gone in (voided, deleted):
        fx.invalid_record("SalesOrderObj", gone["_id"])
    fx.delete_records("SalesOrderObj", [deleted["_id"]])
    clock.advance(60)  # the next hour: the statuses are refreshed
    dr, states = run_dag(dagbag, ORDERS)
    assert states["load_orders"] == "success" and states["write_back_orders"] == "success", states
    assert states["report"] == "failed"  # red: one write-back failed (after every good record landed)
    now = crm(sims.fx, "SalesOrderObj")
    assert now[fine["_id"]][STATUS] == "已审核"
    assert now[refused["_id"]][STATUS] == "已保存"  # refused: unchanged in the CRM
    assert now[voided["_id"]][STATUS] == "已保存"
    assert {so["FBillNo"]: so["FDocumentStatus"] for so in sims.k3.records("SAL_SaleOrder")} == dict.fromkeys(numbers, "C")
    rows = {r["source_id"]: r for r in writeback_rows(store, "orders")}
    assert rows[refused["_id"]]["outcome"] == "failed"
    assert refused["_id"] in rows[refused["_id"]]["reason"] and STATUS in rows[refused["_id"]]["reason"]
    assert rows[deleted["_id"]]["outcome"] == "reported" and "deleted" in rows[deleted["_id"]]["reason"]
    assert last_run(store)["extracted"] == 1  # the voided order; the others' only change was our write-back
    assert BILL_NO not in crm(sims.fx, "SalesOrderObj").get(deleted["_id"], {})
    # The void the flow saw itself: its own outcome (on_source_void: report) says so, the write-back adds none.
    assert fine["_id"] not in rows and voided["_id"] not in rows
    from fxiaoke_k3cloud.flows.queries import run_records

    run_pk = store.recent_runs("orders", limit=1)[0]["id"]
    assert [r["outcome"] for r in run_records(store, run_pk) if r["source_id"] == voided["_id"]] == ["reported"]
    assert store.run_summary(run_pk)["by_entity"]["order_writeback"] == {"failed": 1, "reported": 1}

    # The cause cleared: the next run — same hour, but a write was refused, so the refresh is not counted as made
    # — reads the statuses again and writes the refused one back; the voided one is not reported again.
    sims.fx._admin("POST", "config", {"required_fields": {}})
    dr, states = run_dag(dagbag, ORDERS)
    assert dr.state == "success", states
    assert crm(sims.fx, "SalesOrderObj")[refused["_id"]][STATUS] == "已审核"
    assert writeback_rows(store, "orders") == []


def test_an_echo_is_kept_only_when_the_update_was_the_only_change(fxiaoke):
    """``echoes.read_back`` against the CRM simulator: our update alone → its time is the echo; a user's edit
    since the record was synced (e.g. between the extract and our update), or between our read and our update,
    leaves no echo (the next run reads the record, so the edit is synced). One read-back query for the chunk."""
    from fxiaoke_k3cloud.flows.echoes import READ_FIELDS, read_back
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    accounts = [account(i) for i in (1, 2, 3)]
    fxiaoke.seed({"objects": {"AccountObj": accounts}})
    fx = FxiaokeHook(retry_wait_s=0)
    ids = [a["_id"] for a in accounts]
    synced = {a["_id"]: (a["last_modified_time"], None) for a in accounts}  # the id map's times: all as seeded
    fx.update_record("AccountObj", ids[1], {"name": "用户在抽取之后改名"})  # a user edit after the extract
    before = {r["_id"]: r for page in fx.query_records("AccountObj", [("_id", "IN", ids)],
                                                       fields=["_id", *READ_FIELDS]) for r in page}
    fx.update_record("AccountObj", ids[2], {"tel": "021-555"})  # a user edit between our read and our update
    for sid in ids:
        fx.update_record("AccountObj", sid, {CUST_NO: "CUST-X"})  # the write-back's own updates
    queries = fxiaoke.stats()["calls"].get("/cgi/crm/v2/data/query", 0)
    echoes = read_back(fx, "AccountObj", before, ids, synced)
    assert echoes == {ids[0]: crm(fxiaoke, "AccountObj")[ids[0]]["last_modified_time"]}
    assert fxiaoke.stats()["calls"]["/cgi/crm/v2/data/query"] - queries == 1
    assert read_back(fx, "AccountObj", before, ids, {}) == {}  # no state known to be synced: keep none


def test_a_write_back_field_the_crm_lacks_fails_the_step_once_naming_the_field(dagbag, sims, store, tmp_path,
                                                                               monkeypatch):
    import shutil

    from fxiaoke_k3cloud.flows.specs import mappings_dir

    for f in mappings_dir().glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "customers.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("number_field: field_k3_number__c",
                                                             "number_field: field_missing__c"), encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(tmp_path))
    sims.fx.seed({"objects": {"AccountObj": [account(1, field_fnfcA__c="cust-000001")]}})
    dr, states = run_dag(dagbag, CUSTOMERS)
    assert states["load_customers"] == "success" and states["write_back_customers"] == "failed", states
    assert [c["FNumber"] for c in sims.k3.records("BD_Customer")] == ["CUST-000001"]
    assert crm_updates(sims.fx) == 0


@pytest.mark.parametrize("block, message", [
    ("write_back:\n  number_field: field_fnfcA__c\n", "field_fnfcA__c is mapped to K3Cloud"),  # the number rule
    ("write_back:\n  status_field: tel\n", "tel is mapped to K3Cloud"),
    ("write_back:\n  enabled: true\n", "name number_field, status_field or both"),
    ("write_back:\n  number_field: a__c\n  status_field: a__c\n", "must differ"),
    ("write_back:\n  number_field: a__c\n  statuses: {}\n", "unknown key"),
    ("write_back:\n  status_field: a__c\n  refresh_every_minutes: -1\n", "whole number of minutes from 0"),
    ("write_back:\n  status_field: a__c\n  refresh_every_minutes: 1h\n", "got '1h'"),
    ("write_back:\n  status_field: a__c\n  refresh_every_minutes: 1441\n", "to 1440 (a day)"),
    ("write_back:\n  status_field: a__c\n  refresh_every_minutes: true\n", "got True"),
])
def test_a_bad_write_back_block_fails_with_the_key(block, message):
    from fxiaoke_k3cloud.errors import MappingError
    from fxiaoke_k3cloud.flows.specs import mappings_dir
    from fxiaoke_k3cloud.mapping.loader import parse_mapping

    text = (mappings_dir() / "customers.yaml").read_text(encoding="utf-8")
    text = text[:text.index("write_back:")] + block
    with pytest.raises(MappingError) as err:
        parse_mapping(text, file="customers.yaml")
    assert message in str(err.value) and "write_back" in str(err.value) and "customers.yaml" in str(err.value)
    if "refresh_every_minutes" in block:  # the file and the key, then what is allowed
        assert str(err.value).startswith("customers.yaml: write_back.refresh_every_minutes: a whole number"), err.value


def test_a_run_that_loads_orders_refreshes_every_open_status_at_once(dagbag, sims, store, clock):
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    p = products(sims.fx)
    acc = account(1)
    audited, edited = order(1, acc["_id"]), order(2, acc["_id"])
    seed(sims.fx, [acc], [audited, edited], [line(x["_id"], 1, p["MAT-0001"]) for x in (audited, edited)])
    dr, states = run_dag(dagbag, ORDERS)
    assert dr.state == "success", states
    K3CloudHook(retry_wait_s=0).submit("SAL_SaleOrder", numbers=["SO000001"])
    assert_echo_run(dagbag, sims, store)  # same hour, nothing loaded: the submit is not read yet
    assert crm(sims.fx, "SalesOrderObj")[audited["_id"]][STATUS] == "已保存"

    # A CRM user edits the other order (no new order, no first write-back): the run updates it in K3Cloud, and
    # since it loaded, it reads every open status at once — the submitted one's too.
    FxiaokeHook(retry_wait_s=0).update_record("SalesOrderObj", edited["_id"], {"remark": "改了备注"})
    clock.advance(1)
    dr, states = run_dag(dagbag, ORDERS)
    assert dr.state == "success", states
    assert last_run(store)["updated"] == 1 and last_run(store)["created"] == 0
    assert crm(sims.fx, "SalesOrderObj")[audited["_id"]][STATUS] == "审核中"
    assert store.get_watermark("orders:write_back_refresh") == clock.ms


def test_refresh_every_minutes_0_reads_the_statuses_every_run(dagbag, sims, store, clock, tmp_path, monkeypatch):
    import shutil

    from fxiaoke_k3cloud.flows.specs import mappings_dir
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    for f in mappings_dir().glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "sales_orders.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("refresh_every_minutes: 60", "refresh_every_minutes: 0"),
                    encoding="utf-8")
    assert "refresh_every_minutes: 0" in path.read_text(encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(tmp_path))
    p = products(sims.fx)
    acc = account(1)
    o = order(1, acc["_id"])
    seed(sims.fx, [acc], [o], [line(o["_id"], 1, p["MAT-0001"])])
    run_dag(dagbag, ORDERS)
    K3CloudHook(retry_wait_s=0).submit("SAL_SaleOrder", numbers=["SO000001"])
    queries = k3_calls(sims.k3, "ExecuteBillQuery")
    dr, states = run_dag(dagbag, ORDERS)  # same minute, nothing changed in the CRM
    assert dr.state == "success", states
    assert crm(sims.fx, "SalesOrderObj")[o["_id"]][STATUS] == "审核中"
    assert k3_calls(sims.k3, "ExecuteBillQuery") - queries == 1


def test_refresh_periods_are_fixed_slices_of_the_clock():
    from fxiaoke_k3cloud.flows.writeback import refresh_due
    from fxiaoke_k3cloud.mapping.schema import WriteBack

    hourly, every_run = WriteBack(status_field="s__c"), WriteBack(status_field="s__c", refresh_every_minutes=0)
    assert hourly.refresh_every_minutes == 60
    h = 3_600_000 * 500_000
    due = lambda cfg, last, now, **kw: refresh_due(cfg, last, now, **{"loaded": False, "first_look": False, **kw})
    assert due(hourly, None, h)  # never refreshed
    assert not due(hourly, h + 5_000, h + 3_599_999)  # the same hour
    assert due(hourly, h + 3_599_000, h + 3_600_000)  # the next hour's first run, however close to the last
    assert due(hourly, h + 5_000, h + 5_001, loaded=True) and due(hourly, h, h + 1, first_look=True)
    assert due(every_run, h, h)
