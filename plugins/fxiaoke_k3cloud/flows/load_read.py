"""Load, step 2a — what the writer reads back from K3Cloud: documents by number and by id, presence of what
the id map links, and the documents a person submitted or audited (never overwritten).

Mixed into :class:`~fxiaoke_k3cloud.flows.load_write.Loader`; K3Cloud only, no store access (runs in a writer
thread).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from fxiaoke_k3cloud.errors import ApiError, SyncError, TransportError
from fxiaoke_k3cloud.flows.base_data import states_by_ids
from fxiaoke_k3cloud.flows.load_plan import PRESENCE_PAGE, LoadPlan, LoadPlanner, Package, Target, as_pk, chunks
from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.numbers import number_key

log = logging.getLogger(__name__)

LOCKED_STATES = {"B": "submitted for approval", "C": "audited"}


def submitted_or_audited(hook: Any, form_id: str, ids: Sequence[Any], *, pk_key: str,
                         number_field: str) -> dict[str, str]:
    """K3Cloud documents among ``ids`` that are submitted or audited (B/C): id → status.

    By id (unique: no org filter needed), with the form's own pk and number field from the mapping — any bill or
    base-data form, not only those numbered ``FBillNo``.
    """
    states = states_by_ids(hook, form_id, [i for i in ids if i], pk_key=pk_key, number_field=number_field)
    return {doc_id: s.status for doc_id, s in states.items() if s.status in LOCKED_STATES}


class LoadReads(LoadPlanner):
    """Reads of the write side (see the module docstring)."""

    def find_by_numbers(self, numbers: Sequence[str]) -> dict[str, Target]:
        """K3Cloud documents with these numbers (after duplicates and unknown outcomes), keyed by
        :func:`number_key`: K3Cloud matches ``so000001`` to ``SO000001``, so must we."""

        found: dict[str, Target] = {}
        wanted = list(dict.fromkeys(str(n).strip() for n in numbers if n and str(n).strip()))
        for chunk in chunks(wanted, 200):
            flt = F(self.number_key).isin(list(chunk))
            if self.org_filter is not None:  # allocated base data: one row per use org; ours is the flow's org
                flt = flt & (F(self.org_filter[0]) == self.org_filter[1])
            for page in self.hook.execute_bill_query(self.spec.target_form, [self.pk_key, self.number_key], filter=flt):
                for row in page:
                    found[number_key(row[self.number_key])] = Target(str(row[self.pk_key]), str(row[self.number_key]))
        return found

    def find_by_ids(self, ids: Sequence[str]) -> dict[str, Target]:
        """K3Cloud documents with these ids, keyed by id, with the number K3Cloud holds now."""

        found: dict[str, Target] = {}
        wanted = [as_pk(i) for i in dict.fromkeys(i for i in ids if i)]
        for chunk in chunks(wanted, PRESENCE_PAGE):
            flt = F(self.pk_key).isin(list(chunk))
            for page in self.hook.execute_bill_query(self.spec.target_form, [self.pk_key, self.number_key],
                                                     filter=flt, page_size=PRESENCE_PAGE):
                for row in page:
                    found[str(row[self.pk_key])] = Target(str(row[self.pk_key]), str(row[self.number_key]))
        return found


    def _check_presence(self, plan: LoadPlan, creates: list[Package]
                        ) -> tuple[list[tuple[Package, Target]], list[tuple[Package, Target]]]:
        """The documents to update (and, on full resyncs, the unchanged ones) must still exist in K3Cloud.

        One ExecuteBillQuery by id per chunk; a vanished document is re-created (appended to ``creates``) or
        reported, per ``on_target_missing``. Returns the renumbers and updates still to send, with the number
        K3Cloud holds now (a person may have changed it there).
        """
        linked = plan.verify + plan.renumbers + plan.updates
        if not linked:
            return [], []
        # Documents to update are un-audited first when the form needs it, by id: UnAudit's answer lists each
        # document it processed with its id and current number, so those are present — only the rest (not
        # audited, or gone) and the unchanged ones to verify are looked for.
        present = self._unaudit_present([t.id for _, t in plan.renumbers + plan.updates if t.id])
        try:
            present.update(self.find_by_ids([t.id for _, t in linked if t.id and str(t.id) not in present]))
        except (ApiError, TransportError) as exc:
            if present:  # nothing is sent: what was un-audited goes back to audited
                self._reaudit([t.number for t in present.values()])
            for pkg, target in linked:
                self._outcome(pkg, "failed", target=target, error=exc,
                              reason=f"presence check in K3Cloud failed ({exc}); retried by the next run")
            return [], []
        renumbers: list[tuple[Package, Target]] = []
        updates: list[tuple[Package, Target]] = []
        verified = {id(p) for p, _ in plan.verify}
        renumbering = {id(p) for p, _ in plan.renumbers}
        for pkg, target in linked:
            now = present.get(str(target.id))
            if now is None:
                self._target_missing(pkg, target, creates)
            elif id(pkg) in verified and number_key(now.number) == number_key(pkg.number):
                self._outcome(pkg, "unchanged", target=now,
                              reason="mapped payload unchanged since the last sync; present in K3Cloud")
            elif id(pkg) in renumbering or number_key(now.number) != number_key(pkg.number):
                renumbers.append((pkg, now))  # K3Cloud's number differs from the CRM's: the save sets it
            else:
                updates.append((pkg, now))
        return renumbers, updates

    def _unaudit_present(self, ids: Sequence[str]) -> dict[str, Target]:
        """Un-audit these documents (by id) when updates need it; returns the ones K3Cloud processed (present,
        with the number they hold), remembered in ``_unaudited`` so the update does not un-audit them again."""
        if not self.unaudit_before_update or not ids:
            return {}
        try:
            result = self.hook.unaudit(self.spec.target_form, ids=[as_pk(i) for i in ids])
        except SyncError as exc:  # none audited (drafts, saved, gone): the presence query decides
            log.info("%s: UnAudit before update answered: %s", self.spec.name, exc)
            return {}
        present = {str(e.id): Target(str(e.id), str(e.number)) for e in result.successes if e.id and e.number}
        self._unaudited.update(present)
        return present

    def _target_missing(self, pkg: Package, target: Target, creates: list[Package]) -> None:
        gone = (f"K3Cloud {self.spec.target_form} id {target.id} (number {target.number}) that the id map links "
                f"to {self._label(pkg)} no longer exists in K3Cloud")
        if self.on_target_missing == "report":
            self._outcome(pkg, "reported", target=target, error="TargetMissing",
                          reason=f"{gone}; not re-created (on_target_missing: report) — restore it in K3Cloud, or "
                                 "set target.on_target_missing: recreate and run again")
            return
        log.warning("%s: %s; re-creating it", self.spec.name, gone)
        self._created_reason[pkg.source_id] = f"{gone}: re-created"
        creates.append(pkg)

    def _skip_audited(self, updates: list[tuple[Package, Target]]) -> list[tuple[Package, Target]]:
        """Documents a person submitted or audited in K3Cloud are not overwritten: the change is a conflict."""
        ids = [t.id for _, t in updates if t.id]
        locked = submitted_or_audited(self.hook, self.spec.target_form, ids, pk_key=self.pk_key,
                                      number_field=self.number_key) if ids else {}
        keep = []
        for pkg, target in updates:
            status = locked.get(str(target.id))
            if status is None:
                keep.append((pkg, target))
                continue
            self._outcome(pkg, "reported", target=target, error="AuditedInK3Cloud",
                          reason=f"conflict: the CRM changed {pkg.source_name or pkg.source_id} but K3Cloud "
                                 f"{self.spec.target_form} {target.number} is {LOCKED_STATES[status]}; not "
                                 "overwritten — un-audit it in K3Cloud to let the change through, or change it there")
        return keep
