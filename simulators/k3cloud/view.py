"""View output (ORM property names, §3.7) and Save's ``NeedReturnData``."""

from __future__ import annotations

from typing import Any

from .metadata import Entity, Field, Form
from .store import Doc, Store, ref_number


def _ml(text: Any, lcid: int) -> list[dict[str, Any]]:
    return [{"Key": lcid, "Value": "" if text is None else str(text)}]


def _ref_object(store: Store, f: Field, value: Any, lcid: int, org: str | None = None
                ) -> tuple[int, dict[str, Any] | None]:
    doc = store.ref_doc(f.ref, value, f.ref_category, org)  # allocated base data: the org's own row
    if doc is None:
        return 0, None
    return doc.id, {"Id": doc.id, "msterID": doc.id, "Number": doc.number, "Name": _ml(doc.name, lcid)}


def _orm_fields(store: Store, fields: dict[str, Field], pk: str, row: dict[str, Any], lcid: int,
                org: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields.values():
        if f.key == pk:
            out["Id"] = row.get(pk, 0)
        elif f.kind == "r":
            ref_id, obj = _ref_object(store, f, row.get(f.key), lcid, org)
            out[f"{f.orm}_Id"] = ref_id
            out[f.orm] = obj
        elif f.kind == "m":
            out[f.orm] = _ml(row.get(f.key), lcid)
        elif f.key in row:
            out[f.orm] = row[f.key]
    out.update({k: v for k, v in row.items() if k.upper().startswith("F_")})
    return out


def view_document(store: Store, doc: Doc, lcid: int = 2052) -> dict[str, Any]:
    form = doc.form
    org = ref_number(doc.data.get(form.org_key)) if form.org_key else None
    out = _orm_fields(store, form.header, form.pk, doc.data, lcid, org)
    if form.number_key == "FNumber":
        out["Number"] = doc.number
    for ent in form.entities.values():
        rows = doc.data.get(ent.key)
        rows = rows if isinstance(rows, list) else ([rows] if rows else [])
        out[ent.orm] = [_entity_row(store, ent, row, n, lcid, org) for n, row in enumerate(rows, start=1)]
    return out


def _entity_row(store: Store, ent: Entity, row: dict[str, Any], seq: int, lcid: int,
                org: str | None = None) -> dict[str, Any]:
    if ent.loose:
        return {"Id": row.get(ent.pk, 0), "Seq": seq, **{k: v for k, v in row.items() if k != ent.pk}}
    return {"Seq": seq, **_orm_fields(store, ent.fields, ent.pk, row, lcid, ref_number(row.get("FStockOrgId")) or org)}


def need_return_data(form: Form, doc: Doc, fields: list[str]) -> dict[str, Any]:
    """Requested keys in Save-model shape; ``Entity.Field`` returns that field (and the entry id) per row."""
    out: dict[str, Any] = {}
    for raw in fields:
        key = str(raw).strip()
        head, _, sub = key.partition(".")
        ent = form.entity(head)
        if ent is not None and ent.multi:
            rows = out.setdefault(ent.key, [{ent.pk: r.get(ent.pk)} for r in doc.data.get(ent.key) or []])
            for target, row in zip(rows, doc.data.get(ent.key) or []):
                if sub:
                    f = ent.get(sub)
                    if f is not None:
                        target[f.key] = row.get(f.key)
                else:
                    target.update(row)
            continue
        if key.lower() == form.pk.lower():
            out[form.pk] = doc.id
            continue
        f = form.header_field(key)
        if f is not None:
            out[f.key] = doc.data.get(f.key)
        elif ent is not None:
            out[ent.key] = doc.data.get(ent.key)
        else:
            found = form.lookup(key)
            if found and found[0] is not None and not found[0].multi:
                out[found[1].key] = (doc.data.get(found[0].key) or {}).get(found[1].key)
            elif key in doc.data:
                out[key] = doc.data[key]
    return out
