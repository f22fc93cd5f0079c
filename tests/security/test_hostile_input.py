"""Hostile input: CRM values crafted to break K3Cloud FilterStrings match nothing and change nothing, and mapping
files that reach outside their schema are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mapping.crm_records import account

from reliability.runner import CUSTOMERS, ORDERS, Scheduler
from reliability.verify import final_outcomes

HOSTILE_NUMBERS = [
    "x' or '1'='1",
    "CUST-000001' --",
    "CUST-000001'/*",
    "' OR FNumber LIKE '%",
    "CUST%",
    "CUST-00000_",
    "[CUST]-000001",
    "a'; DELETE FROM BD_Customer; --",
]


@pytest.fixture
def victims(chaos_world):
    """Two K3Cloud customers that already exist and that no hostile CRM value may touch."""
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    hook = K3CloudHook(retry_wait_s=0)
    for number in ("CUST-000001", "CUST-000002"):
        hook.save("BD_Customer", {"FCUSTID": 0, "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                                  "FNumber": number, "FName": f"原有客户 {number}",
                                  "FTRADINGCURRID": {"FNumber": "PRE001"}}, IsAutoSubmitAndAudit=True)
    return {c["FNumber"]: json.dumps(c, sort_keys=True, ensure_ascii=False) for c in chaos_world.k3.records("BD_Customer")}


def test_hostile_customer_numbers_sync_as_literals_or_are_rejected(chaos_world, victims):
    fx, k3, store = chaos_world.fx, chaos_world.k3, chaos_world.store
    hostile = [account(10 + i, field_fnfcA__c=n, field_n5V1I__c="KHLB001_SYS", field_IdOci__c="01")
               for i, n in enumerate(HOSTILE_NUMBERS)]
    fx.seed({"objects": {"AccountObj": hostile}})
    for _ in range(2):  # the second run exercises the lookups by number of records that already landed
        Scheduler(task_retries=0).run_once(CUSTOMERS)
    after = {c["FNumber"]: json.dumps(c, sort_keys=True, ensure_ascii=False) for c in k3.records("BD_Customer")}
    for number, before in victims.items():
        assert after[number] == before, f"existing customer {number} was touched"
    finals = final_outcomes(store, CUSTOMERS)
    for rec in hostile:
        number = rec["field_fnfcA__c"]
        outcome = finals.get(rec["_id"])
        if outcome in {"created", "unchanged", "updated"}:
            # The mapping upper-cases numbers (K3Cloud numbers are case-insensitive): a literal, never a pattern.
            same = [c for c in k3.records("BD_Customer") if c["FNumber"].casefold() == number.casefold()]
            assert [c["FName"] for c in same] == [rec["name"]], number
        else:
            assert outcome == "rejected", f"{number!r}: {outcome}"
    new = {n.casefold() for n in set(after) - set(victims)}
    assert new <= {n.casefold() for n in HOSTILE_NUMBERS}, "only the hostile numbers themselves may appear"


def test_hostile_order_numbers_touch_no_other_order(chaos_world):
    fx, k3, store = chaos_world.fx, chaos_world.k3, chaos_world.store
    products = {p["product_code"]: p["_id"] for p in fx.records("ProductObj")}
    acc = account(1, field_n5V1I__c="KHLB001_SYS", field_IdOci__c="01")
    names = ["SO000001", "SO' or '1'='1", "SO%", "SO00000_", "SO000001' --", "[SO]000001"]
    orders = [{"_id": f"66000000000000000000{i:04d}", "name": n, "account_id": acc["_id"], "order_time": 1_700_000_000_000,
               "owner": ["FSUID_0000000000000000000000000000A002"], "life_status": "normal",
               "last_modified_time": 1_700_000_000_000 + i} for i, n in enumerate(names)]
    lines = [{"_id": f"77000000000000000000{i:04d}", "order_id": o["_id"], "product_id": products["MAT-0001"],
              "quantity": str(i + 1), "sales_price": "10.00"} for i, o in enumerate(orders)]
    fx.seed({"objects": {"AccountObj": [acc], "SalesOrderObj": orders[:1], "SalesOrderProductObj": lines[:1]}})
    Scheduler(task_retries=0).run_once(ORDERS)
    first = json.dumps(k3.records("SAL_SaleOrder"), sort_keys=True, ensure_ascii=False)
    fx.seed({"objects": {"SalesOrderObj": orders[1:], "SalesOrderProductObj": lines[1:]}})
    for _ in range(2):
        Scheduler(task_retries=0).run_once(ORDERS)
    k3_orders = {o["FBillNo"]: o for o in k3.records("SAL_SaleOrder")}
    assert json.dumps([k3_orders["SO000001"]], sort_keys=True, ensure_ascii=False) == first
    finals = final_outcomes(store, ORDERS)
    for o, line in zip(orders[1:], lines[1:]):
        if finals.get(o["_id"]) in {"created", "unchanged", "updated"}:
            got = k3_orders[o["name"]]
            assert float(got["FSaleOrderEntry"][0]["FQty"]) == float(line["quantity"])
        else:
            assert finals.get(o["_id"]) == "rejected", (o["name"], finals.get(o["_id"]))


# --------------------------------------------------------------------------------------------------
# mapping files that try to reach outside their schema
# --------------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS_YAML = ROOT / "include" / "mappings" / "customers.yaml"


def _mutated(old: str, new: str) -> str:
    text = CUSTOMERS_YAML.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in customers.yaml: update the case"
    return text.replace(old, new, 1)


MAPPING_ATTACKS = {
    "unknown top-level key": ("fields:\n", "exec: rm -rf /\nfields:\n"),
    "unknown field key": ("    source: name\n    required: true\n",
                          "    source: name\n    required: true\n    eval: __import__('os').system('id')\n"),
    "python object tag": ("fields:\n", "hook: !!python/object/apply:os.system ['id']\nfields:\n"),
    "python name tag": ("    source: name\n    required: true\n", "    source: !!python/name:os.system\n    required: true\n"),
    "target outside the template": ("  - target: FTEL\n", "  - target: FNotInTemplate.FEvil\n    source: tel\n  - target: FTEL\n"),
    "target path traversal": ("  - target: FTEL\n", "  - target: ../../FTEL\n    source: tel\n  - target: FTEL\n"),
    "transform not in the registry": ("transform: {name: truncate, max: 40}", "transform: {name: os.system, max: 40}"),
    "transform dunder": ("transform: {name: truncate, max: 40}", "transform: {name: __import__, max: 40}"),
    "yaml merge bomb (duplicate key)": ("fields:\n", "fields: []\nfields:\n"),
}


@pytest.mark.parametrize("attack", sorted(MAPPING_ATTACKS))
def test_mapping_file_outside_its_schema_is_refused(attack):
    from fxiaoke_k3cloud.errors import MappingError
    from fxiaoke_k3cloud.mapping.loader import parse_mapping

    parse_mapping(CUSTOMERS_YAML.read_text(encoding="utf-8"), file="customers.yaml")  # the original is fine
    old, new = MAPPING_ATTACKS[attack]
    with pytest.raises(MappingError) as err:
        parse_mapping(_mutated(old, new), file="customers.yaml")
    assert "customers.yaml" in str(err.value)
