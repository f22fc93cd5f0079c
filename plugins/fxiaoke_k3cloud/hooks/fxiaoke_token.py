"""corpAccessToken cache: one token per app for the whole deployment, and a copy in each process.

Tokens are issued per app (spec §2.1): the same token comes back for 6600 s after issue, a new one after
that, and the token endpoint allows ≤ 10 calls per minute and no concurrency. Under the CeleryExecutor every
task is a fresh process, so a cache in the process alone made every task fetch its own token and spend that
budget. So:

- each process keeps the token it uses (keyed by host, appId, permanentCode), and asks for it again only
  when it is missing, old or just refused (20016);
- behind that, the deployment's token row in the audit database (:mod:`fxiaoke_k3cloud.audit.tokens`): one
  token per app per lifetime for every task process on every worker, and the token-call budget they share,
  read and renewed under a row lock;
- without an audit store configured (a hook used on its own, the SQLite demo whose tasks share a process)
  the process's own lock and throttle serialise and rate-limit the token calls, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from fxiaoke_k3cloud.audit.tokens import SharedTokenStore, deployment_token_store, forget_stores, token_key
from fxiaoke_k3cloud.hooks._http import mask_secrets
from fxiaoke_k3cloud.hooks.fxiaoke_throttle import SlidingWindowThrottle

log = logging.getLogger(__name__)

# Refresh policy (§9.2): renew before the server would hand out a new token anyway, and well before expiry.
MAX_TOKEN_AGE_S = 6600.0
MIN_REMAINING_S = 600.0
# Token endpoint: ≤ 10 calls per minute (§2.1, §6.3); stay just under it.
TOKEN_CALLS_PER_MINUTE = 9

TokenKey = tuple[str, str, str]  # (host, appId, permanentCode)
Clock = Callable[[], float]
SharedStore = Callable[[], "SharedTokenStore | None"]


def fresh_enough(age_s: float, remaining_s: float) -> bool:
    """Whether a token this old, with this much time left, may still be used (the refresh policy above)."""
    return age_s < MAX_TOKEN_AGE_S and remaining_s >= MIN_REMAINING_S


@dataclass(frozen=True)
class CorpToken:
    """One corpAccessToken as fetched, with the local monotonic time it was fetched at."""

    access_token: str
    corp_id: str
    expires_in: float
    fetched_at: float

    def needs_refresh(self, now: float) -> bool:
        return not fresh_enough(now - self.fetched_at, self.fetched_at + self.expires_in - now)


class TokenCache:
    """Tokens by app; ``get`` asks the deployment's store (or fetches) only when the copy here is not usable.

    :param shared: returns the deployment's token store, or None (then the process fetches on its own).
    """

    def __init__(
        self, *, calls_per_minute: int = TOKEN_CALLS_PER_MINUTE, shared: SharedStore | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[TokenKey, CorpToken] = {}
        self._calls_per_minute = calls_per_minute
        self._throttles: dict[Clock, SlidingWindowThrottle] = {}
        self._shared = shared or (lambda: None)

    def get(
        self,
        key: TokenKey,
        fetch: Callable[[], tuple[str, str, float]],
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        refused: str | None = None,
    ) -> CorpToken:
        """The token for ``key``, from this process, else the deployment's store, else fetched.

        :param fetch: performs the token call, returns (corpAccessToken, corpId, expiresIn).
        :param refused: a token the server just answered 20016 for. It is dropped and a fresh one fetched,
            unless another thread or process already replaced it (then that newer token is returned, no call).
        """
        with self._lock:  # one thread of this process asks at a time; the others then find its token
            token = self._tokens.get(key)
            now = clock()
            if token is not None and token.access_token != refused and not token.needs_refresh(now):
                return token
            store = self._shared_store()
            if store is not None:
                token = self._from_store(store, key, fetch, clock, refused)
            else:
                throttle = self._throttles.setdefault(
                    clock, SlidingWindowThrottle(self._calls_per_minute, 60.0, clock=clock, sleep=sleep)
                )
                throttle.acquire("token")
                access_token, corp_id, expires_in = fetch()
                token = CorpToken(access_token, corp_id, float(expires_in), clock())
            self._tokens[key] = token
            return token

    def _shared_store(self) -> SharedTokenStore | None:
        try:
            return self._shared()
        except Exception as exc:  # noqa: BLE001 — the CRM stays reachable when the audit database is not
            log.warning("Deployment token store unavailable (%s); this process fetches its own token", exc)
            return None

    @staticmethod
    def _from_store(
        store: SharedTokenStore, key: TokenKey, fetch: Callable[[], tuple[str, str, float]], clock: Clock,
        refused: str | None,
    ) -> CorpToken:
        shared = store.get(token_key(*key), key[1], fetch, fresh=fresh_enough, refused=refused)
        mask_secrets(shared.access_token)  # read from the store, not fetched here: mask it in this process too
        # The row's times are wall-clock; this process ages its copy on its own clock from the same issue time.
        age = max(0.0, time.time() - shared.issued_at)
        return CorpToken(shared.access_token, shared.corp_id, shared.expires_at - shared.issued_at, clock() - age)

    def clear(self) -> None:
        """Forget every token of this process (tests; or after credentials were rotated)."""
        with self._lock:
            self._tokens.clear()
            self._throttles.clear()


def _deployment_store() -> SharedTokenStore | None:
    return deployment_token_store(TOKEN_CALLS_PER_MINUTE)


TOKEN_CACHE = TokenCache(shared=_deployment_store)

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
    """Drop cached tokens, resolved user ids and token-store engines (tests start from a clean process state)."""
    TOKEN_CACHE.clear()
    forget_stores()
    with _OPEN_USER_LOCK:
        _OPEN_USER_IDS.clear()
