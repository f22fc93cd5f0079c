"""Simulator configuration: credentials (development defaults of simulators/README.md) and behaviour switches."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

MAX_LIMIT = 10000  # ExecuteBillQuery "Limit 不能超过10000"


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
    seed_demo: int = 0
    faults: dict[str, Any] = field(default_factory=dict)
    # Stand-in for a service plug-in: POST a signed doorbell here after Audit/UnAudit (outbound.py); "" = off.
    outbound_url: str = field(default_factory=lambda: os.environ.get("K3SIM_OUTBOUND_URL", ""))
    outbound_secret: str = field(default_factory=lambda: os.environ.get("K3SIM_OUTBOUND_SECRET", ""))
