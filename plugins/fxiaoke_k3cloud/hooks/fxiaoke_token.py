"""Process-wide corpAccessToken cache, shared by every FxiaokeHook in the process.

Tokens are issued per app (spec §2.1): the same token comes back for 6600 s after issue, a new one after
that, and the token endpoint allows ≤ 10 calls per minute and no concurrency. So one cache per process,
keyed by (host, appId, permanentCode), with token calls serialised under a lock and rate-limited.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from fxiaoke_k3cloud.hooks.fxiaoke_throttle import SlidingWindowThrottle

# Refresh policy (§9.2): renew before the server would hand out a new token anyway, and well before expiry.
MAX_TOKEN_AGE_S = 6600.0
MIN_REMAINING_S = 600.0
# Token endpoint: ≤ 10 calls per minute (§2.1, §6.3); stay just under it.
TOKEN_CALLS_PER_MINUTE = 9

TokenKey = tuple[str, str, str]  # (host, appId, permanentCode)
Clock = Callable[[], float]


@dataclass(frozen=True)
class CorpToken:
    """One corpAccessToken as fetched, with the local monotonic time it was fetched at."""

    access_token: str
    corp_id: str
    expires_in: float
    fetched_at: float

    def needs_refresh(self, now: float) -> bool:
        age = now - self.fetched_at
        remaining = self.fetched_at + self.expires_in - now
        return age >= MAX_TOKEN_AGE_S or remaining < MIN_REMAINING_S


class TokenCache:
    """Tokens by app; ``get`` fetches under a lock only when the cached one is missing, old or refused."""

    def __init__(self, *, calls_per_minute: int = TOKEN_CALLS_PER_MINUTE) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[TokenKey, CorpToken] = {}
        self._calls_per_minute = calls_per_minute
        self._throttles: dict[Clock, SlidingWindowThrottle] = {}

    def get(
        self,
        key: TokenKey,
        fetch: Callable[[], tuple[str, str, float]],
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        refused: str | None = None,
    ) -> CorpToken:
        """The cached token for ``key``, fetched when needed.

        :param fetch: performs the token call, returns (corpAccessToken, corpId, expiresIn).
        :param refused: a token the server just answered 20016 for. It is dropped and a fresh one fetched,
            unless another thread already replaced it (then that newer token is returned, no extra call).
        """
        with self._lock:  # serialises token calls (the endpoint must not be called concurrently)
            token = self._tokens.get(key)
            now = clock()
            if token is not None and token.access_token != refused and not token.needs_refresh(now):
                return token
            throttle = self._throttles.setdefault(
                clock, SlidingWindowThrottle(self._calls_per_minute, 60.0, clock=clock, sleep=sleep)
            )
            throttle.acquire("token")
            access_token, corp_id, expires_in = fetch()
            token = CorpToken(access_token, corp_id, float(expires_in), clock())
            self._tokens[key] = token
            return token

    def clear(self) -> None:
        """Forget every token (tests; or after credentials were rotated)."""
        with self._lock:
            self._tokens.clear()
            self._throttles.clear()


TOKEN_CACHE = TokenCache()

# currentOpenUserId resolved from a mobile number, once per process per connection (§2.3).
_OPEN_USER_IDS: dict[tuple[str, str, str, str], str] = {}
_OPEN_USER_LOCK = threading.Lock()


def cached_open_user_id(key: tuple[str, str, str, str], resolve: Callable[[], str]) -> str:
    """The open user id for (host, appId, permanentCode, mobile), resolved at most once per process."""
    with _OPEN_USER_LOCK:
        if key not in _OPEN_USER_IDS:
            _OPEN_USER_IDS[key] = resolve()
        return _OPEN_USER_IDS[key]


def clear_process_caches() -> None:
    """Drop cached tokens and resolved user ids (tests start from a clean process state)."""
    TOKEN_CACHE.clear()
    with _OPEN_USER_LOCK:
        _OPEN_USER_IDS.clear()
