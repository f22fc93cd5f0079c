"""Which K3Cloud entry row (``FEntryID``) each CRM line became, so an update changes rows in place.

An order update sends the full remaining line set (``IsDeleteEntry`` true, K3Cloud's default): kept lines carry
their entry id and are updated in place (links from delivery notices stay intact), new lines go without one and
are added, lines voided or deleted in the CRM are not sent and K3Cloud removes their rows. Real servers ignore an
*empty* list (``[]`` keeps every row), so an update left without rows sends ``[{}]`` (see
:func:`.transform.package_from_mapping`); the shipped orders mapping rejects an order without lines
(``min_rows: 1``) before that, and its K3Cloud rows stay as they were.

The line → entry id pairs live in the id map under the entity ``<flow entity>_line`` (source id = CRM line id,
target id = FEntryID; no number, so the id map's unique number key is not involved). They are read back after
each load from K3Cloud (one ExecuteBillQuery page per 500 documents), by row sequence.
"""

from __future__ import annotations

import logging
from typing import Any

from fxiaoke_k3cloud.audit import IdMapEntry
from fxiaoke_k3cloud.flows.paging import chunks
from fxiaoke_k3cloud.flows.queries import run_records
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.numbers import number_key as key_of

log = logging.getLogger(__name__)

READ_BACK_CHUNK = 500  # documents per ExecuteBillQuery filter


def line_entity(spec: FlowSpec) -> str:
    return f"{spec.entity}_line"


def known_entry_ids(spec: FlowSpec, store: Any, packages: list[Any]) -> dict[str, int]:
    """CRM line id → K3Cloud entry id, for the lines of these mapping packages."""
    line_ids = [rid for p in packages for rid in getattr(p, "row_ids", ()) if rid]
    if not line_ids:
        return {}
    out: dict[str, int] = {}
    for sid, entry in store.get_id_map(line_entity(spec), line_ids).items():
        try:
            out[sid] = int(entry.target_id)
        except (TypeError, ValueError):
            continue
    return out


def record_entry_ids(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any) -> int:
    """After a load: store the entry id of every line of the documents created or updated in this run."""
    entries = mapping.entries
    if entries is None or mapping.target.system != "k3cloud":
        return 0
    written = {r["source_id"]: r["target_number"] for r in run_records(store, run_pk)
               if r["outcome"] in ("created", "updated") and r["target_number"]}
    lines_of = {row["source_id"]: row.get("row_ids") or [] for row in Stage(store).get(run_pk, "package")
                if row["source_id"] in written}
    if not lines_of:
        return 0
    number_key = mapping.target.number
    entry_pk = entries.entry_pk or "FEntryID"
    pk_key, seq_key = f"{entries.entity}_{entry_pk}", f"{entries.entity}_FSeq"
    # K3Cloud compares numbers without regard to case/width: match its answer to the id map the same way.
    by_number = {key_of(written[sid]): sid for sid in lines_of}
    raw_numbers = {written[sid] for sid in lines_of}
    rows: dict[str, list[tuple[int, int]]] = {}
    for chunk in chunks(sorted(raw_numbers), READ_BACK_CHUNK):
        flt = F(number_key).isin(list(chunk))
        for page in hook.execute_bill_query(spec.target_form, [number_key, pk_key, seq_key], filter=flt):
            for row in page:
                if row.get(pk_key):
                    rows.setdefault(key_of(row[number_key]), []).append((int(row.get(seq_key) or 0), int(row[pk_key])))
    out = []
    for number, found in rows.items():
        sid = by_number.get(number)
        line_ids = lines_of.get(sid) or []
        ordered = [entry_id for _, entry_id in sorted(found)]
        if len(ordered) != len(line_ids):  # rows added in K3Cloud by hand: positions do not say which is which
            log.warning("%s %s: K3Cloud %s has %s entry rows for %s CRM lines; entry ids not recorded",
                        spec.entity, sid, number, len(ordered), len(line_ids))
            continue
        out += [IdMapEntry(source_id=line_id, target_id=str(entry_id), target_number=None, run=run_pk)
                for line_id, entry_id in zip(line_ids, ordered)]
    if out:
        store.upsert_id_map(line_entity(spec), out)
    return len(out)
