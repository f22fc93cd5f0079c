"""CRM v2 handlers: object list/describe and data query/get/create/update/invalid/delete/recover/changeOwner,
findOne/findSimple (spec §3). Each handler returns the fields to merge into a success envelope."""

from __future__ import annotations

from typing import Any, Callable

from .envelope import NOT_FOUND, STATE_CONFLICT, VALIDATION_FAILED, ApiError, param_error
from .query import id_page, matching, page_bounds, projection_of, search_info
from . import rollup
from .schema import DETAILS, OBJECTS, REFERENCE_TYPES, ObjectDef
from .state import CallContext, SimState
from .store import SERVER_OWNED, FieldValueError, coerce

Handler = Callable[[SimState, CallContext, dict[str, Any]], dict[str, Any]]


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict):
        raise param_error("data is required and must be an object")
    return data


def _object(sim: SimState, ctx: CallContext, api_name: Any, *, any_prefix: bool = False) -> ObjectDef:
    if not isinstance(api_name, str) or not api_name:
        raise param_error("dataObjectApiName is required")
    obj = OBJECTS.get(api_name)
    if obj is None:
        raise ApiError(NOT_FOUND, f"对象[{api_name}]不存在", f"object {api_name} does not exist")
    if sim.switches.strict_prefix and not any_prefix and obj.custom != ctx.custom_prefix:
        want = "/cgi/crm/custom/v2/" if obj.custom else "/cgi/crm/v2/"
        raise param_error(f"{api_name} must be called under {want}")
    return obj


def _record(sim: SimState, obj: ObjectDef, record_id: Any) -> dict[str, Any]:
    rec = sim.store.get(obj.api_name, record_id) if isinstance(record_id, str) else None
    if rec is None:
        raise ApiError(NOT_FOUND, f"数据[{record_id}]不存在或已被删除", f"{obj.api_name} {record_id} not found")
    return rec


def _touch(sim: SimState, ctx: CallContext, rec: dict[str, Any], now_ms: int) -> None:
    """Every write sets last_modified_time = now and bumps the version counter (spec §8.8)."""
    rec["last_modified_time"] = now_ms
    rec["last_modified_by"] = [ctx.user]
    rec["version"] = str(int(rec.get("version", "0")) + 1)


def _check_values(sim: SimState, obj: ObjectDef, values: dict[str, Any], name: str) -> dict[str, Any]:
    """Coerce client values and validate lookups; unknown keys are ignored as the platform does."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        fd = obj.fields.get(key)
        if fd is None or key in SERVER_OWNED:
            continue
        try:
            out[key] = coerce(obj, fd, value)
        except FieldValueError as exc:
            raise ApiError(VALIDATION_FAILED, str(exc)) from None
        if fd.type in REFERENCE_TYPES and out[key] is not None and fd.target:
            if out[key] not in sim.store.table(fd.target):
                raise ApiError(VALIDATION_FAILED, f"数据[{name}]的字段[{fd.label}]关联关系不存在-201112011")
        if fd.type == "employee" and out[key]:
            unknown = [u for u in out[key] if u not in sim.store.employees]
            if unknown:
                raise ApiError(VALIDATION_FAILED, f"数据[{name}]的字段[{fd.label}]人员{unknown}不存在")
    return out


def _required(sim: SimState, obj: ObjectDef, rec: dict[str, Any]) -> None:
    """The describe's required fields plus the tenant's own (the ``required_fields`` switch)."""
    extra = set(sim.switches.required_fields.get(obj.api_name, ()))
    missing = [fd for fd in obj.fields.values()
               if (fd.required or fd.api_name in extra) and rec.get(fd.api_name) in (None, "", [])]
    if missing:
        raise ApiError(VALIDATION_FAILED, f"{obj.label}的必填字段[{','.join(fd.label for fd in missing)}]不能为空",
                       f"{obj.api_name}: required field(s) {', '.join(fd.api_name for fd in missing)} missing")


def _new(sim: SimState, ctx: CallContext, obj: ObjectDef, given: dict[str, Any], now_ms: int,
         keep_time: bool) -> dict[str, Any]:
    values = _check_values(sim, obj, given, str(given.get("name", "")))
    if keep_time:  # hasSpecifyTime: the client may set create/modify times
        for key in ("create_time", "last_modified_time"):
            if given.get(key) is not None:
                values[key] = coerce(obj, obj.fields[key], given[key])
    values.setdefault("owner", [ctx.user])
    rec = sim.store.build(obj, values, now_ms=now_ms, user=ctx.user or "", keep_system=True)
    rec["created_by"] = rec["last_modified_by"] = [ctx.user]
    _required(sim, obj, rec)
    return rec


def object_list(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    objects = [{"describeApiName": o.api_name, "describeDisplayName": o.label,
                "defineType": "custom" if o.custom else "package", "isActive": True} for o in OBJECTS.values()]
    return {"data": {"objects": objects}}


def describe(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    obj = _object(sim, ctx, body.get("apiName") or data.get("apiName"))
    return {"data": {"describe": obj.describe()}}


def _searchable(sim: SimState, obj: ObjectDef, sqi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Rows a search sees: the ``index_lag_s`` fault hides very recent writes (§3.5); with the
    ``query_includes_invalid`` switch off, voided rows are left out unless a filter names ``life_status``."""
    table = sim.store.table(obj.api_name)
    keep = _visible(sim, sqi)
    return table if keep is None else {k: r for k, r in table.items() if keep(r)}


def _visible(sim: SimState, sqi: dict[str, Any]) -> Callable[[dict[str, Any]], bool] | None:
    """What :func:`_searchable` keeps, as a test of one row (None: every row)."""
    lag = sim.faults.index_lag_ms
    cutoff = sim.clock.now_ms() - lag if lag else None
    hide_invalid = not sim.switches.query_includes_invalid and not _filters_on(sqi, "life_status")
    if cutoff is None and not hide_invalid:
        return None
    return lambda r: ((cutoff is None or r.get("last_modified_time", 0) <= cutoff)
                      and not (hide_invalid and r.get("life_status") == "invalid"))


def _filters_on(sqi: dict[str, Any], field_name: str) -> bool:
    filters = sqi.get("filters") or []
    return isinstance(filters, list) and any(isinstance(f, dict) and f.get("field_name") == field_name
                                             for f in filters)


def query(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj = _object(sim, ctx, data.get("dataObjectApiName"))
    sqi = search_info(data)
    offset, limit = page_bounds(sqi, strict_limit=sim.switches.strict_limit)
    projection = projection_of(sqi.get("fieldProjection"))
    include_null = _flag(body.get("includeNull", data.get("includeNull")), False)
    with_total = _flag(data.get("find_explicit_total_num", body.get("find_explicit_total_num")), True)
    visible = _visible(sim, sqi)
    store = sim.store
    # The index-lag fault hides rows by the clock: no cache then. The invalid switch is part of the key.
    cache = (store.match_cache.setdefault(("invalid hidden" if visible else "all"), {})
             if not sim.faults.index_lag_ms else None)
    found = id_page(obj, store.table(obj.api_name), sqi, visible or (lambda r: True), offset=offset, limit=limit,
                    with_total=with_total, cache=cache, version=store.version)
    if found is None:
        rows = matching(obj, _searchable(sim, obj, sqi), sqi)
        found = rows[offset:offset + limit], len(rows) if with_total else 0
    page = [sim.store.render(obj, r, include_null=include_null, projection=projection) for r in found[0]]
    return {"data": {"dataList": page, "offset": offset, "limit": limit, "total": found[1]}}


def find_simple(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj = _object(sim, ctx, data.get("dataObjectApiName"), any_prefix=True)
    sqi = search_info(data)
    sqi.setdefault("limit", 100)
    offset, limit = page_bounds(sqi, strict_limit=sim.switches.strict_limit)
    rows = matching(obj, _searchable(sim, obj, sqi), sqi)
    projection = projection_of(data.get("field_projection") or sqi.get("fieldProjection"))
    page = [sim.store.render(obj, r, projection=projection) for r in rows[offset:offset + limit]]
    return {"data": {"dataList": page, "offset": offset, "limit": limit, "total": len(rows)}}


def find_one(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj = _object(sim, ctx, data.get("dataObjectApiName"), any_prefix=True)
    sqi = search_info(data)
    rows = matching(obj, _searchable(sim, obj, sqi), sqi)
    projection = projection_of(data.get("field_projection"))
    return {"data": {"objectData": sim.store.render(obj, rows[0], projection=projection) if rows else None}}


def get(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj = _object(sim, ctx, data.get("dataObjectApiName"))
    rec = _record(sim, obj, data.get("objectDataId"))
    include_null = _flag(body.get("includeNull", data.get("includeNull")), False)
    return {"data": sim.store.render(obj, rec, include_null=include_null)}


def _object_data(sim: SimState, ctx: CallContext, data: dict[str, Any]) -> tuple[ObjectDef, dict[str, Any]]:
    od = data.get("object_data")
    if not isinstance(od, dict):
        raise param_error("data.object_data is required and must be an object")
    if not od.get("dataObjectApiName"):
        raise param_error("dataObjectApiName must be given inside data.object_data")
    return _object(sim, ctx, od["dataObjectApiName"]), od


def create(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj, od = _object_data(sim, ctx, data)
    now = sim.clock.now_ms()
    keep_time = _flag(body.get("hasSpecifyTime"), False)
    master = _new(sim, ctx, obj, od, now, keep_time)
    if sim.switches.duplicate_rule and obj.api_name == "AccountObj":
        for other in sim.store.table(obj.api_name).values():
            if other.get("name") == master.get("name") and other.get("life_status") != "invalid":
                raise ApiError(VALIDATION_FAILED, f"duplicate: 客户名称[{master['name']}]已存在",
                               "duplicate data hit the duplicate-check rule (查重规则)")
    details = data.get("details") or {}
    if not isinstance(details, dict):
        raise param_error("details must be a map of detail apiName to a list of records")
    children: list[tuple[ObjectDef, dict[str, Any]]] = []
    for api_name, lines in details.items():
        if api_name not in DETAILS.get(obj.api_name, ()):
            raise param_error(f"{api_name} is not a detail object of {obj.api_name}")
        if not isinstance(lines, list) or not all(isinstance(x, dict) for x in lines):
            raise param_error(f"details.{api_name} must be a list of records")
        detail = OBJECTS[api_name]
        for line in lines:
            # The master is not stored yet: check the line without its master link, then attach it.
            own = {k: v for k, v in line.items() if k != detail.master_field}
            values = _check_values(sim, detail, own, str(line.get("name", "")))
            values["owner"] = values.get("owner") or master["owner"]
            values[detail.master_field] = master["_id"]
            child = sim.store.build(detail, values, now_ms=now, user=ctx.user or "", keep_system=True)
            child["created_by"] = child["last_modified_by"] = [ctx.user]
            _fill_line(detail, child)
            _required(sim, detail, child)
            children.append((detail, child))
    if obj.api_name == "SalesOrderObj" and not master.get("order_amount") and children:
        master["order_amount"] = f"{sum(float(c.get('subtotal') or 0) for _, c in children):.2f}"
    in_approval = sim.switches.approval_objects.get(obj.api_name)
    if in_approval:  # a mandatory approval flow: the record and its lines wait, locked, until approved
        for rec in (master, *(c for _, c in children)):
            rec["life_status"], rec["lock_status"] = in_approval, "1"
    sim.store.table(obj.api_name)[master["_id"]] = master
    for detail, child in children:
        sim.store.table(detail.api_name)[child["_id"]] = child
    rollup.refresh(sim.store, rollup.order_ids_of(sim.store, obj.api_name, [master]))
    return {"dataId": master["_id"]}


def _fill_line(detail: ObjectDef, line: dict[str, Any]) -> None:
    """Order lines without a subtotal get quantity × sales_price, as the CRM's formula field does."""
    if detail.api_name == "SalesOrderProductObj" and not line.get("subtotal") and line.get("sales_price"):
        line["subtotal"] = f"{float(line['quantity']) * float(line['sales_price']):.2f}"


def update(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj, od = _object_data(sim, ctx, data)
    rec = _record(sim, obj, od.get("_id"))
    if rec.get("life_status") == "invalid":
        raise ApiError(STATE_CONFLICT, f"数据[{rec.get('name')}]已作废，不能编辑")
    # owner changes only through changeOwner; life_status only through invalid/recover (spec §3.7).
    changes = {k: v for k, v in od.items() if k not in ("owner", "life_status", "_id", "dataObjectApiName")}
    unknown = sorted(k for k in changes if k not in obj.fields)
    if unknown:  # [L] an update naming a field the object lacks is refused (README "update"), nothing stored
        raise ApiError(VALIDATION_FAILED, f"{obj.label}的字段{unknown}不存在",
                       f"{obj.api_name}: unknown field(s) {', '.join(unknown)}")
    values = _check_values(sim, obj, changes, str(rec.get("name", "")))
    merged = {**rec, **values}
    _required(sim, obj, merged)
    before = rollup.order_ids_of(sim.store, obj.api_name, [rec])
    rec.update(values)
    for key in [k for k, v in rec.items() if v is None]:
        del rec[key]
    _touch(sim, ctx, rec, sim.clock.now_ms())
    rollup.refresh(sim.store, before | rollup.order_ids_of(sim.store, obj.api_name, [rec]))
    return {"dataId": rec["_id"]}


def _with_details(sim: SimState, obj: ObjectDef, rec: dict[str, Any]) -> list[tuple[ObjectDef, dict[str, Any]]]:
    out = [(obj, rec)]
    for api_name in DETAILS.get(obj.api_name, ()):
        detail = OBJECTS[api_name]
        out += [(detail, r) for r in sim.store.table(api_name).values() if r.get(detail.master_field) == rec["_id"]]
    return out


def _id_list(data: dict[str, Any]) -> list[str]:
    ids = data.get("idList")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise param_error("idList must be a non-empty list of ids")
    return ids


def invalid(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj = _object(sim, ctx, data.get("dataObjectApiName"))
    rec = _record(sim, obj, data.get("object_data_id") or data.get("objectDataId"))
    if rec.get("life_status") == "invalid":
        raise ApiError(STATE_CONFLICT, f"数据[{rec.get('name')}]已作废")
    now = sim.clock.now_ms()
    for _, r in _with_details(sim, obj, rec):  # voiding a master voids its lines
        if r.get("life_status") != "invalid":
            r["life_status"] = "invalid"
            _touch(sim, ctx, r, now)
    rollup.refresh(sim.store, rollup.order_ids_of(sim.store, obj.api_name, [rec]))
    return {}


def delete(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj = _object(sim, ctx, data.get("dataObjectApiName"))
    records = [_record(sim, obj, i) for i in _id_list(data)]
    live = [r.get("name") or r["_id"] for r in records if r.get("life_status") != "invalid"]
    if live:
        raise ApiError(STATE_CONFLICT, f"数据{live}未作废，只能删除已作废的数据", "only voided (invalid) records can be deleted")
    touched = rollup.order_ids_of(sim.store, obj.api_name, records)
    for rec in records:
        for o, r in _with_details(sim, obj, rec):
            sim.store.table(o.api_name).pop(r["_id"], None)
    rollup.refresh(sim.store, touched)
    return {}


def recover(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj = _object(sim, ctx, data.get("dataObjectApiName"))
    records = [_record(sim, obj, i) for i in _id_list(data)]
    live = [r.get("name") or r["_id"] for r in records if r.get("life_status") != "invalid"]
    if live:
        raise ApiError(STATE_CONFLICT, f"数据{live}未作废，无需恢复")
    now = sim.clock.now_ms()
    for rec in records:
        for _, r in _with_details(sim, obj, rec):
            if r.get("life_status") == "invalid":
                r["life_status"] = "normal"
                _touch(sim, ctx, r, now)
    rollup.refresh(sim.store, rollup.order_ids_of(sim.store, obj.api_name, records))
    return {}


def change_owner(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    data = _data(body)
    obj = _object(sim, ctx, data.get("dataObjectApiName"))
    items = data.get("Data")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise param_error("Data must be a non-empty list of {objectDataId, ownerId}")
    planned = []
    for item in items:
        rec = _record(sim, obj, item.get("objectDataId"))
        owners = item.get("ownerId")
        owners = [owners] if isinstance(owners, str) else owners
        if not isinstance(owners, list) or len(owners) != 1:
            raise param_error("ownerId must be a list with one open user id")
        if owners[0] not in sim.store.employees:
            raise ApiError(VALIDATION_FAILED, f"员工[{owners[0]}]不存在")
        planned.append((rec, [str(owners[0])]))
    now = sim.clock.now_ms()
    for rec, owners in planned:
        rec["owner"] = owners
        _touch(sim, ctx, rec, now)
    return {}


HANDLERS: dict[str, Handler] = {
    "query": query, "get": get, "create": create, "update": update, "invalid": invalid, "delete": delete,
    "recover": recover, "changeOwner": change_owner,
}
CUSTOM_ONLY: dict[str, Handler] = {"findOne": find_one, "findSimple": find_simple}
