"""The K3Cloud → CRM side of the one pipeline (``flows.steps``): the K3Cloud-source and the CRM-target adapter.

``steps.extract`` / ``transform`` / ``load`` open the run, its window and the watermark for every flow, and hand
the work to the adapters of the flow's ``FlowSpec.direction``; for ``k3_to_crm`` those are the two classes here:

* :class:`K3CloudSource` (extract, over the K3Cloud hook): the documents of the flow's form
  (``FlowSpec.source_object``) audited in the window, plus earlier failures and parked documents re-read by FID
  (with ``ids``, as a re-drive asks: exactly those documents, and no look-back for reversals); the flow module's
  hooks ``normalise`` (derived fields of the rows read), ``reversals`` (documents un-audited or deleted after they
  reached the CRM) and ``prepare`` (K3Cloud lookups the transform needs, staged by name) refine it;
* :class:`FxiaokeTarget` (transform and load, over the Fxiaoke hook): the flow module's ``transform`` hook maps
  the staged rows with its mapping file into staged packages (every document it does not pass on gets an
  outcome), its ``load`` hook writes them (a :class:`~.k3_load.ClaimedLoader`: per-document claims, so overlapping
  runs write each document once, every outcome recorded).

What differs between flows sits in the flow's module (``FlowSpec.module``, e.g. ``flows/deliveries.py``) as
those named hooks; this module has no flow names. Data moves between tasks through the audit store's staging
table; XCom carries the run key and counts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import IdMapEntry, RecordOutcome
from fxiaoke_k3cloud.audit.schema import id_map
from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.flows import k3_source as k3
from fxiaoke_k3cloud.flows.queries import failed_source_ids
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_hook
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.window import Window
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.mapping import load_mapping

log = logging.getLogger(__name__)

DELETED = "deleted"  # payload_hash of an id-map entry whose document was deleted in K3Cloud (handled once)
RECHECK = timedelta(days=30)  # documents synced this recently are checked for deletion on every run


def staged_value(store: Any, run_pk: int, name: str, default: Any = None) -> Any:
    """A value the flow's ``prepare`` hook returned, as the extract staged it."""
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


def vanished(spec: FlowSpec, store: Any, hook: Any) -> dict[str, tuple[str | None, str | None]]:
    """Documents synced in the last :data:`RECHECK` that no longer exist in K3Cloud (deleted)."""
    recent = recently_synced(store, spec.entity, datetime.now(timezone.utc) - RECHECK)
    gone = sorted(set(recent) - k3.existing_ids(hook, spec.source_object, recent)) if recent else []
    return {fid: recent[fid] for fid in gone}


def unaudited_synced(spec: FlowSpec, store: Any, hook: Any, window: Window, *, exclude: set[str],
                     done: tuple[str, ...] = (DELETED,)) -> list[tuple[dict[str, Any], IdMapEntry]]:
    """``(header row, id-map entry)`` of documents changed in the window and no longer audited that reached the
    CRM (an entry with a CRM id, whose payload hash is none of ``done``); ``exclude``: FIDs read as audited."""
    rows = [r for r in k3.unaudited_in_window(hook, spec.source_object, window) if str(r["FID"]) not in exclude]
    synced = store.get_id_map(spec.entity, [str(r["FID"]) for r in rows])
    entries = [(row, synced.get(str(row["FID"]))) for row in rows]
    return [(row, entry) for row, entry in entries
            if entry is not None and entry.target_id and entry.payload_hash not in done]


def mark_deleted(spec: FlowSpec, store: Any, run_pk: int, gone: Mapping[str, tuple[str | None, str | None]]) -> None:
    """Remember that these documents' deletion was handled, so later runs do not handle it again."""
    if gone:
        store.upsert_id_map(spec.entity, [IdMapEntry(source_id=fid, target_id=target, target_number=number,
                                                     payload_hash=DELETED, run=run_pk)
                                          for fid, (target, number) in gone.items()])


# --------------------------------------------------------------------------------------------------
# the adapters
# --------------------------------------------------------------------------------------------------
def _hook(spec: FlowSpec, name: str, *, required: bool = False) -> Any:
    found = flow_hook(spec, name)
    if found is None and required:
        raise ConfigError(f"flow {spec.name!r} ({spec.direction}) needs a {name!r} hook in its module "
                          f"(FlowSpec.module={spec.module!r})")
    return found


class K3CloudSource:
    """Extract of a ``k3_to_crm`` flow: stage the audited documents (and what ``prepare`` resolved)."""

    def extract(self, spec: FlowSpec, store: Any, run_pk: int, window: Window, params: Mapping[str, Any]) -> dict[str, Any]:
        keys = load_mapping(spec.mapping_path).source.fields or []
        normalise = _hook(spec, "normalise") or (lambda rows: rows)
        reversals, prepare = _hook(spec, "reversals"), _hook(spec, "prepare")
        ids = list(params.get("ids") or [])
        retry: list[str] = []
        reported = 0
        with K3CloudHook() as hook:  # one K3Cloud session for the task, logged out when it ends (also on failure)
            if ids:  # exactly these documents, in any status (the mapping's life-status rules decide)
                rows = normalise(k3.by_ids(hook, spec.source_object, keys, ids))
            else:
                rows = normalise(k3.audited_in_window(hook, spec.source_object, keys, window))
                seen = {str(r["FID"]) for r in rows}
                again = [*failed_source_ids(store, spec.name, spec.entity),
                         *(p.source_id for p in store.list_parked(spec.entity, flow=spec.name))]
                retry = [fid for fid in dict.fromkeys(again) if fid not in seen]
                if retry:
                    rows += normalise(k3.by_ids(hook, spec.source_object, keys, retry))
                if reversals is not None:
                    reported = reversals(spec, store, hook, run_pk, window, exclude=seen,
                                         mark=not params.get("dry_run"))
            prepared = prepare(spec, store, hook, rows) if prepare is not None else {}
        stage = Stage(store)
        stage.put(run_pk, "raw", rows, key="FID")
        for name, value in prepared.items():
            stage.put(run_pk, name, [{"kind": name, name: value}], key="kind")
        count = len({str(r["FID"]) for r in rows})
        missing = sorted(set(ids) - {str(r["FID"]) for r in rows})
        if missing:
            log.warning("%s: %s requested FID(s) not found in K3Cloud: %s", spec.name, len(missing),
                        ", ".join(missing[:20]))
        log.info("%s: %s document(s) (%s re-read), %s reversal(s) reported", spec.name, count, len(retry), reported)
        return {"extracted": count + reported, "retried": len(retry), "reported": reported}


class FxiaokeTarget:
    """Transform and load of a ``k3_to_crm`` flow: the flow module's ``transform`` and ``load`` hooks."""

    def transform(self, spec: FlowSpec, store: Any, run_pk: int) -> dict[str, Any]:
        return dict(_hook(spec, "transform", required=True)(spec, store, FxiaokeHook(), run_pk))

    def load(self, spec: FlowSpec, store: Any, run_pk: int, *, dry_run: bool, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(_hook(spec, "load", required=True)(spec, store, FxiaokeHook(), run_pk, dry_run=dry_run))
