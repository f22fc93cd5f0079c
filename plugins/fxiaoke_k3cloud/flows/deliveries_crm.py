"""The CRM side of the deliveries flow: lookups for the mapping, and the idempotent load of delivery notes.

For each mapped K3Cloud delivery notice (one staged package):

1. the id map (entity ``delivery``: notice FID ⇄ CRM ``DeliveryNoteObj`` ``_id``, number = notice FBillNo)
   decides create vs update; a notice without an entry is first looked for in the CRM by name (the note is
   named after the notice number), so a note created by a run that died before writing the id map is linked,
   not duplicated;
2. a create whose answer is lost (:class:`OutcomeUnknownError`) is read back by name; if it is not visible
   yet it is not re-sent in this run, and the next run reads back by name again before creating;
3. the note is linked in the id map right after it exists, but its payload hash is stored only after the
   order update succeeded — a notice with a hash equal to the current one is complete and costs no call;
4. the order owners get ONE text message per notice: the id map entity ``delivery_message`` claims the message
   (``sending``) before it is sent and records the owners after the send succeeded. A send whose answer is
   lost, or a run killed while sending, leaves the claim (reported): the owner may or may not have it, and a
   second copy is the worse outcome (at most once). A send the CRM refused clears the claim (retried).
5. every notice is claimed in ``sync_claim`` before any of this, so two runs at once (a backfill beside the
   schedule, two Celery workers) take turns per notice and the second finds what the first wrote.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Sequence

from fxiaoke_k3cloud.audit import IdMapEntry
from fxiaoke_k3cloud.errors import (
    ApiError,
    AuthenticationError,
    OutcomeUnknownError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RetryableApiError,
    SyncError,
    TransportError,
)
from fxiaoke_k3cloud.flows.k3_load import ClaimedLoader

log = logging.getLogger(__name__)

NOTE_OBJECT = "DeliveryNoteObj"
LINE_OBJECT = "DeliveryNoteProductObj"
ORDER_OBJECT = "SalesOrderObj"
ORDER_LINE_OBJECT = "SalesOrderProductObj"
WAREHOUSE_OBJECT = "WarehouseObj"
MESSAGE_ENTITY = "delivery_message"
ORDER_FIELDS = ["_id", "name", "owner", "account_id", "life_status"]
QUERY_CHUNK = 100  # values per `IN` filter = the query API's page limit
UNKNOWN_SEND = "outcome-unknown"
SENDING = "sending"  # a message claimed for sending; replaced by the owners once the send succeeded


# --------------------------------------------------------------------------------------------------
# lookups
# --------------------------------------------------------------------------------------------------
def _chunks(values: Sequence[str], size: int = QUERY_CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _query_in(hook: Any, api: str, field_name: str, values: Iterable[str], fields: list[str]) -> list[dict[str, Any]]:
    wanted = list(dict.fromkeys(v for v in values if v))
    out: list[dict[str, Any]] = []
    for chunk in _chunks(wanted):
        for page in hook.query_records(api, [(field_name, "IN", chunk)], fields=fields):
            out.extend(page)
    return out


def crm_orders(hook: Any, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """CRM sales orders by ``_id`` (owner, account and name are what the flow needs)."""
    return {str(r["_id"]): r for r in _query_in(hook, ORDER_OBJECT, "_id", ids, ORDER_FIELDS)}


def crm_products(hook: Any, codes: Iterable[str]) -> dict[str, str]:
    """``{product_code: ProductObj _id}``; products are matched to K3Cloud materials by code."""
    rows = _query_in(hook, "ProductObj", "product_code", codes, ["_id", "product_code"])
    return {str(r["product_code"]): str(r["_id"]) for r in rows if r.get("product_code")}


def crm_warehouses(hook: Any, numbers: Iterable[str]) -> dict[str, str] | None:
    """``{number: WarehouseObj _id}``; None when the CRM has no WarehouseObj (the inventory module is off).

    An error that retrying or the connection settles (rate limit, 5xx, credentials, permission, quota) is raised
    as usual; only an unknown object (the module is off) means "no warehouses".
    """
    wanted = [n for n in numbers if n]
    if not wanted:
        return {}
    try:
        rows = _query_in(hook, WAREHOUSE_OBJECT, "number", wanted, ["_id", "number"])
    except (RetryableApiError, AuthenticationError, PermissionDeniedError, QuotaExhaustedError):
        raise
    except ApiError as exc:
        log.warning("the CRM refused a %s query (%s): delivery notes are written without a warehouse",
                    WAREHOUSE_OBJECT, exc)
        return None
    return {str(r["number"]): str(r["_id"]) for r in rows if r.get("number")}


def crm_order_lines(hook: Any, order_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The non-voided CRM lines (``_id``, ``order_id``, ``product_id``) of these CRM orders."""
    rows = _query_in(hook, ORDER_LINE_OBJECT, "order_id", order_ids, ["_id", "order_id", "product_id", "life_status"])
    return [r for r in rows if r.get("life_status") != "invalid"]


def notes_by_name(hook: Any, names: Iterable[str]) -> dict[str, str]:
    """``{name: DeliveryNoteObj _id}`` of existing CRM delivery notes (voided ones are ignored)."""
    rows = _query_in(hook, NOTE_OBJECT, "name", names, ["_id", "name", "life_status"])
    return {str(r["name"]): str(r["_id"]) for r in rows if r.get("life_status") != "invalid"}


def owners_of(order: dict[str, Any]) -> list[str]:
    owner = order.get("owner") or []
    return [str(o) for o in (owner if isinstance(owner, list) else [owner]) if o]


# --------------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------------
@dataclass
class NotePackage:
    """One notice mapped to a CRM delivery note, as staged by the transform step."""

    source_id: str  # K3Cloud notice FID
    number: str  # notice FBillNo = the CRM note's name
    create_data: dict[str, Any]
    update_data: dict[str, Any]
    lines: list[dict[str, Any]]
    payload_hash: str
    order_ids: list[str]
    order_names: list[str]
    owners: list[str]
    order_status: str | None = None
    modified_ms: int | None = None

    @classmethod
    def from_stage(cls, row: dict[str, Any]) -> "NotePackage":
        return cls(**{k: row.get(k) for k in cls.__dataclass_fields__})

    def message(self) -> str:
        qty = sum((_decimal(line.get("delivery_num")) for line in self.lines), Decimal(0))
        orders = "、".join(self.order_names) or "-"
        return (f"发货通知：K3Cloud 发货通知单 {self.number} 已审核，销售订单 {orders} 共 {len(self.lines)} 行、"
                f"数量 {plain_number(qty)}。CRM 发货单已同步。")


def _decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def plain_number(d: Decimal) -> str:
    """A quantity as people write it: all its digits, no exponent, no trailing fraction zeros (1E+20 → 100000…)."""
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class DeliveryLoader(ClaimedLoader):
    """Writes one run's delivery notes to the CRM (claims, outcomes and config errors: :class:`ClaimedLoader`).

    The id map is written per notice as soon as its note exists (a crash cannot lead to a duplicate); the
    outcomes are recorded together at the end of the run.
    """

    def _load_batch(self, packages: list[NotePackage], *, dry_run: bool = False) -> None:
        """Notices this run holds the claims of: the id map and the CRM's notes are read after claiming."""
        if not packages:
            return
        known = self.store.get_id_map(self.spec.entity, [p.source_id for p in packages])
        unmapped = [p.number for p in packages if p.source_id not in known]
        existing = notes_by_name(self.hook, unmapped) if unmapped else {}
        for pkg in packages:
            entry = known.get(pkg.source_id)
            if dry_run:
                self._dry_run(pkg, entry, existing)
                continue
            try:
                self._load_one(pkg, entry, existing)
            except SyncError as exc:  # one notice's trouble must not stop the others
                self._outcome(pkg, "failed", reason=f"{pkg.number}: {exc}", error=exc)

    # ---- one notice -------------------------------------------------------------------------------
    def _load_one(self, pkg: NotePackage, entry: Any, existing: dict[str, str]) -> None:
        notes: list[str] = []
        if entry is not None and entry.target_id and entry.payload_hash == pkg.payload_hash:
            kind, note_id = "unchanged", entry.target_id
            notes.append("mapped payload unchanged since the last sync")
        elif entry is not None and entry.target_id:
            kind, note_id = "updated", entry.target_id
            self.hook.update_record(NOTE_OBJECT, note_id, pkg.update_data)
        elif pkg.number in existing:
            kind, note_id = "updated", existing[pkg.number]
            notes.append(f"found in the CRM by name {pkg.number}; linked instead of created")
            self.hook.update_record(NOTE_OBJECT, note_id, pkg.update_data)
        else:
            created = self._create(pkg)
            if created is None:
                return
            note_id, how = created
            kind = "created"
            if how:
                notes.append(how)
        if kind != "unchanged":
            self._link(pkg, note_id, payload_hash=None)  # exists now: never create it again
            problem = self._update_orders(pkg)
            if problem:
                self._outcome(pkg, "failed", target_id=note_id, reason=f"{pkg.number}: delivery note {note_id} "
                              f"written, but {problem}; retried by the next run")
                return
            self._link(pkg, note_id, payload_hash=pkg.payload_hash)
        problem = self._notify(pkg)
        if problem and problem.startswith("failed:"):
            self._outcome(pkg, "failed", target_id=note_id, reason=f"{pkg.number}: delivery note {note_id} "
                          f"written, but the owner message {problem.removeprefix('failed:').strip()}; retried by the next run")
            return
        if problem:
            notes.append(problem)
        self._outcome(pkg, kind, target_id=note_id, reason="; ".join(notes) or None)
        self.store.release(self.spec.entity, [pkg.source_id])

    def _create(self, pkg: NotePackage) -> tuple[str, str | None] | None:
        """Create the note (read back by name after a lost answer: :meth:`ClaimedLoader.create_once`)."""
        return self.create_once(pkg, NOTE_OBJECT, pkg.create_data, {LINE_OBJECT: pkg.lines}, notes_by_name,
                                "delivery note")

    def _update_orders(self, pkg: NotePackage) -> str | None:
        if not pkg.order_status:
            return None
        for order_id in pkg.order_ids:
            try:
                self.hook.update_record(ORDER_OBJECT, order_id, {"order_status": pkg.order_status})
            except (ApiError, TransportError) as exc:
                self.raise_config_error(exc)
                return f"updating order {order_id} (order_status={pkg.order_status}) failed: {exc}"
        return None

    def _notify(self, pkg: NotePackage) -> str | None:
        """Send the owners' message unless one was sent; ``failed: …`` when it must be retried."""
        sent_before = self.store.get_id_map(MESSAGE_ENTITY, [pkg.source_id]).get(pkg.source_id)
        if sent_before is not None:
            if sent_before.target_id == SENDING:
                return ("the owner message was being sent by a run that was interrupted (run "
                        f"{sent_before.run}); it may not have arrived and is not resent: tell the owner if needed")
            return None
        if not pkg.owners:
            return "no owner on the CRM order: no message sent"
        # Claim before send: a run killed between the send and the record below must not lead to a second copy.
        self.store.upsert_id_map(MESSAGE_ENTITY, [IdMapEntry(source_id=pkg.source_id, target_id=SENDING,
                                                             target_number=pkg.number, run=self.run_pk)])
        try:
            self.hook.send_text_message(pkg.owners, pkg.message())
            sent, note = ",".join(pkg.owners), None
        except OutcomeUnknownError as exc:
            log.warning("%s: message for %s got no answer (%s); not resending (at most once)", self.spec.name,
                        pkg.number, exc)
            sent, note = UNKNOWN_SEND, "the owner message got no answer and is not resent: tell the owner if needed"
        except (ApiError, TransportError) as exc:
            self.store.forget_id_map(MESSAGE_ENTITY, [pkg.source_id])  # refused: nothing was sent, retry it
            self.raise_config_error(exc)
            return f"failed: could not be sent ({exc})"
        self.store.upsert_id_map(MESSAGE_ENTITY, [IdMapEntry(source_id=pkg.source_id, target_id=sent,
                                                             target_number=pkg.number, run=self.run_pk)])
        return note

    def _dry_run(self, pkg: NotePackage, entry: Any, existing: dict[str, str]) -> None:
        if entry is not None and entry.payload_hash == pkg.payload_hash:
            action = "leave unchanged"
        elif entry is not None or pkg.number in existing:
            action = "update"
        else:
            action = "create"
        log.info("dry run: would %s %s %s: %s lines, orders %s", action, NOTE_OBJECT, pkg.number, len(pkg.lines),
                 ", ".join(pkg.order_names))
        self._outcome(pkg, "skipped", reason=f"dry run: would {action}",
                      request={"object_data": pkg.create_data, "details": {LINE_OBJECT: pkg.lines}})

    # ---- bookkeeping ------------------------------------------------------------------------------
    def _link(self, pkg: NotePackage, note_id: str, *, payload_hash: str | None) -> None:
        self.store.upsert_id_map(self.spec.entity, [IdMapEntry(
            source_id=pkg.source_id, target_id=note_id, target_number=pkg.number, payload_hash=payload_hash,
            source_modified_ms=pkg.modified_ms, run=self.run_pk)])
