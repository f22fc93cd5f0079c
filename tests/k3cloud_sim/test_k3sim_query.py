"""ExecuteBillQuery / BillQuery: FilterString parser, FieldKeys, flattening, ordering and paging (§4)."""

from __future__ import annotations

import pytest

from .k3sim_helpers import K3Http, customer_model, ok, order_model
from simulators.k3cloud.filterstring import parse
from simulators.k3cloud.wire import K3Error

CUSTOMERS = [
    ("C001", "上海贸易", "021-1", 1), ("C002", "北京科技", "", 2), ("C003", "O'Brien 50% Ltd", "010-3", 3),
    ("C004", "a_b[x]", None, 4), ("C005", "x' or '1'='1", "9", 5),
]


@pytest.fixture
def customers(k3: K3Http) -> K3Http:
    for number, name, tel, priority in CUSTOMERS:
        model = customer_model(number, FName=name, FPriority=priority)
        if tel is not None:
            model["FTEL"] = tel
        ok(k3.save("BD_Customer", model, IsAutoSubmitAndAudit=number != "C002"))
    return k3


def numbers(k3: K3Http, filter_string: str) -> list[str]:
    rows = k3.query("BD_Customer", "FNumber", filter_string, OrderString="FNumber")
    assert isinstance(rows, list) and all(isinstance(r, list) for r in rows), rows
    return [r[0] for r in rows]


@pytest.mark.parametrize("filter_string, expected", [
    ("", ["C001", "C002", "C003", "C004", "C005"]),
    ("FNumber = 'C001'", ["C001"]),
    ("fnumber = 'c001'", ["C001"]),
    ("FNumber <> 'C001' AND FNumber != 'C002'", ["C003", "C004", "C005"]),
    ("FPriority > 3", ["C004", "C005"]),
    ("FPriority >= 3 AND FPriority < 5", ["C003", "C004"]),
    ("FPriority <= 1 OR FNumber = 'C005'", ["C001", "C005"]),
    ("(FNumber = 'C001' OR FNumber = 'C002') AND FDocumentStatus = 'C'", ["C001"]),
    ("FNumber = 'C001' OR FNumber = 'C002' AND FDocumentStatus = 'C'", ["C001"]),
    ("NOT (FPriority > 1)", ["C001"]),
    ("FName LIKE '%科技'", ["C002"]),
    ("FName like '上海%'", ["C001"]),
    ("FName LIKE '%50[%]%'", ["C003"]),
    ("FName LIKE '%50%'", ["C003"]),
    ("FName LIKE 'a[_]b%'", ["C004"]),
    ("FName LIKE 'a_b%'", ["C004"]),
    ("FName LIKE '%[[]x]'", ["C004"]),
    ("FName NOT LIKE '%'", []),
    ("FName = 'O''Brien 50% Ltd'", ["C003"]),
    ("FName = 'x'' or ''1''=''1'", ["C005"]),
    ("FName = 'x'' or ''1''=''1'' AND FNumber = ''C001'", []),
    ("FNumber IN ('C001', 'C003', 'C999')", ["C001", "C003"]),
    ("FNumber NOT IN ('C001', 'C003')", ["C002", "C004", "C005"]),
    ("FPriority BETWEEN 2 AND 4", ["C002", "C003", "C004"]),
    ("FPriority NOT BETWEEN 2 AND 4", ["C001", "C005"]),
    ("FTEL IS NULL", ["C004"]),
    ("FTEL IS NOT NULL AND FTEL <> ''", ["C001", "C003", "C005"]),
    ("FTEL = ''", ["C002"]),
    ("FCreateOrgId.FNumber = '603' AND FUseOrgId.FName = '华东销售公司'", ["C001", "C002", "C003", "C004", "C005"]),
    ("FModifyDate >= '2000-01-01' AND FModifyDate < '2999-12-31 23:59:59'", ["C001", "C002", "C003", "C004", "C005"]),
    ("FModifyDate < '2000-01-01'", []),
    ("FApproveDate IS NULL", ["C002"]),
    ("'C003' = FNumber", ["C003"]),
])
def test_filter_string(customers: K3Http, filter_string: str, expected: list[str]) -> None:
    assert numbers(customers, filter_string) == expected


@pytest.mark.parametrize("filter_string", [
    "FNumber = 'C001'; DROP TABLE T_BD_CUSTOMER",
    "FNumber = 'C001' -- comment",
    "FNumber = 'C001' /* x */",
    "FNumber = 'unterminated",
    "FNumber = 'a' OR",
    "(FNumber = 'a'",
    "FNumber = 'a')",
    "FNumber == 'a'",
    "FNumber = N'a'",
    "FNumber IN (SELECT FNUMBER FROM T_BD_CUSTOMER)",
    "UPPER(FNumber) = 'A'",
    "FNumber LIKE 'a' ESCAPE '!'",
    "FNumber = @p",
    "FNumber = 'a' AND 1",
    "FNumber BETWEEN 'a'",
    "FNumber IS 'a'",
    "FPriority > 'abc'",
])
def test_malformed_or_unsafe_filters_are_rejected(customers: K3Http, filter_string: str) -> None:
    rows = customers.query("BD_Customer", "FNumber", filter_string)
    status = rows[0][0]["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False and status["MsgCode"] in (8, 9), status


def test_unknown_field_in_filter_is_msgcode_9(customers: K3Http) -> None:
    status = customers.query("BD_Customer", "FNumber", "FNoSuch = 1")[0][0]["Result"]["ResponseStatus"]
    assert status["MsgCode"] == 9 and status["Errors"][0]["Message"] == "元数据中标识为FNoSuch的字段不存在"


def test_parser_never_evaluates_code() -> None:
    seen: list[str] = []
    tree = parse("FName = '__import__(''os'')' OR FName LIKE '%'", seen.append)
    assert tree is not None and seen == ["FName", "FName"]
    with pytest.raises(K3Error):
        parse("__import__('os').system('true')", seen.append)


def test_list_form_filter(customers: K3Http) -> None:
    flt = [{"Left": "(", "FieldName": "FNumber", "Compare": "67", "Value": "C001", "Right": "", "Logic": 1},
           {"Left": "", "FieldName": "FNumber", "Compare": "67", "Value": "C003", "Right": ")", "Logic": 0}]
    assert numbers(customers, flt) == ["C001", "C003"]
    bad = customers.query("BD_Customer", "FNumber", [{"FieldName": "FNumber", "Compare": "999", "Value": "x"}])
    assert bad[0][0]["Result"]["ResponseStatus"]["IsSuccess"] is False


def test_reference_keys_and_internal_ids(customers: K3Http) -> None:
    [[cust_id, currency_id, currency_number, currency_name, currency_code]] = customers.query(
        "BD_Customer", "FCUSTID,FTRADINGCURRID,FTRADINGCURRID.FNumber,FTRADINGCURRID.FName,FTRADINGCURRID.FCODE",
        "FNumber = 'C001'")
    assert isinstance(cust_id, int) and isinstance(currency_id, int) and currency_id > 0
    assert (currency_number, currency_name, currency_code) == ("PRE001", "人民币", "CNY")
    bad = customers.query("BD_Customer", "FTRADINGCURRID.FNoSuch")
    assert bad[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 9


def seed_orders(k3: K3Http, count: int, lines: int) -> None:
    ok(k3.save("BD_Customer", customer_model(), IsAutoSubmitAndAudit=True))
    for n in range(count):
        model = order_model(lines=tuple((f"MAT-{i + 1:04d}", n + i + 1) for i in range(lines)), FNote=f"n{n}")
        ok(k3.save("SAL_SaleOrder", model))


def test_header_entry_flattening_and_bill_query(k3: K3Http) -> None:
    seed_orders(k3, 2, 3)
    keys = "FID,FBillNo,FSaleOrderEntry_FEntryID,FSaleOrderEntry_FSeq,FMaterialId.FNumber,FQty,FCustId.FNumber"
    rows = k3.query("SAL_SaleOrder", keys, OrderString="FID ASC, FSaleOrderEntry_FEntryID ASC")
    assert len(rows) == 6 and [r[3] for r in rows] == [1, 2, 3, 1, 2, 3]
    assert len({r[2] for r in rows}) == 6 and {r[6] for r in rows} == {"C0001"}
    header_only = k3.query("SAL_SaleOrder", "FID,FBillNo")
    assert len(header_only) == 2
    objects = k3.call("BillQuery", data={"FormId": "SAL_SaleOrder", "FieldKeys": "FBillNo,FQty",
                                         "FilterString": "FQty >= 3", "OrderString": "FQty DESC, FBillNo DESC"})
    assert objects == [{"FBillNo": "XSDD000002", "FQty": 4.0}, {"FBillNo": "XSDD000002", "FQty": 3.0},
                       {"FBillNo": "XSDD000001", "FQty": 3.0}]


def test_paging_with_start_row_and_limit(k3: K3Http) -> None:
    seed_orders(k3, 7, 3)  # 21 rows
    keys = "FID,FSaleOrderEntry_FEntryID"
    everything = k3.query("SAL_SaleOrder", keys, OrderString="FID,FSaleOrderEntry_FEntryID")
    pages, start = [], 0
    while True:
        page = k3.query("SAL_SaleOrder", keys, OrderString="FID,FSaleOrderEntry_FEntryID", StartRow=start, Limit=5)
        pages.append(len(page))
        start += len(page)
        if len(page) < 5:
            break
    assert pages == [5, 5, 5, 5, 1]
    assert start == len(everything) == 21
    assert k3.query("SAL_SaleOrder", keys, OrderString="FID", StartRow=30, Limit=5) == []
    assert len(k3.query("SAL_SaleOrder", keys, TopRowCount=4)) == 4
    assert len(k3.query("SAL_SaleOrder", keys, TopRowCount=4, StartRow=2, Limit=10)) == 2


def test_limit_over_10000_is_rejected(k3: K3Http) -> None:
    status = k3.query("SAL_SaleOrder", "FID", Limit=10001)[0][0]["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False and "10000" in status["Errors"][0]["Message"]
    assert k3.query("SAL_SaleOrder", "FID", Limit=10000) == []


def test_bad_order_string_is_rejected(k3: K3Http) -> None:
    for order in ("FID; DROP", "FID ASCENDING", "FNoSuch DESC"):
        status = k3.query("SAL_SaleOrder", "FID", OrderString=order)[0][0]["Result"]["ResponseStatus"]
        assert status["IsSuccess"] is False, order
