"""A flow's mapping, loaded once per process and file version, with its target form taught to the K3Cloud hook.

Every step reads its flow's mapping through :func:`flow_mapping`: the hook then knows the target form's primary
key and number field (for stable paging and read-back by number, see ``hooks/k3cloud_query.register_form_keys``)
from the mapping itself, not from a per-form table.
"""

from __future__ import annotations

from typing import Any

from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.hooks.k3cloud_query import register_form_keys
from fxiaoke_k3cloud.mapping import load_mapping

_CACHE: dict[str, tuple[tuple[int, int], Any]] = {}


def flow_mapping(spec: FlowSpec) -> Any:
    """The flow's validated mapping (re-read when the file changes)."""
    path = spec.mapping_path
    try:
        info = path.stat()
        stamp = (info.st_mtime_ns, info.st_size)
    except OSError:
        stamp = (-1, -1)  # load_mapping names the missing file
    cached = _CACHE.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    mapping = load_mapping(path)
    register_target(mapping)
    _CACHE[str(path)] = (stamp, mapping)
    return mapping


def register_target(mapping: Any) -> None:
    """Register a K3Cloud target form's keys (pk, number, entry entity and its pk) with the hook."""
    if mapping.target.system != "k3cloud" or not mapping.target.form_id:
        return
    entries = mapping.entries
    register_form_keys(mapping.target.form_id, mapping.target.pk, mapping.target.number,
                       entries.entity if entries is not None else None,
                       (entries.entry_pk or "FEntryID") if entries is not None else None)
