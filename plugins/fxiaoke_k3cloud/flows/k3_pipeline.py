"""The one pipeline of every K3Cloud → CRM flow: extract → transform → load (then the shared ``steps.report``).

* **extract** (K3Cloud): the run's window from the flow's watermark (``window.resolve_window``), the documents of
  the flow's form audited in it, plus earlier failures and parked documents re-read by FID; the flow's
  ``reversals`` hook looks at documents un-audited or deleted after they reached the CRM, its ``prepare`` hook
  resolves what the transform needs from K3Cloud (e.g. the CRM order of each sale order number).
* **transform** (CRM reads): the flow's ``transform`` hook maps the staged rows with its mapping file and stages
  packages; every document it does not pass on gets an outcome (rejected, parked, reported, held).
* **load** (CRM writes): the flow's ``load`` hook writes the packages (a :class:`~.k3_load.ClaimedLoader`:
  per-document claims, so overlapping runs write each document once, and every outcome recorded); then the
  watermark moves (``steps.advance_watermark``), never on a dry run.

What differs between flows sits in one module per flow, a :class:`K3Flow` whose named hooks the pipeline calls;
the module binds the pipeline's steps with :func:`steps` (``extract, transform, load = steps(FLOW)``), and its
registry entry (``flows/specs.py``) names those steps. Data moves between tasks through the audit store's
staging table; XCom carries the run key and counts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import IdMapEntry, RecordOutcome
from fxiaoke_k3cloud.audit.schema import id_map
from fxiaoke_k3cloud.flows import k3_source as k3
from fxiaoke_k3cloud.flows.run_context import params as run_params, run_meta
from fxiaoke_k3cloud.flows.queries import failed_source_ids
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_spec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.steps import advance_watermark, close_abandoned, open_store, run_window
from fxiaoke_k3cloud.flows.window import Window
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.mapping import load_mapping

log = logging.getLogger(__name__)

DELETED = "deleted"  # payload_hash of an id-map entry whose document was deleted in K3Cloud (handled once)
RECHECK = timedelta(days=30)  # documents synced this recently are checked for deletion on every run


class K3Flow:
    """The named hooks of one K3Cloud → CRM flow. Override what the flow needs; the defaults do nothing."""

    #: The K3Cloud form the flow reads (``SAL_DELIVERYNOTICE``, ``AR_RECEIVEBILL`` …).
    form: str = ""
    #: The entry id key rows are ordered by within a document (``FEntity_FEntryID`` …).
    entry_key: str = ""

    def normalise(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fill derived fields of the rows read from K3Cloud (e.g. the sale order number of a line)."""
        return rows

    def prepare(self, spec: FlowSpec, store: Any, hook: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """K3Cloud lookups the transform needs, staged by name (``{"orders": {...}}``)."""
        return {}

    def reversals(self, spec: FlowSpec, store: Any, hook: Any, run_pk: int, window: Window, *,
                  exclude: set[str], mark: bool) -> int:
        """Handle documents un-audited or deleted after they reached the CRM; returns how many were reported."""
        return 0

    def transform(self, spec: FlowSpec, store: Any, hook: Any, run_pk: int) -> dict[str, int]:
        raise NotImplementedError

    def load(self, spec: FlowSpec, store: Any, hook: Any, run_pk: int, *, dry_run: bool) -> Mapping[str, int]:
        raise NotImplementedError


def staged_value(store: Any, run_pk: int, name: str, default: Any = None) -> Any:
    """A value :meth:`K3Flow.prepare` returned, as the extract staged it."""
    return next(iter(Stage(store).get(run_pk, name)), {}).get(name, default)


def documents(rows: list[dict[str, Any]], entry_key: str) -> dict[str, list[dict[str, Any]]]:
    """``{FID: its rows}`` in FID and entry order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (int(r["FID"]), int(r.get(entry_key) or 0))):
        out.setdefault(str(row["FID"]), []).append(row)
    return out


def outcome(spec: FlowSpec, source_id: Any, number: Any, kind: str, reason: str | None, **extra: Any) -> RecordOutcome:
    """An outcome of one K3Cloud document; its number is what people search the audit by."""
    extra.setdefault("target_number", number)
    return RecordOutcome(flow=spec.name, entity=spec.entity, source_id=str(source_id), source_name=number,
                         outcome=kind, reason=reason, **extra)


def recently_synced(store: Any, entity: str, since: datetime) -> dict[str, tuple[str | None, str | None]]:
    """``{FID: (CRM id, number)}`` synced since ``since`` and not already handled as deleted."""
    query = sa.select(id_map.c.source_id, id_map.c.target_id, id_map.c.target_number).where(
        id_map.c.entity == entity, id_map.c.synced_at >= since,
        sa.or_(id_map.c.payload_hash.is_(None), id_map.c.payload_hash != DELETED))
    with store.engine.connect() as conn:
        return {row.source_id: (row.target_id, row.target_number) for row in conn.execute(query)}


def vanished(spec: FlowSpec, store: Any, hook: Any, form: str) -> dict[str, tuple[str | None, str | None]]:
    """Documents synced in the last :data:`RECHECK` that no longer exist in K3Cloud (deleted)."""
    recent = recently_synced(store, spec.entity, datetime.now(timezone.utc) - RECHECK)
    gone = sorted(set(recent) - k3.existing_ids(hook, form, recent)) if recent else []
    return {fid: recent[fid] for fid in gone}


def mark_deleted(spec: FlowSpec, store: Any, run_pk: int, gone: Mapping[str, tuple[str | None, str | None]]) -> None:
    """Remember that these documents' deletion was handled, so later runs do not handle it again."""
    if gone:
        store.upsert_id_map(spec.entity, [IdMapEntry(source_id=fid, target_id=target, target_number=number,
                                                     payload_hash=DELETED, run=run_pk)
                                          for fid, (target, number) in gone.items()])


# --------------------------------------------------------------------------------------------------
# the steps
# --------------------------------------------------------------------------------------------------
def extract(impl: K3Flow, flow: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Stage the window's audited documents and what ``prepare`` resolved; let ``reversals`` look back."""
    spec = flow_spec(flow)
    params = run_params(context)
    run_id, run_type, _ = run_meta(context)
    store = open_store()
    window = run_window(spec, store, params, context)
    run_pk = store.start_run(spec.name, run_id, run_type, window.start, window.end)
    close_abandoned(spec, store, context, run_pk)
    log.info("%s run %s: window %s → %s (%s)", spec.name, run_pk, window.start, window.end, window.source)
    keys = load_mapping(spec.mapping_path).source.fields or []
    dry_run = bool(params.get("dry_run"))
    with K3CloudHook() as hook:  # one K3Cloud session for the task, logged out when it ends (also on failure)
        rows = impl.normalise(k3.audited_in_window(hook, impl.form, keys, window))
        seen = {str(r["FID"]) for r in rows}
        again = [*failed_source_ids(store, spec.name, spec.entity),
                 *(p.source_id for p in store.list_parked(spec.entity, flow=spec.name))]
        retry = [fid for fid in dict.fromkeys(again) if fid not in seen]
        if retry:
            rows += impl.normalise(k3.by_ids(hook, impl.form, keys, retry))
        reported = impl.reversals(spec, store, hook, run_pk, window, exclude=seen, mark=not dry_run)
        prepared = impl.prepare(spec, store, hook, rows)
    stage = Stage(store)
    stage.put(run_pk, "raw", rows, key="FID")
    for name, value in prepared.items():
        stage.put(run_pk, name, [{"kind": name, name: value}], key="kind")
    count = len({str(r["FID"]) for r in rows})
    log.info("%s: %s audited document(s) (%s re-read), %s reversal(s) reported", spec.name, count, len(retry),
             reported)
    return {"run_pk": run_pk, "window": window.as_xcom(), "extracted": count + reported, "retried": len(retry),
            "reported": reported, "move_watermark": not dry_run, "dry_run": dry_run}


def transform(impl: K3Flow, flow: str, extracted: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Map the staged documents to CRM packages (the flow's ``transform`` hook)."""
    spec = flow_spec(flow)
    counts = impl.transform(spec, open_store(), FxiaokeHook(), extracted["run_pk"])
    log.info("%s: %s", spec.name, counts)
    return {**extracted, **counts}


def load(impl: K3Flow, flow: str, transformed: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Write the packages (the flow's ``load`` hook); then move the watermark."""
    spec = flow_spec(flow)
    store = open_store()
    run_id, _, _ = run_meta(context)
    counts = dict(impl.load(spec, store, FxiaokeHook(), transformed["run_pk"], dry_run=bool(transformed.get("dry_run"))))
    log.info("%s: %s", spec.name, counts)
    advance_watermark(spec, store, transformed, run_id)
    return {**transformed, **counts}


def steps(impl: K3Flow) -> tuple[Callable[..., dict[str, Any]], ...]:
    """The three task functions of a flow, bound to its hooks (the registry's ``module:extract`` … name them)."""

    def extract_step(flow: str, context: Mapping[str, Any]) -> dict[str, Any]:
        return extract(impl, flow, context)

    def transform_step(flow: str, extracted: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        return transform(impl, flow, extracted, context)

    def load_step(flow: str, transformed: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        return load(impl, flow, transformed, context)

    return extract_step, transform_step, load_step
