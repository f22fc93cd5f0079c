"""Transform step: staged CRM records → K3Cloud packages via the flow's mapping file."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from fxiaoke_k3cloud.audit import RecordOutcome
from fxiaoke_k3cloud.flows.entry_rows import known_entry_ids
from fxiaoke_k3cloud.flows.lookups import build_lookups
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_hook
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.mapping import transform
from fxiaoke_k3cloud.mapping.columns import map_column
from fxiaoke_k3cloud.mapping.engine import compile_plan
from fxiaoke_k3cloud.mapping.transforms import TransformContext

log = logging.getLogger(__name__)


def package_from_mapping(pkg: Any, pk: str, modified_ms: int | None,
                         entry_ids: dict[str, int] | None = None) -> dict[str, Any]:
    """A mapping Package as JSON: the create model, and the update model without its pk (known at load).

    :param entry_ids: CRM line id → K3Cloud entry id (see :mod:`.entry_rows`): kept lines are updated in place.
    """
    row_ids = list(getattr(pkg, "row_ids", ()) or ())
    known = entry_ids or {}
    entity = pkg.shape.entity if row_ids else None
    update = pkg.update_model(0, entry_ids={entity: [known.get(r) for r in row_ids]} if entity else None)
    update.pop(pk, None)
    for key, rows in list(update.items()):
        if isinstance(rows, list) and not rows and shape_entity(pkg) == key:
            # K3Cloud keeps the entry rows when IsDeleteEntry comes with an empty list; one blank row clears them.
            update[key] = [{}]
    return {
        "row_ids": row_ids,
        "source_id": pkg.source_id,
        "source_name": pkg.source_name,
        "number": pkg.number,
        "model": pkg.model,
        "update_model": update,
        "update_fields": pkg.need_update_fields,
        "payload_hash": pkg.payload_hash,
        "modified_ms": modified_ms,
    }


def shape_entity(pkg: Any) -> str | None:
    """The entry entity of a mapping package (``FSaleOrderEntry``), or None."""
    shape = getattr(pkg, "shape", None)
    return getattr(shape, "entity", None)


def audit_transform_outcomes(spec: FlowSpec, store: Any, run_pk: int, result: Any,
                             numbers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Record rejected / held / reported / parked records; park the parked ones (retried by later runs).

    :param numbers: CRM id → K3 number (:func:`target_numbers`), kept on rejected and parked outcomes so a person
        finds them by the number too.

    Returns the voided records that reached K3Cloud (source id, name, K3 number), for an optional void action.
    """
    def outcome(source_id: str, name: str, kind: str, reason: str, **extra: Any) -> RecordOutcome:
        return RecordOutcome(flow=spec.name, entity=spec.entity, source_id=source_id, source_name=name,
                             outcome=kind, reason=reason, **extra)

    number = (numbers or {}).get
    rows = [outcome(r.source_id, r.source_name, "rejected", r.reason, error_class="MappingRejection",
                    target_number=number(r.source_id)) for r in result.rejected]
    rows += [outcome(s.source_id, s.source_name, "skipped", s.reason, target_number=s.number) for s in result.held]
    rows += [outcome(p.source_id, p.source_name, "parked", p.reason, target_number=number(p.source_id))
             for p in result.parked]
    reported = _reported_outcomes(spec, store, result.reported)
    rows += [outcome(s.source_id, s.source_name, kind, reason, target_number=number)
             for s, kind, reason, number in reported]
    store.record_outcomes(run_pk, rows)
    if result.parked:
        store.park(spec.entity, spec.name, [(p.source_id, p.reason, ", ".join(p.missing)) for p in result.parked])
    for r in result.rejected:
        log.warning("rejected %s", r.reason)
    return [{"source_id": s.source_id, "source_name": s.source_name, "number": number}
            for s, kind, _, number in reported if kind == "reported"]


def _reported_outcomes(spec: FlowSpec, store: Any, reported: list[Any]) -> list[tuple[Any, str, str, str | None]]:
    """Voided CRM records: 'reported' (needs action in K3Cloud) if they reached K3Cloud, else just skipped."""
    if not reported:
        return []
    known = store.get_id_map(spec.entity, [s.source_id for s in reported])
    out = []
    for s in reported:
        entry = known.get(s.source_id)
        if entry is None:
            out.append((s, "skipped", f"{s.reason}; never sent to K3Cloud, nothing to do", s.number))
        else:
            out.append((s, "reported", f"{s.reason}; K3Cloud {spec.target_form} {entry.target_number} still exists: "
                                       "close or void it in K3Cloud, or let the sync do it (mapping option "
                                       "on_source_void, or run with void_action=close)",
                        entry.target_number))
    return out


def target_numbers(mapping: Any, frame: Any) -> dict[str, str]:
    """CRM id → the K3 number the mapping's number rule makes of the record (its raw value where that fails)."""
    src, rule = mapping.source, mapping.number_rule
    if frame.empty or src.id_field not in frame.columns or rule.source not in frame.columns:
        return {}
    mapped = map_column(frame.reset_index(drop=True), compile_plan(mapping).fields[0],
                        TransformContext(timezone=mapping.defaults.timezone), strip_text=mapping.defaults.strip_text,
                        lookup_table=None, target_system=mapping.target.system)
    out = {}
    for pos, (rid, raw) in enumerate(zip(frame[src.id_field].tolist(), frame[rule.source].tolist())):
        value = raw if pos in mapped.problems else mapped.values[pos]
        if rid is not None and value is not None and value == value and str(value).strip():
            out[str(rid)] = str(value)
    return out


TRANSFORM_CHUNK = 5000  # records mapped at a time: the vectorised work stays efficient, memory stays flat


def transform_staged(spec: FlowSpec, store: Any, run_pk: int) -> dict[str, int]:
    """Map the run's staged records chunk by chunk; stage the packages and audit everything else."""
    hooks: list[Any] = []
    try:
        return _transform_staged(spec, store, run_pk, hooks)
    finally:  # the K3Cloud session opened for the lookups is logged out when the task ends, also on failure
        for hook in hooks:
            hook.close()


def _transform_staged(spec: FlowSpec, store: Any, run_pk: int, hooks: list[Any]) -> dict[str, int]:
    stage = Stage(store)
    stage.clear_kind(run_pk, "package")
    stage.clear_kind(run_pk, "void")
    counts = {"packages": 0, "rejected": 0, "held": 0, "reported": 0, "parked": 0}
    read_lines = flow_hook(spec, "staged_lines") or _staged_lines
    mapping = flow_mapping(spec)
    for records in stage.chunks(run_pk, "raw", TRANSFORM_CHUNK):
        lines: list[dict[str, Any]] = []
        if mapping.entries is not None:
            lines = read_lines(stage, run_pk, [str(r["_id"]) for r in records])
        for key, n in map_records(spec, store, run_pk, records, lines, hooks)[0].items():
            counts[key] += n
    log.info("%s: %s", spec.name, counts)
    return counts


def map_records(spec: FlowSpec, store: Any, run_pk: int, records: list[dict[str, Any]],
                lines: list[dict[str, Any]], hooks: list[Any]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Map one chunk of CRM records: stage its packages (kind ``package``) and the voided records that reached
    K3Cloud (kind ``void``), audit every record not passed on; returns (counts, the staged package rows).

    :param hooks: the K3Cloud hook the lookups use is opened on first need and appended here (the caller
        closes it).
    """
    mapping = flow_mapping(spec)
    stage = Stage(store)
    frame = pd.DataFrame.from_records(records)
    lookups = None
    if mapping.lookups:  # declared lookups are always built, whatever the mapping's shape
        if not hooks:
            hooks.append(K3CloudHook())
        lookups = build_lookups(spec, mapping, store, hooks[0], records, lines)
    lines_frame = pd.DataFrame.from_records(lines) if lines else None
    result = transform(mapping, frame, lines=lines_frame, lookups=lookups)
    modified = {str(r["_id"]): r.get(spec.modified_field) for r in records}
    entry_ids = known_entry_ids(spec, store, result.packages) if mapping.entries is not None else None
    rows = [package_from_mapping(p, mapping.target.pk, modified.get(p.source_id), entry_ids) for p in result.packages]
    counts = {"packages": stage.append(run_pk, "package", rows, key="source_id"),
              "rejected": 0, "held": 0, "reported": 0, "parked": 0}
    numbers = target_numbers(mapping, frame) if result.rejected or result.parked else None
    stage.append(run_pk, "void", audit_transform_outcomes(spec, store, run_pk, result, numbers), key="source_id")
    for key, n in result.counts.items():
        if key in counts and key != "packages":
            counts[key] += n
    return counts, rows


def _staged_lines(stage: Any, run_pk: int, source_ids: list[str]) -> list[dict[str, Any]]:
    """The entry rows the extract staged (kind ``lines``, keyed by their record's id)."""
    return stage.by_source(run_pk, "lines", source_ids)
