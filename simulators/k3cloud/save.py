"""Save / Draft of one package: bind keys to metadata, merge into an existing document, validate, persist.

Validation mirrors the real server closely enough for a sync to meet the same failures: unknown keys, required
fields, base-data references (exists, audited, not forbidden, allocated to the document's org), unique numbers and
document states.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

from .metadata import Entity, Field, Form
from .forms import get_form
from .store import Doc, Store, now_local, ref_number, today_local
from .values import is_empty, normalize, to_bool
from .wire import K3Error


class Rejected(Exception):
    """A package failed validation; carries every error found (each with the package's DIndex)."""

    def __init__(self, errors: list[K3Error]) -> None:
        super().__init__(errors[0].message if errors else "rejected")
        self.errors = errors


class AuditBlocked(Exception):
    """``IsAutoSubmitAndAudit`` on a form with a bound workflow: the document is saved (or submitted) but not
    audited. The answer lists it in ``SuccessEntitys`` *and* carries the audit error (IsSuccess false)."""

    def __init__(self, doc: Doc, error: K3Error) -> None:
        super().__init__(error.message)
        self.doc = doc
        self.error = error


WORKFLOW_STATES = {"saved": "A", "submitted": "B"}


def workflow_error(form: Form, doc: Doc, state: str, dindex: int = 0) -> K3Error:
    """The failure of the automatic submit/audit of a workflow-bound form (审批流)."""
    if state == "A":
        what = "提交失败：该单据已启用审批流，须由工作流发起提交，未能自动提交和审核。"
    else:
        what = "审核失败：该单据已启用审批流，已提交到工作流，须通过审批流审核，不能直接审核。"
    return K3Error(f"单据编号为“{doc.number}”的{form.caption}，{what}", 11, None, dindex)


@dataclass
class SaveOptions:
    need_update_fields: set[str] = field(default_factory=set)  # lower-case keys
    is_delete_entry: bool = True
    auto_submit_audit: bool = False
    # IsVerifyBaseDataField: real servers default to false (a reference that does not resolve is left empty).
    # Constructed directly (the /_sim/seed admin API) the simulator checks strictly, so a bad seed fails loudly.
    verify_base_data: bool = True

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "SaveOptions":
        low = {k.lower(): v for k, v in data.items()}
        need = low.get("needupdatefields") or []
        if isinstance(need, str):
            need = [x for x in need.split(",") if x.strip()]
        return cls(
            need_update_fields={str(x).strip().lower() for x in need},
            is_delete_entry=to_bool(low["isdeleteentry"]) if "isdeleteentry" in low else True,
            auto_submit_audit=to_bool(low.get("isautosubmitandaudit", False)),
            verify_base_data=to_bool(low.get("isverifybasedatafield", False)),
        )


def unknown_key(form: Form, key: str, where: str = "") -> K3Error:
    return K3Error(f"ResolveFiled_InnerEx解析字段(Key:{key})出错：{where}实体“{form.caption}”不存在此属性！", 9, key)


def state_error(form: Form, doc: Doc, what: str) -> K3Error:
    return K3Error(f"单据编号为“{doc.number}”的{form.caption}，{what}", 11, None)


class Saver:
    """Applies Save/Draft packages to a store. ``on_audit`` runs the audit side effects (e.g. SO quantities)."""

    def __init__(self, store: Store, username: str, on_audit: Callable[[Doc], None],
                 workflow_forms: dict[str, str] | None = None) -> None:
        """:param workflow_forms: form id → ``saved`` / ``submitted``: forms with a bound workflow (审批流), and
            where ``IsAutoSubmitAndAudit`` leaves their documents."""
        self.store = store
        self.username = username
        self.on_audit = on_audit
        self.workflow = {k.lower(): WORKFLOW_STATES[str(v).lower()] for k, v in (workflow_forms or {}).items()}

    # --- entry point -------------------------------------------------------------------------------
    def save(self, form: Form, model: Any, opts: SaveOptions, dindex: int = 0, draft: bool = False,
             seed_status: str | None = None) -> Doc:
        if not isinstance(model, dict):
            raise Rejected([K3Error("Model 必须是JSON对象。", 8, None, dindex)])
        existing = self._existing(form, model, dindex)
        if existing is not None and seed_status is None:
            if existing.status == "B":
                raise Rejected([K3Error(state_error(form, existing, "单据已提交，处于审核中，不允许修改！").message, 11, None, dindex)])
            if existing.status == "C":
                raise Rejected([K3Error(state_error(form, existing, "单据已经审核，不允许修改！").message, 11, None, dindex)])
        errors: list[K3Error] = []
        incoming = self._bind(form, model, errors)
        if errors:
            raise Rejected(_indexed(errors, dindex))
        data = self._merge(form, existing, incoming, opts)
        if existing is None and not draft:
            self._apply_defaults(form, data)
        if not draft:
            self._validate(form, data, errors, opts.verify_base_data)
        self._check_unique(form, data, existing, errors)
        if errors:
            raise Rejected(_indexed(errors, dindex))
        doc = self._persist(form, existing, data, opts, draft, seed_status)
        state = self.workflow.get(form.form_id.lower())
        if state and opts.auto_submit_audit and not draft and seed_status is None:
            raise AuditBlocked(doc, workflow_error(form, doc, state, dindex))
        return doc

    # --- steps --------------------------------------------------------------------------------------
    def _existing(self, form: Form, model: dict[str, Any], dindex: int) -> Doc | None:
        pk_value = next((v for k, v in model.items() if k.lower() == form.pk.lower()), 0)
        try:
            pk = int(pk_value or 0)
        except (TypeError, ValueError):
            raise Rejected([K3Error(f"主键{form.pk}的值“{pk_value}”无效。", 8, form.pk, dindex)]) from None
        if pk <= 0:
            return None
        doc = self.store.get(form, pk)
        if doc is None:
            raise Rejected([K3Error(f"{form.caption}数据不存在或已被删除（{form.pk}={pk}），无法修改。", 10, form.pk, dindex)])
        return doc

    def _bind(self, form: Form, model: dict[str, Any], errors: list[K3Error]) -> dict[str, Any]:
        """Map package keys to canonical keys and typed values; collect unknown keys and bad values."""
        out: dict[str, Any] = {}
        for key, value in model.items():
            try:
                if key.lower() == form.pk.lower():
                    continue
                if key.upper().startswith("F_"):  # customer extension fields exist on every form in the field
                    out[key] = value
                    continue
                f = form.header_field(key)
                if f is not None:
                    if not f.read_only and f.kind != "s":
                        out[f.key] = normalize(f, value)
                    continue
                ent = form.entity(key)
                if ent is None:
                    raise unknown_key(form, key)
                out[ent.key] = self._bind_entity(form, ent, value, errors)
            except K3Error as exc:
                errors.append(exc)
        return out

    def _bind_entity(self, form: Form, ent: Entity, value: Any, errors: list[K3Error]) -> Any:
        rows = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        bound: list[dict[str, Any]] = []
        for n, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                errors.append(K3Error(f"单据体“{ent.caption}”第{n}行不是JSON对象。", 8, ent.key))
                continue
            where = f"单据体实体【{ent.caption}】第【{n}】行分录，" if ent.multi else ""
            out: dict[str, Any] = {}
            for key, v in row.items():
                f = ent.get(key)
                if key.upper().startswith("F_") or (f is None and ent.loose):
                    out[key] = v
                elif f is None:
                    errors.append(unknown_key(form, key, f"{where}{ent.caption}"))
                elif f.key == ent.pk:
                    out[ent.pk] = int(v or 0) if str(v or 0).lstrip("-").isdigit() else 0
                elif not f.read_only:
                    try:
                        out[f.key] = normalize(f, v, where)
                    except K3Error as exc:
                        errors.append(exc)
            bound.append(out)
        return bound if ent.multi else (bound[0] if bound else {})

    def _merge(self, form: Form, existing: Doc | None, incoming: dict[str, Any], opts: SaveOptions) -> dict[str, Any]:
        data = copy.deepcopy(existing.data) if existing else {}
        need = opts.need_update_fields if existing else set()

        def wanted(key: str) -> bool:
            return not need or key.lower() in need

        for key, value in incoming.items():
            ent = form.entity(key)
            if ent is None:
                if wanted(key):
                    data[key] = value
                continue
            if not ent.multi:
                target = data.setdefault(ent.key, {}) or {}
                for k, v in value.items():
                    if k != ent.pk and (wanted(k) or wanted(ent.key)):
                        target[k] = v
                target.setdefault(ent.pk, self.store.new_entry_id())
                data[ent.key] = target
                continue
            data[ent.key] = self._merge_rows(ent, data.get(ent.key) or [], value, need, opts.is_delete_entry)
        return data

    def _merge_rows(self, ent: Entity, old: list[dict[str, Any]], new: list[dict[str, Any]], need: set[str],
                    delete_missing: bool) -> list[dict[str, Any]]:
        by_id = {row.get(ent.pk): row for row in old}
        result: list[dict[str, Any]] = []
        seen: set[int] = set()
        if not new and old:
            return old  # IsDeleteEntry with an empty list leaves the rows (only explicit rows, or [{}], replace them)
        for row in new:
            row_id = row.get(ent.pk) or 0
            if row_id and row_id in by_id:
                merged = by_id[row_id]
                for k, v in row.items():
                    if not need or k.lower() in need or ent.key.lower() in need:
                        merged[k] = v
                seen.add(row_id)
                result.append(merged)
            elif all(is_empty(v) for k, v in row.items() if k != ent.pk):
                continue  # template rows left blank are not entries
            else:
                result.append({**row, ent.pk: self.store.new_entry_id()})
        if not delete_missing:  # keep rows the package did not mention (IsDeleteEntry=false)
            kept = [row for row in old if row.get(ent.pk) not in seen]
            result = kept + [r for r in result if r.get(ent.pk) not in {k.get(ent.pk) for k in kept}]
        return result

    def _apply_defaults(self, form: Form, data: dict[str, Any]) -> None:
        for path, value in form.defaults.items():
            head, _, tail = path.partition(".")
            target = data
            if tail:
                ent = form.entity(head)
                target = data.setdefault(head, {}) or {}
                data[head] = target
                if ent is not None:
                    target.setdefault(ent.pk, self.store.new_entry_id())
            key = tail or head
            if target.get(key) is None:
                target[key] = copy.deepcopy(value)
        if "FDate" in {f.key for f in form.header.values()} and not data.get("FDate"):
            data["FDate"] = today_local()
        if form.org_controlled and data.get("FCreateOrgId") is not None:
            # A new record is used by the org that creates it; other orgs get it by allocation (a copy each).
            data["FUseOrgId"] = copy.deepcopy(data.get("FCreateOrgId"))

    def _validate(self, form: Form, data: dict[str, Any], errors: list[K3Error], verify: bool = True) -> None:
        org = _org_number(form, data)
        for f in form.header.values():
            if not self._check_field(form, f, data.get(f.key), org, "", errors, verify):
                data[f.key] = None
        for ent in form.entities.values():
            if ent.loose:
                continue
            rows = data.get(ent.key)
            if not ent.multi:
                for f in ent.fields.values():
                    if f.key != ent.pk and not self._check_field(form, f, (rows or {}).get(f.key), org, "", errors,
                                                                 verify):
                        rows[f.key] = None
                continue
            if not form.base_data and ent is next(iter(form.entities.values())) and not rows:
                errors.append(K3Error(f"单据体“{ent.caption}”至少要录入一行分录！", 11, ent.key))
            for n, row in enumerate(rows or [], start=1):
                row_org = _row_org(row) or org
                for f in ent.fields.values():
                    if f.key != ent.pk:
                        where = f"单据体实体【{ent.caption}】第【{n}】行分录，"
                        if not self._check_field(form, f, row.get(f.key), row_org, where, errors, verify):
                            row[f.key] = None
                if ent.key.lower() in ("fsaleorderentry", "fentity"):
                    self._default_unit(row)

    def _check_field(self, form: Form, f: Field, value: Any, org: str | None, where: str, errors: list[K3Error],
                     verify: bool = True) -> bool:
        """Check one value; False when a reference does not resolve and is to be left empty (no
        ``IsVerifyBaseDataField``: the real server then saves without it, or fails only if it is required)."""
        empty = value is None or (f.kind in "tm" and str(value).strip() == "")
        if f.required and empty:
            msg = f"{where}【{f.caption}】字段必录" if where else f"字段“{f.caption}”是必填项"
            errors.append(K3Error(msg, 11, f.key))
            return True
        if f.kind != "r" or value is None:
            return True
        (lookup, v), = value.items()
        ref_form = get_form(f.ref or "")
        in_org = org if ref_form is not None and ref_form.org_controlled else None
        doc = self.store.find_ref(f.ref or "", lookup, v, f.ref_category, in_org)
        problem = None
        if doc is None:
            anywhere = self.store.find_ref(f.ref or "", lookup, v, f.ref_category) if in_org else None
            problem = f"未分配到组织“{org}”" if anywhere is not None else "不存在"
        elif doc.status != "C":
            problem = "未审核"
        elif doc.data.get("FForbidStatus") == "B":
            problem = "已禁用"
        elif f.ref == "BOS_BillType" and str(doc.data.get("FBillFormID", "")).lower() != form.form_id.lower():
            errors.append(K3Error(f"{where}字段“{f.caption}”的值“{v}”不是{form.caption}的单据类型。", 11, f.key))
            return True
        if problem and not verify:
            if f.required:
                msg = f"{where}【{f.caption}】字段必录" if where else f"字段“{f.caption}”是必填项"
                errors.append(K3Error(msg, 11, f.key))
                return True
            return False
        if problem:
            errors.append(K3Error(f"{where}字段“{f.caption}”的值“{v}”对应的基础资料{problem}。", 11, f.key))
            return True
        value.clear()
        value["FNumber"] = doc.number  # canonical lookup, whatever key the client used
        return True

    def _default_unit(self, row: dict[str, Any]) -> None:
        """Sales lines default their unit to the material's base unit, as the form's change events do."""
        material = row.get("FMaterialId") or row.get("FMaterialID")
        if row.get("FUnitID") is None and isinstance(material, dict):
            doc = self.store.find_ref("BD_MATERIAL", "FNumber", material.get("FNumber", ""))
            unit = ((doc.data.get("SubHeadEntity") or {}).get("FBaseUnitId") if doc else None)
            if unit:
                row["FUnitID"] = dict(unit)

    def _check_unique(self, form: Form, data: dict[str, Any], existing: Doc | None, errors: list[K3Error]) -> None:
        number = str(data.get(form.number_key) or "").strip()
        # Allocated copies share their master's number; any other document with it is a duplicate.
        group = existing.master_id if existing is not None else None
        other = next((d for d in self.store.all_by_number(form, number) if d.master_id != group), None) \
            if number else None
        if other is not None:
            errors.append(K3Error(f"违反字段唯一性要求：编码唯一。[{number}]在当前系统中已经被使用。", 11, form.number_key))

    def _persist(self, form: Form, existing: Doc | None, data: dict[str, Any], opts: SaveOptions, draft: bool,
                 seed_status: str | None) -> Doc:
        stamp = now_local()
        user = {"FNumber": self.username}
        if existing is None:
            data[form.pk] = self.store.new_id()
            data["FCreateDate"] = stamp
            data["FCreatorId"] = user
            data.setdefault("FDocumentStatus", "Z" if draft else "A")
            if form.base_data:
                data.setdefault("FForbidStatus", "A")
            else:
                data.setdefault("FCloseStatus", "A")
                data.setdefault("FCancelStatus", "A")
        elif not draft and data.get("FDocumentStatus") == "Z":
            data["FDocumentStatus"] = "A"  # saving a draft makes it a normal saved document
        if not draft and not str(data.get(form.number_key) or "").strip():
            data[form.number_key] = self.store.next_number(form)
        data["FModifyDate"] = stamp
        data["FModifierId"] = user
        _compute_lines(form, data)
        doc = existing or Doc(form=form, data=data)
        doc.data = data
        self.store.put(doc)
        if form.org_controlled and existing is not None and doc.master_id == doc.id:
            self._propagate(doc)
        if seed_status:
            data["FDocumentStatus"] = seed_status
            if seed_status == "C":
                data["FApproveDate"] = stamp
                data["FApproverId"] = user
                self.on_audit(doc)
        elif opts.auto_submit_audit and not draft and form.form_id.lower() in self.workflow:
            data["FDocumentStatus"] = self.workflow[form.form_id.lower()]  # the workflow stops it there
        elif opts.auto_submit_audit and not draft:
            data["FDocumentStatus"] = "C"
            data["FApproveDate"] = stamp
            data["FApproverId"] = user
            self.on_audit(doc)
        return doc


    def _propagate(self, master: Doc) -> None:
        """Master-controlled data (all but the use org's own state) follows the master into its copies."""
        for copy_doc in self.store.copies(master):
            own = {k: copy_doc.data.get(k) for k in (*_PER_ORG, master.form.pk)}
            copy_doc.data = {**copy.deepcopy(master.data), **own}
            self.store.put(copy_doc)


_PER_ORG = ("FMasterId", "FUseOrgId", "FDocumentStatus", "FForbidStatus", "FForbidDate", "FApproveDate", "FApproverId", "FCreateDate")


def _indexed(errors: list[K3Error], dindex: int) -> list[K3Error]:
    for e in errors:
        e.dindex = dindex
    return errors


_ref_number = ref_number


def _org_number(form: Form, data: dict[str, Any]) -> str | None:
    return _ref_number(data.get(form.org_key)) if form.org_key else None


def _row_org(row: dict[str, Any]) -> str | None:
    return _ref_number(row.get("FStockOrgId")) if "FStockOrgId" in row else None


def _compute_lines(form: Form, data: dict[str, Any]) -> None:
    """Amounts and the execution quantities a freshly saved sale order line starts with; a receipt's totals."""
    if form.form_id == "AR_RECEIVEBILL":
        total = round(sum(float(r.get("FRECAMOUNTFOR_E") or 0) for r in data.get("FRECEIVEBILLENTRY") or []), 2)
        data["FRECAMOUNTFOR"] = data["FREALRECAMOUNTFOR"] = total
        return
    if form.form_id != "SAL_SaleOrder":
        return
    for row in data.get("FSaleOrderEntry") or []:
        qty = float(row.get("FQty") or 0)
        row.setdefault("FDeliQty", 0.0)
        row.setdefault("FStockOutQty", 0.0)
        row["FRemainOutQty"] = qty - float(row.get("FStockOutQty") or 0)
        row["FCanOutQty"] = row["FRemainOutQty"]
        if row.get("FTaxPrice") is not None:
            row["FAllAmount"] = round(qty * float(row["FTaxPrice"]), 2)
        if row.get("FPrice") is not None:
            row["FAmount"] = round(qty * float(row["FPrice"]), 2)
