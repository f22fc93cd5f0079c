"""The CRM side of the receipts flow: the idempotent load of payments (PaymentObj + OrderPaymentObj lines).

For each staged package (one receipt bill), inside the claim :class:`~.k3_load.ClaimedLoader` takes:

1. the id map (entity ``receipt``: bill FID ⇄ CRM ``PaymentObj`` ``_id``, number = bill FBillNo) decides what
   to do: a payload hash equal to the stored one costs no call (``unchanged``); no entry, or an entry whose
   payment was voided, first looks the payment up in the CRM by name (the payment is named after the bill), so
   a payment created by a run that died before writing the id map is linked, not duplicated;
2. a bill whose mapped payload changed (re-audited with other amounts) gets its old payment voided (lines with
   it: the order's paid amount drops) and a new one created — the id map says ``voided`` in between, so a run
   that dies there creates (or finds by name) the new one next time, never a second;
3. a create whose answer is lost is read back by name; not visible yet → failed, the next run reads back again;
4. a void package (the bill was un-audited or deleted in K3Cloud) voids the payment and marks the id map
   (``voided`` / ``deleted``), so it is done once; a void whose payment is already void is done too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from fxiaoke_k3cloud.audit import IdMapEntry
from fxiaoke_k3cloud.errors import ApiError, OutcomeUnknownError, SyncError
from fxiaoke_k3cloud.flows.k3_load import ClaimedLoader

log = logging.getLogger(__name__)

PAYMENT = "PaymentObj"
PAYMENT_LINE = "OrderPaymentObj"
VOIDED = "voided"  # payload_hash of a receipt id-map entry whose CRM payment this flow voided
QUERY_CHUNK = 100


def payments_by_name(hook: Any, names: Iterable[str]) -> dict[str, str]:
    """``{name: PaymentObj _id}`` of live CRM payments (voided ones are ignored)."""
    wanted = list(dict.fromkeys(n for n in names if n))
    out: dict[str, str] = {}
    for start in range(0, len(wanted), QUERY_CHUNK):
        for page in hook.query_records(PAYMENT, [("name", "IN", wanted[start : start + QUERY_CHUNK])],
                                       fields=["_id", "name", "life_status"]):
            out.update({str(r["name"]): str(r["_id"]) for r in page if r.get("life_status") != "invalid"})
    return out


@dataclass
class ReceiptPackage:
    """One bill: a payment to write (``action="write"``) or the CRM payment of an un-audited bill to void."""

    source_id: str  # K3Cloud bill FID
    number: str  # bill FBillNo = the CRM payment's name
    create_data: dict[str, Any] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)
    payload_hash: str | None = None
    modified_ms: int | None = None
    action: str = "write"
    target_id: str | None = None  # void: the CRM payment
    why: str = ""  # void: what happened in K3Cloud
    mark: str = VOIDED  # void: the id map's payload_hash afterwards

    @classmethod
    def from_stage(cls, row: dict[str, Any]) -> "ReceiptPackage":
        return cls(**{k: row.get(k) for k in ("source_id", "number", "create_data", "lines", "payload_hash",
                                              "modified_ms")})

    @classmethod
    def void(cls, row: dict[str, Any]) -> "ReceiptPackage":
        return cls(source_id=row["source_id"], number=row.get("number") or row["source_id"], action="void",
                   target_id=row["target_id"], why=row.get("why") or "", mark=row.get("mark") or VOIDED)


class ReceiptLoader(ClaimedLoader):
    """Writes one run's payments to the CRM (claims, outcomes and config errors: :class:`ClaimedLoader`)."""

    def _load_batch(self, packages: Sequence[ReceiptPackage], *, dry_run: bool = False) -> None:
        if not packages:
            return
        known = self.store.get_id_map(self.spec.entity, [p.source_id for p in packages])
        unmapped = [p.number for p in packages if p.action == "write"
                    and (p.source_id not in known or known[p.source_id].payload_hash == VOIDED)]
        existing = payments_by_name(self.hook, unmapped) if unmapped else {}
        for pkg in packages:
            entry = known.get(pkg.source_id)
            if dry_run:
                action = "void" if pkg.action == "void" else (
                    "leave unchanged" if entry is not None and entry.payload_hash == pkg.payload_hash else "write")
                self._outcome(pkg, "skipped", reason=f"dry run: would {action}",
                              request={"object_data": pkg.create_data, "details": {PAYMENT_LINE: pkg.lines}})
                continue
            try:
                if pkg.action == "void":
                    self._void_bill(pkg, entry)
                else:
                    self._write(pkg, entry, existing)
            except SyncError as exc:  # one bill's trouble must not stop the others (config errors do: _outcome)
                self._outcome(pkg, "failed", reason=f"{pkg.number}: {exc}", error=exc)

    # ---- one bill ---------------------------------------------------------------------------------
    def _write(self, pkg: ReceiptPackage, entry: Any, existing: dict[str, str]) -> None:
        if entry is not None and entry.target_id and entry.payload_hash == pkg.payload_hash:
            self._outcome(pkg, "unchanged", target_id=entry.target_id,
                          reason="mapped payload unchanged since the last sync")
            self.store.release(self.spec.entity, [pkg.source_id])
            return
        notes = []
        live = entry is not None and entry.target_id and entry.payload_hash not in (VOIDED, "deleted")
        if live:  # re-audited with other amounts: the old payment goes, a new one comes
            self._void(entry.target_id)
            self._link(pkg, entry.target_id, VOIDED)
            notes.append(f"payment {entry.target_id} voided (the bill changed)")
            existing = {}
        if pkg.number in existing:
            payment_id, kind = existing[pkg.number], "updated"
            notes.append(f"found in the CRM by name {pkg.number}; linked instead of created")
        else:
            created = self._create(pkg)
            if created is None:
                return
            (payment_id, how), kind = created, "created" if not live else "updated"
            notes += [how] if how else []
        self._link(pkg, payment_id, pkg.payload_hash)
        self._outcome(pkg, kind, target_id=payment_id, reason="; ".join(notes) or None)
        self.store.release(self.spec.entity, [pkg.source_id])

    def _create(self, pkg: ReceiptPackage) -> tuple[str, str | None] | None:
        return self.create_once(pkg, PAYMENT, pkg.create_data, {PAYMENT_LINE: pkg.lines}, payments_by_name, "payment")

    def _void_bill(self, pkg: ReceiptPackage, entry: Any) -> None:
        if entry is not None and entry.payload_hash in (VOIDED, "deleted"):
            self._outcome(pkg, "unchanged", target_id=pkg.target_id, reason="payment already voided")
            return
        self._void(pkg.target_id or "")
        self._link(pkg, pkg.target_id or "", pkg.mark)
        self._outcome(pkg, "updated", target_id=pkg.target_id,
                      reason=f"{pkg.number}: {pkg.why} after it reached the CRM: payment {pkg.target_id} voided "
                             "(its lines too: the order's paid amount drops); written again if re-audited")

    def _void(self, payment_id: str) -> None:
        """Void the payment (its lines with it); a payment already void is fine (a retried or repeated void)."""
        try:
            self.hook.invalid_record(PAYMENT, payment_id)
        except (ApiError, OutcomeUnknownError) as exc:
            self.raise_config_error(exc)
            current = self.hook.get_record(PAYMENT, payment_id)
            if (current or {}).get("life_status") != "invalid":
                raise

    def _link(self, pkg: ReceiptPackage, payment_id: str, payload_hash: str | None) -> None:
        self.store.upsert_id_map(self.spec.entity, [IdMapEntry(
            source_id=pkg.source_id, target_id=payment_id, target_number=pkg.number, payload_hash=payload_hash,
            source_modified_ms=pkg.modified_ms, run=self.run_pk)])
