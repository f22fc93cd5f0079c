"""corpAccessToken issue and validation (spec §2.1–2.2, §8.3–8.4).

One app (appId + permanentCode) per simulator. A token request within 6600 s of the current token's issue
returns that token with a smaller ``expiresIn``; later requests issue a new token while older ones live on to
their own 7200 s end.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .clock import Clock
from .config import SimConfig
from .envelope import (
    APP_ID_WRONG,
    PARAM_MISSING_SECRET,
    PERMANENT_CODE_WRONG,
    TOKEN_INVALID,
    TOKEN_INVALID_MSG,
    TOKEN_MISSING,
    ApiError,
)

LIFETIME_S = 7200
REISSUE_AFTER_S = 6600


@dataclass
class Token:
    value: str
    issued_at: float


class TokenManager:
    def __init__(self, config: SimConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.tokens: dict[str, Token] = {}
        self.current: Token | None = None
        self.issued_count = 0

    def issue(self, body: dict) -> tuple[str, int]:
        """Check the app credentials and return (token, expiresIn)."""
        cfg = self.config
        secret = body.get("appSecret")
        if not isinstance(secret, str) or not secret:
            raise self._bad_secret()
        if body.get("appId") != cfg.app_id:
            raise ApiError(APP_ID_WRONG, "appId or appSecret is wrong", "appId或appSecret错误")
        if secret != cfg.app_secret:
            raise self._bad_secret()
        if body.get("permanentCode") != cfg.permanent_code:
            raise ApiError(PERMANENT_CODE_WRONG, "permanentCode is wrong", "永久授权码错误")
        now = self.clock.now()
        cur = self.current
        if cur is None or cur.value not in self.tokens or now - cur.issued_at >= REISSUE_AFTER_S:
            cur = Token(secrets.token_hex(16).upper(), now)
            self.tokens[cur.value] = cur
            self.current = cur
            self.issued_count += 1
        remaining = max(0, int(cur.issued_at + LIFETIME_S - now))
        return cur.value, remaining

    @staticmethod
    def _bad_secret() -> ApiError:
        return ApiError(PARAM_MISSING_SECRET, "the parameter appSecret is missing or illegal", "缺少参数或参数不合法")

    def check(self, body: dict) -> None:
        """Validate corpAccessToken + corpId of a data call."""
        token = body.get("corpAccessToken")
        if token in (None, ""):
            raise ApiError(TOKEN_MISSING, "corpAccessToken为必填项，不能为空")
        found = self.tokens.get(token) if isinstance(token, str) else None
        expired = found is None or self.clock.now() - found.issued_at >= LIFETIME_S
        if expired or body.get("corpId") != self.config.corp_id:
            raise ApiError(TOKEN_INVALID, TOKEN_INVALID_MSG, "corpAccessToken不存在或者已经过期")

    def expire_all(self) -> None:
        self.tokens.clear()
        self.current = None
