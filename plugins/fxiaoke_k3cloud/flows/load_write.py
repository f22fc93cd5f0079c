"""Load, step 2b — write: one planned chunk against K3Cloud (presence check, renumbers, creates, updates).

* creates go out in ``BatchSave`` chunks with the full package; updates send the pk and only the mapped
  fields (``NeedUpDateFields``), after un-auditing the documents when the form requires it;
* renumbers go first, so a number they free can be taken by another record of the same chunk;
* a duplicate-number answer links the existing K3Cloud document (found by number) and updates it — unless the
  id map links that number to another CRM record (then this record is rejected naming both);
* a chunk whose outcome is unknown (timeout) is read back by number: what landed is linked, the rest is
  sent once more; whatever is still unknown is marked failed and retried by the next run.

K3Cloud only, no store access: :meth:`Loader.execute` runs in a writer thread, one chunk per thread, while the
main thread plans and persists other chunks (``load.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from fxiaoke_k3cloud.errors import ApiError, OutcomeUnknownError, SyncError, TransportError
from fxiaoke_k3cloud.flows.load_checks import SaveChecks
from fxiaoke_k3cloud.flows.load_plan import LoadPlan, LoadResult, Package, Target, as_pk, chunks, is_duplicate_number
from fxiaoke_k3cloud.flows.load_read import LoadReads
from fxiaoke_k3cloud.numbers import number_key

log = logging.getLogger(__name__)

# Updates per BatchSave: a load chunk's updates in one call. They carry the pk and the mapped fields only
# (NeedUpDateFields), and 100 is the top of the batch size K3Cloud integrators use (10–100; BatchSave has no
# documented maximum, k3cloud-webapi.md §3.4, §7.2). Creates keep the flow's batch_size (full packages).
UPDATE_BATCH = 100


class Loader(LoadReads, SaveChecks):
    """Plans (:class:`~.load_plan.LoadPlanner`) and writes (:meth:`execute`) one flow's packages; collects their
    outcomes, the caller persists them (:mod:`.load_persist`)."""

    def run(self, packages: list[Package]) -> LoadResult:
        """Plan and execute in one go (sequential)."""
        return self.execute(self.plan(packages))


    def execute(self, plan: LoadPlan) -> LoadResult:
        """K3Cloud only (no store access): presence check, renumbers, creates, then updates; outcomes go to
        ``self.result``."""
        self._owners = plan.owners
        creates = list(plan.creates)
        renumbers, updates = self._check_presence(plan, creates)
        if not self.unaudit_before_update:
            renumbers = self._skip_audited(renumbers)
        for chunk in chunks(renumbers, UPDATE_BATCH):  # first: the numbers they free may be reused below
            self._update_chunk(list(chunk))
        for chunk in chunks(creates, self.spec.batch_size):
            updates.extend(self._create_chunk(list(chunk)))
        if not self.unaudit_before_update:
            updates = self._skip_audited(updates)
        for chunk in chunks(updates, UPDATE_BATCH):
            self._update_chunk(list(chunk))
        if self.reference_fields:
            self._check_references(plan)
        return self.result

    def _create_chunk(self, chunk: list[Package], attempt: int = 1) -> list[tuple[Package, Target]]:
        """Create a chunk; returns the packages that turned out to exist already (to be updated)."""
        models = [p.model for p in chunk]
        try:
            rows = self.hook.batch_save(self.spec.target_form, models, **self.options)
        except OutcomeUnknownError as exc:
            return self._resolve_unknown_creates(chunk, exc, attempt)
        except (ApiError, TransportError) as exc:
            for pkg in chunk:
                self._outcome(pkg, "failed", reason=f"BatchSave failed: {exc}", attempt=attempt, error=exc,
                              request=pkg.model)
            return []
        existing: list[tuple[Package, Target]] = []
        duplicates: list[Package] = []
        refused: list[tuple[Package, Any]] = []
        for pkg, row in zip(chunk, rows):
            if row.ok:
                target = Target(str(row.id), row.number or pkg.number)
                self._outcome(pkg, "created", target=target, attempt=attempt,
                              reason=self._created_reason.get(pkg.source_id))
                self._link(pkg, target, synced=True)
            elif is_duplicate_number(row, self.number_key):
                duplicates.append(pkg)
            else:
                refused.append((pkg, row))
        half_done = self._saved_not_audited_by_number([p.number for p, _ in refused])
        for pkg, row in refused:
            state = half_done.get(number_key(pkg.number))
            if state is not None:
                self._half_done(pkg, Target(state.id, state.number), state.status, row, attempt, synced=True,
                                request=pkg.model)
            else:
                self._fail_row(pkg, row, attempt, request=pkg.model)
        if duplicates:
            found = self.find_by_numbers([p.number for p in duplicates])
            for pkg in duplicates:
                target = found.get(number_key(pkg.number))
                owner = self._owners.get(number_key(pkg.number))
                if target is not None and owner is not None and owner.source_id != pkg.source_id:
                    self._collision(pkg, owner.source_id, owner.target_number,
                                    f"K3Cloud {self.spec.target_form} id {target.id} holds it")
                elif target is None:
                    self._outcome(pkg, "failed", attempt=attempt, error="DuplicateNumber",
                                  reason=f"K3Cloud says number {pkg.number} is taken but no {self.spec.target_form} "
                                         "with it is visible to this user (another org?)")
                else:
                    log.info("%s %s: number %s exists in K3Cloud (id %s): linking and updating",
                             self.spec.entity, pkg.source_id, pkg.number, target.id)
                    existing.append((pkg, target))
        return existing

    def _resolve_unknown_creates(self, chunk: list[Package], exc: OutcomeUnknownError,
                                 attempt: int) -> list[tuple[Package, Target]]:
        log.warning("%s: BatchSave of %s records timed out (%s); reading back by number before any retry",
                    self.spec.name, len(chunk), exc)
        found = self.find_by_numbers([p.number for p in chunk])
        landed = [p for p in chunk if number_key(p.number) in found]
        for pkg in landed:
            target = found[number_key(pkg.number)]
            self._outcome(pkg, "created", target=target, attempt=attempt,
                          reason="write timed out; found in K3Cloud by number on read-back")
            self._link(pkg, target, synced=True)
        rest = [p for p in chunk if number_key(p.number) not in found]
        if not rest:
            return []
        if attempt >= 2:
            for pkg in rest:
                self._outcome(pkg, "failed", attempt=attempt, error=exc,
                              reason="outcome unknown twice (timeouts); retried by the next run")
            return []
        return self._create_chunk(rest, attempt + 1)

    def _update_chunk(self, chunk: list[tuple[Package, Target]], attempt: int = 1) -> None:
        if self.unaudit_before_update:
            # The presence check un-audited the linked documents; what is left are documents found by number
            # after a duplicate create, and a replay after a timeout (the first try may have re-audited them).
            self._unaudit([t.number for _, t in chunk
                           if t.number and (attempt > 1 or str(t.id) not in self._unaudited)])
        models = [{self.pk_key: as_pk(t.id), **p.update_model} for p, t in chunk]
        fields = sorted({f for p, _ in chunk for f in p.update_fields})
        options = {**self.options, "NeedUpDateFields": fields}
        try:
            rows = self.hook.batch_save(self.spec.target_form, models, **options)
        except OutcomeUnknownError as exc:
            if attempt < 2:  # an update carries the full mapped state: replaying it is idempotent
                log.warning("%s: update chunk timed out (%s); sending it once more", self.spec.name, exc)
                return self._update_chunk(chunk, attempt + 1)
            for pkg, target in chunk:
                self._outcome(pkg, "failed", target=target, attempt=attempt, error=exc,
                              reason="update outcome unknown twice (timeouts); retried by the next run")
            return None
        except (ApiError, TransportError) as exc:
            for pkg, target in chunk:
                self._outcome(pkg, "failed", target=target, reason=f"BatchSave (update) failed: {exc}",
                              attempt=attempt, error=exc)
            return None
        failed_numbers = []
        half_done = self._saved_not_audited_by_id(
            [t.id for (_, t), row in zip(chunk, rows) if not row.ok and not any(e.field_name for e in row.errors)])
        for (pkg, target), row, model in zip(chunk, rows, models):
            if row.ok:
                now = Target(target.id, pkg.number)  # the save set the CRM's number (the number is a mapped field)
                renumbered = number_key(target.number) != number_key(pkg.number)
                self._outcome(pkg, "updated", target=now, attempt=attempt,
                              reason=f"renumbered in K3Cloud: {target.number} → {pkg.number}" if renumbered else None)
                self._link(pkg, now, synced=True)
            elif (number_key(target.number) != number_key(pkg.number)
                  and is_duplicate_number(row, self.number_key)):
                self._outcome(pkg, "reported", target=target, attempt=attempt, error="RenumberRefused",
                              reason=f"conflict: the CRM changed the number of {self._label(pkg)} from "
                                     f"{target.number!r} to {pkg.number!r}, but K3Cloud {self.spec.target_form} "
                                     f"already has a document numbered {pkg.number!r} that no CRM record is linked "
                                     f"to; id {target.id} keeps {target.number!r} — renumber or delete that "
                                     "document in K3Cloud, or give the CRM record another number",
                              request=model, response={"errors": [e._asdict() for e in row.errors]})
                failed_numbers.append(target.number)
            elif str(target.id) in half_done:
                # Not synced: whether the save went through before the workflow stopped it is not known, so the
                # next run sends the change again (harmless if it landed).
                state = half_done[str(target.id)]
                self._half_done(pkg, Target(target.id, state.number), state.status, row, attempt, synced=False,
                                request=model)
            else:
                self._fail_row(pkg, row, attempt, target=target, request=model)
                failed_numbers.append(target.number)
        if self.unaudit_before_update and failed_numbers:
            self._reaudit([n for n in failed_numbers if n])
        return None

    def _unaudit(self, numbers: list[str]) -> None:
        if not numbers:
            return
        try:
            self.hook.unaudit(self.spec.target_form, numbers=numbers)
        except SyncError as exc:  # documents not audited (e.g. drafts) refuse; the save decides
            log.info("%s: UnAudit before update answered: %s", self.spec.name, exc)

    def _reaudit(self, numbers: list[str]) -> None:
        """Put documents whose update failed back to audited, so orders can still reference them."""
        for op in ("submit", "audit"):
            try:
                getattr(self.hook, op)(self.spec.target_form, numbers=numbers)
            except SyncError as exc:
                log.warning("%s: re-%s after a failed update answered: %s", self.spec.name, op, exc)

    def _fail_row(self, pkg: Package, row: Any, attempt: int, *, target: Target | None = None,
                  request: Any = None) -> None:
        reason = "; ".join(
            f"{e.field_name}: {e.message}" if e.field_name else e.message for e in row.errors
        ) or f"K3Cloud refused the record (MsgCode {row.msg_code})"
        self._outcome(pkg, "failed", target=target, attempt=attempt, error=f"K3CloudMsgCode{row.msg_code}",
                      reason=f"{self.spec.target_form} {pkg.number}: {reason}", request=request,
                      response={"errors": [e._asdict() for e in row.errors], "msg_code": row.msg_code})

