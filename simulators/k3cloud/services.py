"""The simulator's state (one per app) and its DynamicFormService operations, each returning a response body."""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable

from .auth import Auth
from .basedata import load_base_data
from .config import SimConfig
from .faults import Faults, Stats
from .forms import get_form
from .metadata import Form
from .operations import Operations, apply_execution
from .outbound import Outbound
from .push import Pusher
from .query import run_query
from .save import AuditBlocked, Rejected, SaveOptions, Saver
from .store import Store
from .view import need_return_data, view_document
from .wire import Call, K3Error, lock_conflict_error, response_status, result_body

# Canonical service names for statistics (the URL's method segment is case-insensitive).
CANONICAL = {n.lower(): n for n in [
    "ValidateUser", "ValidateUser2", "LoginByAppSecret", "LoginByAppSecret2", "LoginBySign", "Logout",
    "GetDataCenterList", "Save", "BatchSave", "Draft", "Submit", "Audit", "UnAudit", "Delete", "View",
    "ExecuteBillQuery", "BillQuery", "Push", "ExcuteOperation", "ExecuteOperation", "Allocate", "CancelAllocate",
    "CancelAssign", "QueryBusinessInfo", "QueryAsyncResult", "SwitchOrg", "WorkflowAudit"]}
WRITES = {"save", "batchsave", "draft", "submit", "audit", "unaudit", "delete", "push", "excuteoperation",
          "executeoperation", "allocate", "cancelallocate", "cancelassign", "workflowaudit"}


class Simulator:
    """Everything one simulator instance holds in memory; ``reset`` rebuilds it."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.store = Store()
        load_base_data(self.store, self.config.username)
        self.auth = Auth(self.config)
        self.faults = Faults()
        self.stats = Stats()
        self.tasks: dict[str, dict[str, Any]] = {}
        workflow = getattr(self.config, "workflow_forms", None) or {}
        self.saver = Saver(self.store, self.config.username, on_audit=lambda doc: apply_execution(self.store, doc, +1),
                           workflow_forms=workflow)
        self.ops = Operations(self.store, self.config.username, workflow_forms=workflow)
        self.outbound = Outbound(self.config.outbound_url, self.config.outbound_secret)
        self.pusher = Pusher(self.store, self.saver)
        self._handlers = self._build_handlers()

    # --- dispatch ----------------------------------------------------------------------------------
    def handlers(self) -> dict[str, Callable[[Call], Any]]:
        """Business services by lower-case method name."""
        return self._handlers

    def _build_handlers(self) -> dict[str, Callable[[Call], Any]]:
        return {
            "save": self.save, "draft": lambda c: self.save(c, draft=True), "batchsave": self.batch_save,
            "submit": lambda c: self.operation(c, "Submit"), "audit": lambda c: self.operation(c, "Audit"),
            "unaudit": lambda c: self.operation(c, "UnAudit"), "delete": lambda c: self.operation(c, "Delete"),
            "cancelassign": lambda c: self.operation(c, "CancelAssign"),
            "excuteoperation": self.execute_operation, "executeoperation": self.execute_operation,
            "view": self.view, "executebillquery": self.execute_bill_query, "billquery": self.bill_query,
            "push": self.push, "allocate": lambda c: self.allocate(c, cancel=False),
            "cancelallocate": lambda c: self.allocate(c, cancel=True), "querybusinessinfo": self.query_business_info,
            "switchorg": lambda c: result_body(response_status()), "workflowaudit": self.workflow_audit,
        }

    def business(self, method: str, call: Call) -> Any:
        """Run one business service; K3Error becomes the service's failure body."""
        handler = self._handlers.get(method)
        if handler is None:
            raise LookupError(method)
        return handler(call)

    def begin_query(self, method: str, call: Call) -> dict[str, Any]:
        """QUERY invoke mode: run now, keep the result under a task id for QueryAsyncResult."""
        task_id = uuid.uuid4().hex
        result = self.business(method, call)
        self.tasks[task_id] = {"result": result, "pending": self.config.query_pending_polls}
        return self._task_state(task_id)

    def query_async_result(self, call: Call) -> dict[str, Any]:
        info = call.get("queryinfo")
        if isinstance(info, str):
            try:
                info = json.loads(info)
            except ValueError:
                info = {}
        task_id = str((info or {}).get("TaskId") or (info or {}).get("taskid") or "")
        if task_id not in self.tasks:
            return {"Status": 2, "TaskId": task_id, "Result": None, "IsFaulted": True, "Message": "任务不存在或已过期"}
        return self._task_state(task_id)

    def _task_state(self, task_id: str) -> dict[str, Any]:
        task = self.tasks[task_id]
        if task["pending"] > 0:
            task["pending"] -= 1
            return {"Status": 1, "TaskId": task_id, "Result": None}
        return {"Status": 2, "TaskId": task_id, "Result": task["result"]}

    # --- services ----------------------------------------------------------------------------------
    @staticmethod
    def form_of(call: Call, data: dict[str, Any] | None = None) -> Form:
        form_id = call.get("formid") or {k.lower(): v for k, v in (data or {}).items()}.get("formid")
        if not form_id:
            raise K3Error("单据标识(FormId)为空。", 5, "FormId")
        form = get_form(str(form_id))
        if form is None:
            raise K3Error(f"业务对象“{form_id}”不存在。", 4, "FormId")
        return form

    def save(self, call: Call, draft: bool = False) -> Any:
        data = call.data()
        form = self.form_of(call, data)
        low = {k.lower(): v for k, v in data.items()}
        if "model" not in low:
            raise K3Error("参数Model不能为空。", 8, "Model")
        blocked: list[K3Error] = []
        try:
            doc = self.saver.save(form, low["model"], SaveOptions.from_data(data), draft=draft)
        except Rejected as rej:
            return result_body(response_status(rej.errors))
        except AuditBlocked as blk:  # saved, not audited: listed as saved, and the call fails with the audit error
            doc, blocked = blk.doc, [blk.error]
        success = {"Id": doc.id, "Number": doc.number, "DIndex": 0}
        returned = need_return_data(form, doc, low.get("needreturnfields") or [])
        return result_body(response_status(blocked, successes=[success]), Id=doc.id, Number=doc.number,
                           NeedReturnData=[returned])

    def batch_save(self, call: Call) -> Any:
        data = call.data()
        form = self.form_of(call, data)
        low = {k.lower(): v for k, v in data.items()}
        models = low.get("model")
        if not isinstance(models, list) or not models:
            raise K3Error("参数Model必须是非空数组。", 8, "Model")
        opts = SaveOptions.from_data(data)
        successes, errors, returned = [], [], []
        for n, model in enumerate(models):
            if self.faults.roll("lock_conflict_record_rate"):  # this package's document is locked (网控): not saved
                errors.append(lock_conflict_error(form.caption, self.config.lock_conflict_shape, dindex=n))
                continue
            try:
                doc = self.saver.save(form, model, opts, dindex=n)
            except Rejected as rej:
                errors.extend(rej.errors)
                continue
            except AuditBlocked as blk:
                doc = blk.doc
                errors.append(blk.error)
            successes.append({"Id": doc.id, "Number": doc.number, "DIndex": n})
            returned.append(need_return_data(form, doc, low.get("needreturnfields") or []))
        return result_body(response_status(errors, successes), NeedReturnData=returned or [{}])

    def operation(self, call: Call, op: str) -> Any:
        data = call.data()
        form = self.form_of(call, data)
        successes, errors, messages = self.ops.run(op, form, data)
        self.outbound.after(op, form.form_id, successes)
        return result_body(response_status(errors, successes, messages))

    def execute_operation(self, call: Call) -> Any:
        op = str(call.get("opnumber") or "").strip()
        if not op:
            raise K3Error("操作标识(opNumber)为空。", 3, "opNumber")
        return self.operation(call, op)

    def view(self, call: Call) -> Any:
        data = call.data()
        form = self.form_of(call, data)
        low = {k.lower(): v for k, v in data.items()}
        doc = None
        if str(low.get("id") or "").strip().isdigit() and int(low["id"]) > 0:
            doc = self.store.get(form, int(low["id"]))
        elif low.get("number"):
            doc = self.store.by_number(form, str(low["number"]))
        if doc is None:
            raise K3Error(f"{form.caption}不存在：编码“{low.get('number') or ''}”，内码“{low.get('id') or ''}”。", 10)
        return result_body(response_status(), Result=view_document(self.store, doc, self.config.lcid))

    def execute_bill_query(self, call: Call) -> Any:
        _, rows = run_query(self.store, self._query_data(call), self.config.limit_policy)
        return rows

    def bill_query(self, call: Call) -> Any:
        keys, rows = run_query(self.store, self._query_data(call), self.config.limit_policy)
        return [dict(zip(keys, row)) for row in rows]

    @staticmethod
    def _query_data(call: Call) -> dict[str, Any]:
        data = dict(call.data())
        if call.get("formid") and not any(k.lower() == "formid" for k in data):
            data["FormId"] = call.get("formid")
        return data

    def push(self, call: Call) -> Any:
        data = call.data()
        form = self.form_of(call, data)
        created, convert_errors, save_errors = self.pusher.push(form, data)
        targets = [{"Id": d.id, "Number": d.number, "DIndex": n} for n, d in enumerate(created)]
        convert = response_status(convert_errors, targets)
        return result_body(response_status(convert_errors + save_errors, targets), ConvertResponseStatus=convert)

    def allocate(self, call: Call, cancel: bool) -> Any:
        data = call.data()
        form = self.form_of(call, data)
        done, errors = self.ops.allocate(form, data, cancel=cancel)
        if done:
            errors = [e for e in errors if e.msg_code != 10]
        return result_body(response_status(errors, successes=done))

    def workflow_audit(self, call: Call) -> Any:
        """WorkflowAudit (§3.10): approve (ApprovalType 1) submitted documents of a workflow-bound form; reject
        (2) / terminate (3) send them back to re-audit (D)."""
        data = call.data()
        form = self.form_of(call, data)
        low = {k.lower(): v for k, v in data.items()}
        approval = str(low.get("approvaltype") or "1").strip()
        op = "Audit" if approval == "1" else "CancelAssign"
        ops = Operations(self.store, self.config.username)  # the workflow itself may audit
        successes, errors, messages = ops.run(op, form, {k: v for k, v in data.items() if k.lower() != "formid"})
        if op == "CancelAssign":
            for item in successes:
                doc = self.store.get(form, int(item["Id"]))
                if doc is not None:
                    doc.data["FDocumentStatus"] = "D"
        return result_body(response_status(errors, successes, messages))

    def query_business_info(self, call: Call) -> Any:
        form = self.form_of(call, call.data())
        info = {"Id": form.form_id, "Name": [{"Key": self.config.lcid, "Value": form.caption}], "PkFieldName": form.pk,
                "NumberFieldKey": form.number_key,
                "Entrys": [{"Key": e.key, "EntryPkFieldName": e.pk, "Fields": [f.key for f in e.fields.values()]}
                           for e in form.entities.values()],
                "Fields": [f.key for f in form.header.values()]}
        return result_body(response_status(), NeedReturnData=info)
