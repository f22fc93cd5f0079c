"""Load: idempotent batched writes to K3Cloud, every outcome audited.

For each staged package (one CRM record mapped to a K3Cloud model):

* the id map decides create vs update; an unchanged payload hash means no API call at all;
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
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from fxiaoke_k3cloud.errors import ApiError, OutcomeUnknownError, SyncError, TransportError
from fxiaoke_k3cloud.flows.specs import FlowSpec

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


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_duplicate_number(row: Any, number_key: str) -> bool:
    return any(
        (err.field_name or "").lower() in (number_key.lower(), "fbillno", "fnumber")
        and any(m in err.message for m in DUPLICATE_MARKERS)
        for err in row.errors
    )


class Loader:
    """Writes one run's packages for one flow. Collects outcomes; the caller persists them.

    :meth:`plan` reads the store (the id map), :meth:`execute` only talks to K3Cloud; ``run`` does both.
    """

    def __init__(self, spec: FlowSpec, hook: Any, store: Any, run_pk: int, options: dict[str, Any], *,
                 pk_key: str, number_key: str, unaudit_before_update: bool) -> None:
        self.spec = spec
        self.hook = hook
        self.store = store
        self.run_pk = run_pk
        self.options = options
        self.pk_key = pk_key
        self.number_key = number_key
        self.unaudit_before_update = unaudit_before_update
        self.result = LoadResult()

    # ---- bookkeeping ------------------------------------------------------------------------------
    def _outcome(self, pkg: Package, outcome: str, *, target: Target | None = None, reason: str | None = None,
                 attempt: int = 1, error: BaseException | str | None = None, request: Any = None,
                 response: Any = None) -> None:
        from fxiaoke_k3cloud.audit import RecordOutcome

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
        """K3Cloud documents with these numbers (used after duplicates and unknown outcomes)."""
        from fxiaoke_k3cloud.hooks.k3cloud_filter import F

        found: dict[str, Target] = {}
        for chunk in chunks(list(numbers), 200):
            flt = F(self.number_key).isin(list(chunk))
            for page in self.hook.execute_bill_query(self.spec.target_form, [self.pk_key, self.number_key], filter=flt):
                for row in page:
                    found[str(row[self.number_key])] = Target(str(row[self.pk_key]), str(row[self.number_key]))
        return found

    # ---- writing --------------------------------------------------------------------------------------
    def run(self, packages: list[Package]) -> LoadResult:
        """Plan and execute in one go (sequential)."""
        return self.execute(self.plan(packages))

    def plan(self, packages: list[Package]) -> LoadPlan:
        """Database only: the id map decides create, update or unchanged (recorded here, no API call)."""
        known = self.store.get_id_map(self.spec.entity, [p.source_id for p in packages])
        plan = LoadPlan()
        for pkg in packages:
            entry = known.get(pkg.source_id)
            if entry is None:
                plan.creates.append(pkg)
            elif entry.payload_hash == pkg.payload_hash:
                self._outcome(pkg, "unchanged", target=Target(entry.target_id, entry.target_number),
                              reason="mapped payload unchanged since the last sync")
            else:
                plan.updates.append((pkg, Target(entry.target_id, entry.target_number)))
        return plan

    def execute(self, plan: LoadPlan) -> LoadResult:
        """K3Cloud only (no store access): create chunks, then update chunks; outcomes go to ``self.result``."""
        updates = list(plan.updates)
        for chunk in chunks(plan.creates, self.spec.batch_size):
            updates.extend(self._create_chunk(list(chunk)))
        if not self.unaudit_before_update:
            updates = self._skip_audited(updates)
        for chunk in chunks(updates, self.spec.batch_size):
            self._update_chunk(list(chunk))
        return self.result

    def _skip_audited(self, updates: list[tuple[Package, Target]]) -> list[tuple[Package, Target]]:
        """Documents a person submitted or audited in K3Cloud are not overwritten: the change is a conflict."""
        from fxiaoke_k3cloud.flows.orders import audited_targets

        numbers = [t.number for _, t in updates if t.number]
        locked = audited_targets(self.hook, self.spec.target_form, numbers) if numbers else {}
        keep = []
        for pkg, target in updates:
            status = locked.get(target.number or "")
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
        for pkg, row in zip(chunk, rows):
            if row.ok:
                target = Target(str(row.id), row.number or pkg.number)
                self._outcome(pkg, "created", target=target, attempt=attempt)
                self._link(pkg, target, synced=True)
            elif is_duplicate_number(row, self.number_key):
                duplicates.append(pkg)
            else:
                self._fail_row(pkg, row, attempt, request=pkg.model)
        if duplicates:
            found = self.find_by_numbers([p.number for p in duplicates])
            for pkg in duplicates:
                target = found.get(pkg.number)
                if target is None:
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
        landed = [p for p in chunk if p.number in found]
        for pkg in landed:
            target = found[pkg.number]
            self._outcome(pkg, "created", target=target, attempt=attempt,
                          reason="write timed out; found in K3Cloud by number on read-back")
            self._link(pkg, target, synced=True)
        rest = [p for p in chunk if p.number not in found]
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
        for (pkg, target), row, model in zip(chunk, rows, models):
            if row.ok:
                self._outcome(pkg, "updated", target=target, attempt=attempt)
                self._link(pkg, target, synced=True)
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


LOAD_CHUNK = 250  # packages read, written and audited at a time (5 BatchSave calls of 50)


def new_loader(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any) -> Loader:
    """A Loader (with its own LoadResult) using the mapping's save options."""
    options = mapping.save_options.as_dict()
    return Loader(spec, hook, store, run_pk, options, pk_key=mapping.target.pk, number_key=mapping.target.number,
                  unaudit_before_update=bool(options.get("IsAutoSubmitAndAudit")))


def persist(spec: FlowSpec, store: Any, run_pk: int, result: LoadResult) -> Counter:
    """Store a LoadResult: the id map, the outcomes, then release parked records; returns its counts."""
    # Id map first: if recording outcomes failed after it, a re-run would find the records and skip them
    # as unchanged; the other way round it would create duplicates.
    if result.id_map:
        store.upsert_id_map(spec.entity, result.id_map)
    record_outcomes_isolated(spec, store, run_pk, result.outcomes)
    landed = [o.source_id for o in result.outcomes if o.outcome in ("created", "updated", "unchanged")]
    if landed:
        store.release(spec.entity, landed)  # a parked record whose dependency arrived
    return result.counts


def record_outcomes_isolated(spec: FlowSpec, store: Any, run_pk: int, outcomes: Sequence[Any]) -> None:
    """Record outcomes in one transaction; if the store refuses the batch, row by row, so one record's odd value
    cannot cost the chunk's outcomes. A row still refused is stored without its name and excerpts, its reason
    saying why (the outcome itself, and the id map saved before, stay true)."""
    import dataclasses

    try:
        store.record_outcomes(run_pk, outcomes)
        return
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
    """Write packages with the mapping's save options; persist the id map, the outcomes and releases."""
    result = new_loader(spec, store, hook, run_pk, mapping).run(packages)
    return persist(spec, store, run_pk, result)


def load_staged(spec: FlowSpec, store: Any, hook: Any, run_pk: int, *, dry_run: bool = False,
                void_action: str = "report") -> dict[str, int]:
    """Load the run's staged packages chunk by chunk; persist outcomes and the id map per chunk.

    :param void_action: for records voided in the CRM after they reached K3Cloud: ``report`` (the transform
        already reported them) or ``close`` (void an unaudited K3Cloud document, close an audited one).
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
        counts.update(_load_overlapped(spec, store, hook, run_pk, mapping, staged))
    if void_action == "close" and not dry_run:
        counts.update(close_voided(spec, store, hook, run_pk, list(Stage(store).get(run_pk, "void"))))
    log.info("%s: %s", spec.name, dict(counts))
    return dict(counts)


def _load_overlapped(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any,
                     staged: Iterable[list[dict[str, Any]]]) -> Counter:
    """Execute chunk k in one worker thread while the main thread plans chunk k+1 and persists chunk k-1.

    Only the worker uses the hook (one ``execute`` at a time: one K3Cloud request in flight); only the main
    thread uses the store. A chunk whose calls finished is always persisted, also when a later step fails.
    """
    counts: Counter = Counter()
    pending: Future[LoadResult] | None = None  # the chunk whose calls are in flight
    done: LoadResult | None = None  # a chunk whose calls finished, not persisted yet
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"load-{spec.name}") as pool:
        try:
            for rows in staged:
                loader = new_loader(spec, store, hook, run_pk, mapping)
                plan = loader.plan([Package.from_stage(row) for row in rows])  # overlaps the calls in flight
                previous, pending = pending, None
                if previous is not None:
                    done = previous.result()  # re-raises what execute raised
                pending = pool.submit(loader.execute, plan)
                if done is not None:
                    result, done = done, None
                    counts.update(persist(spec, store, run_pk, result))  # overlaps this chunk's calls
            last, pending = pending, None
            if last is not None:
                counts.update(persist(spec, store, run_pk, last.result()))
        except BaseException as exc:
            log.error("%s: load failed (%s: %s); persisting the chunks whose K3Cloud calls finished, "
                      "records not persisted are retried by the next run", spec.name, type(exc).__name__, exc)
            for finished in ([done] if done is not None else []) + ([pending] if pending is not None else []):
                _persist_after_error(spec, store, run_pk, finished)
            raise
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
    from fxiaoke_k3cloud.audit import RecordOutcome
    from fxiaoke_k3cloud.hooks.k3cloud_filter import F

    if not voided:
        return Counter()
    numbers = [v["number"] for v in voided if v.get("number")]
    state: dict[str, dict[str, Any]] = {}
    for chunk in chunks(numbers, 500):
        keys = ["FID", "FBillNo", "FDocumentStatus", "FCloseStatus", "FCancelStatus"]
        for page in hook.execute_bill_query(spec.target_form, keys, filter=F("FBillNo").isin(list(chunk))):
            for row in page:
                state[str(row["FBillNo"])] = row
    rows, counts = [], Counter()

    def record(v: dict[str, Any], outcome: str, reason: str, error: Any = None) -> None:
        counts[outcome] += 1
        rows.append(RecordOutcome(flow=spec.name, entity=spec.entity, source_id=v["source_id"],
                                  source_name=v.get("source_name"), outcome=outcome, reason=reason,
                                  target_number=v.get("number"), error_class=error))

    for v in voided:
        doc = state.get(str(v.get("number")))
        label = f"{spec.target_form} {v.get('number')}"
        if doc is None:
            record(v, "reported", f"voided in the CRM; {label} is not in K3Cloud any more")
        elif doc.get("FCancelStatus") == "B" or doc.get("FCloseStatus") == "B":
            record(v, "unchanged", f"voided in the CRM; {label} is already voided/closed")
        elif doc.get("FDocumentStatus") == "B":
            record(v, "reported", f"voided in the CRM; {label} is in approval: withdraw it in K3Cloud, then void it")
        else:
            op = "CloseBill" if doc.get("FDocumentStatus") == "C" else "Cancel"
            try:
                hook.execute_operation(spec.target_form, op, numbers=[v["number"]])
            except SyncError as exc:
                record(v, "failed", f"voided in the CRM; {op} of {label} failed: {exc}", exc)
                continue
            done = "closed" if op == "CloseBill" else "voided"
            record(v, "updated", f"voided in the CRM; {label} {done} in K3Cloud ({op})")
    store.record_outcomes(run_pk, rows)
    return counts


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
