"""Document operations by Ids/Numbers: Submit, Audit, UnAudit, Delete, CancelAssign, ExcuteOperation ops, Allocate,
and View (ORM-named document, k3cloud-webapi.md §3.6–§3.10)."""

from __future__ import annotations

from typing import Any, Callable

from .basedata import allocated_copy
from .forms import RECEIVE_BILL, get_form
from .metadata import Form
from .receipts import pushed_amount
from .store import Doc, Store, now_local
from .values import to_bool
from .wire import K3Error


def select(store: Store, form: Form, data: dict[str, Any]) -> tuple[list[Doc], list[K3Error]]:
    """Documents named by ``Ids`` (comma string; wins) or ``Numbers`` (array); unknown ones become errors."""
    low = {k.lower(): v for k, v in data.items()}
    ids, numbers = low.get("ids"), low.get("numbers")
    use_org = org_number(store, low.get("useorgid")) if form.org_controlled else None
    if isinstance(ids, list):
        raise K3Error("参数Ids的格式不正确：Ids应为以逗号分隔的字符串。", 8, "Ids")
    found: list[Doc] = []
    missing: list[K3Error] = []
    if ids not in (None, "", 0):
        for n, part in enumerate(p.strip() for p in str(ids).split(",") if p.strip()):
            doc = store.get(form, int(part)) if part.isdigit() else None
            if doc is None:
                missing.append(K3Error(f"内码为“{part}”的{form.caption}不存在。", 10, None, n))
            else:
                found.append(doc)
    else:
        if isinstance(numbers, str):
            numbers = [x for x in numbers.split(",") if x.strip()]
        for n, number in enumerate(numbers or []):
            # Allocated base data: UseOrgId picks the use org's copy; without it, the master (create org).
            doc = store.by_number(form, str(number), use_org)
            if doc is None:
                missing.append(K3Error(f"编码为“{number}”的{form.caption}不存在。", 10, None, n))
            else:
                found.append(doc)
    if not found and not missing:
        raise K3Error("请传入要操作的数据：Ids 和 Numbers 不能同时为空。", 8, None)
    return found, missing


def org_number(store: Store, value: Any) -> str | None:
    """An org given as internal id (``UseOrgId: 100001``), number or ``{"FNumber": …}``; None for 0/empty."""
    if isinstance(value, dict):
        value = value.get("FNumber") or value.get("FNUMBER")
    text = str(value or "").strip()
    if text in ("", "0"):
        return None
    org_form = get_form("ORG_Organizations")
    by_id = {str(d.id): d.number for d in store.all(org_form)} if org_form else {}
    return by_id.get(text, text)


class Operations:
    """State transitions on stored documents (statuses Z/A/B/C/D, §5.7)."""

    def __init__(self, store: Store, username: str, workflow_forms: dict[str, str] | None = None) -> None:
        self.store = store
        self.username = username
        self.workflow = {k.lower() for k in (workflow_forms or {})}

    def run(self, op: str, form: Form, data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[K3Error], list[dict[str, Any]]]:
        """Apply ``op`` to each selected document; returns (successes, errors, success messages)."""
        handler = self._handlers().get(op.lower())
        if handler is None:
            raise K3Error(f"操作“{op}”不存在或模拟器不支持。", 12, None)
        docs, errors = select(self.store, form, data)
        successes: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        low = {k.lower(): v for k, v in data.items()}
        # A form with a bound workflow refuses a direct Audit unless IsVerifyProcInst is false (§3.6).
        by_workflow = (op.lower() == "audit" and form.form_id.lower() in self.workflow
                       and to_bool(low.get("isverifyprocinst", True)))
        for n, doc in enumerate(docs):
            try:
                if by_workflow:
                    raise self._fail(form, doc, "该单据已启用审批流，不能直接审核，请通过审批流审核！")
                message = handler(form, doc)
            except K3Error as exc:
                exc.dindex = n
                errors.append(exc)
                continue
            successes.append({"Id": doc.id, "Number": doc.number, "DIndex": n})
            if message:
                messages.append({"FieldName": None, "Message": message, "DIndex": n})
        # Missing numbers only fail the call when nothing was processed (§3.6).
        if successes:
            errors = [e for e in errors if e.msg_code != 10]
        return successes, errors, messages

    def _handlers(self) -> dict[str, Callable[[Form, Doc], str | None]]:
        return {"submit": self.submit, "audit": self.audit, "unaudit": self.unaudit, "delete": self.delete,
                "cancelassign": self.cancel_assign, "forbid": self.forbid, "enable": self.enable,
                "closebill": self.close, "unclosebill": self.unclose, "cancel": self.cancel, "uncancel": self.uncancel}

    def _touch(self, doc: Doc, **changes: Any) -> None:
        doc.data.update(changes)
        doc.data["FModifyDate"] = now_local()

    @staticmethod
    def _fail(form: Form, doc: Doc, what: str) -> K3Error:
        return K3Error(f"单据编号为“{doc.number}”的{form.caption}，{what}", 11, None)

    def submit(self, form: Form, doc: Doc) -> str | None:
        if doc.status == "Z":
            raise self._fail(form, doc, "暂存的单据需要先保存才能提交！")
        if doc.status == "B":
            raise self._fail(form, doc, "单据已提交，不能重复提交！")
        if doc.status == "C":
            raise self._fail(form, doc, "单据已经审核，不能提交！")
        self._touch(doc, FDocumentStatus="B")
        return None

    def audit(self, form: Form, doc: Doc) -> str | None:
        if doc.status == "C":
            raise self._fail(form, doc, "单据已经审核！")
        if doc.status != "B":
            raise self._fail(form, doc, "单据不是已提交状态，不能审核！")
        self._touch(doc, FDocumentStatus="C", FApproveDate=now_local(), FApproverId={"FNumber": self.username})
        apply_execution(self.store, doc, +1)
        return f"单据编号为“{doc.number}”的{form.caption}，审核成功！"

    def unaudit(self, form: Form, doc: Doc) -> str | None:
        if doc.status != "C":
            raise self._fail(form, doc, "单据不是已审核状态，不能反审核！")
        if has_downstream(self.store, doc):
            raise self._fail(form, doc, "存在已关联的下游单据，不能反审核！")
        self._touch(doc, FDocumentStatus="D", FApproveDate=None, FApproverId=None)
        apply_execution(self.store, doc, -1)
        return None

    def delete(self, form: Form, doc: Doc) -> str | None:
        if doc.status in ("B", "C"):
            raise self._fail(form, doc, "已提交或已审核的单据不允许删除！")
        if has_downstream(self.store, doc):
            raise self._fail(form, doc, "存在已关联的下游单据，不允许删除！")
        self.store.remove(doc)
        return None

    def cancel_assign(self, form: Form, doc: Doc) -> str | None:
        if doc.status != "B":
            raise self._fail(form, doc, "单据不是已提交状态，不能撤销！")
        self._touch(doc, FDocumentStatus="A")
        return None

    def _base_only(self, form: Form, doc: Doc) -> None:
        if not form.base_data:
            raise self._fail(form, doc, "该业务对象不支持禁用/反禁用操作！")

    def forbid(self, form: Form, doc: Doc) -> str | None:
        self._base_only(form, doc)
        if doc.data.get("FForbidStatus") == "B":
            raise self._fail(form, doc, "数据已经禁用！")
        self._touch(doc, FForbidStatus="B", FForbidDate=now_local())
        return None

    def enable(self, form: Form, doc: Doc) -> str | None:
        self._base_only(form, doc)
        if doc.data.get("FForbidStatus") != "B":
            raise self._fail(form, doc, "数据未禁用，不需要反禁用！")
        self._touch(doc, FForbidStatus="A", FForbidDate=None)
        return None

    def _bill_only(self, form: Form, doc: Doc) -> None:
        if form.base_data:
            raise self._fail(form, doc, "基础资料不支持该操作！")

    def close(self, form: Form, doc: Doc) -> str | None:
        self._bill_only(form, doc)
        if doc.status != "C":
            raise self._fail(form, doc, "只有已审核的单据才能关闭！")
        if doc.data.get("FCloseStatus") == "B":
            raise self._fail(form, doc, "单据已经关闭！")
        self._touch(doc, FCloseStatus="B")
        return None

    def unclose(self, form: Form, doc: Doc) -> str | None:
        self._bill_only(form, doc)
        if doc.data.get("FCloseStatus") != "B":
            raise self._fail(form, doc, "单据未关闭，不能反关闭！")
        self._touch(doc, FCloseStatus="A")
        return None

    def cancel(self, form: Form, doc: Doc) -> str | None:
        self._bill_only(form, doc)
        if doc.status in ("B", "C"):
            raise self._fail(form, doc, "已提交或已审核的单据不能作废！")
        if doc.data.get("FCancelStatus") == "B":
            raise self._fail(form, doc, "单据已经作废！")
        self._touch(doc, FCancelStatus="B")
        return None

    def uncancel(self, form: Form, doc: Doc) -> str | None:
        self._bill_only(form, doc)
        if doc.data.get("FCancelStatus") != "B":
            raise self._fail(form, doc, "单据未作废，不能反作废！")
        self._touch(doc, FCancelStatus="A")
        return None

    def allocate(self, form: Form, data: dict[str, Any], cancel: bool = False
                 ) -> tuple[list[dict[str, Any]], list[K3Error]]:
        """Allocate base data (``PkIds``) to orgs (``TOrgIds``, org ids or numbers): a copy per use org, with the
        master's number and data and its own id, audited with ``IsAutoSubmitAndAudit`` else created (A).
        ``cancel`` (CancelAllocate) removes those copies. Only audited masters can be allocated."""
        if not form.org_controlled:
            raise K3Error(f"{form.caption}不是分配型基础资料。", 12, None)
        low = {k.lower(): v for k, v in data.items()}
        orgs = [o for o in (org_number(self.store, p) for p in str(low.get("torgids") or "").split(",")) if o]
        audited = to_bool(low.get("isautosubmitandaudit", False))
        done, errors = [], []
        for n, pk in enumerate(p.strip() for p in str(low.get("pkids") or "").split(",") if p.strip()):
            doc = self.store.get(form, int(pk)) if pk.isdigit() else None
            if doc is None:
                errors.append(K3Error(f"内码为“{pk}”的{form.caption}不存在。", 10, None, n))
                continue
            master = self.store.get(form, doc.master_id) or doc
            if not cancel and master.status != "C":
                errors.append(self._fail(form, master, "数据未审核，不能分配！"))
                errors[-1].dindex = n
                continue
            for org in orgs:
                have = self.store.by_number(form, master.number, org)
                if cancel and have is not None and have.id != master.id:
                    self.store.remove(have)
                elif not cancel and have is None:
                    self.store.put(allocated_copy(self.store, master, org, "C" if audited else "A", now_local()))
            done.append({"Id": master.id, "Number": master.number, "DIndex": n})
        return done, errors


# --- execution quantities (write-back from downstream bills) ------------------------------------------

def _so_line(store: Store, entry_id: int) -> dict[str, Any] | None:
    from .forms import SALE_ORDER

    for so in store.table(SALE_ORDER).values():
        for row in so.data.get("FSaleOrderEntry") or []:
            if row.get("FEntryID") == entry_id:
                return row
    return None


def apply_execution(store: Store, doc: Doc, sign: int) -> None:
    """On audit (+1) / un-audit (−1): delivery notices add to SO ``FDeliQty``; out-stocks to ``FStockOutQty``."""
    form_id = doc.form.form_id
    if form_id not in ("SAL_DELIVERYNOTICE", "SAL_OUTSTOCK"):
        return
    for row in doc.data.get("FEntity") or []:
        so_entry = row.get("FSOEntryId")
        line = _so_line(store, int(so_entry)) if so_entry else None
        if form_id == "SAL_DELIVERYNOTICE":
            if line is not None:
                line["FDeliQty"] = float(line.get("FDeliQty") or 0) + sign * float(row.get("FQty") or 0)
            continue
        qty = sign * float(row.get("FRealQty") or 0)
        if line is not None:
            line["FStockOutQty"] = float(line.get("FStockOutQty") or 0) + qty
            line["FRemainOutQty"] = float(line.get("FQty") or 0) - line["FStockOutQty"]
            line["FCanOutQty"] = line["FRemainOutQty"]
        for link in row.get("FEntity_Link") or []:
            if link.get("FEntity_Link_FSTableName") == "T_SAL_DELIVERYNOTICEENTRY":
                notice_row = _notice_line(store, int(link.get("FEntity_Link_FSId") or 0))
                if notice_row is not None:
                    notice_row["FSUMOUTQTY"] = float(notice_row.get("FSUMOUTQTY") or 0) + qty


def _notice_line(store: Store, entry_id: int) -> dict[str, Any] | None:
    from .forms import DELIVERY_NOTICE

    for dn in store.table(DELIVERY_NOTICE).values():
        for row in dn.data.get("FEntity") or []:
            if row.get("FEntryID") == entry_id:
                return row
    return None


def has_downstream(store: Store, doc: Doc) -> bool:
    """True if a delivery notice or out-stock links to this document (un-audit and delete are then refused)."""
    from .forms import DELIVERY_NOTICE, OUT_STOCK

    for target in (DELIVERY_NOTICE, OUT_STOCK):
        for other in store.table(target).values():
            for row in other.data.get("FEntity") or []:
                for link in row.get("FEntity_Link") or []:
                    if str(link.get("FEntity_Link_FSBillId")) == str(doc.id) and _source_form(link) == doc.form.form_id:
                        return True
    if doc.form.form_id == "SAL_SaleOrder":  # receipts pushed from the order link to its receipt plan
        return pushed_amount(store, RECEIVE_BILL, doc) > 0
    return False


def _source_form(link: dict[str, Any]) -> str:
    table = str(link.get("FEntity_Link_FSTableName") or "")
    return {"T_SAL_ORDERENTRY": "SAL_SaleOrder", "T_SAL_DELIVERYNOTICEENTRY": "SAL_DELIVERYNOTICE"}.get(table, "")
