"""The fault profile of simulators.md: latency, 502s, late answers, token loss, rate limit and quota.

Order applied to each API call (never to ``/_sim/``): latency → error_rate (HTTP 502, nothing done) →
quota (30003 / 30002) → rate_limit_per_20s (30004) → token_calls_per_min (14001, token path only) →
app_unauthorised (20020) / app_disabled (20021) → busy_rate (-1) → token_expire_every (20016, data calls only)
→ the call itself → timeout_rate (answer held back ``timeout_delay_s`` after the work is done).
``index_lag_s`` is applied by the query handlers: rows written in the last N seconds are not yet searchable.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from .clock import Clock
from .envelope import (
    APP_DISABLED,
    APP_UNAUTHORISED,
    CALL_LIMIT,
    NO_QUOTA,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    SYSTEM_BUSY,
    TOKEN_INVALID,
    TOKEN_INVALID_MSG,
    ApiError,
)

RATE_WINDOW_S = 20.0
NUMERIC_KEYS = {"latency_ms", "error_rate", "timeout_rate", "timeout_delay_s", "token_expire_every",
                "rate_limit_per_20s", "quota", "busy_rate", "index_lag_s", "token_calls_per_min",
                "per_record_ms", "per_row_ms"}  # the last two: ../service_time.py
RATE_KEYS = {"error_rate", "timeout_rate", "busy_rate"}
# Simulator extensions beyond simulators.md (spec §8.14): app authorisation state.
BOOL_KEYS = {"app_unauthorised", "app_disabled"}
# Keys of the shared profile that only the K3Cloud simulator acts on; accepted so one profile fits both.
K3CLOUD_ONLY = {"session_loss_every", "lock_conflict_rate"}
ALLOWED = NUMERIC_KEYS | BOOL_KEYS | K3CLOUD_ONLY | {"seed"}


class FaultProfileError(ValueError):
    pass


class Faults:
    def __init__(self, profile: dict[str, Any], clock: Clock, tenant: str) -> None:
        if not isinstance(profile, dict):
            raise FaultProfileError("the fault profile must be a JSON object")
        unknown = set(profile) - ALLOWED
        if unknown:
            raise FaultProfileError(f"unknown fault key(s) {sorted(unknown)}; allowed: {sorted(ALLOWED)}")
        for key in NUMERIC_KEYS & set(profile):
            value = profile[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise FaultProfileError(f"fault {key} must be a non-negative number, got {value!r}")
            if key in RATE_KEYS and value > 1:
                raise FaultProfileError(f"fault {key} is a share between 0 and 1, got {value!r}")
        for key in BOOL_KEYS & set(profile):
            if not isinstance(profile[key], bool):
                raise FaultProfileError(f"fault {key} must be true or false, got {profile[key]!r}")
        self.profile = dict(profile)
        self.clock = clock
        self.tenant = tenant
        self.rng = random.Random(profile.get("seed"))
        self.data_calls = 0
        self.windows: dict[str, deque[float]] = {}
        self.token_window: deque[float] = deque()
        self.quota_daily: int | None = int(profile["quota"]) if "quota" in profile else None
        self.quota_left = self.quota_daily
        self.no_quota = self.quota_daily == 0
        self.quota_day = self._day()

    def _day(self) -> int:
        """The tenant's calendar day (UTC+8); the daily quota refills at local midnight (spec §6.3)."""
        return int((self.clock.now() + 8 * 3600) // 86400)

    @property
    def index_lag_ms(self) -> int:
        return int(float(self.profile.get("index_lag_s", 0)) * 1000)

    @property
    def latency_s(self) -> float:
        return float(self.profile.get("latency_ms", 0)) / 1000

    def http_error(self) -> bool:
        rate = float(self.profile.get("error_rate", 0))
        return rate > 0 and self.rng.random() < rate

    def timeout_delay_s(self) -> float:
        """Seconds to hold the answer back after the work is done; 0 for a normal answer."""
        rate = float(self.profile.get("timeout_rate", 0))
        if rate > 0 and self.rng.random() < rate:
            return float(self.profile.get("timeout_delay_s", 30))
        return 0.0

    def gate(self, path: str, data_call: bool) -> ApiError | None:  # noqa: C901 - one step per profile key
        """The API-level fault for this call, if any; called once per call after the 502 check."""
        if self.quota_left is not None:
            if self._day() != self.quota_day:
                self.quota_day, self.quota_left = self._day(), self.quota_daily
            if self.no_quota:
                return ApiError(NO_QUOTA, f"{self.tenant} has no openapi quote currently!", "企业没有购买OpenAPI资源包")
            if self.quota_left <= 0:
                return ApiError(QUOTA_EXCEEDED, "openapi call quota of today is used up", "今日OpenAPI调用次数已用完")
            self.quota_left -= 1
        cap = self.profile.get("rate_limit_per_20s")
        if cap is not None:
            now = self.clock.now()
            window = self.windows.setdefault(path, deque())
            while window and now - window[0] >= RATE_WINDOW_S:
                window.popleft()
            if len(window) >= cap:
                return ApiError(RATE_LIMITED, "api call frequency exceeded the limit", "接口调用频率超限")
            window.append(now)
        per_min = self.profile.get("token_calls_per_min")
        if per_min is not None and not data_call:
            now = self.clock.now()
            while self.token_window and now - self.token_window[0] >= 60:
                self.token_window.popleft()
            if len(self.token_window) >= per_min:
                return ApiError(CALL_LIMIT, "token interface call over limit", "获取token接口调用超过限制")
            self.token_window.append(now)
        if self.profile.get("app_unauthorised"):
            return ApiError(APP_UNAUTHORISED, "app has no permission to this enterprise's data",
                            "应用没有获取该企业的数据的权限")
        if self.profile.get("app_disabled"):
            return ApiError(APP_DISABLED, "app is disabled in this enterprise", "应用在该企业已停用")
        busy = float(self.profile.get("busy_rate", 0))
        if busy > 0 and self.rng.random() < busy:
            return ApiError(SYSTEM_BUSY, "system busy", "系统繁忙")
        every = self.profile.get("token_expire_every")
        if data_call and every:
            self.data_calls += 1
            if self.data_calls % int(every) == 0:
                return ApiError(TOKEN_INVALID, TOKEN_INVALID_MSG, "corpAccessToken不存在或者已经过期")
        return None
