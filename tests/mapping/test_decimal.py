"""Numbers stay exact Decimals from the CRM's text to the wire; bounds, NaN/Infinity and control characters reject
one record with a reason naming it and the field; the audit store escapes NUL. Unit level, no network (fast)."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest

from fxiaoke_k3cloud.mapping import transform
from fxiaoke_k3cloud.mapping.hashing import column_hashes, payload_hash

from .crm_records import account, line, order
from .test_orders import LOOKUPS


def _orders(mapping, lines, **header):
    return transform(mapping, pd.DataFrame([order(1, **header)]), lines=pd.DataFrame(lines), lookups=LOOKUPS)


@pytest.mark.parametrize(("qty", "price"), [("3", "1234567.1234567891"), ("9999999999999.9999999999", "0.0000000001"),
                                            ("1,000.5", "0")])
def test_quantities_and_prices_within_decimal_23_10_reach_the_package_exactly(orders_mapping, qty, price):
    result = _orders(orders_mapping, [line("l-1", "so-1", quantity=qty, sales_price=price)])
    assert not result.rejected, result.rejected
    [row] = result.packages[0].model["FSaleOrderEntry"]
    assert type(row["FQty"]) is Decimal and row["FQty"] == Decimal(qty.replace(",", ""))
    assert type(row["FTaxPrice"]) is Decimal and str(row["FTaxPrice"]) == str(Decimal(price))


@pytest.mark.parametrize(("field", "value", "says"), [
    ("quantity", "100000000000000000000", "21 digits before the decimal point; at most 13"),
    ("quantity", "1.12345678901", "11 decimal places; at most 10"),
    ("sales_price", "NaN", "is not a finite number"),
    ("sales_price", "Infinity", "is not a finite number"),
    ("quantity", "1e308", "is not a number"),
    ("quantity", 1e308, "309 digits before the decimal point"),
])
def test_out_of_range_and_non_finite_line_numbers_reject_the_order_naming_the_field(orders_mapping, field, value, says):
    result = _orders(orders_mapping, [line("l-1", "so-1", **{field: value})])
    assert not result.packages
    [rej] = result.rejected
    assert "so-1" in rej.reason and field in rej.reason and says in rej.reason, rej.reason


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "1e308", "12,34", 1e308, "-5"])
def test_a_bad_order_amount_rejects_the_order_although_it_is_not_sent(orders_mapping, amount):
    result = _orders(orders_mapping, [line("l-1", "so-1")], order_amount=amount)
    assert not result.packages
    [rej] = result.rejected
    assert "order_amount" in rej.reason and "so-1" in rej.reason, rej.reason


def test_the_checked_order_amount_is_not_in_the_package_nor_its_hash(orders_mapping):
    a = _orders(orders_mapping, [line("l-1", "so-1")], order_amount="100.00").packages[0]
    b = _orders(orders_mapping, [line("l-1", "so-1")], order_amount="250.00").packages[0]
    assert "order_amount" not in json.dumps(a.model, default=str) and a.payload_hash == b.payload_hash


def test_the_payload_hash_of_decimals_is_stable_and_exact():
    assert payload_hash({"q": Decimal("1.10")}) == payload_hash({"q": Decimal("1.1")})
    assert payload_hash({"q": Decimal("1234567.1234567891")}) != payload_hash({"q": Decimal("1234567.1234567892")})
    # Values a float held exactly hash as before (an audit store of an earlier version sees them unchanged).
    assert payload_hash({"q": Decimal("2")}) == payload_hash({"q": 2.0})
    assert payload_hash({"q": Decimal("12.50")}) == payload_hash({"q": 12.5})
    rows = [Decimal("1E+20"), Decimal("2.50"), Decimal("1234567.1234567891")]
    assert column_hashes(["q"], [rows]) == [payload_hash({"q": v}) for v in rows]


@pytest.mark.parametrize(("name", "shown"), [("华创\x00机械", "\\x00"), ("ACME\x1b[0m", "\\x1b"), ("A\x7fB", "\\x7f")])
def test_control_characters_reject_the_record_naming_field_and_character(customers_mapping, name, shown):
    result = transform(customers_mapping, pd.DataFrame([account(1, name=name), account(2)]))
    assert [p.source_id for p in result.packages] == [account(2)["_id"]]
    [rej] = result.rejected
    assert "name" in rej.reason and shown in rej.reason and "control character" in rej.reason
    assert account(1)["_id"] in rej.reason


def test_tab_and_newline_are_not_control_characters_to_reject(customers_mapping):
    result = transform(customers_mapping, pd.DataFrame([account(1, address="上海\t工业园区\n1号")]))
    assert not result.rejected and len(result.packages) == 1


def test_control_chars_strip_removes_them_before_the_package(customers_mapping):
    stripping = customers_mapping.model_copy(update={
        "defaults": customers_mapping.defaults.model_copy(update={"control_chars": "strip"})})
    stripping._compiled = None  # model_copy copies the compiled plan of the original
    result = transform(stripping, pd.DataFrame([account(1, name="华创\x00机械\x07")]))
    assert not result.rejected
    assert result.packages[0].model["FName"] == "华创机械"


def test_stage_round_trip_keeps_package_decimals_exact():
    from fxiaoke_k3cloud.flows.stage import _dumps, _loads

    row = {"model": {"FQty": Decimal("1E+20"), "FTaxPrice": Decimal("1234567.1234567891"), "n": 3}}
    back = _loads(_dumps(row), "package")["model"]
    assert back["FQty"] == Decimal("1E+20") and str(back["FTaxPrice"]) == "1234567.1234567891" and back["n"] == 3


def test_k3cloud_body_carries_decimals_as_json_numbers_with_every_digit():
    from fxiaoke_k3cloud.hooks.k3cloud_transport import encode_body

    body = encode_body({"data": {"FQty": Decimal("100000000000000000000"), "FTaxPrice": Decimal("1234567.1234567891")}})
    assert b'"FQty":100000000000000000000' in body and b'"FTaxPrice":1234567.1234567891' in body
    assert json.loads(body, parse_float=Decimal)["data"]["FTaxPrice"] == Decimal("1234567.1234567891")
    assert encode_body({"a": 1}) == json.dumps({"a": 1}).encode()  # the plain path is unchanged


def test_fxiaoke_body_and_owner_message_keep_decimal_quantities():
    from fxiaoke_k3cloud.flows.deliveries_crm import plain_number
    from fxiaoke_k3cloud.hooks.fxiaoke_transport import _body

    sent = _body({"data": {"delivery_num": Decimal("100000000000000000000")}})
    assert b"100000000000000000000" in sent["data"]
    assert _body({"a": 1}) == {"json": {"a": 1}}
    assert plain_number(Decimal("1E+20")) == "100000000000000000000" and plain_number(Decimal("2.50")) == "2.5"


def test_audit_text_never_carries_a_raw_nul():
    from fxiaoke_k3cloud.audit.redact import excerpt, safe_text

    assert safe_text("a\x00b") == "a\\x00b"
    assert "\x00" not in excerpt({"FName": "a\x00b", "raw": Decimal("1.5")})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def audit_store(request, tmp_path):
    from fxiaoke_k3cloud.audit import AuditStore

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/audit.db"
    else:
        server = request.getfixturevalue("pg_server")
        url = server.new_database()
        request.addfinalizer(lambda: server.drop_database(url))
    store = AuditStore(url)
    store.migrate()
    yield store
    store.dispose()


def test_the_audit_store_records_an_outcome_whose_name_and_reason_hold_nul(audit_store):
    from datetime import datetime, timezone

    import sqlalchemy as sa

    from fxiaoke_k3cloud.audit import RecordOutcome
    from fxiaoke_k3cloud.audit.schema import sync_record

    now = datetime.now(timezone.utc)
    run = audit_store.start_run("customers", "r1", "manual", now, now)
    audit_store.record_outcomes(run, [RecordOutcome(
        flow="customers", entity="customer", source_id="65f\x001", source_name="华创\x00机械", outcome="rejected",
        reason="AccountObj 65f/'华创\x00机械': name contains control character(s)", request={"FName": "华创\x00机械"})])
    with audit_store.engine.connect() as conn:
        name, reason, req = conn.execute(sa.select(sync_record.c.source_name, sync_record.c.reason,
                                                   sync_record.c.request_excerpt)).one()
    assert name == "华创\\x00机械" and "\\x00" in reason and "\x00" not in (req or "")
