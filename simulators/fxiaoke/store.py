"""In-memory state of one simulator instance: CRM records, employees, departments, sent messages.

Records are stored with their own fields only; ``__r`` companions are derived when a record is rendered, so a
renamed account shows its new name on every order, as the real CRM does.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from typing import Any

from .schema import (
    BOOL_TYPES,
    LIFE_STATUS_LABELS,
    LIST_TYPES,
    NUMERIC_TYPES,
    OBJECTS,
    REFERENCE_TYPES,
    SYSTEM_FIELD_NAMES,
    TIME_TYPES,
    FieldDef,
    ObjectDef,
)

# Fields a client may not set through create/update; the server owns them.
SERVER_OWNED = frozenset({
    "_id", "created_by", "create_time", "last_modified_by", "last_modified_time", "version", "is_deleted",
    "object_describe_api_name", "extend_obj_data_id",
})


class FieldValueError(ValueError):
    """A value that does not fit its field's type; the message names object, field and value."""


def coerce(obj: ObjectDef, fd: FieldDef, value: Any) -> Any:
    """Bring a client value into the stored shape of its field type (spec §3.9), or raise FieldValueError."""
    if value is None:
        return None
    t = fd.type
    where = f"{obj.api_name}.{fd.api_name}"
    if t in TIME_TYPES:
        try:
            return int(Decimal(str(value)))
        except (InvalidOperation, ValueError):
            raise FieldValueError(f"字段[{fd.label}]({where}) 需要毫秒时间戳, 收到 {value!r}") from None
    if t in NUMERIC_TYPES:
        if isinstance(value, bool):
            raise FieldValueError(f"字段[{fd.label}]({where}) 需要数字, 收到 {value!r}")
        try:
            Decimal(str(value))
        except InvalidOperation:
            raise FieldValueError(f"字段[{fd.label}]({where}) 需要数字, 收到 {value!r}") from None
        # Numbers and currency travel as strings (spec §3.9).
        return str(value)
    if t in LIST_TYPES:
        if t == "embedded_object_list":
            return list(value) if isinstance(value, list) else value
        if isinstance(value, (str, int)):
            value = [value]
        if not isinstance(value, list):
            raise FieldValueError(f"字段[{fd.label}]({where}) 需要列表, 收到 {value!r}")
        values = [str(v) for v in value]
        if t == "select_many" and fd.options:
            allowed = {v for v, _ in fd.options}
            bad = [v for v in values if v not in allowed]
            if bad:
                raise FieldValueError(f"字段[{fd.label}]({where}) 选项值 {bad} 不存在")
        return values
    if t in BOOL_TYPES:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise FieldValueError(f"字段[{fd.label}]({where}) 需要布尔值, 收到 {value!r}")
    if isinstance(value, (dict, list)):
        raise FieldValueError(f"字段[{fd.label}]({where}) 需要文本, 收到 {value!r}")
    value = str(value)
    if t in ("select_one", "record_type") and fd.options:
        if value not in {v for v, _ in fd.options}:
            raise FieldValueError(f"字段[{fd.label}]({where}) 选项值 {value!r} 不存在")
    return value


class Table(dict):
    """One object's rows by ``_id``; keeps its ids sorted for the deep-paging queries (``query.id_page``), sorted
    again only after the set of ids changed (a query must not sort 20,000 ids per page)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sorted: list[str] | None = None

    def sorted_ids(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self)
        return self._sorted

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            self._sorted = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._sorted = None
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self._sorted = None
        return super().pop(*args)

    def popitem(self) -> Any:
        self._sorted = None
        return super().popitem()

    def clear(self) -> None:
        self._sorted = None
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._sorted = None
        super().update(*args, **kwargs)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self._sorted = None
        return super().setdefault(key, default)


class Store:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: Table() for name in OBJECTS}
        # Bumped by every call that may change data (app._answer, the admin router); query.id_page's cache of
        # matched ids is valid for one version only.
        self.version = 0
        self.match_cache: dict[Any, tuple[int, list[str]]] = {}
        self.employees: dict[str, dict[str, Any]] = {}
        self.departments: dict[int, dict[str, Any]] = {}
        self.messages: list[dict[str, Any]] = []
        self._id_counter = 0
        self.id_format = "hex32"  # kept in step with the id_format switch by SimState
        self._name_counters: dict[str, int] = {}

    # --- ids ---------------------------------------------------------------------------------------
    def new_id(self, now_ms: int) -> str:
        """A new ``_id`` in the ``id_format`` switch's shape.

        ``hex24``: ObjectId-like (seconds, a fixed "machine" part, a counter), so ids grow with time.
        ``hex32``: 32 lower-case hex characters that do not sort by creation time, as the UUID-like ids of
        many tenants; derived from the counter so a given sequence of calls gives the same ids.
        """
        self._id_counter += 1
        if self.id_format == "hex24":
            return f"{(now_ms // 1000) & 0xFFFFFFFF:08x}5e1a0c{self._id_counter:010x}"
        return hashlib.md5(f"fxsim-id-{self._id_counter}".encode(), usedforsecurity=False).hexdigest()

    def next_name(self, obj: ObjectDef, now_ms: int) -> str:
        count = self._name_counters.get(obj.api_name, 0) + 1
        self._name_counters[obj.api_name] = count
        return f"{obj.name_prefix}{count:06d}"

    # --- access ------------------------------------------------------------------------------------
    def table(self, api_name: str) -> dict[str, dict[str, Any]]:
        return self.records[api_name]

    def get(self, api_name: str, record_id: str) -> dict[str, Any] | None:
        return self.records[api_name].get(record_id)

    def employee_name(self, open_user_id: str) -> str | None:
        emp = self.employees.get(open_user_id)
        return emp["name"] if emp else None

    # --- building records --------------------------------------------------------------------------
    def build(self, obj: ObjectDef, given: dict[str, Any], *, now_ms: int, user: str,
              keep_system: bool) -> dict[str, Any]:
        """A complete stored record from client fields plus system defaults.

        :param keep_system: seeding keeps given ``_id``/times/version; API creates never do.
        """
        rec: dict[str, Any] = {}
        for key, value in given.items():
            fd = obj.fields.get(key)
            if fd is None or (not keep_system and key in SERVER_OWNED):
                continue
            rec[key] = coerce(obj, fd, value)
        if not rec.get("_id"):
            rec["_id"] = self.new_id(now_ms)
        if obj.name_prefix and not rec.get("name"):
            rec["name"] = self.next_name(obj, now_ms)
        owner = rec.get("owner") or [user]
        rec["owner"] = owner
        rec.setdefault("created_by", [user])
        rec.setdefault("last_modified_by", list(rec["created_by"]))
        rec.setdefault("create_time", now_ms)
        rec.setdefault("last_modified_time", now_ms)
        rec.setdefault("life_status", "normal")
        rec.setdefault("lock_status", "0")
        rec.setdefault("is_deleted", False)
        rec.setdefault("record_type", "default__c")
        rec.setdefault("version", "1")
        emp = self.employees.get(owner[0])
        if emp:
            dept = str(emp["mainDepartmentIds"][0])
            rec.setdefault("owner_department_id", dept)
            rec.setdefault("owner_department", self.departments[int(dept)]["name"])
            rec.setdefault("data_own_department", [dept])
        rec.setdefault("relevant_team", [{"teamMemberEmployee": owner, "teamMemberRole": "1",
                                          "teamMemberPermissionType": "2"}])
        rec["object_describe_api_name"] = obj.api_name
        return {"_id": rec.pop("_id"), **rec}

    def render(self, obj: ObjectDef, rec: dict[str, Any], *, include_null: bool = False,
               projection: list[str] | None = None) -> dict[str, Any]:
        """The record as the query API returns it: companions added, nulls omitted unless ``include_null``."""
        out = dict(rec)
        for key, fd in obj.fields.items():
            if fd.type in REFERENCE_TYPES:
                target_id = rec.get(key)
                target = self.records[fd.target].get(target_id) if (fd.target and target_id) else None
                out[key + "__r"] = target.get("name") if target else None
            elif fd.type == "employee" and key in ("owner", "created_by", "last_modified_by"):
                ids = rec.get(key) or []
                out[key + "__r"] = self.employee_name(ids[0]) if ids else None
        out["life_status__r"] = LIFE_STATUS_LABELS.get(rec.get("life_status", ""), None)
        if include_null:
            for key in obj.fields:
                out.setdefault(key, None)
        if projection:
            keep = set(projection) | {"_id"}
            out = {k: v for k, v in out.items() if k in keep}
        if not include_null:
            out = {k: v for k, v in out.items() if v is not None}
        return out

    def known_field(self, obj: ObjectDef, name: str) -> bool:
        return name in obj.fields or name in SYSTEM_FIELD_NAMES
