"""Dependencies first: records a flow's lookups need but the id map of the flow they name lacks are synced in
the same run, through that flow's own mapping and loader, as a run of type ``dependency`` of that flow.

Which flows and keys come from the mapping (``lookups.<name>.flow``, see :mod:`.lookups`), so the orders get
their customers and the contacts theirs with the same code. The dependency's records are read by ``_id`` from
its source object, mapped, loaded and audited like any run of it; what it rejects or parks stays in its own
audit trail, and the dependent record parks until the dependency lands.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import pandas as pd

from fxiaoke_k3cloud.flows.extract import pages_in
from fxiaoke_k3cloud.flows.load import Package, load_packages
from fxiaoke_k3cloud.flows.lookups import build_lookups, missing_keys
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_spec
from fxiaoke_k3cloud.flows.transform import audit_transform_outcomes, package_from_mapping
from fxiaoke_k3cloud.flows.window import Window
from fxiaoke_k3cloud.mapping import transform

log = logging.getLogger(__name__)


def sync_records(dep: FlowSpec, store: Any, fx_hook: Any, k3_hook: Any, ids: Iterable[str], *, run_id: str,
                 window: Window, needed_by: str) -> dict[str, int]:
    """Sync these source records of flow ``dep`` (read by ``_id``) as one ``dependency`` run of it."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    records = [r for page in pages_in(fx_hook, dep.source_object, "_id", ids) for r in page]
    run_pk = store.start_run(dep.name, f"{run_id}:dependency", "dependency", window.start, window.end)
    mapping = flow_mapping(dep)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({"_id": []})
    # The dependency's own lookups are built, not chased further (one level): what it lacks parks it.
    result = transform(mapping, frame, lookups=build_lookups(dep, mapping, store, k3_hook, records) or None)
    audit_transform_outcomes(dep, store, run_pk, result)
    modified = {str(r["_id"]): r.get(dep.modified_field) for r in records}
    packages = [Package.from_stage(package_from_mapping(p, mapping.target.pk, modified.get(p.source_id)))
                for p in result.packages]
    counts = dict(load_packages(dep, store, k3_hook, run_pk, mapping, packages))
    bad = len(result.rejected) + counts.get("failed", 0)
    store.finish_run(run_pk, "partial" if bad else "success", None,
                     f"{dep.name} needed by {needed_by}: {len(ids)} missing, {len(records)} found in the CRM")
    log.info("%s: synced %s %s record(s) it needed first: %s", needed_by, len(records), dep.name, counts)
    return counts


def sync_missing(spec: FlowSpec, store: Any, fx_hook: Any, k3_hook: Any, records: list[dict[str, Any]],
                 lines: list[dict[str, Any]] | None = None, *, run_id: str, window: Window) -> dict[str, dict[str, int]]:
    """Sync whatever these records' id-map lookups lack, dependency flow by dependency flow.

    Returns dependency flow name → load counts.
    """
    mapping = flow_mapping(spec)
    missing = missing_keys(mapping, store, records, lines or [])
    out: dict[str, dict[str, int]] = {}
    for name, keys in missing.items():
        dep = flow_spec(name)
        if dep.direction != "crm_to_k3":
            continue  # K3Cloud → CRM ids are not read from the CRM: those records wait for their own flow
        out[name] = sync_records(dep, store, fx_hook, k3_hook, keys, run_id=run_id, window=window,
                                 needed_by=spec.name)
    return out
