"""CRM records voided or deleted after a sync: found cheaply, acted on in K3Cloud per the mapping, audited once.

* **Voided** records come with the window: whether a tenant's default query returns ``life_status = invalid``
  rows is unknown (spec §3.5, §10), so the window read asks for them with a ``life_status`` filter
  (``FxiaokeHook.query_window``, ``include_voided``); the transform reports them and stages them as kind ``void``.
* **Deleted** records are gone from every CRM query, so they are found by a *presence check*: the ids the id
  map holds are asked for with ``_id IN`` queries (one page per 100 ids, :data:`ID_BATCH`; voided ones asked
  for explicitly, or a tenant that hides them by default would make every void look like a deletion), at most once per
  :data:`PRESENCE_EVERY_MS` per flow (the last check time is kept as the watermark ``<flow>:presence``).
  What is missing is staged as kind ``deleted``.
* The load step then applies the mapping's ``on_source_void`` / ``on_source_delete`` (:func:`apply_source_actions`):
  ``report`` (an outcome asks for action in K3Cloud), ``forbid`` (base data: ExcuteOperation ``Forbid``, 禁用),
  ``cancel`` / ``close`` (bills: ``Cancel`` when unaudited, ``CloseBill`` when audited).

Applied once: after an action (or a report of a deletion) the id map entry keeps its K3Cloud id and number
but its payload hash becomes a marker such as ``source-deleted:forbid``. The presence check skips marked
entries and a voided record read again gets an ``unchanged`` outcome without a K3Cloud call; a record the CRM
recovers maps to a real hash again, so the plan updates it as usual.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Sequence

from fxiaoke_k3cloud.audit import IdMapEntry, RecordOutcome
from fxiaoke_k3cloud.errors import SyncError
from fxiaoke_k3cloud.flows.paging import ID_BATCH, chunks, pages_in
from fxiaoke_k3cloud.flows.queries import id_map_rows
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.hooks.k3cloud_filter import F

log = logging.getLogger(__name__)

PRESENCE_EVERY_MS = 60 * 60 * 1000  # one presence check per flow and hour, not per run
MARKER_PREFIX = "source-"


def marker(cause: str, action: str) -> str:
    """The id-map payload hash that records "``cause`` (voided/deleted) handled by ``action``"."""
    return f"{MARKER_PREFIX}{cause}:{action}"


def presence_key(spec: FlowSpec) -> str:
    return f"{spec.name}:presence"


def find_deleted(spec: FlowSpec, hook: Any, store: Any, stage: Any, run_pk: int, now_ms: int) -> int:
    """Stage (kind ``deleted``) the id-mapped CRM records the CRM no longer has; returns how many.

    Runs at most once per :data:`PRESENCE_EVERY_MS`; entries already handled as deleted are not asked for.
    """
    key = presence_key(spec)
    last = store.get_watermark(key)
    if last is not None and now_ms - last < PRESENCE_EVERY_MS:
        return 0
    stage.clear_kind(run_pk, "deleted")
    entries = {row["source_id"]: row for row in id_map_rows(store, spec.entity)
               if not str(row["payload_hash"] or "").startswith(marker("deleted", ""))}
    present: set[str] = set()
    for page in pages_in(hook, spec.source_object, "_id", entries, fields=["_id"], include_voided=True):
        present.update(str(r["_id"]) for r in page)
    gone = [{"source_id": sid, "source_name": None, "number": row["target_number"], "target_id": row["target_id"]}
            for sid, row in entries.items() if sid not in present]
    staged = stage.append(run_pk, "deleted", gone, key="source_id")
    store.set_watermark(key, now_ms, None)
    log.info("%s: presence check of %s id-mapped record(s) (%s batches of ≤%s ids, voided asked for apart): "
             "%s deleted in the CRM", spec.name, len(entries), -(-len(entries) // ID_BATCH), ID_BATCH, len(gone))
    return staged


def _keys(mapping: Any, spec: FlowSpec) -> tuple[str, str, bool]:
    """(pk key, number key, base data?) of the flow's K3Cloud form."""
    base_data = spec.target_form.upper().startswith("BD_")
    if mapping is not None:
        return mapping.target.pk, mapping.target.number, base_data
    return ("FID", "FNumber" if base_data else "FBillNo", base_data)


def _states(hook: Any, spec: FlowSpec, number_key: str, base_data: bool,
            numbers: Sequence[str]) -> dict[str, dict[str, Any]]:
    keys = ([number_key, "FDocumentStatus", "FForbidStatus"] if base_data
            else [number_key, "FDocumentStatus", "FCloseStatus", "FCancelStatus"])
    state: dict[str, dict[str, Any]] = {}
    for chunk in chunks(list(numbers), 500):
        for page in hook.execute_bill_query(spec.target_form, keys, filter=F(number_key).isin(list(chunk))):
            state.update({str(row[number_key]): row for row in page})
    return state


def apply_source_actions(spec: FlowSpec, store: Any, hook: Any, run_pk: int, items: list[dict[str, Any]], *,
                         action: str, cause: str, mapping: Any = None, option: str = "") -> Counter:
    """Apply ``action`` to the K3Cloud documents of CRM records that were ``cause`` (voided/deleted); audit it.

    :param items: ``{"source_id", "source_name", "number"}`` per record (number = the K3Cloud number).
    :param option: the mapping key that chose the action, named in report reasons.
    """
    counts: Counter = Counter()
    if not items:
        return counts
    _, number_key, base_data = _keys(mapping, spec)
    known = store.get_id_map(spec.entity, [i["source_id"] for i in items])
    done_marker = marker(cause, action)
    rows: list[Any] = []
    marks: list[Any] = []
    where = f" in {mapping.file}" if mapping is not None and mapping.file else ""

    def record(item: dict[str, Any], outcome: str, reason: str, error: Any = None) -> None:
        counts[outcome] += 1
        entry = known.get(item["source_id"])
        rows.append(RecordOutcome(flow=spec.name, entity=spec.entity, source_id=item["source_id"],
                                  source_name=item.get("source_name"), outcome=outcome, reason=reason,
                                  target_id=entry.target_id if entry else None,
                                  target_number=item.get("number"), error_class=error))

    def mark(item: dict[str, Any]) -> None:
        entry = known.get(item["source_id"])
        if entry is not None:
            marks.append(IdMapEntry(source_id=entry.source_id, target_id=entry.target_id,
                                    target_number=entry.target_number, payload_hash=done_marker,
                                    source_modified_ms=entry.source_modified_ms, run=run_pk))

    todo = []
    for item in items:
        entry = known.get(item["source_id"])
        label = f"{spec.target_form} {item.get('number')}"
        if entry is not None and entry.payload_hash == done_marker:
            record(item, "unchanged", f"{cause} in the CRM; {label} was already handled ({action}) by an earlier run")
        elif action == "report":
            record(item, "reported", f"{cause} in the CRM; {label} still exists in K3Cloud: act on it there, or set "
                                     f"{option or 'the mapping option'}{where} to "
                                     f"{'forbid' if base_data else 'cancel'} to let the sync do it")
            mark(item)
        else:
            todo.append(item)
    state = _states(hook, spec, number_key, base_data, [i["number"] for i in todo if i.get("number")]) if todo else {}
    for item in todo:
        number = str(item.get("number"))
        doc = state.get(number)
        label = f"{spec.target_form} {number}"
        if doc is None:
            record(item, "reported", f"{cause} in the CRM; {label} is not in K3Cloud any more")
            mark(item)
            continue
        if base_data:
            if doc.get("FForbidStatus") == "B":
                record(item, "unchanged", f"{cause} in the CRM; {label} is already forbidden")
                mark(item)
                continue
            op, done = "Forbid", "forbidden (禁用)"
        elif doc.get("FCancelStatus") == "B" or doc.get("FCloseStatus") == "B":
            record(item, "unchanged", f"{cause} in the CRM; {label} is already voided/closed")
            mark(item)
            continue
        elif doc.get("FDocumentStatus") == "B":
            record(item, "reported", f"{cause} in the CRM; {label} is in approval: withdraw it in K3Cloud, then "
                                     "void it", "SubmittedInK3Cloud")
            continue
        else:
            op = "CloseBill" if doc.get("FDocumentStatus") == "C" else "Cancel"
            done = "closed (CloseBill)" if op == "CloseBill" else "voided (Cancel)"
        try:
            result = hook.execute_operation(spec.target_form, op, numbers=[number])
        except SyncError as exc:
            record(item, "failed", f"{cause} in the CRM; {op} of {label} failed: {exc}", type(exc).__name__)
            continue
        errors = getattr(result, "errors", None)
        if errors:
            record(item, "failed", f"{cause} in the CRM; {op} of {label} refused: "
                                   + "; ".join(str(getattr(e, "message", e)) for e in errors), f"{op}Refused")
            continue
        record(item, "updated", f"{cause} in the CRM; {label} {done} in K3Cloud")
        mark(item)
    if marks:  # the id map first: a lost outcome then means "done, not audited", never "done twice"
        store.upsert_id_map(spec.entity, marks)
    store.record_outcomes(run_pk, rows)
    for row in rows:
        if row.outcome in ("reported", "failed"):
            log.warning("%s %s: %s", spec.entity, row.source_id, row.reason)
    return counts


def apply_staged_changes(spec: FlowSpec, store: Any, hook: Any, run_pk: int, mapping: Any, *,
                         void_action: str = "report") -> Counter:
    """Apply the mapping's ``on_source_void`` / ``on_source_delete`` to the run's staged voided/deleted records.

    :param void_action: the run's ``void_action`` param; ``close`` means ``on_source_void: close`` for this run.
    """
    stage = Stage(store)
    counts: Counter = Counter()
    on_void = "close" if void_action == "close" else mapping.on_source_void
    if on_void != "report":  # the transform already reported the voided records
        counts.update(apply_source_actions(spec, store, hook, run_pk, list(stage.get(run_pk, "void")),
                                           action=on_void, cause="voided", mapping=mapping, option="on_source_void"))
    deleted = list(stage.get(run_pk, "deleted"))
    counts.update(apply_source_actions(spec, store, hook, run_pk, deleted, action=mapping.on_source_delete,
                                       cause="deleted", mapping=mapping, option="on_source_delete"))
    return counts
