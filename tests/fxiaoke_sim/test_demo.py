"""Base data and the deterministic demo generator (``--seed-demo N`` and ``POST /_sim/seed {"demo": N}``)."""

from __future__ import annotations

from collections import Counter

from simproc import SimulatorProcess

from .client import Api

DEMO_OBJECTS = ("AccountObj", "SalesOrderObj", "SalesOrderProductObj")


def _snapshot(api: Api) -> dict[str, list[dict]]:
    return {name: api.admin("GET", f"records/{name}") for name in DEMO_OBJECTS}


def test_base_products_match_k3_materials_plus_one_crm_only_product(api: Api) -> None:
    products = api.admin("GET", "records/ProductObj")
    codes = sorted(p["product_code"] for p in products)
    assert codes == [f"MAT-{i:04d}" for i in range(1, 21)] + ["MAT-9999"]
    assert all(p["unit"] and float(p["price"]) > 0 and isinstance(p["price"], str) for p in products)


def test_demo_is_deterministic_and_shaped_for_the_sync(api: Api) -> None:
    api.admin("POST", "seed", {"demo": 120})
    first = _snapshot(api)
    api.admin("POST", "reset")
    api.admin("POST", "seed", {"demo": 120})
    assert _snapshot(api) == first

    accounts, orders, lines = first["AccountObj"], first["SalesOrderObj"], first["SalesOrderProductObj"]
    assert len(accounts) == 120
    assert sorted(a["field_fnfcA__c"] for a in accounts)[:2] == ["CUST-000001", "CUST-000002"]
    assert {a["field_n5V1I__c"] for a in accounts} == {"KHLB001_SYS", "KHLB002_SYS"}
    assert {a["field_IdOci__c"] for a in accounts} == {"01", "02"}
    assert all(a["field_zW12m__c"] and len(a["field_G45nC__c"]) == 11 for a in accounts)
    per_account = Counter(o["account_id"] for o in orders)
    assert set(per_account.values()) <= {1, 2} and len(per_account) == 120
    per_order = Counter(line["order_id"] for line in lines)
    assert set(per_order.values()) <= {1, 2, 3} and len(per_order) == len(orders)
    codes = {p["_id"]: p["product_code"] for p in api.admin("GET", "records/ProductObj")}
    assert {codes[line["product_id"]] for line in lines} <= {f"MAT-{i:04d}" for i in range(1, 21)}
    assert all(o["life_status"] == "normal" and o["owner"][0].startswith("FSUID_") for o in orders)
    for rows in (accounts, orders):
        assert max(Counter(r["last_modified_time"] for r in rows).values()) >= 50


def test_seed_demo_option_matches_the_admin_seed(api: Api) -> None:
    api.admin("POST", "seed", {"demo": 30})
    expected = _snapshot(api)
    sim = SimulatorProcess("fxiaoke", "--seed-demo", "30").start()
    try:
        assert _snapshot(Api(sim.base_url)) == expected
    finally:
        sim.stop()
