"""Transform step: staged CRM records → K3Cloud packages via the flow's mapping file."""

from __future__ import annotations

import logging
from typing import Any

from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.stage import Stage

log = logging.getLogger(__name__)


def staged_package(pkg: Any, pk: str, modified_ms: int | None) -> dict[str, Any]:
    """A mapping Package as JSON: the create model, and the update model without its pk (known at load)."""
    update = pkg.update_model(0)
    update.pop(pk, None)
    return {
        "source_id": pkg.source_id,
        "source_name": pkg.source_name,
        "number": pkg.number,
        "model": pkg.model,
        "update_model": update,
        "update_fields": pkg.need_update_fields,
        "payload_hash": pkg.payload_hash,
        "modified_ms": modified_ms,
    }


def transform_staged(spec: FlowSpec, store: Any, run_pk: int) -> dict[str, int]:
    import pandas as pd

    from fxiaoke_k3cloud.audit import RecordOutcome
    from fxiaoke_k3cloud.mapping import load_mapping, transform

    mapping = load_mapping(spec.mapping_path)
    stage = Stage(store)
    records = list(stage.get(run_pk, "raw"))
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({"_id": pd.Series([], dtype=object)})
    result = transform(mapping, frame)
    modified = {str(r["_id"]): r.get(spec.modified_field) for r in records}
    packages = [staged_package(p, mapping.target.pk, modified.get(p.source_id)) for p in result.packages]
    stage.put(run_pk, "package", packages, key="source_id")

    def outcome(source_id: str, name: str, kind: str, reason: str, **extra: Any) -> RecordOutcome:
        return RecordOutcome(flow=spec.name, entity=spec.entity, source_id=source_id, source_name=name,
                             outcome=kind, reason=reason, **extra)

    rows = [outcome(r.source_id, r.source_name, "rejected", r.reason, error_class="MappingRejection")
            for r in result.rejected]
    rows += [outcome(s.source_id, s.source_name, "skipped", s.reason, target_number=s.number) for s in result.held]
    rows += [outcome(s.source_id, s.source_name, "reported", s.reason, target_number=s.number)
             for s in result.reported]
    rows += [outcome(p.source_id, p.source_name, "parked", p.reason) for p in result.parked]
    store.record_outcomes(run_pk, rows)
    for r in result.rejected:
        log.warning("rejected %s", r.reason)
    counts = {"packages": len(packages), "rejected": len(result.rejected), "held": len(result.held),
              "reported": len(result.reported), "parked": len(result.parked)}
    log.info("%s: %s", spec.name, counts)
    return counts
