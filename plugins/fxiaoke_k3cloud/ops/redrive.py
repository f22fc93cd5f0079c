"""Re-drive: push chosen source records through their flow's own steps again, and quarantine hopeless ones.

A re-drive never writes to either system itself. For each chunk of source ids (CRM ids of a CRM → K3Cloud flow,
K3Cloud FIDs of a K3Cloud → CRM flow) it calls the registry's steps (``fxiaoke_k3cloud.flows.steps``) —
``extract`` (with ``params["ids"]``: only those records, re-read from the source; the watermark stays),
``sync_dependencies`` where the registry lists it, ``transform``, ``load`` and ``report`` — in-process, as a flow
run of type ``redrive``. Create-vs-update, payload hashes, claims, read-back of lost writes, parking and
releasing are therefore the flows' own: nothing is written twice.

Two things the flows cannot know are settled here before the chunk runs (skipped in a dry run):

* an id-map entry whose target record is gone (a K3Cloud document deleted in K3Cloud; a CRM record of a
  K3Cloud → CRM flow deleted or voided in the CRM) is *forgotten*, so the flow creates the record again
  instead of updating a missing one (or skipping it as unchanged);
* a record a reconciliation found different in K3Cloud (or re-driven with ``force``) has its stored
  payload hash cleared, so the flow sends the update although the CRM side did not change.

A record re-driven ``max_attempts`` times (counted over ``redrive`` runs since its last good outcome)
and still failed or parked is quarantined: parked ones through ``store.quarantine``; failed ones get a
``skipped`` outcome with error class ``Quarantined`` as their latest outcome, which takes them out of the
flows' automatic retry of earlier failures and out of this queue. A person re-drives them by id.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowFailException

from fxiaoke_k3cloud.audit import IdMapEntry, RecordOutcome
from fxiaoke_k3cloud.audit.schema import id_map
from fxiaoke_k3cloud.flows import steps
from fxiaoke_k3cloud.flows.k3_pipeline import DELETED
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.queries import run_records
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_spec, redrive_flows, resolve_step
from fxiaoke_k3cloud.flows.steps import open_store
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.ops.queue import REDRIVE_RUN_TYPE, plan_redrive, redrive_attempts

log = logging.getLogger(__name__)

REDRIVE_FLOWS = tuple(redrive_flows())  # from the registry, dependencies first (customers before orders)
QUARANTINE_CLASS = "Quarantined"
STILL_BAD = ("failed", "parked")


@dataclass
class FlowRedrive:
    """What a re-drive did for one flow."""

    flow: str
    selected: int = 0
    outcomes: Counter = field(default_factory=Counter)  # final outcome per record (not_found: not in the CRM)
    quarantined: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # id-map entries whose K3Cloud document was gone
    forced: list[str] = field(default_factory=list)  # payload hashes cleared to force an update
    runs: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # report messages of chunks that were not clean

    def as_xcom(self) -> dict[str, Any]:
        return {"flow": self.flow, "selected": self.selected, "outcomes": dict(self.outcomes),
                "quarantined": self.quarantined, "forgotten": self.forgotten, "forced": self.forced,
                "runs": self.runs, "problems": self.problems}


class _StepResults:
    """Stands in for the TaskInstance whose XCom ``steps.report`` reads: this in-process run's step results."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str | None = None, **_: Any) -> Any:
        return self.values.get(task_ids or "")


# --------------------------------------------------------------------------------------------------
# id map repairs
# --------------------------------------------------------------------------------------------------
def _target_keys(spec: FlowSpec) -> tuple[str, str]:
    mapping = flow_mapping(spec)
    return mapping.target.pk, mapping.target.number


def forget_missing_targets(store: Any, k3_hook: Any, spec: FlowSpec, source_ids: Sequence[str]) -> list[str]:
    """Forget id-map entries of ``source_ids`` whose K3Cloud document no longer exists; returns their ids.

    Checked by number *and* id: a document deleted and re-created by hand under the same number is
    re-linked to its new id rather than forgotten.
    """
    known = store.get_id_map(spec.entity, source_ids)
    by_number = {e.target_number: e for e in known.values() if e.target_number}
    if not by_number:
        return []
    pk, number_key = _target_keys(spec)
    present: dict[str, str] = {}
    numbers = sorted(by_number)
    for start in range(0, len(numbers), 500):
        flt = F(number_key).isin(numbers[start : start + 500])
        for page in k3_hook.execute_bill_query(spec.target_form, [pk, number_key], filter=flt):
            present.update({str(r[number_key]): str(r[pk]) for r in page})
    gone = [e.source_id for n, e in by_number.items() if n not in present]
    moved = [IdMapEntry(source_id=e.source_id, target_id=present[n], target_number=n, payload_hash=None,
                        source_modified_ms=e.source_modified_ms, run=e.run)
             for n, e in by_number.items() if n in present and str(e.target_id) != present[n]]
    if moved:
        store.upsert_id_map(spec.entity, moved)
        log.warning("%s: %s id-map entr(ies) re-linked to the K3Cloud document now carrying the number: %s",
                    spec.name, len(moved), ", ".join(m.source_id for m in moved[:20]))
    if gone:
        with store.engine.begin() as conn:
            conn.execute(sa.delete(id_map).where(id_map.c.entity == spec.entity, id_map.c.source_id.in_(gone)))
        log.warning("%s: %s K3Cloud document(s) no longer exist; their id-map entries were forgotten so the "
                    "flow creates them again: %s", spec.name, len(gone), ", ".join(sorted(gone)[:20]))
    return sorted(gone)


def forget_missing_crm_records(store: Any, fx_hook: Any, spec: FlowSpec, source_ids: Sequence[str]) -> list[str]:
    """K3Cloud → CRM flows: forget id-map entries of ``source_ids`` whose CRM record is gone or voided.

    The flow then writes the record again (found by name first, so a record re-created by hand is linked, not
    doubled). Entries of documents deleted in K3Cloud (marked ``deleted``) are left alone: nothing to re-create.
    """
    known = {sid: e for sid, e in store.get_id_map(spec.entity, source_ids).items()
             if e.target_id and e.payload_hash != DELETED}
    targets = sorted({str(e.target_id) for e in known.values()})
    live: set[str] = set()
    for start in range(0, len(targets), 100):
        for page in fx_hook.query_records(spec.target_form, [("_id", "IN", targets[start : start + 100])],
                                          fields=["_id", "life_status"], include_voided=True):
            live.update(str(r["_id"]) for r in page if r.get("life_status") != "invalid")
    gone = sorted(sid for sid, e in known.items() if str(e.target_id) not in live)
    if gone:
        store.forget_id_map(spec.entity, gone)
        log.warning("%s: %s CRM %s record(s) are gone or voided; their id-map entries were forgotten so the flow "
                    "writes them again: %s", spec.name, len(gone), spec.target_form, ", ".join(gone[:20]))
    return gone


def force_update(store: Any, spec: FlowSpec, source_ids: Sequence[str]) -> list[str]:
    """Clear the stored payload hash of ``source_ids``, so the flow rewrites them even if the CRM is unchanged."""
    known = store.get_id_map(spec.entity, source_ids)
    entries = [IdMapEntry(source_id=e.source_id, target_id=e.target_id, target_number=e.target_number,
                          payload_hash=None, source_modified_ms=e.source_modified_ms, run=e.run)
               for e in known.values() if e.payload_hash is not None]
    if entries:
        store.upsert_id_map(spec.entity, entries)
    return sorted(e.source_id for e in entries)


# --------------------------------------------------------------------------------------------------
# running the flow's steps
# --------------------------------------------------------------------------------------------------
def run_flow_steps(flow: str, ids: Sequence[str], *, run_id: str, dry_run: bool) -> tuple[int, str | None]:
    """Run the flow's own steps for exactly ``ids`` as one ``redrive`` run; returns (run key, report problem).

    ``steps.report`` always runs (it closes the audit run and clears the staging rows); its failure is
    returned as text, since a re-drive reports per record. An exception from extract/transform/load is
    raised after that, so Airflow retries the task.
    """
    results = _StepResults()
    context: dict[str, Any] = {
        "params": {"ids": list(ids), "dry_run": dry_run},
        "dag_run": SimpleNamespace(run_id=run_id, run_type=REDRIVE_RUN_TYPE, run_after=datetime.now(timezone.utc)),
        "run_id": run_id,
        "data_interval_start": None,
        "data_interval_end": None,
        "ti": results,
    }
    error: BaseException | None = None
    try:
        # The registry's steps, as the flow's DAG runs them; the report reads the first's and the last's results.
        first, *later = flow_spec(flow).steps
        result = resolve_step(first)(flow, context)
        results.values[f"extract_{flow}"] = result
        for step in later:
            result = resolve_step(step)(flow, result, context)
        results.values[f"load_{flow}"] = result
    except Exception as exc:  # report below closes the run first; then it is raised again
        error = exc
    problem = None
    if f"extract_{flow}" in results.values:
        try:
            steps.report(flow, context)
        except AirflowFailException as exc:
            problem = str(exc)
    if error is not None:
        raise error
    return int(results.values[f"extract_{flow}"]["run_pk"]), problem


def _final_outcomes(store: Any, run_pk: int) -> dict[str, str]:
    return {r["source_id"]: r["outcome"] for r in run_records(store, run_pk)}


def quarantine(store: Any, spec: FlowSpec, finals: Mapping[str, str], attempts: Mapping[str, int], *,
               run_id: str, max_attempts: int) -> list[str]:
    """Quarantine records that ended failed/parked again after ``max_attempts`` re-drives; returns their ids."""
    hopeless = sorted(sid for sid, outcome in finals.items()
                      if outcome in STILL_BAD and attempts.get(sid, 0) >= max_attempts)
    if not hopeless:
        return []
    parked_ids = [sid for sid in hopeless if finals[sid] == "parked"]
    if parked_ids:
        store.quarantine(spec.entity, parked_ids)
    now = datetime.now(timezone.utc)
    run_pk = store.start_run(spec.name, f"{run_id}:quarantine", REDRIVE_RUN_TYPE, now, now)
    store.record_outcomes(run_pk, [
        RecordOutcome(flow=spec.name, entity=spec.entity, source_id=sid, outcome="skipped",
                      error_class=QUARANTINE_CLASS,
                      reason=f"quarantined: still {finals[sid]} after {attempts[sid]} re-drive attempt(s) "
                             f"(cap {max_attempts}); fix the cause, then re-drive it by id")
        for sid in hopeless])
    store.finish_run(run_pk, "partial", None, f"{len(hopeless)} record(s) quarantined by the re-drive")
    log.warning("%s: quarantined %s record(s) after %s re-drive attempts: %s", spec.name, len(hopeless),
                max_attempts, ", ".join(hopeless[:20]))
    return hopeless


def redrive_flow(store: Any, k3_hook: Any, flow: str, ids: Sequence[str], *, run_id: str, dry_run: bool = False,
                 chunk_size: int = 200, max_attempts: int | None = None, force_ids: Sequence[str] = (),
                 fx_hook: Any = None) -> FlowRedrive:
    """Re-drive ``ids`` of ``flow`` in chunks through the flow's steps; see the module docstring.

    The hook of the flow's target checks for records gone there: ``k3_hook`` (CRM → K3Cloud), ``fx_hook``
    (K3Cloud → CRM; a new one when not given).

    :param max_attempts: quarantine records still failed/parked after this many re-drives (None: never,
        e.g. for ids a person chose).
    :param force_ids: records whose stored payload hash is cleared first (rewrite even if unchanged).
    """
    spec = flow_spec(flow)
    if flow not in REDRIVE_FLOWS:
        raise ValueError(f"flow {flow!r} cannot be re-driven; choose from {REDRIVE_FLOWS}")
    done = FlowRedrive(flow=flow, selected=len(ids))
    for number, start in enumerate(range(0, len(ids), chunk_size), start=1):
        chunk = list(ids[start : start + chunk_size])
        if not dry_run:
            if spec.direction == "k3_to_crm":
                fx_hook = fx_hook or FxiaokeHook()
                done.forgotten += forget_missing_crm_records(store, fx_hook, spec, chunk)
            else:
                done.forgotten += forget_missing_targets(store, k3_hook, spec, chunk)
            force = sorted(set(chunk) & set(force_ids))
            if force:
                done.forced += force_update(store, spec, force)
        chunk_run_id = f"{run_id}:redrive:{flow}:{number}"
        run_pk, problem = run_flow_steps(flow, chunk, run_id=chunk_run_id, dry_run=dry_run)
        done.runs.append(run_pk)
        if problem:
            done.problems.append(problem)
        finals = _final_outcomes(store, run_pk)
        for sid in chunk:
            done.outcomes[finals.get(sid, "not_found")] += 1
        if max_attempts is not None and not dry_run:
            attempts = redrive_attempts(store, spec, [s for s in chunk if finals.get(s) in STILL_BAD])
            done.quarantined += quarantine(store, spec, {s: finals[s] for s in attempts}, attempts,
                                           run_id=chunk_run_id, max_attempts=max_attempts)
    log.info("%s re-drive: %s selected, outcomes %s, quarantined %s, forgotten %s, forced %s", flow, done.selected,
             dict(done.outcomes), len(done.quarantined), len(done.forgotten), len(done.forced))
    return done


# --------------------------------------------------------------------------------------------------
# the DAG's tasks
# --------------------------------------------------------------------------------------------------
def _open_store() -> Any:
    return open_store()


def select_records(context: Mapping[str, Any]) -> dict[str, Any]:
    """Task ``select_records``: the work plan (ids per flow) for XCom."""
    params = dict(context.get("params") or {})
    plan = plan_redrive(_open_store(), params)
    for item in plan:
        log.info("%s: %s record(s) selected from %s%s", item["flow"], len(item["ids"]), item["source"],
                 f": {', '.join(item['ids'][:20])}" if item["ids"] else "")
    return {"plan": plan, "dry_run": bool(params.get("dry_run")),
            "max_attempts": int(params.get("max_attempts") or 5), "chunk_size": int(params.get("chunk_size") or 200)}


def redrive(selection: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Task ``redrive``: every planned flow through its own steps, in chunks."""
    store = _open_store()
    dag_run = context.get("dag_run")
    run_id = getattr(dag_run, "run_id", None) or str(context.get("run_id") or "manual")
    done = []
    with K3CloudHook() as hook:  # this task's K3Cloud session (the flow steps it runs open and close their own)
        for item in sorted(selection["plan"], key=lambda i: REDRIVE_FLOWS.index(i["flow"])):
            if not item["ids"]:
                done.append(FlowRedrive(flow=item["flow"]).as_xcom())
                continue
            result = redrive_flow(store, hook, item["flow"], item["ids"], run_id=run_id,
                                  dry_run=bool(selection.get("dry_run")), chunk_size=int(selection["chunk_size"]),
                                  max_attempts=int(selection["max_attempts"]) if item["capped"] else None,
                                  force_ids=item.get("force_ids") or [])
            done.append({**result.as_xcom(), "source": item["source"]})
    return {"flows": done, "dry_run": bool(selection.get("dry_run"))}


def report(context: Mapping[str, Any]) -> dict[str, Any]:
    """Task ``report``: the table of what moved; fails (red) when records were quarantined by this run."""
    ti = context["ti"]
    result = ti.xcom_pull(task_ids="redrive")
    if not result:
        raise AirflowFailException("re-drive did not finish; see the redrive task's log (nothing is lost: "
                                   "the records stay in the queue)")
    lines = [f"re-drive{' (dry run)' if result.get('dry_run') else ''}:"]
    quarantined: list[str] = []
    for item in result["flows"]:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(item["outcomes"].items())) or "nothing to do"
        lines.append(f"  {item['flow']:<10} selected {item['selected']:>5} from {item.get('source', '-')}: {outcomes}")
        if item["forgotten"]:
            lines.append(f"    re-created (K3Cloud document was gone): {', '.join(item['forgotten'][:20])}")
        if item["forced"]:
            lines.append(f"    rewritten (K3Cloud differed): {', '.join(item['forced'][:20])}")
        for problem in item["problems"]:
            lines.append(f"    {problem}")
        if item["quarantined"]:
            lines.append(f"    QUARANTINED: {', '.join(item['quarantined'][:50])}")
            quarantined += [f"{item['flow']}/{sid}" for sid in item["quarantined"]]
    log.info("\n".join(lines))
    if quarantined:
        raise AirflowFailException(
            f"{len(quarantined)} record(s) quarantined after too many re-drive attempts: "
            f"{', '.join(quarantined[:20])}. Fix the cause (see their history in the audit store), then trigger "
            "sync_redrive with their ids."
        )
    return {item["flow"]: item["outcomes"] for item in result["flows"]}
