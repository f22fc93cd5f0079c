"""Load: idempotent batched writes to K3Cloud, every outcome audited, up to N requests in flight.

For each staged package (one CRM record mapped to a K3Cloud model) the pipeline is:

1. **claim** the record (:mod:`.claims`): one that another run is writing now is written after that run is
   done, from the id map it left — never twice;
2. **plan** (:mod:`.load_plan`, database only): the id map decides create vs update; an unchanged payload hash
   means no API call at all — except on runs that read everything (full resync, first sync), where what the id
   map calls unchanged is checked for presence in K3Cloud; numbers compare as K3Cloud compares them and a
   number another CRM record holds rejects the record naming both;
3. **write** (:mod:`.load_write`, :mod:`.load_read`, K3Cloud only): presence check, renumbers, creates
   (``BatchSave``), updates (``NeedUpDateFields``, un-audit first when the form needs it); duplicates and
   unknown outcomes are read back by number before anything is sent again;
4. **persist** (:mod:`.load_persist`): the id map, then the outcomes, then the claims are released.

Staged packages go in chunks of ``LOAD_CHUNK``. Up to N chunks' K3Cloud calls run at once, each in its own
writer thread (:mod:`.load_inflight`), while the main thread plans the next chunk and persists finished ones;
N is the K3Cloud connection's ``max_in_flight`` (default 4), never more than the load task's slots in the
``k3cloud_api`` pool (``dag_factory``: the load task holds ``LOAD_POOL_SLOTS``), so the pool caps the requests in
flight across all tasks. The main thread beats the run's heartbeat and renews its claims while it waits.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from typing import Any, Iterable

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import RecordOutcome, redact
from fxiaoke_k3cloud.audit.schema import sync_run
from fxiaoke_k3cloud.flows.base_data import org_filter, reference_fields
from fxiaoke_k3cloud.flows.claims import Claims
from fxiaoke_k3cloud.flows.load_inflight import HEARTBEAT_EVERY_S, Writers, in_flight
from fxiaoke_k3cloud.flows.load_persist import persist, record_outcomes_isolated
from fxiaoke_k3cloud.flows.load_plan import LoadPlan, LoadResult, Package, Target, chunks, is_duplicate_number
from fxiaoke_k3cloud.flows.load_write import Loader
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.stream import Remainder
from fxiaoke_k3cloud.flows.window import EPOCH

__all__ = ["HEARTBEAT_EVERY_S", "LOAD_CHUNK", "LoadPlan", "LoadResult", "Loader", "Package", "Target", "chunks",
           "close_voided", "is_duplicate_number", "load_packages", "load_staged", "new_loader", "persist",
           "record_outcomes_isolated"]

log = logging.getLogger(__name__)

DRY_RUN_LOG_LIMIT = 50  # packages shown in the task log; all of them are in the audit store
LOAD_CHUNK = 100  # packages planned, written and persisted at a time (2 BatchSave calls of 50); N chunks in flight


def new_loader(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any, *, verify_presence: bool = False,
               claimed: dict[str, tuple[str, str]] | None = None) -> Loader:
    """A Loader (with its own LoadResult) using the mapping's save options and target policies."""
    options = mapping.save_options.as_dict()
    return Loader(spec, hook, store, run_pk, options, pk_key=mapping.target.pk, number_key=mapping.target.number,
                  unaudit_before_update=bool(options.get("IsAutoSubmitAndAudit")), verify_presence=verify_presence,
                  on_target_missing=mapping.target.on_target_missing, on_renumber=mapping.target.on_renumber,
                  claimed=claimed, org_filter=org_filter(mapping), reference_fields=reference_fields(mapping))


def load_packages(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any,
                  packages: list[Package]) -> Counter:
    """Write packages with the mapping's save options, chunk by chunk through :class:`Writers` (heartbeat and
    claim renewal included; in flight: the connection's figure capped by the task's pool slots — one for the
    orders flow's customers step); persist the id map, the outcomes and releases.

    Each record is claimed first (see :mod:`fxiaoke_k3cloud.audit.claims`): one that another run is writing
    right now is written after that run released it, from the id map as that run left it.
    """
    claims = Claims(store, spec.entity, run_pk)
    claimed: dict[str, tuple[str, str]] = {}
    try:
        mine, deferred = claims.take([p.source_id for p in packages])
        ids = set(mine)
        with Writers(spec, store, run_pk, claims, in_flight(hook)) as writers:
            for part in chunks([p for p in packages if p.source_id in ids], LOAD_CHUNK):
                loader = new_loader(spec, store, hook, run_pk, mapping, claimed=claimed)
                writers.submit(loader, loader.plan(list(part)), [p.source_id for p in part])
            writers.drain()
            counts = writers.counts
            counts.update(_load_deferred(spec, store, hook, run_pk, mapping, claims,
                                         [p for p in packages if p.source_id in deferred], writers, claimed=claimed))
    finally:
        claims.release_all()
    return counts


def _load_deferred(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any, claims: Claims,
                   packages: list[Package], writers: Writers, **loader_options: Any) -> Counter:
    """Packages another run was writing: wait for its claims (holding none), then plan them afresh and send them
    through ``writers`` (which persist them); returns the counts of those still held by the other run."""
    if not packages:
        return Counter()
    log.info("%s: %s record(s) are being written by another run; waiting for it", spec.name, len(packages))
    mine, held = claims.wait([p.source_id for p in packages])
    ids = set(mine)
    for part in chunks([p for p in packages if p.source_id in ids], LOAD_CHUNK):
        loader = new_loader(spec, store, hook, run_pk, mapping, **loader_options)
        writers.submit(loader, loader.plan(list(part)), [p.source_id for p in part])
    writers.drain()
    if not held:
        return Counter()
    return persist(spec, store, run_pk, claims.still_held(spec, [p for p in packages if p.source_id in held], held))


def reads_everything(store: Any, run_pk: int) -> bool:
    """Whether the run's window starts at the epoch (a full resync or a first sync): such a run checks that
    what the id map calls unchanged still exists in K3Cloud."""
    with store.engine.connect() as conn:
        start = conn.execute(sa.select(sync_run.c.window_start).where(sync_run.c.id == run_pk)).scalar_one_or_none()
    if start is None:
        return False
    if start.tzinfo is None:
        start = start.replace(tzinfo=EPOCH.tzinfo)
    return start <= EPOCH


def load_staged(spec: FlowSpec, store: Any, hook: Any, run_pk: int, *, dry_run: bool = False,
                void_action: str = "report", verify_presence: bool | None = None,
                max_in_flight: int | None = None) -> dict[str, int]:
    """Load the run's staged packages chunk by chunk, up to N chunks in flight; persist each chunk's outcomes
    and id map as soon as its calls finished.

    Then the records voided or deleted in the CRM get the mapping's ``on_source_void`` / ``on_source_delete``
    (see :mod:`fxiaoke_k3cloud.flows.source_changes`).

    :param verify_presence: check that documents the id map calls unchanged still exist in K3Cloud (re-create
        or report the vanished ones); default: on runs whose window starts at the epoch (full resync, first sync).
    :param void_action: the run's param: ``close`` applies ``on_source_void: close`` for this run (void an
        unaudited K3Cloud document, close an audited one); ``report`` keeps the mapping's choice.
    :param max_in_flight: chunks in flight; default :func:`.load_inflight.in_flight` (the connection's
        ``max_in_flight`` capped by the task's pool slots).
    """
    from fxiaoke_k3cloud.flows.entry_rows import record_entry_ids  # here: they import this module's helpers
    from fxiaoke_k3cloud.flows.source_changes import apply_staged_changes
    from fxiaoke_k3cloud.flows.stage import Stage
    from fxiaoke_k3cloud.mapping import load_mapping

    mapping = load_mapping(spec.mapping_path)
    counts: Counter = Counter()
    # A big window's rest is read (from now on, in a reader thread) and mapped while the staged packages are
    # written, and its packages join the same writers (:mod:`.stream`).
    rest = Remainder.open(spec, store, run_pk)
    try:
        staged = itertools.chain(Stage(store).chunks(run_pk, "package", LOAD_CHUNK),
                                 rest.packages(LOAD_CHUNK) if rest else ())
        if dry_run:
            for rows in staged:
                packages = [Package.from_stage(row) for row in rows]
                counts.update(_dry_run(spec, store, run_pk, mapping, packages, already=counts["skipped"]))
        else:
            if verify_presence is None:
                verify_presence = reads_everything(store, run_pk)
            n = in_flight(hook) if max_in_flight is None else max_in_flight
            log.info("%s: loading with up to %s K3Cloud request(s) in flight", spec.name, n)
            counts.update(_load_in_flight(spec, store, hook, run_pk, mapping, staged, n,
                                          verify_presence=verify_presence))
    finally:
        if rest:
            rest.close()
    streamed = dict(rest.counts) if rest else {}
    if not dry_run:
        record_entry_ids(spec, store, hook, run_pk, mapping)
        counts.update(apply_staged_changes(spec, store, hook, run_pk, mapping, void_action=void_action))
    log.info("%s: %s", spec.name, dict(counts))
    if streamed:  # records the load read itself, and what the mapping made of them (the transform's counts)
        counts["streamed"] = streamed.pop("streamed")
        return {**dict(counts), "streamed_mapping": streamed}
    return dict(counts)


def _load_in_flight(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any,
                    staged: Iterable[list[dict[str, Any]]], n: int, *, verify_presence: bool = False) -> Counter:
    """Claim and plan chunk after chunk in the main thread; up to ``n`` chunks' calls in flight (:class:`Writers`);
    records another run holds are written at the end, holding no claim while waiting for them.

    A chunk whose calls finished is always persisted, also when a later step fails.
    """
    claims = Claims(store, spec.entity, run_pk)
    deferred: list[Package] = []  # records another run holds: written at the end, holding no claim then
    claimed: dict[str, tuple[str, str]] = {}  # numbers planned this run, shared by the chunks (main thread only)
    try:
        with Writers(spec, store, run_pk, claims, n) as writers:
            for rows in staged:
                packages = [Package.from_stage(row) for row in rows]
                mine, held = claims.take([p.source_id for p in packages])
                deferred += [p for p in packages if p.source_id in held]
                ids = set(mine)
                loader = new_loader(spec, store, hook, run_pk, mapping, verify_presence=verify_presence,
                                    claimed=claimed)
                plan = loader.plan([p for p in packages if p.source_id in ids])  # overlaps the calls in flight
                writers.submit(loader, plan, mine)
            writers.drain()
            counts = writers.counts
            counts.update(_load_deferred(spec, store, hook, run_pk, mapping, claims, deferred, writers,
                                         verify_presence=verify_presence, claimed=claimed))
    finally:
        claims.release_all()
    return counts


def close_voided(spec: FlowSpec, store: Any, hook: Any, run_pk: int, voided: list[dict[str, Any]]) -> Counter:
    """Void (Cancel) unaudited and close (CloseBill) audited K3Cloud documents whose CRM record was voided."""
    from fxiaoke_k3cloud.flows.source_changes import apply_source_actions  # here: it imports this module

    return apply_source_actions(spec, store, hook, run_pk, voided, action="close", cause="voided")


def _dry_run(spec: FlowSpec, store: Any, run_pk: int, mapping: Any, packages: list[Package], *,
             already: int) -> Counter:
    """Show what would be sent (the first packages in the log, all of them in the audit store)."""
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
