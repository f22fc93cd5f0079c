"""Push (下推): SaleOrder → DeliveryNotice → OutStock, SaleOrder → OutStock (§3.8, §5.4, §5.5), SaleOrder → 收款单.

Target bills are built with link rows (``FEntity_Link``) and source fields, then saved through the normal Save
path (status A, not audited). Quantities already pushed are derived from the link rows of existing targets, so a
deleted target frees its quantity again.
"""

from __future__ import annotations

from typing import Any

from . import receipts
from .forms import DELIVERY_NOTICE, OUT_STOCK, RECEIVE_BILL, SALE_ORDER
from .metadata import Form
from .operations import select
from .save import Rejected, SaveOptions, Saver
from .store import Doc, Store, today_local
from .wire import K3Error

RULES: dict[str, tuple[Form, Form, str]] = {
    "saleorder-deliverynotice": (SALE_ORDER, DELIVERY_NOTICE, "T_SAL_ORDERENTRY"),
    "saleorder-outstock": (SALE_ORDER, OUT_STOCK, "T_SAL_ORDERENTRY"),
    "deliverynotice-outstock": (DELIVERY_NOTICE, OUT_STOCK, "T_SAL_DELIVERYNOTICEENTRY"),
    receipts.RULE.lower(): (SALE_ORDER, RECEIVE_BILL, receipts.PLAN_TABLE),
}
DEFAULT_RULES = {("sal_saleorder", "sal_deliverynotice"): "saleorder-deliverynotice",
                 ("sal_saleorder", "sal_outstock"): "saleorder-outstock",
                 ("sal_deliverynotice", "sal_outstock"): "deliverynotice-outstock",
                 ("sal_saleorder", "ar_receivebill"): receipts.RULE.lower()}


def _ref(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else None


def pushed_qty(store: Store, target: Form, table: str, source_entry_id: int) -> float:
    total = 0.0
    for doc in store.table(target).values():
        for row in doc.data.get("FEntity") or []:
            for link in row.get("FEntity_Link") or []:
                if link.get("FEntity_Link_FSTableName") == table and link.get("FEntity_Link_FSId") == source_entry_id:
                    total += float(link.get("FEntity_Link_FBaseUnitQty") or 0)
    return total


class Pusher:
    def __init__(self, store: Store, saver: Saver) -> None:
        self.store = store
        self.saver = saver

    def push(self, form: Form, data: dict[str, Any]) -> tuple[list[Doc], list[K3Error], list[K3Error]]:
        """Returns (created targets, conversion errors, target save errors)."""
        low = {k.lower(): v for k, v in data.items()}
        rule_id = str(low.get("ruleid") or "").strip().lower()
        use_default = low.get("isenabledefaultrule")
        if not rule_id and (use_default is True or str(use_default).lower() == "true"):
            rule_id = DEFAULT_RULES.get((form.form_id.lower(), str(low.get("targetformid") or "").lower()), "")
        if rule_id not in RULES:
            raise K3Error(f"转换规则“{low.get('ruleid') or ''}”不存在，请检查RuleId或TargetFormId。", 8, "RuleId")
        source_form, target_form, table = RULES[rule_id]
        if source_form is not form:
            raise K3Error(f"转换规则“{rule_id}”的源单不是{form.caption}。", 8, "RuleId")
        entry_filter = {int(x) for x in str(low.get("entryids") or "").split(",") if x.strip().isdigit()}
        docs, errors = select(self.store, form, data)
        created: list[Doc] = []
        save_errors: list[K3Error] = []
        for n, src in enumerate(docs):
            try:
                created.append(self._push_one(src, target_form, table, rule_id, entry_filter, n))
            except K3Error as exc:
                exc.dindex = n
                errors.append(exc)
            except Rejected as rej:
                save_errors.extend(rej.errors)
        return created, errors, save_errors

    def _push_one(self, src: Doc, target: Form, table: str, rule_id: str, entry_filter: set[int], n: int) -> Doc:
        if src.status != "C":
            raise K3Error(f"单据编号为“{src.number}”的{src.form.caption}未审核，不能下推！", 11)
        if src.data.get("FCloseStatus") == "B" or src.data.get("FCancelStatus") == "B":
            raise K3Error(f"单据编号为“{src.number}”的{src.form.caption}已关闭或作废，不能下推！", 11)
        if target is RECEIVE_BILL:
            return self.saver.save(target, receipts.receipt_from_order(self.store, target, src), SaveOptions(), dindex=n)
        entry_key = "FSaleOrderEntry" if src.form is SALE_ORDER else "FEntity"
        lines = []
        for row in src.data.get(entry_key) or []:
            entry_id = row.get("FEntryID")
            if entry_filter and entry_id not in entry_filter:
                continue
            qty = float(row.get("FQty") or 0) - pushed_qty(self.store, target, table, entry_id)
            if qty > 0:
                lines.append(self._line(src, row, qty, target, table, rule_id))
        if not lines:
            raise K3Error(f"单据编号为“{src.number}”的{src.form.caption}：关联数量已达上限，没有可下推的分录。", 11)
        model = self._header(src, target)
        model["FEntity"] = lines
        return self.saver.save(target, model, SaveOptions(), dindex=n)

    def _header(self, src: Doc, target: Form) -> dict[str, Any]:
        d = src.data
        customer = d.get("FCustId") if src.form is SALE_ORDER else d.get("FCustomerID")
        saler = d.get("FSalerId") if src.form is SALE_ORDER else d.get("FSalesManID")
        currency = ((d.get("FSaleOrderFinance") or {}).get("FSettleCurrId") if src.form is SALE_ORDER
                    else (d.get("SubHeadEntity") or {}).get("FSettleCurrID"))
        model: dict[str, Any] = {
            "FDate": today_local(), "FSaleOrgId": _ref(d.get("FSaleOrgId")), "FCustomerID": _ref(customer),
            "FSalesManID": _ref(saler), "FReceiveAddress": d.get("FReceiveAddress"), "FNote": d.get("FNote"),
            "SubHeadEntity": {"FSettleOrgID": _ref(d.get("FSaleOrgId")), "FSettleCurrID": _ref(currency),
                              "FLocalCurrID": _ref(currency)},
        }
        org = _ref(d.get("FDeliveryOrgID")) or _ref(d.get("FSaleOrgId"))
        if target is DELIVERY_NOTICE:
            model["FDeliveryOrgID"] = org
        else:
            model["FStockOrgId"] = org
        return model

    def _line(self, src: Doc, row: dict[str, Any], qty: float, target: Form, table: str, rule_id: str) -> dict[str, Any]:
        from_so = src.form is SALE_ORDER
        material = row.get("FMaterialId") if from_so else row.get("FMaterialID")
        so_number = src.number if from_so else (row.get("FOrderNo") or row.get("FSrcBillNo"))
        so_entry = row.get("FEntryID") if from_so else row.get("FSOEntryId")
        rule = {"saleorder-deliverynotice": "SaleOrder-DeliveryNotice", "saleorder-outstock": "SaleOrder-OutStock",
                "deliverynotice-outstock": "DeliveryNotice-OutStock"}[rule_id]
        line: dict[str, Any] = {
            "FRowType": row.get("FRowType") or "Standard", "FMaterialID": _ref(material), "FUnitID": _ref(row.get("FUnitID")),
            "FPrice": row.get("FPrice"), "FTaxPrice": row.get("FTaxPrice"), "FEntryTaxRate": row.get("FEntryTaxRate"),
            "FOwnerTypeID": "BD_OwnerOrg", "FOwnerID": _ref(src.data.get("FSaleOrgId")),
            "FSrcType": src.form.form_id, "FSrcBillNo": src.number, "FSOEntryId": so_entry,
            "FEntity_Link": [{
                "FEntity_Link_FRuleId": rule, "FEntity_Link_FSTableName": table, "FEntity_Link_FSBillId": src.id,
                "FEntity_Link_FSId": row.get("FEntryID"), "FEntity_Link_FBaseUnitQty": qty,
                "FEntity_Link_FBaseUnitQtyOld": qty, "FEntity_Link_FStockBaseQty": qty,
                "FEntity_Link_FStockBaseQtyOld": qty,
            }],
        }
        if target is DELIVERY_NOTICE:
            line.update(FQty=qty, FPlanDeliveryDate=row.get("FDeliveryDate") or today_local(), FOrderNo=so_number,
                        FStockQty=qty, FStockUnitID=_ref(row.get("FUnitID")))
        else:
            line.update(FMustQty=qty, FRealQty=qty, FSoorDerno=so_number, FStockID=_ref(row.get("FStockID")))
        return {k: v for k, v in line.items() if v is not None}
