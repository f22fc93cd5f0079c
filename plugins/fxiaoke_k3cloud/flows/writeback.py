"""Write-back: the K3Cloud number and document status of each synced record, written to its CRM record.

A declared step of a CRM → K3Cloud flow (``FlowSpec.steps``, after ``load``), configured by the ``write_back:``
block of the flow's mapping (``mapping.schema.WriteBack``). Each run, also an idle one:

1. picks the records to look at from the audit store alone: id-map rows without a write-back row yet, whose
   K3Cloud document changed since (another id or number), or — when a status is written — whose last state is
   not final (closed and cancelled are final);
2. reads those documents' states with one ExecuteBillQuery per ``K3_CHUNK`` numbers (header fields only); when
   only the number is written, K3Cloud is not called at all (the id map holds it). The status *refresh* — open
   records nothing but K3Cloud could have changed — is :func:`refresh_due`: once per ``refresh_every_minutes``
   period (default 60: the first run of each hour; 0 = every run), and at once when the run loaded records
   (created/updated in K3Cloud) or a record wants its first write-back (new, or another K3Cloud document). A
   refresh counts as made (watermark ``<flow>:write_back_refresh``) only when every write it led to succeeded, so
   a refused or untried write is read and tried again by the next run. Other runs leave K3Cloud alone, so an idle
   run costs the flow's window queries only; a status changed in K3Cloud reaches the CRM within one period plus
   one schedule interval (75 min with the defaults);
3. compares what the CRM should show with what was last written (table ``sync_write_back``): equal → nothing;
4. for the rest reads the CRM records (one query per ``CRM_CHUNK``), leaves deleted and voided ones alone
   (``reported``, unless the flow's own void/delete handling gave the record an outcome in this run already) and
   values the CRM already shows, and updates only the fields that differ, one update call per
   record. A refusal is that record's ``failed`` outcome and is tried again by the next run.

Nothing here fails the flow for one record: the K3Cloud write already happened. Outcomes that need a look
(reported / failed) go to ``sync_record`` under the flow's run with entity ``<entity>_writeback`` (so the
flow's own retry of failures and re-drive never pick them up) and so into the run's report; every write is in
``sync_write_back`` and the step's XCom. A configured field the CRM object lacks is a set-up error: the step fails
once saying which field (``ConfigError``).

The written-back fields are never mapped to K3Cloud (the mapping refuses it), so the CRM update made here cannot
change the package: no K3Cloud write follows from a write-back. The update moves the record's last_modified_time;
the time it left is read back with one query per updated chunk and kept (``echo_ms``), and the next run's window
skips the record while its time still equals it (:mod:`.echoes`): a later user edit is synced as usual.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import RecordOutcome
from fxiaoke_k3cloud.audit.schema import id_map, sync_record, sync_write_back
from fxiaoke_k3cloud.errors import ApiError, ConfigError, RetryableApiError, TransportError, is_config_error
from fxiaoke_k3cloud.flows.echoes import READ_FIELDS, read_back
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_spec
from fxiaoke_k3cloud.flows.steps import open_store
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.mapping import load_mapping
from fxiaoke_k3cloud.mapping.schema import FlowMapping, WriteBack
from fxiaoke_k3cloud.numbers import number_key

log = logging.getLogger(__name__)

K3_CHUNK = 500  # bill numbers per ExecuteBillQuery (FBillNo IN (...)): one short query per 500 open documents
CRM_CHUNK = 100  # CRM ids per query (the query's page size)
PER_RUN = 5000  # records looked at per run at most (the rest wait for the next run)
FINAL_STATES = ("closed", "cancelled")
MISSING = "missing"  # the K3Cloud document is gone
LOADED = ("created", "updated")  # load counts of a run that wrote K3Cloud documents: their states are read at once


@dataclass
class Candidate:
    source_id: str
    target_id: str | None
    target_number: str
    last_number: str | None = None
    last_status: str | None = None
    last_state: str | None = None
    last_outcome: str | None = None
    echo_ms: int | None = None  # the CRM's last_modified_time our last update left (kept until we write again)
    synced_ms: int | None = None  # the CRM's last_modified_time of the state last written to K3Cloud (id map)
    state: str | None = None  # read from K3Cloud this run (None when no status is written)
    code: str | None = None
    first_look: bool = True  # never written back, or another K3Cloud document since


def write_back(flow: str, upstream: Mapping[str, Any] | None, context: Mapping[str, Any]) -> dict[str, Any]:
    """Step: write K3Cloud numbers/statuses back to the flow's CRM records; returns ``upstream`` + ``write_back``.

    ``upstream`` is the previous step's result, or the first step's when the run had nothing to load (the DAG
    runs this step in idle runs too, so a later audit in K3Cloud reaches the CRM by the next status refresh:
    :func:`refresh_due`). A result with created/updated records makes this run's refresh due.
    """
    spec = flow_spec(flow)
    result = dict(upstream or {})
    mapping = load_mapping(spec.mapping_path)
    cfg = mapping.write_back
    if cfg is None or not cfg.enabled or result.get("dry_run"):
        result["write_back"] = {"off": True}
        return result
    if spec.direction != "crm_to_k3":
        raise ConfigError(f"flow {flow!r}: write_back applies to CRM → K3Cloud flows; remove the block from "
                          f"{spec.mapping_file}")
    run_pk = result.get("run_pk")
    loaded = any(int(result.get(k) or 0) for k in LOADED)
    counts = WriteBackRun(spec, mapping, cfg, open_store(), run_pk, loaded=loaded).run()
    result["write_back"] = counts
    return result


class WriteBackRun:
    """One run of the write-back for one flow (see the module docstring for the order of things)."""

    def __init__(self, spec: FlowSpec, mapping: FlowMapping, cfg: WriteBack, store: Any, run_pk: int | None, *,
                 loaded: bool = False, now_ms: int | None = None) -> None:
        self.spec, self.mapping, self.cfg, self.store, self.run_pk = spec, mapping, cfg, store, run_pk
        self.loaded = loaded  # this run created/updated K3Cloud documents
        self.now_ms = now_ms if now_ms is not None else clock_ms()
        self.entity = f"{spec.entity}_writeback"
        self.counts: Counter = Counter()
        self.outcomes: list[RecordOutcome] = []
        self.fx: FxiaokeHook | None = None

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, int]:
        candidates = pending(self.store, self.spec.entity, track_status=bool(self.cfg.status_field))
        if candidates and self.cfg.status_field and not refresh_due(
                self.cfg, self.store.get_watermark(refresh_key(self.spec)), self.now_ms, loaded=self.loaded,
                first_look=any(c.first_look for c in candidates)):
            # Only open records nothing but K3Cloud could have changed: read by the next period's first run.
            self.counts["refresh_deferred"] = len(candidates)
            candidates = []
        self.counts["checked"] = len(candidates)
        if not candidates:
            return dict(self.counts)
        if self.cfg.status_field:
            with K3CloudHook() as k3:  # one K3Cloud session for the reads, logged out at the end
                self.read_states(k3, candidates)
        settled, to_write = [], []
        for c in candidates:
            if c.state == MISSING:
                self.note(c, "reported", f"K3Cloud {self.mapping.target.form_id} {c.target_number} (id {c.target_id}) "
                                         f"is gone; nothing written back to CRM {self.spec.source_object} {c.source_id}")
                settled.append(self.row(c, "reported", final=True))
            elif self.already_shown(c):
                self.counts["unchanged"] += 1
                settled.append(self.row(c, c.last_outcome or "written"))
            else:
                to_write.append(c)
        self.save(settled)
        if to_write:
            self.fx = FxiaokeHook()
            self.check_fields()
            for chunk in chunks(to_write, CRM_CHUNK):
                if not self.write_chunk(chunk):
                    break
        if self.run_pk is not None:
            self.store.record_outcomes(self.run_pk, self.outcomes)
        if self.cfg.status_field and not self.counts["failed"] and len(candidates) < PER_RUN:
            # The period's refresh is made — not with a refused or untried write, nor with open records left past
            # PER_RUN: the next run reads again.
            self.store.set_watermark(refresh_key(self.spec), self.now_ms, None)
        log.info("%s write-back: %s", self.spec.name, dict(self.counts))
        return dict(self.counts)

    # ------------------------------------------------------------------ K3Cloud
    def read_states(self, k3: K3CloudHook, candidates: Sequence[Candidate]) -> None:
        """Each candidate's K3Cloud state, one header-only query per chunk of numbers."""
        target = self.mapping.target
        bill = not target.form_id.upper().startswith("BD_")
        status_keys = ["FDocumentStatus", *(("FCloseStatus", "FCancelStatus") if bill else ("FForbidStatus",))]
        keys = list(dict.fromkeys([target.pk, target.number, *status_keys]))
        for chunk in chunks(candidates, K3_CHUNK):
            numbers = sorted({c.target_number for c in chunk})
            by_id: dict[str, dict] = {}
            by_number: dict[str, dict] = {}
            for page in k3.execute_bill_query(target.form_id, keys, filter=F(target.number).isin(numbers)):
                for row in page:
                    by_id[str(row.get(target.pk))] = row
                    by_number.setdefault(number_key(row.get(target.number)), row)
            self.counts["k3_queries"] += 1
            for c in chunk:
                row = by_id.get(str(c.target_id)) if c.target_id else None
                row = row or by_number.get(number_key(c.target_number))
                if row is None:
                    c.state, c.code = MISSING, None
                else:
                    c.state, c.code = document_state(row, bill=bill)

    # ------------------------------------------------------------------ deciding
    def wanted(self, c: Candidate) -> tuple[str | None, str | None]:
        """(number, status label) the CRM record should show."""
        status = getattr(self.cfg.status_labels, c.state) if self.cfg.status_field and c.state else None
        return (c.target_number if self.cfg.number_field else None), status

    def already_shown(self, c: Candidate) -> bool:
        if c.last_outcome not in ("written", "held", "reported"):  # reported: the CRM record is gone
            return False
        return self.wanted(c) == ((c.last_number if self.cfg.number_field else None), c.last_status)

    def check_fields(self) -> None:
        """The configured fields exist on the CRM object (else every update would be refused): a set-up error."""
        described = self.fx.describe(self.spec.source_object).get("fields") or {}
        names = set(described) if isinstance(described, Mapping) else {f.get("api_name") for f in described}
        missing = [f for f in (self.cfg.number_field, self.cfg.status_field, *self.cfg.held_in) if f and f not in names]
        if missing:
            raise ConfigError(f"{self.spec.mapping_file} write_back names {', '.join(missing)}, which CRM object "
                              f"{self.spec.source_object} does not have (describe); add the custom field(s) in the "
                              f"CRM or point write_back at the tenant's own fields")

    # ------------------------------------------------------------------ the CRM
    def write_chunk(self, chunk: Sequence[Candidate]) -> bool:
        """Read the chunk's CRM records and update what differs; False when the CRM stopped answering."""
        obj, cfg = self.spec.source_object, self.cfg
        fields = [f for f in ("_id", "name", "life_status", *READ_FIELDS, cfg.number_field, cfg.status_field,
                              *cfg.held_in) if f]
        records: dict[str, dict] = {}
        for page in self.fx.query_records(obj, [("_id", "IN", [c.source_id for c in chunk])],
                                          fields=list(dict.fromkeys(fields)), include_voided=True):
            records.update({str(r["_id"]): r for r in page})
        gone = [c.source_id for c in chunk if records.get(c.source_id, {}).get("life_status", "invalid") == "invalid"]
        handled = self.flow_outcomes(gone)
        rows = []
        processed = {c.source_id: (c.synced_ms, c.echo_ms) for c in chunk}  # states the flow took in
        written: list[Candidate] = []
        stop: BaseException | None = None
        for c in chunk:
            if stop is not None:
                self.note(c, "failed", f"write-back to CRM {obj} {c.source_id} not tried: the CRM stopped "
                                       f"answering ({stop}); the next run tries again")
                continue
            rec = records.get(c.source_id)
            what = self.describe_target(c)
            if rec is None or rec.get("life_status") == "invalid":
                gone = "deleted" if rec is None else "voided"
                if c.source_id in handled:  # the flow's own void/delete outcome of this run says it already
                    self.counts[f"source_{gone}"] += 1
                else:
                    self.note(c, "reported", f"CRM {obj} {c.source_id} was {gone}; {what} not written back")
                rows.append(self.row(c, "reported"))
                continue
            data, held = self.changes(c, rec)
            if data:
                try:
                    self.fx.update_record(obj, c.source_id, data)
                except (ApiError, TransportError) as exc:
                    if is_config_error(exc):
                        raise
                    self.note(c, "failed", f"CRM refused the write-back of {what} to {obj} {c.source_id} "
                                           f"field(s) {', '.join(data)}: {exc}", exc)
                    if isinstance(exc, (RetryableApiError, TransportError)):
                        stop = exc
                    continue
                self.counts["written"] += 1
                written.append(c)
                c.echo_ms = None  # the time our update left: read back below, once for the chunk
            else:
                self.counts["unchanged"] += 1
            rows.append(self.row(c, "held" if held else "written"))
        if written and stop is None:
            echoes = read_back(self.fx, obj, records, [c.source_id for c in written], processed)
            self.counts["echoes"] += len(echoes)
            for r in rows:
                if r["source_id"] in echoes:
                    r["echo_ms"] = echoes[r["source_id"]]
        self.save(rows)
        return stop is None

    def changes(self, c: Candidate, rec: Mapping[str, Any]) -> tuple[dict[str, str], bool]:
        """The fields to update on CRM record ``rec``, and whether its number stays as the CRM holds it."""
        cfg, data, held = self.cfg, {}, False
        number, status = self.wanted(c)
        if cfg.number_field:
            current = text(rec.get(cfg.number_field))
            if current != number and any(text(rec.get(f)) == number for f in cfg.held_in):
                held = True  # the CRM holds the number already (e.g. the field the number rule reads)
            elif current and current != number and cfg.only_if_empty:
                held = True
                self.note(c, "reported", f"CRM {self.spec.source_object} {c.source_id} holds {current!r} in "
                                         f"{cfg.number_field}; K3Cloud number {number} not written (only_if_empty)")
            elif current != number:
                data[cfg.number_field] = number
        if cfg.status_field and status is not None and text(rec.get(cfg.status_field)) != status:
            data[cfg.status_field] = status
        return data, held

    def describe_target(self, c: Candidate) -> str:
        state = f" ({c.state})" if c.state else ""
        return f"K3Cloud {self.mapping.target.form_id} {c.target_number}{state}"

    # ------------------------------------------------------------------ recording
    def note(self, c: Candidate, outcome: str, reason: str, exc: BaseException | None = None) -> None:
        self.counts[outcome] += 1
        self.outcomes.append(RecordOutcome(flow=self.spec.name, entity=self.entity, source_id=c.source_id,
                                           outcome=outcome, reason=reason, target_id=c.target_id,
                                           target_number=c.target_number, error_class=exc))

    def row(self, c: Candidate, outcome: str, *, final: bool | None = None) -> dict[str, Any]:
        number, status = self.wanted(c)
        return {"entity": self.spec.entity, "source_id": c.source_id, "target_id": c.target_id,
                "target_number": c.target_number, "number_written": number, "status_written": status,
                "state": c.code if c.state != MISSING else MISSING,
                "final": bool(final if final is not None else c.state in FINAL_STATES),
                "outcome": outcome, "run": self.run_pk, "updated_at": datetime.now(timezone.utc),
                "echo_ms": c.echo_ms}

    def flow_outcomes(self, source_ids: Sequence[str]) -> set[str]:
        """Which of ``source_ids`` the flow itself gave an outcome in this run (e.g. its void/delete handling)."""
        if not source_ids or self.run_pk is None:
            return set()
        query = sa.select(sync_record.c.source_id).where(
            sync_record.c.run == self.run_pk, sync_record.c.entity == self.spec.entity,
            sync_record.c.source_id.in_(list(source_ids)))
        with self.store.engine.connect() as conn:
            return {r[0] for r in conn.execute(query)}

    def save(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        # An upsert, not delete-then-insert: two runs of one flow at once (a backfill beside the schedule) may save
        # the same record's row, and on PostgreSQL the second insert would then fail on the primary key.
        columns = [c for c in rows[0] if c not in ("entity", "source_id")]
        with self.store.engine.begin() as conn:
            for part in chunks(rows, 500):
                ins = self.store._insert(conn, sync_write_back)
                conn.execute(ins.on_conflict_do_update(
                    index_elements=[sync_write_back.c.entity, sync_write_back.c.source_id],
                    set_={name: ins.excluded[name] for name in columns}), list(part))


def clock_ms() -> int:
    """Now in epoch milliseconds: the time the status refresh periods are measured by (tests replace it)."""
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def refresh_key(spec: FlowSpec) -> str:
    """Watermark row holding when the flow's write-back last read K3Cloud statuses (epoch ms)."""
    return f"{spec.name}:write_back_refresh"


def refresh_due(cfg: WriteBack, last_ms: int | None, now_ms: int, *, loaded: bool, first_look: bool) -> bool:
    """Whether this run reads the open records' K3Cloud statuses (see the module docstring).

    Periods are fixed slices of ``refresh_every_minutes`` counted from the epoch (00:00 UTC), not "that long
    since the last read": the first run of each period refreshes, so a run starting a few seconds early or a
    refresh made by a loading run in between does not push the next one a whole schedule interval later.
    """
    if loaded or first_look or last_ms is None or cfg.refresh_every_minutes == 0:
        return True
    period = cfg.refresh_every_minutes * 60_000
    return now_ms // period != last_ms // period


def pending(store: Any, entity: str, *, track_status: bool, limit: int = PER_RUN) -> list[Candidate]:
    """Id-map rows of ``entity`` the write-back must look at (see the module docstring), from the audit store."""
    wb = sync_write_back
    joined = id_map.outerjoin(wb, sa.and_(wb.c.entity == id_map.c.entity, wb.c.source_id == id_map.c.source_id))
    stale = sa.or_(wb.c.source_id.is_(None), wb.c.target_id.is_distinct_from(id_map.c.target_id),
                   wb.c.target_number.is_distinct_from(id_map.c.target_number))
    if track_status:
        stale = sa.or_(stale, wb.c.final.is_(False))
    query = (sa.select(id_map.c.source_id, id_map.c.target_id, id_map.c.target_number, wb.c.number_written,
                       wb.c.status_written, wb.c.state, wb.c.outcome, wb.c.echo_ms, id_map.c.source_modified_ms,
                       wb.c.target_id.label("wb_target_id"), wb.c.target_number.label("wb_target_number"))
             .select_from(joined)
             .where(id_map.c.entity == entity, id_map.c.target_number.is_not(None), id_map.c.target_number != "",
                    stale)
             # never looked at first, then the longest unchecked: with more than ``limit`` open documents every
             # one is still read within a few runs
             .order_by(sa.case((wb.c.updated_at.is_(None), 0), else_=1), wb.c.updated_at, id_map.c.source_id)
             .limit(limit))
    with store.engine.connect() as conn:
        return [Candidate(source_id=r.source_id, target_id=r.target_id, target_number=r.target_number,
                          last_number=r.number_written, last_status=r.status_written, last_state=r.state,
                          last_outcome=r.outcome, echo_ms=r.echo_ms, synced_ms=r.source_modified_ms,
                          first_look=(r.outcome is None or r.wb_target_id != r.target_id
                                      or r.wb_target_number != r.target_number))
                for r in conn.execute(query)]


def document_state(row: Mapping[str, Any], *, bill: bool) -> tuple[str, str]:
    """(state name, code) of a K3Cloud row: cancelled / closed (final), else by FDocumentStatus."""
    doc = text(row.get("FDocumentStatus"))
    if bill:
        close, cancel = text(row.get("FCloseStatus")) or "A", text(row.get("FCancelStatus")) or "A"
        code = f"{doc}/{close}/{cancel}"
        if cancel == "B":
            return "cancelled", code
        if close == "B":
            return "closed", code
    else:
        forbid = text(row.get("FForbidStatus")) or "A"
        code = f"{doc}/{forbid}"
        if forbid == "B":
            return "forbidden", code
    # Z temporary, A created, D re-audit (editable again) are all "saved"; B in approval; C audited.
    return {"B": "submitted", "C": "audited"}.get(doc, "saved"), code


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def written_back(store: Any, entity: str, source_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """What the write-back last recorded per source id (for the CLI, the monitor and tests)."""
    query = sa.select(sync_write_back).where(sync_write_back.c.entity == entity)
    if source_ids is not None:
        query = query.where(sync_write_back.c.source_id.in_(list(source_ids)))
    with store.engine.connect() as conn:
        return {r.source_id: dict(r._mapping) for r in conn.execute(query)}
