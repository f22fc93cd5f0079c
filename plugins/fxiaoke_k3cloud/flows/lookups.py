"""The mapping's lookup tables, built the same way for every flow from what its mapping declares.

A lookup with ``flow:`` (``lookups.customers.flow: customers``) is resolved through that flow's id map: its keys
are the values of the source fields that name it (header fields from the records, entry fields from the lines,
``master.<field>`` from the line's record), its values the K3Cloud numbers that flow wrote. With ``usable``
(the default) only numbers usable in the org the mapping writes in are kept — audited, not forbidden and
allocated there (see :mod:`.base_data`) — so a record whose reference K3Cloud would refuse parks instead.

Lookups without ``flow:`` come from the flow's own module (its ``lookups`` hook, see :func:`.specs.flow_hook`),
e.g. the orders' CRM product → K3Cloud material (by product code).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.flows.base_data import selling_org, usable_numbers
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_hook, flow_spec
from fxiaoke_k3cloud.mapping.schema import MASTER_PREFIX
from fxiaoke_k3cloud.numbers import number_key


def _fields_using(mapping: Any, name: str) -> tuple[list[str], list[str]]:
    """(header source fields, entry source fields) whose ``lookup`` is ``name``."""
    header = [f.source for f in mapping.fields if f.lookup == name]
    entry = [f.source for f in (mapping.entries.fields if mapping.entries is not None else ()) if f.lookup == name]
    return header, entry


def lookup_keys(mapping: Any, name: str, records: Iterable[Mapping[str, Any]],
                lines: Iterable[Mapping[str, Any]] = ()) -> set[str]:
    """The keys lookup ``name`` is asked for by these records and lines."""
    header, entry = _fields_using(mapping, name)
    keys: set[str] = set()
    records = list(records)
    for field in header + [f[len(MASTER_PREFIX):] for f in entry if f.startswith(MASTER_PREFIX)]:
        keys.update(str(r[field]) for r in records if r.get(field) not in (None, ""))
    for field in (f for f in entry if not f.startswith(MASTER_PREFIX)):
        keys.update(str(line[field]) for line in lines if line.get(field) not in (None, ""))
    return keys


def id_map_lookups(mapping: Any) -> dict[str, FlowSpec]:
    """The mapping's lookups resolved through a flow's id map: lookup name → that flow."""
    out = {}
    for name, decl in mapping.lookups.items():
        if decl.flow is None:
            continue
        try:
            out[name] = flow_spec(decl.flow)
        except ConfigError as exc:
            raise ConfigError(f"{mapping.file or 'mapping'}: lookups.{name}.flow: {exc}") from None
    return out


def missing_keys(mapping: Any, store: Any, records: list[Mapping[str, Any]],
                 lines: list[Mapping[str, Any]] = ()) -> dict[str, set[str]]:
    """Flow name → the keys its id map lacks (or holds without a number), over every id-map lookup."""
    out: dict[str, set[str]] = {}
    for name, spec in id_map_lookups(mapping).items():
        keys = lookup_keys(mapping, name, records, lines)
        if not keys:
            continue
        known = store.get_id_map(spec.entity, sorted(keys))
        gone = {k for k in keys if k not in known or not known[k].target_number}
        if gone:
            out.setdefault(spec.name, set()).update(gone)
    return out


def build_lookups(spec: FlowSpec, mapping: Any, store: Any, k3_hook: Any, records: list[dict[str, Any]],
                  lines: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every lookup table the mapping names: id-map ones here, the others from the flow's ``lookups`` hook."""
    lines = lines or []
    org = selling_org(mapping)
    tables: dict[str, dict[str, Any]] = {}
    for name, dep in id_map_lookups(mapping).items():
        keys = lookup_keys(mapping, name, records, lines)
        linked = {sid: e.target_number for sid, e in store.get_id_map(dep.entity, sorted(keys)).items()
                  if e.target_number} if keys else {}
        if linked and mapping.lookups[name].usable and dep.direction == "crm_to_k3":
            pk = flow_mapping(dep).target.pk
            ready = usable_numbers(k3_hook, dep.target_form, pk, sorted(set(linked.values())), org)
            linked = {sid: n for sid, n in linked.items() if number_key(n) in ready}
        tables[name] = linked
    extra = flow_hook(spec, "lookups")
    if extra is not None:
        tables.update(extra(spec, mapping, store, k3_hook, records, lines, org=org))
    return tables
