"""The K3Cloud → Fxiaoke receipts flow: its named hooks into the one pipeline (``flows.steps``, whose ``k3_to_crm``
adapters are in :mod:`.k3_pipeline`); the registry entry names this module (``FlowSpec.module``).

Audited K3Cloud receipt bills (收款单 ``AR_RECEIVEBILL``) become one CRM payment (``PaymentObj``, named after the
bill number) with one payment line (``OrderPaymentObj``) per bill entry, linked to the CRM order the entry pays
(``FSALEORDERNO`` → the orders flow's id map, else the K3Cloud order's ``FNetOrderBillNo``), so sales see per
order what was paid and what is still owed (the CRM rolls the lines up into the order).

* ``prepare`` (extract): the CRM order of every sale order number on the bills;
* ``reversals`` (extract): bills already in the CRM that were un-audited in the window or deleted are staged
  as voids; the load voids their CRM payment (its lines with it) — written again if the bill is re-audited;
* ``transform``: a bill whose order the CRM does not know yet is *parked* (re-read every run, it lands once the
  orders flow has synced the order); an entry without a sale order number is *reported*; the rest are mapped
  with ``include/mappings/receipts.yaml``;
* ``load``: :class:`~fxiaoke_k3cloud.flows.receipts_crm.ReceiptLoader` (claims per bill: exactly once).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import pandas as pd

from fxiaoke_k3cloud.flows import k3_pipeline as pipeline
from fxiaoke_k3cloud.flows import k3_source
from fxiaoke_k3cloud.flows.deliveries_crm import crm_orders
from fxiaoke_k3cloud.flows.receipts_crm import PAYMENT_LINE, VOIDED, ReceiptLoader, ReceiptPackage
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.window import Window, k3_local_ms
from fxiaoke_k3cloud.mapping import load_mapping
from fxiaoke_k3cloud.mapping import transform as map_records
from fxiaoke_k3cloud.numbers import number_key

log = logging.getLogger(__name__)

ENTRY_KEY = "FRECEIVEBILLENTRY_FEntryID"
ORDER_KEY = "FSALEORDERNO"
CUSTOMER_KEY = "FCONTACTUNIT.FNumber"
CUSTOMER_ENTITY = "customer"  # written by the customers flow: CRM AccountObj _id ⇄ K3 BD_Customer FNumber


def _drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    """The CRM treats an absent field as empty; sending "" to a lookup or select field is an error there."""
    return {k: v for k, v in values.items() if v not in ("", None)}


def _order_number(row: dict[str, Any]) -> str:
    return str(row.get(ORDER_KEY) or "").strip()


# --------------------------------------------------------------------------------------------------
# the flow's hooks (see k3_pipeline)
# --------------------------------------------------------------------------------------------------
def normalise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row[ORDER_KEY] = _order_number(row) or None
    return rows


def prepare(spec: FlowSpec, store: Any, hook: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    numbers = {r[ORDER_KEY] for r in rows if r.get(ORDER_KEY)}
    return {"orders": k3_source.resolve_order_numbers(store, hook, numbers)}


def reversals(spec: FlowSpec, store: Any, hook: Any, run_pk: int, window: Window, *, exclude: set[str],
              mark: bool) -> int:
    """Stage the bills whose CRM payment must be voided: un-audited in the window, or deleted."""
    voids = [{"source_id": str(row["FID"]), "number": row.get("FBillNo"), "target_id": entry.target_id,
              "why": f"un-audited in K3Cloud (FDocumentStatus={row.get('FDocumentStatus')!r})", "mark": VOIDED}
             for row, entry in pipeline.unaudited_synced(spec, store, hook, window, exclude=exclude,
                                                         done=(VOIDED, pipeline.DELETED))]
    for fid, (payment_id, number) in pipeline.vanished(spec, store, hook).items():
        if payment_id and fid not in {v["source_id"] for v in voids}:
            voids.append({"source_id": fid, "number": number, "target_id": payment_id,
                          "why": "deleted in K3Cloud", "mark": pipeline.DELETED})
    Stage(store).put(run_pk, "void", voids, key="source_id")
    return 0


def transform(spec: FlowSpec, store: Any, hook: Any, run_pk: int) -> dict[str, int]:
    return map_receipts(spec, store, hook, run_pk)


def load(spec: FlowSpec, store: Any, hook: Any, run_pk: int, *, dry_run: bool) -> Mapping[str, int]:
    stage = Stage(store)
    packages = [ReceiptPackage.from_stage(row) for row in stage.get(run_pk, "package")]
    packages += [ReceiptPackage.void(row) for row in stage.get(run_pk, "void")]
    return ReceiptLoader(spec, hook, store, run_pk).run(packages, dry_run=dry_run)


def _problems(lines: list[dict[str, Any]], resolved: dict[str, Any], orders: dict[str, Any]) -> tuple[list, list]:
    """(reasons to report, reasons to park) of one audited bill."""
    report, park = [], []
    for line in lines:
        number = line.get(ORDER_KEY)
        if not number:
            report.append(f"entry {line.get(ENTRY_KEY)} pays no sale order (FSALEORDERNO is empty): a prepayment "
                          "or another receipt; enter it in the CRM by hand if it belongs to a CRM order")
        elif number not in resolved:
            park.append(f"sale order {number} is not in the orders id map yet (not synced by the orders flow, no "
                        "FNetOrderBillNo); the receipt lands once the order is synced")
        elif resolved[number]["crm_id"] not in orders:
            park.append(f"sale order {number} names CRM order {resolved[number]['crm_id']} "
                        f"({resolved[number]['via']}), which the CRM does not have (yet)")
    return list(dict.fromkeys(report)), list(dict.fromkeys(park))


def map_receipts(spec: FlowSpec, store: Any, hook: Any, run_pk: int) -> dict[str, int]:
    """Map the staged bills into staged payment packages; outcomes for the others."""
    mapping = load_mapping(spec.mapping_path)
    stage = Stage(store)
    bills = pipeline.documents(list(stage.get(run_pk, "raw")), ENTRY_KEY)
    resolved: dict[str, dict[str, str]] = pipeline.staged_value(store, run_pk, "orders", {})
    orders = crm_orders(hook, {o["crm_id"] for o in resolved.values()})

    outcomes, parked, accepted = [], [], {}
    for fid, lines in bills.items():
        number = lines[0].get("FBillNo")
        report, park = _problems(lines, resolved, orders) if lines[0].get("FDocumentStatus") == "C" else ([], [])
        if report:
            outcomes.append(pipeline.outcome(spec, fid, number, "reported", f"{number}: " + "; ".join(report)))
        elif park:
            reason = f"{number}: " + "; ".join(park)
            outcomes.append(pipeline.outcome(spec, fid, number, "parked", reason))
            parked.append((fid, reason, ", ".join(sorted({str(line.get(ORDER_KEY)) for line in lines}))))
        else:
            accepted[fid] = lines

    flat = [line for lines in accepted.values() for line in lines]
    order_ids = {n: r["crm_id"] for n, r in resolved.items() if r["crm_id"] in orders}
    customers = sorted({str(r.get(CUSTOMER_KEY) or "") for r in flat} - {""})
    known = store.get_id_map_by_number_keys(CUSTOMER_ENTITY, customers)
    accounts = {n: known[number_key(n)].source_id for n in customers if number_key(n) in known}
    for line in flat:  # the CRM order's own account when the customers flow's id map does not know the customer
        account = orders.get(order_ids.get(line.get(ORDER_KEY) or "", ""), {}).get("account_id")
        if line.get(CUSTOMER_KEY) and line[CUSTOMER_KEY] not in accounts and account:
            accounts[line[CUSTOMER_KEY]] = str(account)
    frame = pd.DataFrame.from_records([lines[0] for lines in accepted.values()]) if accepted else pd.DataFrame()
    result = map_records(mapping, frame, lines=pd.DataFrame.from_records(flat) if flat else None,
                       lookups={"orders": order_ids, "accounts": accounts})

    packages = []
    for pkg in result.packages:
        lines = accepted[pkg.source_id]
        header = _drop_empty({k: v for k, v in pkg.model.items() if k != PAYMENT_LINE})
        paid = list(dict.fromkeys(order_ids[line[ORDER_KEY]] for line in lines))
        if len(paid) == 1:
            header["order_id"] = paid[0]  # a payment of one order names it; lines name theirs in any case
        packages.append({"source_id": pkg.source_id, "number": pkg.number, "create_data": header,
                         "lines": [_drop_empty(line) for line in pkg.model.get(PAYMENT_LINE) or []],
                         "payload_hash": pkg.payload_hash, "modified_ms": k3_local_ms(lines[0].get("FApproveDate"))})
    stage.put(run_pk, "package", packages, key="source_id")

    def out(source_id: str, kind: str, reason: str, **extra: Any) -> Any:
        return pipeline.outcome(spec, source_id, bills[source_id][0].get("FBillNo"), kind, reason, **extra)

    outcomes += [out(r.source_id, "rejected", r.reason, error_class="MappingRejection") for r in result.rejected]
    outcomes += [out(s.source_id, "skipped", s.reason) for s in result.held]
    outcomes += [out(s.source_id, "reported", s.reason) for s in result.reported]
    outcomes += [out(p.source_id, "parked", p.reason) for p in result.parked]
    parked += [(p.source_id, p.reason, ", ".join(p.missing)) for p in result.parked]
    if parked:
        store.park(spec.entity, spec.name, parked)
    store.record_outcomes(run_pk, outcomes)
    counts = {"packages": len(packages), "rejected": len(result.rejected), "parked": len(parked),
              "held": len(result.held), "reported": len(outcomes) - len(parked) - len(result.rejected)
              - len(result.held)}
    log.info("%s: %s", spec.name, counts)
    return counts

