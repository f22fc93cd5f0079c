"""Load, step 3 — persist one chunk's result: the id map first, then the outcomes, then parked records released.

Main thread only (the store is never used from a writer thread). Nothing here stops a flow for one record: an
id-map number collision or an outcome the store refuses becomes that record's outcome; a lost database
connection is raised.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from concurrent.futures import Future
from typing import Any, Sequence

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import IdMapConflictError, RecordOutcome
from fxiaoke_k3cloud.flows.load_plan import LoadResult
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.numbers import number_key

log = logging.getLogger(__name__)


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



def persist_after_error(spec: FlowSpec, store: Any, run_pk: int, item: LoadResult | Future[LoadResult]) -> None:
    """After an error: persist a finished chunk (waiting for it if in flight); log, not raise, its own error."""
    try:
        persist(spec, store, run_pk, item.result() if isinstance(item, Future) else item)
    except Exception:
        log.exception("%s: a chunk could not be completed or persisted after the load failed; "
                      "its records are retried by the next run", spec.name)

