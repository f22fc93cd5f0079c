"""Test world for the deliveries flow: a CRM order in the Fxiaoke simulator, its K3Cloud sale order pushed to an
audited delivery notice, id-map entries seeded as the orders/customers flows would write them, and a runner that
calls the DAG's step functions with a context dict (the report step included)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from fxiaoke_k3cloud.audit import AuditStore, IdMapEntry
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

SHANGHAI = ZoneInfo("Asia/Shanghai")
REP = "FSUID_0000000000000000000000000000A002"  # 张伟, a sales rep of the simulator's base data
NOTICE = "SAL_DELIVERYNOTICE"


@dataclass
class Order:
    crm_id: str | None  # CRM SalesOrderObj _id (None: an order entered in K3Cloud only)
    number: str  # K3 FBillNo = CRM name
    fid: int
    customer: str


class FakeTI:
    """Stands in for Airflow's task instance in ``report``: XCom values of the earlier steps by task id."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcom.get(task_ids)


def context(**params: Any) -> dict[str, Any]:
    now = datetime.now(SHANGHAI)
    base = {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}
    run = SimpleNamespace(run_id=f"manual__{now.isoformat()}", run_type="manual", run_after=now)
    return {"params": {**base, **params}, "dag_run": run, "ti": FakeTI()}


def run_flow(**params: Any) -> dict[str, Any]:
    """extract → transform → load → report, like the DAG; returns the report's counts (raises when it fails)."""
    from fxiaoke_k3cloud.flows import steps

    ctx = context(**params)
    extracted = steps.extract("deliveries", ctx)
    ctx["ti"].xcom["extract_deliveries"] = extracted
    loaded = steps.load("deliveries", steps.transform("deliveries", extracted, ctx), ctx)
    ctx["ti"].xcom["load_deliveries"] = loaded
    return {**steps.report("deliveries", ctx), "run_pk": extracted["run_pk"]}


class World:
    def __init__(self, k3cloud: Any, fxiaoke: Any, store: AuditStore) -> None:
        self.k3sim, self.fxsim, self.store = k3cloud, fxiaoke, store
        self.k3 = K3CloudHook(retry_wait_s=0)
        self.fx = FxiaokeHook(retry_wait_s=0)
        self._customers: set[str] = set()
        self._seq = 0

    # --- CRM ---------------------------------------------------------------------------------------
    def crm_order(self, name: str, materials: tuple[str, ...] = (), owner: str = REP) -> tuple[str, str]:
        """A CRM order with one line per material (as the orders flow found it), and its account."""
        account_id = self.fx.create_record("AccountObj", {"name": f"客户 {name}"})
        products = {p["product_code"]: p["_id"] for p in self.fxsim.records("ProductObj")}
        lines = [{"product_id": products[m], "quantity": str(i + 2), "sales_price": "10"}
                 for i, m in enumerate(materials) if m in products]
        order_id = self.fx.create_record("SalesOrderObj", {"name": name, "account_id": account_id, "owner": [owner],
                                                           "order_status": "7"},
                                         details={"SalesOrderProductObj": lines} if lines else None)
        return order_id, account_id

    def crm_lines(self, order_id: str) -> list[str]:
        """The CRM order's line ids in line order."""
        return [r["_id"] for r in self.fxsim.records("SalesOrderProductObj") if r["order_id"] == order_id]

    # --- K3Cloud -----------------------------------------------------------------------------------
    def k3_customer(self, number: str) -> None:
        if number not in self._customers:
            self.k3.save("BD_Customer", {"FCUSTID": 0, "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                                         "FNumber": number, "FName": f"客户 {number}", "FTRADINGCURRID": {"FNumber": "PRE001"}},
                         IsAutoSubmitAndAudit=True)
            self._customers.add(number)

    def order(self, *, sent_by_crm: bool = True, id_map: bool = True, line_map: bool = True,
              customer: str | None = None, materials: tuple[str, ...] = ("MAT-0001", "MAT-0002")) -> Order:
        """A sale order in K3Cloud; with ``sent_by_crm`` it has a CRM twin with the same lines (FNetOrderBillNo,
        optional id map, and with ``line_map`` the order-line id map the orders flow keeps)."""
        self._seq += 1
        number = f"SO{self._seq:05d}"
        customer = customer or f"CUST-{self._seq}"  # each CRM order has its own CRM account
        crm_id = account_id = None
        if sent_by_crm:
            crm_id, account_id = self.crm_order(number, materials)
        self.k3_customer(customer)
        model = {"FID": 0, "FBillNo": number, "FBillTypeID": {"FNumber": "XSDD01_SYS"}, "FDate": "2026-01-02",
                 "FSaleOrgId": {"FNumber": "100"}, "FCustId": {"FNumber": customer},
                 "FNetOrderBillNo": crm_id or "", "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE001"}},
                 "FSaleOrderEntry": [{"FMaterialId": {"FNumber": m}, "FQty": i + 2, "FTaxPrice": 10}
                                     for i, m in enumerate(materials)]}
        saved = self.k3.save("SAL_SaleOrder", model, IsAutoSubmitAndAudit=True)
        if sent_by_crm and id_map:
            self.store.upsert_id_map("order", [IdMapEntry(source_id=crm_id, target_id=str(saved.id), target_number=number)])
            self.store.upsert_id_map("customer", [IdMapEntry(source_id=account_id, target_number=customer)])
            if line_map:
                entries = [e["FEntryID"] for e in self.k3_doc("SAL_SaleOrder", number)["FSaleOrderEntry"]]
                self.store.upsert_id_map("order_line", [IdMapEntry(source_id=line_id, target_id=str(entry))
                                                        for line_id, entry in zip(self.crm_lines(crm_id), entries)])
        return Order(crm_id, number, int(saved.id), customer)

    def k3_doc(self, form: str, number: str) -> dict[str, Any]:
        return next(d for d in self.k3sim.records(form) if d.get("FBillNo") == number)

    def audited_notice(self, order: Order, stocks: tuple[str, ...] = ()) -> str:
        """Push the order to a delivery notice, set its lines' warehouses (``stocks``, one per line), audit it."""
        pushed = self.k3.push("SAL_SaleOrder", NOTICE, "SaleOrder-DeliveryNotice", numbers=[order.number])
        number = pushed.targets[0].number
        if stocks:
            doc = self.k3_doc(NOTICE, number)
            rows = [{"FEntryID": row["FEntryID"], "FStockID": {"FNumber": stock}}
                    for row, stock in zip(doc["FEntity"], stocks)]
            self.k3.save(NOTICE, {"FID": doc["FID"], "FEntity": rows}, IsDeleteEntry=False)
        self.k3.submit(NOTICE, numbers=[number])
        self.k3.audit(NOTICE, numbers=[number])
        return number

    @staticmethod
    def window() -> dict[str, str]:
        """since/until params of one fixed two-hour window around now (re-runs of it reuse its sync_run row)."""
        now = datetime.now(SHANGHAI).replace(microsecond=0)
        return {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}

    # --- what the CRM and the audit store hold ------------------------------------------------------
    def notes(self) -> list[dict[str, Any]]:
        return self.fxsim.records("DeliveryNoteObj")

    def note_lines(self) -> list[dict[str, Any]]:
        return self.fxsim.records("DeliveryNoteProductObj")

    def messages(self) -> list[dict[str, Any]]:
        return self.fxsim._admin("GET", "messages")

    def crm_calls(self, suffix: str) -> int:
        return sum(n for path, n in self.fxsim.stats()["calls"].items() if path.endswith(suffix))

    def history(self, number: str) -> list[dict[str, Any]]:
        """Outcomes recorded for a notice number, oldest first."""
        return list(reversed(self.store.record_history(target_number=number, flow="deliveries")))
