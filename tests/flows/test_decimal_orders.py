"""Numbers are Decimal from the CRM's text to K3Cloud (issue 13, case 9): a price with 17 significant digits lands
in the K3Cloud simulator with every digit; a quantity beyond the mapping's decimal(23,10) bounds, and order amounts
of NaN, Infinity or 1e308, are rejected with a reason naming the record and the field. Read back from the
simulator as exact decimals (its JSON parsed with Decimal), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

from mapping.crm_records import account

from .conftest import run_dag
from .test_orders_flow import DAG_ID, FULL, line, order, outcomes_of, products, seed
from .test_record_isolation import _reason


def exact_orders(k3) -> dict[str, dict]:
    """The simulator's sale orders with numbers parsed as Decimal (the admin API's JSON keeps every digit)."""
    r = k3.http.get(f"{k3.base_url}/_sim/records/SAL_SaleOrder", timeout=30)
    r.raise_for_status()
    return {o["FBillNo"]: o for o in json.loads(r.text, parse_float=Decimal)}


def test_order_numbers_land_exactly_and_out_of_range_ones_are_rejected(dagbag, sims, store):
    p = products(sims.fx)
    acc = account(1)
    exact = order(1, acc["_id"])
    big = order(2, acc["_id"])
    amounts = {3: "NaN", 4: "Infinity", 5: "1e308"}
    bad_amounts = [order(i, acc["_id"], order_amount=a) for i, a in amounts.items()]
    within = order(6, acc["_id"])
    lines = [line(exact["_id"], 1, p["MAT-0001"], quantity="3", sales_price="1234567.1234567891"),
             line(big["_id"], 1, p["MAT-0001"], quantity="100000000000000000000"),
             line(within["_id"], 1, p["MAT-0001"], quantity="9999999999999.9999999999", sales_price="0.0000000001"),
             *(line(o["_id"], 1, p["MAT-0001"]) for o in bad_amounts)]
    seed(sims.fx, [acc], [exact, big, *bad_amounts, within], lines)

    run_dag(dagbag, DAG_ID, FULL)
    finals = outcomes_of(store, "orders")
    landed = exact_orders(sims.k3)
    assert finals[exact["_id"]] == "created" and finals[within["_id"]] == "created", finals
    [row] = landed["SO000001"]["FSaleOrderEntry"]
    assert row["FTaxPrice"] == Decimal("1234567.1234567891") and str(row["FTaxPrice"]) == "1234567.1234567891"
    [row] = landed["SO000006"]["FSaleOrderEntry"]
    assert str(row["FQty"]) == "9999999999999.9999999999" and str(row["FTaxPrice"]) == "1E-10"

    assert finals[big["_id"]] == "rejected" and "SO000002" not in landed
    text = _reason(store, "orders", big["_id"])
    assert "quantity" in text and "100000000000000000000" in text and "21 digits before the decimal point" in text, text
    for o in bad_amounts:
        assert finals[o["_id"]] == "rejected" and o["name"] not in landed
        text = _reason(store, "orders", o["_id"])
        assert o["_id"] in text and "order_amount" in text and "number" in text, text

    # Unchanged data, second run: the payload hash of Decimals is stable, nothing is written again.
    run_dag(dagbag, DAG_ID, FULL)
    again = outcomes_of(store, "orders")
    assert again[exact["_id"]] == "unchanged" and again[within["_id"]] == "unchanged", again
