"""Simulator configuration: credentials (development defaults from simulators/README.md) and behaviour switches."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .schema import OBJECTS

# Development defaults, printed on start; not secrets (simulators/README.md).
DEFAULT_APP_ID = "FSAID_131b579"
DEFAULT_APP_SECRET = "sim-app-secret-0123456789abcdef"
DEFAULT_PERMANENT_CODE = "SIMPERMANENTCODE0123456789ABCDEF"
DEFAULT_CORP_ID = "FSCID_00000000000000000000000000C0FFEE"
DEFAULT_OPEN_USER_ID = "FSUID_0000000000000000000000000000A001"
DEFAULT_MOBILE = "13800000000"

# Demo records are stamped relative to this instant (2025-01-01 00:00 +08:00) so that a given N always yields
# the same records; callers wanting "recent" demo data pass another base time.
DEFAULT_DEMO_BASE_MS = 1735660800000


ID_FORMATS = ("hex32", "hex24")
APPROVAL_STATES = ("under_review", "ineffective")


@dataclass(frozen=True)
class Switches:
    """Behaviours the spec leaves open (§10) or that differ between tenants; strict ones are opt-in."""

    strict_limit: bool = False  # limit > 100: clamp (False) or parameter error (True)
    strict_prefix: bool = False  # custom object on the preset path (or vice versa): serve (False) or error (True)
    duplicate_rule: bool = False  # AccountObj create with an existing name fails with a "duplicate" message
    # `_id` shape of new records: 32 hex (most real tenants) or the 24-hex ObjectId form (older tenants).
    id_format: str = "hex32"
    # Whether a query with no life_status filter returns voided (invalid) rows; undocumented (spec §3.5, §10).
    query_includes_invalid: bool = True
    # Objects under a mandatory approval flow: {apiName: state a new record starts in (under_review/ineffective)}.
    approval_objects: dict = field(default_factory=dict)
    # Whether passing an approval sets last_modified_time/version (True) or only life_status (False).
    approval_touches: bool = True
    # Tenant-required fields beyond the describe's own: {apiName: [field apiName, ...]}.
    required_fields: dict = field(default_factory=dict)

    def updated(self, **changes: Any) -> "Switches":
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown switch(es) {sorted(unknown)}; allowed: {sorted(self.__dataclass_fields__)}")
        out: dict[str, Any] = {}
        for key, value in changes.items():
            default = self.__dataclass_fields__[key].default
            if key == "id_format":
                if value not in ID_FORMATS:
                    raise ValueError(f"id_format must be one of {list(ID_FORMATS)}, got {value!r}")
                out[key] = value
            elif key in ("approval_objects", "required_fields"):
                out[key] = _object_map(key, value)
            else:
                if not isinstance(value, bool) and isinstance(default, bool):
                    raise ValueError(f"{key} must be true or false, got {value!r}")
                out[key] = bool(value)
        return replace(self, **out)

    def as_json(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(self).items()}


def _object_map(key: str, value: Any) -> dict[str, Any]:
    """Validate ``approval_objects`` / ``required_fields`` against the object describes."""
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object keyed by object apiName, got {value!r}")
    out: dict[str, Any] = {}
    for api_name, item in value.items():
        obj = OBJECTS.get(api_name)
        if obj is None:
            raise ValueError(f"{key}: unknown object {api_name!r}; known: {sorted(OBJECTS)}")
        if key == "approval_objects":
            if item not in APPROVAL_STATES:
                raise ValueError(f"approval_objects.{api_name} must be one of {list(APPROVAL_STATES)}, got {item!r}")
            out[api_name] = item
        else:
            if not isinstance(item, list) or not all(isinstance(f, str) for f in item):
                raise ValueError(f"required_fields.{api_name} must be a list of field apiNames, got {item!r}")
            bad = [f for f in item if f not in obj.fields]
            if bad:
                raise ValueError(f"required_fields.{api_name}: {api_name} has no field(s) {bad}")
            out[api_name] = list(item)
    return out


@dataclass(frozen=True)
class SimConfig:
    app_id: str = DEFAULT_APP_ID
    app_secret: str = DEFAULT_APP_SECRET
    permanent_code: str = DEFAULT_PERMANENT_CODE
    corp_id: str = DEFAULT_CORP_ID
    open_user_id: str = DEFAULT_OPEN_USER_ID
    mobile: str = DEFAULT_MOBILE
    # Enterprise account ("ea"), used in traceIds and the 30003 message.
    enterprise_account: str = "simcorp"
    seed_demo: int = 0
    demo_base_ms: int = DEFAULT_DEMO_BASE_MS
    faults: dict = field(default_factory=dict)
    switches: Switches = field(default_factory=Switches)
