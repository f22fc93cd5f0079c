"""Reconciliation: does K3Cloud hold what the CRM says it should?

For one flow (any in the registry with reconcile on) it reads every current CRM record, maps it with the flow's own mapping
(the same transform the flow runs, orders with the flow's lookups), and compares with K3Cloud read through
``ExecuteBillQuery``:

* **counts and presence** — each mapped record's number must exist in K3Cloud (``missing_in_erp``); a K3Cloud
  document that carries one of our numbers (id map) or a CRM order id (``FNetOrderBillNo``) but that no
  current CRM record maps to is ``extra_in_erp``;
* **amounts** (orders) — CRM ``order_amount`` against the K3Cloud lines' ``FTaxPrice × FQty``, per order and
  summed per day (``order_time`` in Asia/Shanghai vs ``FDate``): ``amount_difference``;
* **fields** — for a sample of id-mapped records, every mapped header field (and, for orders, every mapped
  line field by line position) against the document's current value: ``field_difference``.

Records the mapping rejects, holds or parks are not expected in K3Cloud (the audit store already tracks them).
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Sequence

import pandas as pd
import sqlalchemy as sa

from fxiaoke_k3cloud.audit.schema import id_map
from fxiaoke_k3cloud.flows.lookups import build_lookups
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_hook
from fxiaoke_k3cloud.flows.window import EPOCH, Window
from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.mapping import transform

log = logging.getLogger(__name__)

CHUNK = 500
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ]00:00:00(?:\.0+)?)?$")
_REFERENCE_SUFFIX = (".fnumber", ".fname")


@dataclass(frozen=True)
class Drift:
    """One difference; becomes one ``sync_drift`` row."""

    flow: str
    kind: str
    source_id: str | None
    target_number: str | None
    field: str | None = None
    crm_value: str | None = None
    erp_value: str | None = None


@dataclass
class Comparison:
    drifts: list[Drift]
    counts: dict[str, int]


# --------------------------------------------------------------------------------------------------
# value normalisation: K3Cloud answers 2.0 for "2", "2023-11-15T00:00:00" for "2023-11-15"
# --------------------------------------------------------------------------------------------------
def normalise(value: Any, *, reference: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    date = _DATE.match(text)
    if date:
        return date.group(1)
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        try:
            number = Decimal(text).normalize()
            return format(number, "f") if number != 0 else "0"
        except InvalidOperation:
            pass
    return text.casefold() if reference else text


def parse_amount(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value).replace(",", "").replace("¥", "").strip())
    except InvalidOperation:
        return None


def _is_reference(key: str) -> bool:
    return key.lower().endswith(_REFERENCE_SUFFIX)


# --------------------------------------------------------------------------------------------------
# the CRM side: current records mapped with the flow's mapping
# --------------------------------------------------------------------------------------------------
def crm_side(spec: FlowSpec, store: Any, fx_hook: Any, k3_hook: Any) -> tuple[Any, list[dict[str, Any]], Any]:
    """(mapping, CRM records, TransformResult) for every current CRM record of the flow."""
    mapping = flow_mapping(spec)
    read_all = flow_hook(spec, "read_all")
    if read_all is not None:  # the flow's own full read (orders: every order and every line)
        records, lines = read_all(spec, fx_hook, store, Window(EPOCH, datetime.now(timezone.utc), "full_resync"))
    else:
        records, lines = [r for page in fx_hook.query_records(spec.source_object) for r in page], []
    lines_frame = pd.DataFrame.from_records(lines) if lines else None
    lookups = build_lookups(spec, mapping, store, k3_hook, records, lines) if mapping.lookups else None
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({"_id": pd.Series([], dtype=object)})
    return mapping, records, transform(mapping, frame, lines=lines_frame, lookups=lookups)


def id_map_numbers(store: Any, entity: str) -> dict[str, str]:
    """target number → source id of every id-map entry of ``entity``."""
    query = sa.select(id_map.c.target_number, id_map.c.source_id).where(
        id_map.c.entity == entity, id_map.c.target_number.is_not(None))
    with store.engine.connect() as conn:
        return {str(n): str(s) for n, s in conn.execute(query)}


# --------------------------------------------------------------------------------------------------
# the ERP side
# --------------------------------------------------------------------------------------------------
def erp_documents(k3_hook: Any, spec: FlowSpec, mapping: Any, numbers: Iterable[str], header_keys: Sequence[str],
                  row_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """K3Cloud documents by number: header values, and ``rows`` (line values by position) for orders."""
    number_key = mapping.target.number
    entity = mapping.entries.entity if mapping.entries is not None else None
    keys = list(dict.fromkeys([mapping.target.pk, number_key, *header_keys]))
    if entity and row_keys:
        keys += [f"{entity}_FSeq", *[k for k in row_keys if k not in keys]]
    docs: dict[str, dict[str, Any]] = {}
    wanted = sorted(set(numbers))

    def collect(flt: Any) -> None:
        for page in k3_hook.execute_bill_query(spec.target_form, keys, filter=flt):
            for row in page:
                doc = docs.setdefault(str(row[number_key]), {**{k: row.get(k) for k in keys}, "rows": {}})
                if entity and row_keys:
                    doc["rows"][int(row.get(f"{entity}_FSeq") or 0)] = {k: row.get(k) for k in row_keys}

    for start in range(0, len(wanted), CHUNK):
        collect(F(number_key).isin(wanted[start : start + CHUNK]))
    extras = flow_hook(spec, "reconcile_extras")
    if extras is not None:  # documents the flow recognises as its own by more than our numbers (orders: CRM id)
        collect(extras())
    for doc in docs.values():
        doc["rows"] = [doc["rows"][seq] for seq in sorted(doc["rows"])]
    return docs


# --------------------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------------------
def _header_keys(packages: Sequence[Any], mapping: Any) -> list[str]:
    """Mapped header paths that ExecuteBillQuery can read as they are (entry paths like ``X[0].Y`` are not)."""
    if not packages:
        return []
    entity = mapping.entries.entity if mapping.entries is not None else None
    return [k for k in packages[0].mapped if k != entity and "[" not in k]


def _row_keys(packages: Sequence[Any], mapping: Any) -> list[str]:
    if mapping.entries is None:
        return []
    for pkg in packages:
        rows = pkg.mapped.get(mapping.entries.entity) or []
        if rows:
            return list(rows[0])
    return []


def compare_fields(flow: str, pkg: Any, doc: dict[str, Any], header_keys: Sequence[str], entity: str | None) -> list[Drift]:
    drifts = []
    mapped = pkg.mapped
    for key in header_keys:
        crm, erp = normalise(mapped.get(key), reference=_is_reference(key)), normalise(doc.get(key), reference=_is_reference(key))
        if crm != erp:
            drifts.append(Drift(flow, "field_difference", pkg.source_id, pkg.number, key, crm, erp))
    if entity:
        crm_rows, erp_rows = _keyed_rows(mapped.get(entity) or []), _keyed_rows(doc.get("rows") or [], like=mapped.get(entity))
        for label in sorted(set(crm_rows) | set(erp_rows)):
            crm_row, erp_row = crm_rows.get(label), erp_rows.get(label)
            if crm_row is None or erp_row is None:
                drifts.append(Drift(flow, "field_difference", pkg.source_id, pkg.number, f"{entity}[{label}]",
                                    "present" if crm_row is not None else "absent",
                                    "present" if erp_row is not None else "absent"))
                continue
            for key, value in crm_row.items():
                crm = normalise(value, reference=_is_reference(key))
                erp = normalise(erp_row.get(key), reference=_is_reference(key))
                if crm != erp:
                    drifts.append(Drift(flow, "field_difference", pkg.source_id, pkg.number, f"{entity}[{label}].{key}",
                                        crm, erp))
    return drifts


def _keyed_rows(rows: Sequence[dict[str, Any]], like: Sequence[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Line rows keyed by their first mapped field (the material for orders), ``#n`` for repeats.

    Lines are paired by what they are, not by position: K3Cloud may reorder rows when a user edits one.
    """
    sample = (like or rows or [{}])[0] if (like or rows) else {}
    key = next(iter(sample), None)
    out: dict[str, dict[str, Any]] = {}
    seen: Counter = Counter()
    for row in rows:
        base = normalise(row.get(key), reference=_is_reference(key or "")) if key else ""
        seen[base] += 1
        out[base if seen[base] == 1 else f"{base}#{seen[base]}"] = row
    return out


def reconcile_flow(spec: FlowSpec, store: Any, fx_hook: Any, k3_hook: Any, *, sample_size: int,
                   seed: str) -> Comparison:
    """Compare one flow's CRM records with K3Cloud; see the module docstring."""
    mapping, records, result = crm_side(spec, store, fx_hook, k3_hook)
    packages = result.packages
    by_number = {p.number: p for p in packages}
    mapped_numbers = id_map_numbers(store, spec.entity)
    header_keys = _header_keys(packages, mapping)
    row_keys = _row_keys(packages, mapping)
    entity = mapping.entries.entity if mapping.entries is not None else None
    docs = erp_documents(k3_hook, spec, mapping, [*by_number, *mapped_numbers], header_keys, row_keys)
    drifts = [Drift(spec.name, "missing_in_erp", p.source_id, p.number) for p in packages if p.number not in docs]
    extras = sorted(n for n in docs if n not in by_number)
    for number in extras:
        source = mapped_numbers.get(number) or (str(docs[number].get("FNetOrderBillNo") or "") or None)
        drifts.append(Drift(spec.name, "extra_in_erp", source, number))
    more = flow_hook(spec, "reconcile_drifts")
    if more is not None:  # the flow's own checks (orders: amounts per order and per day)
        drifts += more(spec, packages, records, docs, extras)
    known = store.get_id_map(spec.entity, [p.source_id for p in packages])
    candidates = sorted(p.source_id for p in packages if p.source_id in known and p.number in docs)
    sample = candidates if len(candidates) <= sample_size else sorted(random.Random(seed).sample(candidates, sample_size))
    by_source = {p.source_id: p for p in packages}
    for sid in sample:
        pkg = by_source[sid]
        drifts += compare_fields(spec.name, pkg, docs[pkg.number], header_keys, entity)
    status = mapping.life_status
    effective = (sum(1 for r in records if str(r.get(status.field) or "") in status.push) if status else len(records))
    counts = {
        "crm_records": len(records), "crm_effective": effective, "expected_in_erp": len(packages),
        "rejected": len(result.rejected), "parked": len(result.parked), "held": len(result.held),
        "erp_documents": len(docs), "matched": len(packages) - sum(d.kind == "missing_in_erp" for d in drifts),
        "missing_in_erp": sum(d.kind == "missing_in_erp" for d in drifts), "extra_in_erp": len(extras),
        "sampled": len(sample), "field_difference": sum(d.kind == "field_difference" for d in drifts),
        "amount_difference": sum(d.kind == "amount_difference" and d.source_id is not None for d in drifts),
        "days_differing": sum(d.kind == "amount_difference" and d.source_id is None for d in drifts),
    }
    log.info("%s reconciliation: %s", spec.name, counts)
    return Comparison(drifts, counts)
