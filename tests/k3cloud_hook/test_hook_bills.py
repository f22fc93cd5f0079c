"""Bills with entries: Push (下推) and header × entry paging ordered by FID + entry id."""

from __future__ import annotations

from fxiaoke_k3cloud.hooks.k3cloud_filter import F

from .helpers import calls, customer, make_hook


def sale_order(customer_number: str, lines: int = 2) -> dict:
    return {
        "FID": 0,
        "FBillTypeID": {"FNumber": "XSDD01_SYS"},
        "FDate": "2025-01-02",
        "FSaleOrgId": {"FNumber": "100"},
        "FCustId": {"FNumber": customer_number},
        "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE001"}},
        "FSaleOrderEntry": [
            {"FMaterialId": {"FNumber": f"MAT-{i + 1:04d}"}, "FQty": i + 1, "FTaxPrice": 10} for i in range(lines)
        ],
    }


def test_entry_rows_page_in_fid_then_entry_order(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("SO-C1"), IsAutoSubmitAndAudit=True)
    outcomes = hook.batch_save("SAL_SaleOrder", [sale_order("SO-C1") for _ in range(3)])
    assert all(o.ok for o in outcomes), outcomes
    keys = ["FID", "FBillNo", "FMaterialId.FNumber", "FQty", "FSaleOrderEntry_FEntryID"]
    pages = list(hook.execute_bill_query("SAL_SaleOrder", keys, F("FCustId.FNumber") == "SO-C1", page_size=4))
    assert [len(p) for p in pages] == [4, 2]
    rows = [r for p in pages for r in p]
    pairs = [(r["FID"], r["FSaleOrderEntry_FEntryID"]) for r in rows]
    assert pairs == sorted(pairs) and len(set(pairs)) == 6
    assert sorted({r["FBillNo"] for r in rows}) == sorted(o.number for o in outcomes)
    assert calls(k3cloud, "ExecuteBillQuery") == 2


def test_push_sale_order_to_delivery_notice(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("SO-C2"), IsAutoSubmitAndAudit=True)
    order = hook.save("SAL_SaleOrder", sale_order("SO-C2"), IsAutoSubmitAndAudit=True)
    result = hook.push("SAL_SaleOrder", "SAL_DELIVERYNOTICE", "SaleOrder-DeliveryNotice", numbers=[order.number])
    assert len(result.targets) == 1 and result.targets[0].number
    rows = hook.find_by_number("SAL_DELIVERYNOTICE", result.targets[0].number, ["FBillNo", "FSrcBillNo", "FEntity_FEntryID"])
    assert len(rows) == 2 and {r["FSrcBillNo"] for r in rows} == {order.number}
