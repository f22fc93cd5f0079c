"""Load: idempotent batched writes to K3Cloud, every outcome audited.

For each staged package (one CRM record mapped to a K3Cloud model):

* the id map decides create vs update; an unchanged payload hash means no API call at all — except on runs
  that read everything (full resync, first sync), where what the id map calls unchanged is checked for
  presence in K3Cloud first (by id, one ExecuteBillQuery per chunk) and a vanished document is re-created
  (``target.on_target_missing: recreate``, the default) or reported; updates are checked the same way;
* numbers compare as K3Cloud compares them (:func:`~fxiaoke_k3cloud.numbers.number_key`): a number that
  another CRM record already holds — in this run or in the id map — rejects the record naming both, and no
  document found by number that belongs to another CRM record is ever overwritten;
* a linked record whose number changed in the CRM is renumbered in K3Cloud (Save with the pk and the new
  number; ``target.on_renumber: renumber``, the default) or reported; renumbers go first, so a number they
  free can be taken by another record in the same run; the id map then holds the new number;
* creates go out in ``BatchSave`` chunks with the full package; updates send the pk and only the mapped
  fields (``NeedUpDateFields``), after un-auditing the documents when the form requires it;
* a duplicate-number answer links the existing K3Cloud document (found by number) and updates it;
* a chunk whose outcome is unknown (timeout) is read back by number: what landed is linked, the rest is
  sent once more; whatever is still unknown is marked failed and retried by the next run.

Staged packages go in chunks of ``LOAD_CHUNK``: while one chunk's K3Cloud calls run in a single worker thread,
the main thread reads and plans the next chunk and persists the previous one, so the database work overlaps the
API calls; K3Cloud still gets one request at a time per run, as the ``k3cloud_api`` pool (one slot per task) assumes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from fxiaoke_k3cloud.errors import ApiError, OutcomeUnknownError, SyncError, TransportError, is_config_error
from fxiaoke_k3cloud.flows.base_data import org_filter, reference_fields
from fxiaoke_k3cloud.flows.load_checks import SaveChecks
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.numbers import number_key

log = logging.getLogger(__name__)

DRY_RUN_LOG_LIMIT = 50  # packages shown in the task log; all of them are in the audit store
DUPLICATE_MARKERS = ("已经被使用", "already been used", "唯一")


@dataclass
class Package:
    source_id: str
    number: str
    model: dict[str, Any]
    update_model: dict[str, Any]
    update_fields: list[str]
    payload_hash: str
    source_name: str | None = None
    modified_ms: int | None = None

    @classmethod
    def from_stage(cls, row: dict[str, Any]) -> "Package":
        return cls(**{k: row.get(k) for k in cls.__dataclass_fields__})


@dataclass
class Target:
    """Where a package is going: a new document, or an existing one (id + number)."""

    id: str | None = None
    number: str | None = None


@dataclass
class LoadResult:
    outcomes: list[Any] = field(default_factory=list)  # audit RecordOutcome rows
    id_map: list[Any] = field(default_factory=list)  # audit IdMapEntry rows
    counts: Counter = field(default_factory=Counter)


@dataclass
class LoadPlan:
    """What :meth:`Loader.execute` has to send: new documents, and existing ones whose payload changed."""

    creates: list[Package] = field(default_factory=list)
    updates: list[tuple[Package, Target]] = field(default_factory=list)
    renumbers: list[tuple[Package, Target]] = field(default_factory=list)  # updates whose number changed
    verify: list[tuple[Package, Target]] = field(default_factory=list)  # unchanged per id map; presence checked
    owners: dict[str, Any] = field(default_factory=dict)  # number key → id map entry holding it (plan time)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_duplicate_number(row: Any, number_key: str) -> bool:
    return any(
        (err.field_name or "").lower() in (number_key.lower(), "fbillno", "fnumber")
        and any(m in err.message for m in DUPLICATE_MARKERS)
        for err in row.errors
    )


class Loader(SaveChecks):
    """Writes one run's packages for one flow. Collects outcomes; the caller persists them.

    :meth:`plan` reads the store (the id map), :meth:`execute` only talks to K3Cloud; ``run`` does both.
    """

    def __init__(self, spec: FlowSpec, hook: Any, store: Any, run_pk: int, options: dict[str, Any], *,
                 pk_key: str, number_key: str, unaudit_before_update: bool, verify_presence: bool = False,
                 on_target_missing: str = "recreate", on_renumber: str = "renumber",
                 claimed: dict[str, tuple[str, str]] | None = None, org_filter: tuple[str, str] | None = None,
                 reference_fields: Sequence[str] = ()) -> None:
        """:param verify_presence: check in K3Cloud that documents the id map calls unchanged still exist.
        :param claimed: number key → (source id, raw number) of the records this run already planned; shared
            by the loaders of one run so a collision across chunks is found too.
        :param org_filter: (field key, org number) of the org the flow writes to (see
            :func:`.base_data.org_filter`): base data allocated to several orgs is a row per use org, and a
            lookup by number must take this org's row.
        :param reference_fields: header reference keys to read back after a save that K3Cloud did not verify
            (no ``IsVerifyBaseDataField``): a reference it left empty makes the record ``reported``.
        """
        self.spec = spec
        self.hook = hook
        self.store = store
        self.run_pk = run_pk
        self.options = options
        self.pk_key = pk_key
        self.number_key = number_key
        self.unaudit_before_update = unaudit_before_update
        self.verify_presence = verify_presence
        self.on_target_missing = on_target_missing
        self.on_renumber = on_renumber
        self.claimed = {} if claimed is None else claimed
        self.org_filter = org_filter
        self.reference_fields = list(reference_fields)
        self.result = LoadResult()
        self._owners: dict[str, Any] = {}
        self._created_reason: dict[str, str] = {}  # source id → why a create happens (a vanished document)

    # ---- bookkeeping ------------------------------------------------------------------------------
    def _outcome(self, pkg: Package, outcome: str, *, target: Target | None = None, reason: str | None = None,
                 attempt: int = 1, error: BaseException | str | None = None, request: Any = None,
                 response: Any = None) -> None:
        from fxiaoke_k3cloud.audit import RecordOutcome

        if is_config_error(error):  # set-up (login, permission, form), not data: fail the step once, no retries
            raise error  # type: ignore[misc]
        self.result.counts[outcome] += 1
        self.result.outcomes.append(RecordOutcome(
            flow=self.spec.name, entity=self.spec.entity, source_id=pkg.source_id, source_name=pkg.source_name,
            outcome=outcome, reason=reason, target_id=target.id if target else None,
            target_number=target.number if target else pkg.number, payload_hash=pkg.payload_hash,
            attempt=attempt, error_class=error, request=request, response=response,
        ))

    def _link(self, pkg: Package, target: Target, *, synced: bool) -> None:
        from fxiaoke_k3cloud.audit import IdMapEntry

        self.result.id_map.append(IdMapEntry(
            source_id=pkg.source_id, target_id=target.id, target_number=target.number,
            payload_hash=pkg.payload_hash if synced else None, source_modified_ms=pkg.modified_ms, run=self.run_pk,
        ))

    # ---- reading back -------------------------------------------------------------------------------
    def find_by_numbers(self, numbers: Sequence[str]) -> dict[str, Target]:
        """K3Cloud documents with these numbers (after duplicates and unknown outcomes), keyed by
        :func:`number_key`: K3Cloud matches ``so000001`` to ``SO000001``, so must we."""
        from fxiaoke_k3cloud.hooks.k3cloud_filter import F

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
        from fxiaoke_k3cloud.hooks.k3cloud_filter import F

        found: dict[str, Target] = {}
        wanted = [_as_pk(i) for i in dict.fromkeys(i for i in ids if i)]
        for chunk in chunks(wanted, PRESENCE_PAGE):
            flt = F(self.pk_key).isin(list(chunk))
            for page in self.hook.execute_bill_query(self.spec.target_form, [self.pk_key, self.number_key],
                                                     filter=flt, page_size=PRESENCE_PAGE):
                for row in page:
                    found[str(row[self.pk_key])] = Target(str(row[self.pk_key]), str(row[self.number_key]))
        return found

    # ---- writing --------------------------------------------------------------------------------------
    def run(self, packages: list[Package]) -> LoadResult:
        """Plan and execute in one go (sequential)."""
        return self.execute(self.plan(packages))

    def plan(self, packages: list[Package]) -> LoadPlan:
        """Database only: the id map decides create, update, renumber or unchanged (recorded here, no API call).

        Numbers are compared by :func:`number_key` with those of the records this run planned before and with
        the id map: a number another CRM record holds rejects this record (both named); the id map links by
        K3Cloud id, so a linked record whose number changed is a renumber, not a new document.
        """
        known = self.store.get_id_map(self.spec.entity, [p.source_id for p in packages])
        owners = self.store.get_id_map_by_number_keys(self.spec.entity, [p.number for p in packages])
        plan = LoadPlan(owners=owners)
        self._owners = owners
        # Records of this batch that move away from a number they hold: that number is free once they ran.
        leaving = {sid: number_key(e.target_number) for sid, e in known.items()}
        new_keys = {p.source_id: number_key(p.number) for p in packages}
        for pkg in packages:
            key = new_keys[pkg.source_id]
            entry = known.get(pkg.source_id)
            first = self.claimed.get(key)
            if first is not None and first[0] != pkg.source_id:
                self._collision(pkg, first[0], first[1], "planned earlier in this run")
                continue
            owner = owners.get(key)
            if owner is not None and owner.source_id != pkg.source_id:
                freed = (self.on_renumber == "renumber" and owner.source_id in new_keys
                         and new_keys[owner.source_id] != leaving.get(owner.source_id))
                if not freed:
                    self._collision(pkg, owner.source_id, owner.target_number,
                                    f"linked to K3Cloud {self.spec.target_form} id {owner.target_id}")
                    continue
            self.claimed[key] = (pkg.source_id, pkg.number)
            if entry is None:
                plan.creates.append(pkg)
                continue
            target = Target(entry.target_id, entry.target_number)
            if number_key(entry.target_number) != key:
                if self.on_renumber == "report":
                    self._outcome(pkg, "reported", target=target, error="Renumbered",
                                  reason=f"the CRM changed the number of {self._label(pkg)} from "
                                         f"{entry.target_number!r} to {pkg.number!r}; K3Cloud "
                                         f"{self.spec.target_form} id {entry.target_id} keeps {entry.target_number!r} "
                                         "(on_renumber: report) — change the number in K3Cloud too, or set it "
                                         "back in the CRM, or set target.on_renumber: renumber")
                    continue
                plan.renumbers.append((pkg, target))
            elif entry.payload_hash != pkg.payload_hash:
                plan.updates.append((pkg, target))
            elif self.verify_presence:
                plan.verify.append((pkg, target))
            else:
                self._outcome(pkg, "unchanged", target=target, reason="mapped payload unchanged since the last sync")
        return plan

    def _label(self, pkg: Package) -> str:
        return f"CRM record {pkg.source_id}" + (f" ({pkg.source_name})" if pkg.source_name else "")

    def _collision(self, pkg: Package, other_id: str, other_number: Any, where: str) -> None:
        self._outcome(pkg, "rejected", error="NumberCollision",
                      reason=f"number collision: {self._label(pkg)} has number {pkg.number!r}, which K3Cloud takes "
                             f"for {other_number!r} of CRM record {other_id} ({where}); K3Cloud compares numbers "
                             "without regard to case, full/half width and surrounding blanks. Not written, and "
                             f"CRM record {other_id}'s document is not touched — give one of the two another "
                             "number in the CRM")

    def execute(self, plan: LoadPlan) -> LoadResult:
        """K3Cloud only (no store access): presence check, renumbers, creates, then updates; outcomes go to
        ``self.result``."""
        self._owners = plan.owners
        creates = list(plan.creates)
        renumbers, updates = self._check_presence(plan, creates)
        if not self.unaudit_before_update:
            renumbers = self._skip_audited(renumbers)
        for chunk in chunks(renumbers, self.spec.batch_size):  # first: the numbers they free may be reused below
            self._update_chunk(list(chunk))
        for chunk in chunks(creates, self.spec.batch_size):
            updates.extend(self._create_chunk(list(chunk)))
        if not self.unaudit_before_update:
            updates = self._skip_audited(updates)
        for chunk in chunks(updates, self.spec.batch_size):
            self._update_chunk(list(chunk))
        if self.reference_fields:
            self._check_references(plan)
        return self.result

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
        try:
            present = self.find_by_ids([t.id for _, t in linked if t.id])
        except (ApiError, TransportError) as exc:
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
        from fxiaoke_k3cloud.flows.orders import audited_targets

        numbers = [t.number for _, t in updates if t.number]
        locked = audited_targets(self.hook, self.spec.target_form, numbers) if numbers else {}
        keep = []
        for pkg, target in updates:
            status = locked.get(number_key(target.number or ""))
            if status is None:
                keep.append((pkg, target))
                continue
            state = "audited" if status == "C" else "submitted for approval"
            self._outcome(pkg, "reported", target=target, error="AuditedInK3Cloud",
                          reason=f"conflict: the CRM changed {pkg.source_name or pkg.source_id} but K3Cloud "
                                 f"{self.spec.target_form} {target.number} is {state}; not overwritten — "
                                 "un-audit it in K3Cloud to let the change through, or change it there")
        return keep

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
            self._unaudit([t.number for _, t in chunk if t.number])
        models = [{self.pk_key: _as_pk(t.id), **p.update_model} for p, t in chunk]
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


def _as_pk(value: str | None) -> int | str:
    try:
        return int(value)  # K3Cloud ids are ints on the wire
    except (TypeError, ValueError):
        return value or 0


HEARTBEAT_EVERY_S = 30.0  # sync_run.heartbeat_at while a long load runs
LOAD_CHUNK = 250  # packages read, written and audited at a time (5 BatchSave calls of 50)
PRESENCE_PAGE = 2000  # ids per presence-check ExecuteBillQuery (one page: K3Cloud's page limit)


def new_loader(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any, *, verify_presence: bool = False,
               claimed: dict[str, tuple[str, str]] | None = None) -> Loader:
    """A Loader (with its own LoadResult) using the mapping's save options and target policies."""
    options = mapping.save_options.as_dict()
    return Loader(spec, hook, store, run_pk, options, pk_key=mapping.target.pk, number_key=mapping.target.number,
                  unaudit_before_update=bool(options.get("IsAutoSubmitAndAudit")), verify_presence=verify_presence,
                  on_target_missing=mapping.target.on_target_missing, on_renumber=mapping.target.on_renumber,
                  claimed=claimed, org_filter=org_filter(mapping), reference_fields=reference_fields(mapping))


def persist(spec: FlowSpec, store: Any, run_pk: int, result: LoadResult) -> Counter:
    """Store a LoadResult: the id map, the outcomes, then release parked records; returns its counts."""
    # Id map first: if recording outcomes failed after it, a re-run would find the records and skip them
    # as unchanged; the other way round it would create duplicates.
    if result.id_map:
        _upsert_id_map(spec, store, result)
    record_outcomes_isolated(spec, store, run_pk, result.outcomes)
    landed = [o.source_id for o in result.outcomes if o.outcome in ("created", "updated", "unchanged")]
    if landed:
        store.release(spec.entity, landed)  # a parked record whose dependency arrived
    return result.counts


def _upsert_id_map(spec: FlowSpec, store: Any, result: LoadResult) -> None:
    """Upsert the id map; should a number still collide (another writer got there first), only the colliding
    records get an outcome naming both records — the run goes on (nothing stops a flow)."""
    from fxiaoke_k3cloud.audit import IdMapConflictError, RecordOutcome

    try:
        store.upsert_id_map(spec.entity, result.id_map)
        return
    except IdMapConflictError:
        log.warning("%s: an id map number collides; writing the id map entry by entry", spec.name)
    for entry in result.id_map:
        try:
            store.upsert_id_map(spec.entity, [entry])
        except IdMapConflictError:
            owner = store.get_id_map_by_number_keys(spec.entity, [entry.target_number]).get(
                number_key(entry.target_number))
            other = f"CRM record {owner.source_id} (number {owner.target_number!r}, K3Cloud id {owner.target_id})" \
                if owner is not None else "another CRM record"
            result.counts["failed"] += 1
            result.outcomes.append(RecordOutcome(
                flow=spec.name, entity=spec.entity, source_id=entry.source_id, outcome="failed",
                error_class="NumberCollision", target_id=entry.target_id, target_number=entry.target_number,
                reason=f"number collision: K3Cloud {spec.target_form} id {entry.target_id} number "
                       f"{entry.target_number!r} was written for CRM record {entry.source_id}, but the id map "
                       f"links that number to {other}; not linked — check both in K3Cloud and give one of them "
                       "another number in the CRM"))


def record_outcomes_isolated(spec: FlowSpec, store: Any, run_pk: int, outcomes: Sequence[Any]) -> None:
    """Record outcomes in one transaction; if the store refuses the batch, row by row, so one record's odd value
    cannot cost the chunk's outcomes (a lost connection is not a refusal: it is raised). A row still refused is stored without its name and excerpts, its reason
    saying why (the outcome itself, and the id map saved before, stay true)."""
    import dataclasses

    import sqlalchemy as sa

    try:
        store.record_outcomes(run_pk, outcomes)
        return
    except (sa.exc.OperationalError, sa.exc.InterfaceError):
        raise  # the database is away, not refusing a value: the task fails and is retried
    except Exception as exc:  # noqa: BLE001 - any refusal of one value must not stop the flow
        log.warning("%s: the audit store refused a batch of %d outcomes (%s: %s); recording them one by one",
                    spec.name, len(outcomes), type(exc).__name__, exc)
    for row in outcomes:
        try:
            store.record_outcomes(run_pk, [row])
        except Exception as exc:  # noqa: BLE001
            note = (f"the audit store refused this record's full outcome ({type(exc).__name__}: {str(exc)[:200]}); "
                    "stored without name and request/response")
            store.record_outcomes(run_pk, [dataclasses.replace(
                row, source_name=None, request=None, response=None,
                reason=f"{spec.source_object} {row.source_id!r}: {row.reason or row.outcome}; {note}")])


def load_packages(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any,
                  packages: list[Package]) -> Counter:
    """Write packages with the mapping's save options; persist the id map, the outcomes and releases.

    Each record is claimed first (see :mod:`fxiaoke_k3cloud.audit.claims`): one that another run is writing
    right now is written after that run released it, from the id map as that run left it.
    """
    from fxiaoke_k3cloud.flows.claims import Claims

    claims = Claims(store, spec.entity, run_pk)
    counts: Counter = Counter()
    try:
        mine, deferred = claims.take([p.source_id for p in packages])
        if mine:
            ids = set(mine)
            counts.update(persist(spec, store, run_pk,
                                  new_loader(spec, store, hook, run_pk, mapping).run([p for p in packages if p.source_id in ids])))
            claims.release(mine)
        if deferred:
            counts.update(_load_deferred(spec, store, hook, run_pk, mapping, claims,
                                         [p for p in packages if p.source_id in deferred]))
    finally:
        claims.release_all()
    return counts


def _load_deferred(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any, claims: Any,
                   packages: list[Package], **loader_options: Any) -> Counter:
    """Packages another run was writing: wait for its claims (holding none), then plan them afresh."""
    if not packages:
        return Counter()
    log.info("%s: %s record(s) are being written by another run; waiting for it", spec.name, len(packages))
    mine, held = claims.wait([p.source_id for p in packages])
    counts: Counter = Counter()
    if mine:
        ids = set(mine)
        loader = new_loader(spec, store, hook, run_pk, mapping, **loader_options)
        counts.update(persist(spec, store, run_pk, loader.run([p for p in packages if p.source_id in ids])))
        claims.release(mine)
    if held:
        counts.update(persist(spec, store, run_pk, claims.still_held(spec, [p for p in packages if p.source_id in held], held)))
    return counts


def reads_everything(store: Any, run_pk: int) -> bool:
    """Whether the run's window starts at the epoch (a full resync or a first sync): such a run checks that
    what the id map calls unchanged still exists in K3Cloud."""
    import sqlalchemy as sa

    from fxiaoke_k3cloud.audit.schema import sync_run
    from fxiaoke_k3cloud.flows.window import EPOCH

    with store.engine.connect() as conn:
        start = conn.execute(sa.select(sync_run.c.window_start).where(sync_run.c.id == run_pk)).scalar_one_or_none()
    if start is None:
        return False
    if start.tzinfo is None:
        start = start.replace(tzinfo=EPOCH.tzinfo)
    return start <= EPOCH


def load_staged(spec: FlowSpec, store: Any, hook: Any, run_pk: int, *, dry_run: bool = False,
                void_action: str = "report", verify_presence: bool | None = None) -> dict[str, int]:
    """Load the run's staged packages chunk by chunk; persist outcomes and the id map per chunk.

    Then the records voided or deleted in the CRM get the mapping's ``on_source_void`` / ``on_source_delete``
    (see :mod:`fxiaoke_k3cloud.flows.source_changes`).

    :param verify_presence: check that documents the id map calls unchanged still exist in K3Cloud (re-create
        or report the vanished ones); default: on runs whose window starts at the epoch (full resync, first sync).
    :param void_action: the run's param: ``close`` applies ``on_source_void: close`` for this run (void an
        unaudited K3Cloud document, close an audited one); ``report`` keeps the mapping's choice.
    """
    from fxiaoke_k3cloud.flows.stage import Stage
    from fxiaoke_k3cloud.mapping import load_mapping

    mapping = load_mapping(spec.mapping_path)
    counts: Counter = Counter()
    staged = Stage(store).chunks(run_pk, "package", LOAD_CHUNK)
    if dry_run:
        for rows in staged:
            packages = [Package.from_stage(row) for row in rows]
            counts.update(_dry_run(spec, store, run_pk, mapping, packages, already=counts["skipped"]))
    else:
        if verify_presence is None:
            verify_presence = reads_everything(store, run_pk)
        counts.update(_load_overlapped(spec, store, hook, run_pk, mapping, staged, verify_presence=verify_presence))
    if not dry_run:
        from fxiaoke_k3cloud.flows.entry_rows import record_entry_ids
        from fxiaoke_k3cloud.flows.source_changes import apply_staged_changes

        record_entry_ids(spec, store, hook, run_pk, mapping)
        counts.update(apply_staged_changes(spec, store, hook, run_pk, mapping, void_action=void_action))
    log.info("%s: %s", spec.name, dict(counts))
    return dict(counts)


def _load_overlapped(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any,
                     staged: Iterable[list[dict[str, Any]]], *, verify_presence: bool = False) -> Counter:
    """Execute chunk k in one worker thread while the main thread plans chunk k+1 and persists chunk k-1.

    Only the worker uses the hook (one ``execute`` at a time: one K3Cloud request in flight); only the main
    thread uses the store. A chunk whose calls finished is always persisted, also when a later step fails.
    """
    from fxiaoke_k3cloud.flows.claims import Claims

    counts: Counter = Counter()
    claims = Claims(store, spec.entity, run_pk)
    deferred: list[Package] = []  # records another run holds: written at the end, holding no claim then
    claimed: dict[str, tuple[str, str]] = {}  # numbers planned this run, shared by the chunks (main thread only)
    pending: Future[LoadResult] | None = None  # the chunk whose calls are in flight
    pending_ids: list[str] = []
    done: LoadResult | None = None  # a chunk whose calls finished, not persisted yet
    done_ids: list[str] = []
    beat = time.monotonic()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"load-{spec.name}") as pool:
        try:
            for rows in staged:
                packages = [Package.from_stage(row) for row in rows]
                mine, held = claims.take([p.source_id for p in packages])
                deferred += [p for p in packages if p.source_id in held]
                ids = set(mine)
                loader = new_loader(spec, store, hook, run_pk, mapping, verify_presence=verify_presence,
                                    claimed=claimed)
                plan = loader.plan([p for p in packages if p.source_id in ids])  # overlaps the calls in flight
                previous, pending = pending, None
                if previous is not None:
                    done, done_ids = previous.result(), pending_ids  # re-raises what execute raised
                pending, pending_ids = pool.submit(loader.execute, plan), mine
                if done is not None:
                    result, done = done, None
                    counts.update(persist(spec, store, run_pk, result))  # overlaps this chunk's calls
                    claims.release(done_ids)
                if time.monotonic() - beat > HEARTBEAT_EVERY_S:
                    store.heartbeat(run_pk)
                    beat = time.monotonic()
            last, pending = pending, None
            if last is not None:
                counts.update(persist(spec, store, run_pk, last.result()))
                claims.release(pending_ids)
            counts.update(_load_deferred(spec, store, hook, run_pk, mapping, claims, deferred,
                                         verify_presence=verify_presence, claimed=claimed))
        except BaseException as exc:
            log.error("%s: load failed (%s: %s); persisting the chunks whose K3Cloud calls finished, "
                      "records not persisted are retried by the next run", spec.name, type(exc).__name__, exc)
            for finished in ([done] if done is not None else []) + ([pending] if pending is not None else []):
                _persist_after_error(spec, store, run_pk, finished)
            raise
        finally:
            claims.release_all()
    return counts


def _persist_after_error(spec: FlowSpec, store: Any, run_pk: int, item: LoadResult | Future[LoadResult]) -> None:
    """After an error: persist a finished chunk (waiting for it if in flight); log, not raise, its own error."""
    try:
        persist(spec, store, run_pk, item.result() if isinstance(item, Future) else item)
    except Exception:
        log.exception("%s: a chunk could not be completed or persisted after the load failed; "
                      "its records are retried by the next run", spec.name)


def close_voided(spec: FlowSpec, store: Any, hook: Any, run_pk: int, voided: list[dict[str, Any]]) -> Counter:
    """Void (Cancel) unaudited and close (CloseBill) audited K3Cloud documents whose CRM record was voided."""
    from fxiaoke_k3cloud.flows.source_changes import apply_source_actions

    return apply_source_actions(spec, store, hook, run_pk, voided, action="close", cause="voided")


def _dry_run(spec: FlowSpec, store: Any, run_pk: int, mapping: Any, packages: list[Package], *,
             already: int) -> Counter:
    """Show what would be sent (the first packages in the log, all of them in the audit store)."""
    import json

    from fxiaoke_k3cloud.audit import RecordOutcome, redact

    known = store.get_id_map(spec.entity, [p.source_id for p in packages])
    rows = []
    for pkg in packages:
        entry = known.get(pkg.source_id)
        action = ("unchanged" if entry and entry.payload_hash == pkg.payload_hash
                  else "update" if entry else "create")
        body = pkg.model if action == "create" else {mapping.target.pk: entry.target_id, **pkg.update_model}
        if already + len(rows) < DRY_RUN_LOG_LIMIT:
            log.info("dry run: would %s %s %s: %s", action, spec.target_form, pkg.number,
                     json.dumps(redact(body), ensure_ascii=False))
        rows.append(RecordOutcome(flow=spec.name, entity=spec.entity, source_id=pkg.source_id,
                                  source_name=pkg.source_name, outcome="skipped", target_number=pkg.number,
                                  payload_hash=pkg.payload_hash, reason=f"dry run: would {action}", request=body))
    if already < DRY_RUN_LOG_LIMIT <= already + len(rows):
        log.info("dry run: further packages are not logged; every one is in the audit store (request_excerpt)")
    store.record_outcomes(run_pk, rows)
    return Counter({"skipped": len(rows)})
