"""What the loader checks in K3Cloud after a save, when the answer alone does not say what landed.

* ``IsAutoSubmitAndAudit`` on a form with a bound workflow (审批流): the save goes through, the audit does not;
  the answer fails (IsSuccess false) although the document exists, saved (A) or submitted (B). Refused rows are
  read back (by number for creates, by id for updates); what is there unaudited is linked and ``reported``
  (``AuditBlocked``) instead of failed, so a re-run does not create it twice.
* No ``IsVerifyBaseDataField`` (false by default on real servers): a reference K3Cloud cannot resolve is saved
  empty. The mapped header references of the documents saved are read back; a record whose value did not land
  is ``reported`` (``ReferenceLeftEmpty``) and its id map entry left unsynced, so the next run sends it again.

Each check is one ExecuteBillQuery per 500 documents, and only runs when its situation can arise.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from fxiaoke_k3cloud.errors import ApiError, TransportError
from fxiaoke_k3cloud.flows.base_data import (STATE_LABEL, empty_references, sent_value, states_by_ids,
                                             states_by_number)

log = logging.getLogger(__name__)


class SaveChecks:
    """Mixed into :class:`~fxiaoke_k3cloud.flows.load_write.Loader` (uses its hook, spec, options, result and
    ``_outcome`` / ``_link``)."""

    hook: Any
    spec: Any
    options: dict[str, Any]
    pk_key: str
    number_key: str
    org_filter: tuple[str, str] | None
    reference_fields: list[str]
    result: Any

    def _auto_audits(self) -> bool:
        return str(self.options.get("IsAutoSubmitAndAudit", "")).lower() in ("true", "1")

    def _saved_not_audited_by_number(self, numbers: list[str]) -> dict[str, Any]:
        """After refused creates with IsAutoSubmitAndAudit: those that were saved all the same (found by number in
        the flow's org, not audited) — the audit failed after the save, e.g. because a workflow is bound."""
        if not numbers or not self._auto_audits():
            return {}
        try:
            found = states_by_number(self.hook, self.spec.target_form, numbers, pk_key=self.pk_key,
                                     number_field=self.number_key, org=self.org_filter, base_data=False)
        except (ApiError, TransportError) as exc:
            log.warning("%s: reading back refused creates failed (%s); they count as failed", self.spec.name, exc)
            return {}
        return {k: s for k, s in found.items() if s.status != "C"}

    def _saved_not_audited_by_id(self, ids: list[str | None]) -> dict[str, Any]:
        ids = [i for i in ids if i]
        if not ids or not self._auto_audits():
            return {}
        try:
            found = states_by_ids(self.hook, self.spec.target_form, ids, pk_key=self.pk_key,
                                  number_field=self.number_key)
        except (ApiError, TransportError) as exc:
            log.warning("%s: reading back refused updates failed (%s); they count as failed", self.spec.name, exc)
            return {}
        return {k: s for k, s in found.items() if s.status != "C"}

    def _half_done(self, pkg: Any, target: Any, status: str, row: Any, attempt: int, *, synced: bool,
                   request: Any) -> None:
        """Saved in K3Cloud but not audited: linked (a re-run does not create it twice), ``reported`` with the
        document's status; what references it (orders) waits until it is audited in K3Cloud."""
        said = "; ".join(e.message for e in row.errors) or f"MsgCode {row.msg_code}"
        self._outcome(pkg, "reported", target=target, attempt=attempt, error="AuditBlocked",
                      reason=f"{self.spec.target_form} {target.number} (id {target.id}) is in K3Cloud but not audited: "
                             f"status {status} ({STATE_LABEL.get(status, status)}); K3Cloud said: {said}. A workflow "
                             "(审批流) is probably bound to the form: approve it there. It is linked (no duplicate on "
                             "a re-run); documents that reference it wait (parked) until it is audited",
                      request=request, response={"errors": [e._asdict() for e in row.errors], "msg_code": row.msg_code,
                                                 "document_status": status})
        self._link(pkg, target, synced=synced)

    def _check_references(self, plan: Any) -> None:
        """Without IsVerifyBaseDataField K3Cloud saves a reference it cannot resolve as empty: read the saved
        documents' references back and report the records whose values did not land (id map left unsynced, so
        the next run sends them again — once the base data exists in K3Cloud they land)."""
        sent_models = {p.source_id: p.model for p in plan.creates}
        sent_models.update({p.source_id: p.update_model for p, _ in plan.updates + plan.renumbers})
        saved = {i: o for i, o in enumerate(self.result.outcomes)
                 if o.outcome in ("created", "updated") and o.target_id and o.source_id in sent_models}
        if not saved:
            return
        sent = {str(o.target_id): {k: sent_value(sent_models[o.source_id], k) for k in self.reference_fields}
                for o in saved.values()}
        try:
            empty = empty_references(self.hook, self.spec.target_form, self.pk_key, sent, self.reference_fields)
        except (ApiError, TransportError) as exc:
            log.warning("%s: reading back references failed (%s); not checked this run", self.spec.name, exc)
            return
        if not empty:
            return
        unsynced = set()
        for index, o in saved.items():
            lost = empty.get(str(o.target_id))
            if not lost:
                continue
            what = ", ".join(f"{key} {value!r}" for key, value in lost)
            self.result.counts[o.outcome] -= 1
            self.result.counts["reported"] += 1
            self.result.outcomes[index] = dataclasses.replace(
                o, outcome="reported", error_class="ReferenceLeftEmpty",
                reason=f"{self.spec.target_form} {o.target_number} was {o.outcome} but K3Cloud left {what} empty: "
                       "no usable base data with that number (the mapping does not set IsVerifyBaseDataField, so "
                       "K3Cloud saved without it) — create or enable it in K3Cloud, or fix the value in the CRM; "
                       "the record is sent again by the next run")
            unsynced.add(o.source_id)
        self.result.id_map = [dataclasses.replace(e, payload_hash=None) if e.source_id in unsynced else e
                              for e in self.result.id_map]

