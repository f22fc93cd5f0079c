"""Test world for the receipts flow: CRM orders and their K3Cloud twins (from the deliveries world), receipt bills
pushed from an order or entered by hand and audited, and a runner that calls the DAG's steps (report included)."""

from __future__ import annotations

from typing import Any

from flows_deliveries.world import Order, World, context

RECEIPT = "AR_RECEIVEBILL"
FLOW = "receipts"


def run_flow(**params: Any) -> dict[str, Any]:
    """extract → transform → load → report, like the DAG; returns the report's counts (raises when it fails)."""
    from fxiaoke_k3cloud.flows import steps

    ctx = context(**params)
    extracted = steps.extract(FLOW, ctx)
    ctx["ti"].xcom["extract_receipts"] = extracted
    loaded = steps.load(FLOW, steps.transform(FLOW, extracted, ctx), ctx)
    ctx["ti"].xcom["load_receipts"] = loaded
    return {**steps.report(FLOW, ctx), "run_pk": extracted["run_pk"]}


class ReceiptWorld(World):
    def pushed_receipt(self, order: Order, amount: float | None = None) -> str:
        """Push the order to a receipt bill (optionally paying only ``amount``), submit and audit it."""
        pushed = self.k3.push("SAL_SaleOrder", RECEIPT, "SaleOrder-ReceiveBill", numbers=[order.number])
        number = pushed.targets[0].number
        if amount is not None:
            doc = self.k3_doc(RECEIPT, number)
            entry = doc["FRECEIVEBILLENTRY"][0]["FEntryID"]
            self.k3.save(RECEIPT, {"FID": doc["FID"], "FRECEIVEBILLENTRY": [{"FEntryID": entry, "FRECAMOUNTFOR_E": amount}]},
                         IsDeleteEntry=False)
        self.audit(number)
        return number

    def hand_receipt(self, customer: str, lines: list[tuple[str | None, float]]) -> str:
        """A receipt bill saved by hand: one entry per (sale order number or None, amount); audited."""
        model = {"FDATE": "2026-01-05", "FCONTACTUNIT": {"FNumber": customer}, "FPAYUNIT": {"FNumber": customer},
                 "FSETTLEORGID": {"FNumber": "100"}, "FREMARK": "手工收款",
                 "FRECEIVEBILLENTRY": [{"FSETTLETYPEID": {"FNumber": "JSFS04_SYS"}, "FPURPOSEID": {"FNumber": "SFKYT01_SYS"},
                                        "FRECAMOUNTFOR_E": amount, **({"FSALEORDERNO": so} if so else {})}
                                       for so, amount in lines]}
        number = self.k3.save(RECEIPT, model).number
        self.audit(number)
        return number

    def audit(self, number: str) -> None:
        self.k3.submit(RECEIPT, numbers=[number])
        self.k3.audit(RECEIPT, numbers=[number])

    # --- what the CRM and the audit store hold ------------------------------------------------------
    def payments(self, live: bool = True) -> list[dict[str, Any]]:
        return [p for p in self.fxsim.records("PaymentObj") if not live or p.get("life_status") != "invalid"]

    def payment_lines(self, live: bool = True) -> list[dict[str, Any]]:
        return [p for p in self.fxsim.records("OrderPaymentObj") if not live or p.get("life_status") != "invalid"]

    def paid_owed(self, order_id: str) -> tuple[float, float]:
        order = self.fx.get_record("SalesOrderObj", order_id)
        return float(order.get("payment_amount") or 0), float(order.get("receivable_amount") or 0)

    def history(self, number: str) -> list[dict[str, Any]]:
        return list(reversed(self.store.record_history(target_number=number, flow=FLOW)))

    def outcomes(self, number: str) -> list[str]:
        return [h["outcome"] for h in self.history(number)]
