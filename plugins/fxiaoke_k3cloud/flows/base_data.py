"""K3Cloud base data as the flows must read it: one row per use org, usable only when audited and enabled there.

Base data allocated to several organisations (materials, customers) is one row per use org in ExecuteBillQuery —
the same ``FNumber`` several times, each with its own ``FUseOrgId``, ``FDocumentStatus`` and ``FForbidStatus``.
A lookup by number alone takes whichever row comes last; public clients filter on ``FUseOrgId.FNumber``, and so
do the flows: the org is the one the flow's mapping writes to (``org:`` — the use org of base data, the create
org, e.g. ``FSaleOrgId``, of bills).

Also here: reading back the state of documents a save with ``IsAutoSubmitAndAudit`` left half done (saved or
submitted, not audited: a workflow, 审批流, is bound to the form), see :meth:`.load.Loader._half_done`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.numbers import number_key

log = logging.getLogger(__name__)

QUERY_CHUNK = 500  # numbers per ExecuteBillQuery filter
STATE_LABEL = {"Z": "drafted", "A": "saved (created)", "B": "submitted for approval", "C": "audited",
               "D": "sent back for re-audit"}


@dataclass(frozen=True)
class DocState:
    """One K3Cloud row: id, number, document status and forbid status (base data)."""

    id: str
    number: str
    status: str
    forbid: str | None = None

    @property
    def usable(self) -> bool:
        return self.status == "C" and (self.forbid or "A") == "A"


def org_filter(mapping: Any) -> tuple[str, str] | None:
    """(field key, org number) selecting the target rows in the org the mapping writes to, or None.

    Base data: the first ``org.use_fields`` key with the use org (``FUseOrgId.FNumber`` = ``org.use``);
    bills: the first ``org.create_fields`` key with the create org (``FSaleOrgId.FNumber`` = ``org.create``).
    """
    org = getattr(mapping, "org", None)
    if org is None:
        return None
    default = mapping.defaults.org
    if org.use_fields:
        return org.use_fields[0], str(org.use or org.create or default)
    if org.create_fields:
        return org.create_fields[0], str(org.create or default)
    return None


def selling_org(mapping: Any) -> str:
    """The org a bill mapping writes its documents in (e.g. ``FSaleOrgId``): where referenced base data must be
    usable."""
    org = getattr(mapping, "org", None)
    return str((org.create if org is not None else None) or mapping.defaults.org)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def states_by_number(hook: Any, form_id: str, numbers: Iterable[str], *, pk_key: str, number_field: str = "FNumber",
                     org: tuple[str, str] | None = None, base_data: bool = True) -> dict[str, DocState]:
    """The K3Cloud rows with these numbers (in ``org`` when given), keyed by :func:`number_key`."""
    wanted = list(dict.fromkeys(str(n).strip() for n in numbers if n and str(n).strip()))
    keys = [pk_key, number_field, "FDocumentStatus"] + (["FForbidStatus"] if base_data else [])
    out: dict[str, DocState] = {}
    for chunk in _chunks(wanted, QUERY_CHUNK):
        flt = F(number_field).isin(list(chunk))
        if org is not None:
            flt = flt & (F(org[0]) == org[1])
        for page in hook.execute_bill_query(form_id, keys, filter=flt):
            for row in page:
                out[number_key(row[number_field])] = DocState(
                    str(row[pk_key]), str(row[number_field]), str(row.get("FDocumentStatus") or ""),
                    str(row.get("FForbidStatus") or "") or None)
    return out


def states_by_ids(hook: Any, form_id: str, ids: Iterable[Any], *, pk_key: str, number_field: str) -> dict[str, DocState]:
    """The K3Cloud documents with these ids (ids are unique: no org filter), keyed by id."""
    wanted = []
    for i in dict.fromkeys(ids):
        try:
            wanted.append(int(i))
        except (TypeError, ValueError):
            continue
    out: dict[str, DocState] = {}
    for chunk in _chunks(wanted, QUERY_CHUNK):
        for page in hook.execute_bill_query(form_id, [pk_key, number_field, "FDocumentStatus"],
                                            filter=F(pk_key).isin(list(chunk))):
            for row in page:
                out[str(row[pk_key])] = DocState(str(row[pk_key]), str(row[number_field]),
                                                 str(row.get("FDocumentStatus") or ""))
    return out


def usable_numbers(hook: Any, form_id: str, pk_key: str, numbers: Iterable[str], org: str) -> set[str]:
    """Number keys of the base data among ``numbers`` that documents in ``org`` may reference: allocated to it,
    audited and not forbidden there. What is not usable is logged with its state."""
    numbers = list(numbers)
    states = states_by_number(hook, form_id, numbers, pk_key=pk_key, org=("FUseOrgId.FNumber", org))
    for n in numbers:
        state = states.get(number_key(n))
        if state is None:
            log.info("%s %s: not in K3Cloud org %s (missing or not allocated to it)", form_id, n, org)
        elif not state.usable:
            log.warning("%s %s in org %s is %s%s: documents wait until it is audited and enabled", form_id, n, org,
                        STATE_LABEL.get(state.status, state.status), ", forbidden" if state.forbid == "B" else "")
    return {k for k, s in states.items() if s.usable}


def reference_fields(mapping: Any) -> list[str]:
    """Header reference keys a mapping fills (``FGroup.FNumber`` …) whose save K3Cloud does not verify: without
    ``IsVerifyBaseDataField`` (false by default on real servers) a value K3Cloud cannot resolve is left empty
    and the save succeeds. Empty when the mapping asks K3Cloud to verify."""
    verify = mapping.save_options.as_dict().get("IsVerifyBaseDataField")
    if str(verify).lower() in ("true", "1"):
        return []
    return [f.target for f in mapping.fields
            if f.target.lower().endswith(".fnumber") and "[" not in f.target and f.target.count(".") == 1]


def sent_value(model: dict[str, Any], field_key: str) -> Any:
    head, _, sub = field_key.partition(".")
    value = model.get(head)
    return value.get(sub) if isinstance(value, dict) and sub else value


def empty_references(hook: Any, form_id: str, pk_key: str, sent: dict[str, dict[str, Any]],
                     fields: Sequence[str]) -> dict[str, list[tuple[str, Any]]]:
    """Read back the reference fields of documents just saved (one ExecuteBillQuery per 500 documents): id →
    [(field key, value sent)] for the references K3Cloud left empty or set to something else."""
    ids = [i for i in sent if str(i).isdigit()]
    out: dict[str, list[tuple[str, Any]]] = {}
    for chunk in _chunks(ids, QUERY_CHUNK):
        for page in hook.execute_bill_query(form_id, [pk_key, *fields], filter=F(pk_key).isin([int(i) for i in chunk])):
            for row in page:
                doc_id = str(row[pk_key])
                for key in fields:
                    want = sent.get(doc_id, {}).get(key)
                    if want in (None, "") or number_key(row.get(key) or "") == number_key(want):
                        continue
                    out.setdefault(doc_id, []).append((key, want))
    return out
