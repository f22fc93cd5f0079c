"""CRM-shaped test records, as the Fxiaoke simulator returns them."""

from __future__ import annotations

from typing import Any

import pandas as pd

BASE_MS = 1_700_000_000_000  # 2023-11-15 06:13:20 Asia/Shanghai


def account(i: int, **overrides: Any) -> dict[str, Any]:
    rec = {
        "_id": f"65f{i:021x}", "name": f"上海华创机械有限公司{i:04d}", "account_no": f"AC{i:06d}",
        "account_type": "1", "tel": f"021-{55550000 + i}", "address": f"上海市工业园区{i}号",
        "life_status": "normal", "last_modified_time": BASE_MS + i, "owner": ["FSUID_0000000000000000000000000000A002"],
        "field_fnfcA__c": f"CUST-{i:06d}", "field_n5V1I__c": "KHLB001_SYS" if i % 2 else "KHLB002_SYS",
        "field_IdOci__c": "01" if i % 2 else "02", "field_zW12m__c": f"陈明{i}", "field_G45nC__c": f"139{i:08d}",
    }
    rec.update(overrides)
    return rec


def accounts(n: int) -> pd.DataFrame:
    """``n`` distinct, realistic accounts built column-wise (fast enough for 100k)."""
    idx = range(1, n + 1)
    return pd.DataFrame({
        "_id": [f"65f{i:021x}" for i in idx], "name": [f"上海华创机械有限公司{i:06d}" for i in idx],
        "account_no": [f"AC{i:06d}" for i in idx], "account_type": "1",
        "tel": [f"021-{10_000_000 + i}" for i in idx], "address": [f"上海市工业园区{i}号" for i in idx],
        "life_status": "normal", "last_modified_time": [BASE_MS + i for i in idx],
        "owner": [["FSUID_0000000000000000000000000000A002"]] * n,
        "field_fnfcA__c": [f"CUST-{i:06d}" for i in idx],
        "field_n5V1I__c": ["KHLB001_SYS" if i % 2 else "KHLB002_SYS" for i in idx],
        "field_IdOci__c": ["01" if i % 2 else "02" for i in idx], "field_zW12m__c": [f"陈明{i}" for i in idx],
        "field_G45nC__c": [f"139{i:08d}" for i in idx],
    })


def order(i: int, account_id: str = "acc-1", **overrides: Any) -> dict[str, Any]:
    rec = {
        "_id": f"so-{i}", "name": f"SO{i:06d}", "account_id": account_id, "account_id__r": f"客户{i}",
        "order_time": BASE_MS, "delivery_date": BASE_MS + 7 * 86_400_000, "order_amount": "1,234.50",
        "owner": ["FSUID_0000000000000000000000000000A003"], "life_status": "normal", "remark": f"备注 {i}",
        "last_modified_time": BASE_MS + i,
    }
    rec.update(overrides)
    return rec


def line(line_id: str, order_id: str, product_id: str = "prod-1", **overrides: Any) -> dict[str, Any]:
    rec = {
        "_id": line_id, "order_id": order_id, "product_id": product_id, "product_id__r": f"产品 {product_id}",
        "quantity": "2", "sales_price": "12.50", "subtotal": "25.00", "unit": "个",
    }
    rec.update(overrides)
    return rec
