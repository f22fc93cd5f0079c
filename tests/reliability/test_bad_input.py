"""Bad-input catalogue: one bad CRM record among good ones per case. Each bad record must end with a clear
per-record outcome whose reason names the record's field (or land intact where the value is legal), the good
records must still land, and the run's report must say so (red when something was rejected)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from mapping.crm_records import BASE_MS, account

from .runner import CUSTOMERS, ORDERS, Scheduler
from .verify import final_outcomes

REP = "FSUID_0000000000000000000000000000A002"
HUGE = "超长名称" * 2600  # 10 400 characters
EMOJI = "🚀 Ünïcødé 上海 Σ テスト 客户 ☃"
FAR_FUTURE_MS = 32_503_680_000_000  # 3000-01-01


@dataclass
class Case:
    name: str
    flow: str  # which flow the bad record goes through
    bad: dict[str, Any]  # overrides of the bad record (account for customers, order/line for orders)
    outcomes: set[str]  # acceptable final outcomes of the bad record
    reason: tuple[str, ...] = ()  # substrings the reason must contain when the outcome is not a success
    line: dict[str, Any] | None = None  # orders: overrides of the bad order's line (None: default line)
    lines: int = 1
    landed: dict[str, Any] = field(default_factory=dict)  # fields that must arrive unchanged when it lands
    drop: str | None = None  # a line removed from the flow's mapping file (SYNC_MAPPINGS_DIR) for this case


BAD = {"rejected", "failed", "parked"}
OK = {"created"}
CASES = [
    # --- customers -------------------------------------------------------------------------------------
    Case("customer without a name", CUSTOMERS, {"name": None}, BAD, ("name",)),
    Case("customer name blank", CUSTOMERS, {"name": "   "}, BAD, ("name",)),
    Case("customer name is a number", CUSTOMERS, {"name": 12345}, OK | BAD, ("name",)),
    Case("customer name 10 400 characters", CUSTOMERS, {"name": HUGE}, BAD, ("name",)),
    Case("customer name emoji and mixed scripts", CUSTOMERS, {"name": EMOJI}, OK, landed={"FName": EMOJI}),
    Case("customer without a K3 number", CUSTOMERS, {"field_fnfcA__c": None}, BAD, ("field_fnfcA__c",)),
    # The CRM only offers values its describe lists; "unknown" means unknown to this installation's mapping.
    Case("customer type not in the value map", CUSTOMERS, {"field_n5V1I__c": "KHLB002_SYS"}, BAD,
         ("field_n5V1I__c", "KHLB002_SYS"), drop='    KHLB002_SYS: KHLB002_SYS\n'),
    Case("customer group not in the value map", CUSTOMERS, {"field_IdOci__c": "02"}, BAD, ("field_IdOci__c", "02"),
         drop='    "02": KHFZ02\n'),
    Case("customer with a 40-character phone", CUSTOMERS, {"tel": "0" * 40}, BAD | OK, ("tel",)),
    Case("customer modified at the epoch", CUSTOMERS, {"last_modified_time": 0}, OK),
    Case("customer modified in the year 3000", CUSTOMERS, {"last_modified_time": FAR_FUTURE_MS}, OK | BAD,
         ("last_modified_time",)),
    # --- orders ----------------------------------------------------------------------------------------
    Case("order without lines", ORDERS, {}, BAD, ("line",), lines=0),
    Case("order line negative quantity", ORDERS, {}, BAD, ("quantity", "-5"), line={"quantity": "-5"}),
    Case("order line zero quantity", ORDERS, {}, BAD, ("quantity",), line={"quantity": "0"}),
    Case("order line absurd quantity", ORDERS, {}, BAD, ("quantity",), line={"quantity": "1e15"}),
    Case("order line negative price", ORDERS, {}, BAD, ("sales_price",), line={"sales_price": "-12.50"}),
    Case("order line unknown CRM product", ORDERS, {}, BAD, ("product_id",), line={"product_id": "f" * 24}),
    Case("order line product not in K3Cloud", ORDERS, {}, {"parked"}, ("MAT-9999",), line={"product": "MAT-9999"}),
    Case("order without a customer", ORDERS, {"account_id": None}, BAD, ("account_id",)),
    Case("order of an unknown customer", ORDERS, {"account_id": "e" * 24}, BAD, ("account_id",)),
    Case("order name 10 400 characters", ORDERS, {"name": HUGE}, BAD, ("name",)),
    Case("order name emoji", ORDERS, {"name": "SO🚀0001"}, OK | BAD, ("name",)),
    Case("order dated at the epoch", ORDERS, {"order_time": 0}, OK | BAD, ("order_time",)),
    Case("order delivery date in the year 9999", ORDERS, {"delivery_date": 253_402_214_400_000}, OK | BAD,
         ("delivery_date",)),
    Case("order amount negative", ORDERS, {"order_amount": "-250.00"}, OK | BAD, ("order_amount",)),
]


def _seed_customers(fx, case: Case) -> tuple[str, list[str]]:
    good = [account(i, field_n5V1I__c="KHLB001_SYS", field_IdOci__c="01") for i in range(1, 5)]
    bad = account(9)
    for key, value in case.bad.items():
        if value is None:
            bad.pop(key, None)
        else:
            bad[key] = value
    fx.seed({"objects": {"AccountObj": good + [bad]}})
    return bad["_id"], [g["_id"] for g in good]


def _seed_orders(fx, case: Case) -> tuple[str, list[str]]:
    products = {p["product_code"]: p["_id"] for p in fx.records("ProductObj")}
    acc = account(1)
    orders, lines = [], []
    for i in range(1, 5):
        orders.append(_order(i, acc["_id"]))
        lines.append(_line(orders[-1]["_id"], 1, products["MAT-0001"]))
    bad = _order(9, acc["_id"])
    for key, value in case.bad.items():
        if value is None:
            bad.pop(key, None)
        else:
            bad[key] = value
    orders.append(bad)
    for n in range(1, case.lines + 1):
        over = dict(case.line or {})
        product = products[over.pop("product", "MAT-0002")]
        lines.append(_line(bad["_id"], n, over.pop("product_id", product), **over))
    fx.seed({"objects": {"AccountObj": [acc], "SalesOrderObj": orders, "SalesOrderProductObj": lines}})
    return bad["_id"], [o["_id"] for o in orders[:-1]]


def _order(i: int, account_id: str) -> dict[str, Any]:
    return {"_id": f"6600000000000000000{i:05d}", "name": f"SO{i:06d}", "account_id": account_id,
            "order_time": BASE_MS, "delivery_date": BASE_MS + 7 * 86_400_000, "order_amount": "250.00",
            "owner": [REP], "life_status": "normal", "last_modified_time": BASE_MS + i}


def _line(order_id: str, n: int, product_id: str, **kw: Any) -> dict[str, Any]:
    rec = {"_id": f"77{int(order_id[-5:]):016d}{n:06d}", "order_id": order_id, "product_id": product_id,
           "quantity": "2", "sales_price": "125.00", "subtotal": "250.00", "unit": "个", "last_modified_time": BASE_MS}
    rec.update(kw)
    return rec


def _drop_mapping_line(case: Case, tmp_path, monkeypatch) -> None:
    import shutil

    from fxiaoke_k3cloud.flows.specs import flow_spec, mappings_dir

    target = tmp_path / "mappings"
    shutil.copytree(mappings_dir(), target)
    path = target / flow_spec(case.flow).mapping_path.name
    text = path.read_text(encoding="utf-8")
    assert case.drop in text, f"{case.drop!r} not in {path.name}: the case needs updating"
    path.write_text(text.replace(case.drop, ""), encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(target))


def _reason(store, flow: str, source_id: str) -> str:
    from fxiaoke_k3cloud.audit.schema import sync_record
    import sqlalchemy as sa

    query = (sa.select(sync_record.c.reason).where(sync_record.c.flow == flow, sync_record.c.source_id == source_id)
             .order_by(sync_record.c.id.desc()).limit(1))
    with store.engine.connect() as conn:
        return conn.execute(query).scalar_one_or_none() or ""


XFAIL: dict[str, str] = {}  # case name → "defect: …" while a known defect is not fixed (strict xfail)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[c.name])]
                                                if c.name in XFAIL else []) for c in CASES])
def test_bad_record_gets_a_reason_and_the_others_land(chaos_world, case, tmp_path, monkeypatch):
    fx, k3, store = chaos_world.fx, chaos_world.k3, chaos_world.store
    if case.drop:
        _drop_mapping_line(case, tmp_path, monkeypatch)
    seed = _seed_customers if case.flow == CUSTOMERS else _seed_orders
    bad_id, good_ids = seed(fx, case)
    scheduler = Scheduler(task_retries=0)
    settled = scheduler.run_once(case.flow)

    finals = final_outcomes(store, case.flow)
    assert all(finals.get(g) == "created" for g in good_ids), f"good records must land: {finals}"
    outcome = finals.get(bad_id)
    reason = _reason(store, case.flow, bad_id)
    assert outcome in case.outcomes, f"bad record {bad_id}: outcome {outcome!r} ({reason!r}), want {case.outcomes}"
    run = store.recent_runs(case.flow, limit=1)[0]
    if outcome in BAD:
        missing = [s for s in case.reason if s.lower() not in reason.lower()]
        assert not missing, f"reason {reason[:300]!r}… ({len(reason)} chars) must name {missing}"
        assert len(reason) < 2000, "the reason must stay readable"
        if outcome in {"rejected", "failed"}:
            assert not settled and run["status"] == "partial", "the report must turn red and say partial"
    else:
        assert settled and run["status"] == "success"
    if case.landed:
        k3_rows = k3.records("BD_Customer" if case.flow == CUSTOMERS else "SAL_SaleOrder")
        match = [r for r in k3_rows if all(r.get(k) == v for k, v in case.landed.items())]
        assert len(match) == 1, f"{case.landed} must arrive unchanged exactly once"


def test_two_crm_accounts_with_the_same_k3_number_do_not_merge(chaos_world):
    """Two different CRM accounts carry the same field_fnfcA__c: one K3Cloud customer, the other record reported
    with a reason naming the number and field; the first customer's name is not overwritten by the second."""
    fx, k3, store = chaos_world.fx, chaos_world.k3, chaos_world.store
    first, second = account(1), account(2, field_fnfcA__c="CUST-000001", name="另一家公司")
    fx.seed({"objects": {"AccountObj": [first, second, account(3)]}})
    settled = Scheduler(task_retries=0).run_once(CUSTOMERS)
    customers = [c for c in k3.records("BD_Customer") if c["FNumber"] == "CUST-000001"]
    assert len(customers) == 1
    finals = final_outcomes(store, CUSTOMERS)
    assert finals[account(3)["_id"]] == "created"
    loser = second["_id"] if customers[0]["FName"] == first["name"] else first["_id"]
    assert finals[loser] in {"rejected", "failed"}, finals
    reason = _reason(store, CUSTOMERS, loser)
    assert "CUST-000001" in reason and "field_fnfcA__c" in reason, reason
    assert not settled
    # A second run must not flip the K3Cloud customer to the other CRM account's name.
    Scheduler(task_retries=0).run_once(CUSTOMERS)
    again = [c for c in k3.records("BD_Customer") if c["FNumber"] == "CUST-000001"]
    assert [c["FName"] for c in again] == [customers[0]["FName"]]
