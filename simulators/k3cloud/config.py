"""Simulator configuration: credentials (development defaults of simulators/README.md) and behaviour switches."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

MAX_LIMIT = 10000  # ExecuteBillQuery "Limit 不能超过10000"
QUERY_ROW_CAP = 2000  # rows one ExecuteBillQuery/BillQuery call returns at most, whatever Limit says (production notes)

# Wire shapes that differ between real servers (README "Protocol switches"); settable at start and by /_sim/protocol.
LOCK_CONFLICT_SHAPES = ("msgcode0", "no_msgcode", "msgcode13")
SESSION_LOST_SHAPES = ("msgcode1", "text_only", "bare_list")
PROTOCOL_CHOICES: dict[str, tuple[str, ...]] = {
    "lock_conflict_shape": LOCK_CONFLICT_SHAPES,
    "session_lost_shape": SESSION_LOST_SHAPES,
}


@dataclass
class SimConfig:
    acct_id: str = "65a1b2c3d4e5f6"
    username: str = "apiuser"
    password: str = "sim-k3-password"
    app_id: str = "123456_AQIGAFMFDg9aBlNRV1dSXlMCCldUAVML"
    app_secret: str = "00112233445566778899aabbccddeeff"
    lcid: int = 2052
    user_id: int = 100001
    data_center_name: str = "模拟数据中心"
    # Verify X-Api-Signature too (real on-premise servers most likely only check X-Kd-*; spec §2.7).
    verify_api_signature: bool = False
    # "reject" (error) or "clamp" (serve 10000 rows) when ExecuteBillQuery asks for Limit > 10000.
    limit_policy: str = "reject"
    # QUERY invoke mode: number of QueryAsyncResult polls answered with Status 1 before the result (0 = immediate).
    query_pending_polls: int = 0
    # Forms with a bound workflow (审批流): form id -> "saved" | "submitted", where IsAutoSubmitAndAudit leaves
    # their documents (the audit fails; see README "Workflows").
    workflow_forms: dict[str, str] = field(default_factory=dict)
    seed_demo: int = 0
    faults: dict[str, Any] = field(default_factory=dict)
    # Stand-in for a service plug-in: POST a signed doorbell here after Audit/UnAudit (outbound.py); "" = off.
    outbound_url: str = field(default_factory=lambda: os.environ.get("K3SIM_OUTBOUND_URL", ""))
    outbound_secret: str = field(default_factory=lambda: os.environ.get("K3SIM_OUTBOUND_SECRET", ""))
    # --- protocol switches (both shapes exist in the wild; see README) -------------------------------------
    # Lock / network-control conflict (网控): MsgCode 0 with the text (default), no MsgCode key, or the documented 13.
    lock_conflict_shape: str = "msgcode0"
    # Session loss: MsgCode 1 (default), the text without MsgCode, or a bare [{"FieldName","Message","DIndex"}] list.
    session_lost_shape: str = "msgcode1"
    # LoginByAppSecret answers "KDSVCSessionId": null; only the kdservice-sessionid cookie carries the session.
    app_secret_null_session_id: bool = False
    # Newer servers omit empty keys (Errors, SuccessMessages, MsgCode 0, NeedReturnData) in success answers.
    omit_empty_keys: bool = False
    # Rows one query call returns at most (0 = no cap).
    query_row_cap: int = QUERY_ROW_CAP
    # Live sessions one user may hold (licences / online users); a login beyond it is refused (0 = unlimited).
    max_sessions_per_user: int = 20

    def protocol(self) -> dict[str, Any]:
        """The current protocol switches (what /_sim/protocol reads and writes)."""
        return {name: getattr(self, name) for name in PROTOCOL_KEYS}

    def set_protocol(self, values: dict[str, Any]) -> None:
        """Validate and apply protocol switches; unknown keys and bad values fail without changing anything."""
        unknown = set(values) - set(PROTOCOL_KEYS)
        if unknown:
            raise ValueError(f"unknown protocol keys: {sorted(unknown)}; allowed: {sorted(PROTOCOL_KEYS)}")
        for key, value in values.items():
            kind = PROTOCOL_KEYS[key]
            if key in PROTOCOL_CHOICES and value not in PROTOCOL_CHOICES[key]:
                raise ValueError(f"protocol {key!r} must be one of {PROTOCOL_CHOICES[key]}, got {value!r}")
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"protocol {key!r} must be true or false, got {value!r}")
            if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"protocol {key!r} must be a non-negative integer, got {value!r}")
        for key, value in values.items():
            setattr(self, key, value)


PROTOCOL_KEYS: dict[str, type] = {
    f.name: {"str": str, "bool": bool, "int": int}[f.type] for f in fields(SimConfig)
    if f.name in ("lock_conflict_shape", "session_lost_shape", "app_secret_null_session_id", "omit_empty_keys",
                  "query_row_cap", "max_sessions_per_user")
}
