"""One K3Cloud server session for the deployment, kept across task processes and runs (issue 19, point 4).

Each task used to log in and log out: two of the six calls an everyday run may spend. A server session is not
tied to a process, and the hook already sends up to ``max_in_flight`` requests on one session at once, so the
task processes of a deployment can share one, as they share the Fxiaoke token: the session id lives in the
token row store of the audit database (``sync_api_token``, Fernet-encrypted; :mod:`fxiaoke_k3cloud.audit.tokens`),
under a key derived from the data center, user and auth mode (nothing in clear).

What keeps it safe:

* **No logout while shared.** A holder that logs out ends the session for everyone (measured in issue 15: the
  other holder's next call finds it lost). A shared session is never logged out by a task; it ends at the
  server's idle timeout, and ``close()`` records when it was last used.
* **A session the server lost is renewed once for all.** A call answered "session lost" does nothing (the server
  checks the context first), so the client replays it on a fresh session: it asks the store with the lost id
  (``refused``); if another process renewed it meanwhile that session is used, otherwise this process logs in
  under the row lock and stores the new one — processes waiting on the lock take it instead of logging in too.
* **Not older than the idle timeout we assume.** A stored session unused for ``session_reuse_s`` (connection
  extra, default 900 s — the server's idle timeout is configured per tenant and undocumented, k3cloud-webapi.md
  §2) is not tried: a fresh login costs one call, a stale session two (the refused call and the login).

Off (each task logs in and out, as before) in signed mode (no login call to save), without an audit store or a
Fernet key (the session id is a credential: never stored in clear), or with the extra ``share_session: false``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from fxiaoke_k3cloud.audit.tokens import SharedTokenStore, deployment_token_store, token_key
from fxiaoke_k3cloud.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_REUSE_S = 900  # a stored session unused for longer is not tried (extra session_reuse_s)
LOGINS_PER_MINUTE = 9  # the store's call budget per key (the same store holds the Fxiaoke token, 9 a minute)
ROW_LABEL = "k3cloud-session"  # the row's app_id column: what the row holds, no credential


def reuse_seconds(extra: Any, conn_id: str) -> int | None:
    """Seconds a stored session may be reused after its last use; None when sharing is off (extra
    ``share_session: false``)."""
    share = extra.get("share_session", True)
    if str(share).strip().lower() in ("false", "0", "no", "off"):
        return None
    raw = extra.get("session_reuse_s")
    if raw in (None, ""):
        return DEFAULT_REUSE_S
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise ConfigError(f"k3cloud connection {conn_id!r}: extra 'session_reuse_s' must be a whole number of "
                          f"seconds >= 1 (how long an unused server session is reused), got {raw!r}")
    return value


class SharedSession:
    """The deployment's session for one data center and user (see the module docstring)."""

    def __init__(self, store: SharedTokenStore, key: str, reuse_s: int, *,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.key = key
        self.reuse_s = reuse_s
        self._wall = wall

    @classmethod
    def for_deployment(cls, base_url: str, acct_id: str, username: str, auth_mode: str,
                       reuse_s: int | None) -> "SharedSession | None":
        """The deployment's shared session, or None when it cannot be shared (see the module docstring)."""
        if reuse_s is None or auth_mode == "signed":
            return None
        try:
            store = deployment_token_store(LOGINS_PER_MINUTE)
        except Exception as exc:  # noqa: BLE001 - K3Cloud stays reachable when the audit database (or key) is not
            log.warning("k3cloud: deployment session store unavailable (%s); this task logs in and out", exc)
            return None
        if store is None or not store.keeps_token:
            return None
        return cls(store, token_key(base_url, "\x1f".join((acct_id, username, auth_mode)), ROW_LABEL), reuse_s)

    def get(self, login: Callable[[], str], *, refused: str | None = None) -> tuple[str, bool]:
        """(session id, whether this call logged in): the stored session unless it is stale or ``refused``."""
        tried: list[str | None] = []  # [None] while logging in, [session id] once logged in

        def fetch() -> tuple[str, str, float]:
            tried.append(None)
            tried[0] = login()
            return tried[0], "", float(self.reuse_s)

        try:
            shared = self.store.get(self.key, ROW_LABEL, fetch, fresh=lambda _age, remaining: remaining > 0,
                                    refused=refused)
        except Exception as exc:  # noqa: BLE001 - a login's own error is raised; the store's costs at most a login
            if tried and tried[0] is None:
                raise
            log.warning("k3cloud: deployment session store unavailable (%s); this task keeps its own session", exc)
            return (tried[0], True) if tried else (login(), True)
        return shared.access_token, bool(tried)

    def used(self, session_id: str) -> None:
        """The session was just used: it may be reused for ``reuse_s`` more (the server's idle timer restarted)."""
        try:
            self.store.extend(self.key, session_id, self._wall() + self.reuse_s)
        except Exception as exc:  # noqa: BLE001 - bookkeeping only: the next task logs in if it must
            log.warning("k3cloud: could not record the shared session's last use (%s)", type(exc).__name__)
