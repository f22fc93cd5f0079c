"""PaymentObj (回款) with OrderPaymentObj lines (回款明细): create with details, and the order's paid / owed
amounts rolled up from its non-voided payment lines (void and recover move them back and forth)."""

from __future__ import annotations

from .client import Api, flt


def _order(api: Api, amount: str) -> tuple[str, str]:
    account = api.ok("create", {"object_data": {"dataObjectApiName": "AccountObj", "name": "回款测试客户"}})["dataId"]
    order = api.ok("create", {"object_data": {"dataObjectApiName": "SalesOrderObj", "account_id": account,
                                              "order_amount": amount}})["dataId"]
    return account, order


def _amounts(api: Api, order: str) -> tuple[str, str]:
    row = api.ok("get", {"dataObjectApiName": "SalesOrderObj", "objectDataId": order})["data"]
    return row["payment_amount"], row["receivable_amount"]


def test_payment_lines_roll_up_into_the_orders_paid_and_owed_amounts(api: Api) -> None:
    account, order = _order(api, "1000.00")
    _, other = _order(api, "50.00")
    payment = api.ok("create", {
        "object_data": {"dataObjectApiName": "PaymentObj", "name": "SKD000001", "account_id": account,
                        "payment_amount": "350.00", "payment_time": 1767225600000},
        "details": {"OrderPaymentObj": [{"order_id": order, "account_id": account, "payment_amount": "300.00"},
                                        {"order_id": other, "account_id": account, "payment_amount": "50.00"}]},
    })["dataId"]
    lines = api.rows("OrderPaymentObj", [flt("payment_id", "EQ", payment)])
    assert sorted(line["payment_amount"] for line in lines) == ["300.00", "50.00"]
    assert _amounts(api, order) == ("300.00", "700.00") and _amounts(api, other) == ("50.00", "0.00")

    api.ok("invalid", {"dataObjectApiName": "PaymentObj", "object_data_id": payment})
    assert _amounts(api, order) == ("0.00", "1000.00")
    api.ok("recover", {"dataObjectApiName": "PaymentObj", "idList": [payment]})
    assert _amounts(api, order) == ("300.00", "700.00")

    line = next(r for r in lines if r["order_id"] == order)
    api.ok("update", {"object_data": {"dataObjectApiName": "OrderPaymentObj", "_id": line["_id"],
                                      "payment_amount": "1000.00"}})
    assert _amounts(api, order) == ("1000.00", "0.00")
