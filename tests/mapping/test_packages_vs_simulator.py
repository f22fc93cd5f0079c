"""The packages the engine builds are accepted by the K3Cloud simulator (a faithful validator), over HTTP."""

from __future__ import annotations

import pandas as pd
from .crm_records import account, line, order

from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.mapping import transform


def test_customer_and_order_packages_save_in_k3cloud(k3cloud, customers_mapping, orders_mapping):
    hook = K3CloudHook()
    customers = transform(customers_mapping, pd.DataFrame([account(1), account(2)]))
    outcomes = hook.batch_save("BD_Customer", [p.model for p in customers.packages], **customers.save_options)
    assert [o.ok for o in outcomes] == [True, True], [o.errors for o in outcomes]
    assert [o.number for o in outcomes] == ["CUST-000001", "CUST-000002"]

    changed = transform(customers_mapping, pd.DataFrame([account(1, tel="021-12345678")])).packages[0]
    hook.unaudit("BD_Customer", numbers=["CUST-000001"])  # K3Cloud refuses to modify audited base data
    updated = hook.save("BD_Customer", changed.update_model(outcomes[0].id),
                        NeedUpDateFields=changed.need_update_fields)
    assert updated.id == outcomes[0].id
    viewed = hook.view("BD_Customer", number="CUST-000001")
    assert viewed is not None and viewed["TEL"] == "021-12345678"  # View answers with ORM names (no F prefix)
    assert viewed["Name"][0]["Value"] == customers.packages[0].model["FName"]  # multi-language text
    hook.submit("BD_Customer", numbers=["CUST-000001"])
    hook.audit("BD_Customer", numbers=["CUST-000001"])  # orders may only reference audited customers

    lookups = {"customers": {"acc-1": "CUST-000001"}, "materials": {"prod-1": "MAT-0001", "prod-2": "MAT-0002"}}
    orders = transform(orders_mapping, pd.DataFrame([order(1)]), lookups=lookups,
                       lines=pd.DataFrame([line("a", "so-1"), line("b", "so-1", "prod-2", unit="米")]))
    assert orders.counts["packages"] == 1, orders.rejected
    saved = hook.save("SAL_SaleOrder", orders.packages[0].model, **orders.save_options)
    assert saved.id and saved.number == "SO000001"
