"""The Fxiaoke corpAccessToken and its token-call budget, shared by every task process of a deployment.

Under the CeleryExecutor each task is a fresh process on one of several workers, so a cache in the process
lives for one task. The token endpoint allows about 10 calls a minute per app and returns the same token
for 6600 s after issue, so the deployment keeps one row per app in the audit database (``sync_api_token``):

- the token, Fernet-encrypted with Airflow's key (``[core] fernet_key``), with its issue time and expiry;
- the times of the token calls of the last minute: the budget every process spends from.

A process that needs a token reads the row under a row lock (``SELECT … FOR UPDATE`` on PostgreSQL; on
SQLite the engine's ``BEGIN IMMEDIATE``). A usable token is returned at once; otherwise the one process that
holds the lock calls the endpoint, stores the new token and commits, and the processes waiting on the lock
read that token instead of calling too. So a deployment fetches one token per app per token lifetime, and
tasks wait on a row lock for the duration of one token call, never on the endpoint's limit.

Without a Fernet key the token itself is not stored (a secret never lands in the database in clear); the
budget is still shared, and each process keeps its own token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import sqlalchemy as sa
from airflow.sdk.crypto import get_fernet
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from fxiaoke_k3cloud.audit import engine as _engine
from fxiaoke_k3cloud.audit.schema import sync_api_token

log = logging.getLogger(__name__)

BUDGET_WINDOW_S = 60.0
Fetch = Callable[[], tuple[str, str, float]]  # → (corpAccessToken, corpId, expiresIn)
Fresh = Callable[[float, float], bool]  # (age_s, remaining_s) → still good to use


def token_key(host: str, app_id: str, permanent_code: str) -> str:
    """The row key of one app: a digest, so neither the permanent code nor the host is stored in clear."""
    return hashlib.sha256("\x1f".join((host, app_id, permanent_code)).encode()).hexdigest()


@dataclass(frozen=True)
class SharedToken:
    """A token as the deployment holds it; times are wall-clock epoch seconds."""

    access_token: str
    corp_id: str
    issued_at: float
    expires_at: float


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


class SharedTokenStore:
    """Token rows in the audit database.

    :param fernet: Airflow's Fernet (``airflow.sdk.crypto.get_fernet()``); one without a key stores no token.
    :param calls_per_minute: the token-call budget of one app, across the deployment.
    :param wall: wall clock (epoch seconds; tokens are compared across machines).
    """

    def __init__(
        self,
        engine: Engine,
        fernet: Any,
        *,
        calls_per_minute: int,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.fernet = fernet
        self.calls_per_minute = calls_per_minute
        self._wall = wall
        self._sleep = sleep

    @property
    def keeps_token(self) -> bool:
        return bool(getattr(self.fernet, "is_encrypted", False))

    def get(self, key: str, app_id: str, fetch: Fetch, *, fresh: Fresh, refused: str | None = None) -> SharedToken:
        """The deployment's token for ``key``: the stored one if ``fresh`` and not ``refused``, else a new one.

        :param refused: a token the server just answered 20016 for; a stored token other than this one was
            renewed by another process meanwhile and is returned without a call.
        """
        while True:
            with self.engine.begin() as conn:
                row = self._lock_row(conn, key, app_id)
                now = self._wall()
                stored = self._stored_token(row)
                if stored is not None and stored.access_token != refused and fresh(
                    now - stored.issued_at, stored.expires_at - now
                ):
                    return stored
                calls = [t for t in json.loads(row.recent_calls or "[]") if t > now - BUDGET_WINDOW_S]
                wait = calls[0] + BUDGET_WINDOW_S - now if len(calls) >= self.calls_per_minute else 0.0
                if wait <= 0:
                    calls.append(now)
                    try:
                        token, corp_id, expires_in = fetch()
                    except Exception as exc:  # noqa: BLE001 — re-raised below, after the booking is committed
                        failed: Exception | None = exc
                    else:
                        failed = None
                        issued = self._wall()
                        fetched = SharedToken(token, corp_id, issued, issued + float(expires_in))
                    # A call that failed still spent budget at the endpoint: it is booked either way.
                    self._save(conn, key, None if failed else fetched, calls)
            if wait <= 0:
                if failed is not None:
                    raise failed
                return fetched
            # Budget spent (only after repeated refusals): wait outside the lock, then look again.
            log.warning("Fxiaoke token budget of %s calls a minute spent; waiting %.1f s", self.calls_per_minute, wait)
            self._sleep(wait)

    def extend(self, key: str, access_token: str, until: float) -> bool:
        """Move the expiry of the stored value to ``until`` if it is still ``access_token`` (a value another
        process replaced meanwhile is left alone); returns whether it did."""
        if not self.keeps_token:
            return False
        with self.engine.begin() as conn:
            query = sa.select(sync_api_token).where(sync_api_token.c.token_key == key)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).one_or_none()
            stored = self._stored_token(row) if row is not None else None
            if stored is None or stored.access_token != access_token:
                return False
            conn.execute(sa.update(sync_api_token).where(sync_api_token.c.token_key == key)
                         .values(expires_at=_utc(until), updated_at=_utc(self._wall())))
        return True

    def _lock_row(self, conn: Connection, key: str, app_id: str) -> Any:
        values = {"token_key": key, "app_id": app_id, "recent_calls": "[]", "updated_at": _utc(self._wall())}
        dialect = conn.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        conn.execute(insert(sync_api_token).values(**values).on_conflict_do_nothing(index_elements=["token_key"]))
        query = sa.select(sync_api_token).where(sync_api_token.c.token_key == key)
        if dialect == "postgresql":
            query = query.with_for_update()
        return conn.execute(query).one()

    def _stored_token(self, row: Any) -> SharedToken | None:
        if not row.token_encrypted or not self.keeps_token or row.issued_at is None or row.expires_at is None:
            return None
        try:
            token = self.fernet.decrypt(row.token_encrypted.encode()).decode()
        except Exception:  # noqa: BLE001 — a key that changed makes the row useless, not the task
            log.warning("The stored Fxiaoke token does not decrypt with Airflow's Fernet key; fetching a new one")
            return None
        return SharedToken(token, row.corp_id or "", _epoch(row.issued_at) or 0.0, _epoch(row.expires_at) or 0.0)

    def _save(self, conn: Connection, key: str, token: SharedToken | None, calls: list[float]) -> None:
        values: dict[str, Any] = {"recent_calls": json.dumps(calls), "updated_at": _utc(self._wall())}
        if token is not None and self.keeps_token:
            values.update(
                token_encrypted=self.fernet.encrypt(token.access_token.encode()).decode(),
                corp_id=token.corp_id,
                issued_at=_utc(token.issued_at),
                expires_at=_utc(token.expires_at),
            )
        conn.execute(sa.update(sync_api_token).where(sync_api_token.c.token_key == key).values(**values))


_STORES: dict[str, SharedTokenStore] = {}
_STORES_LOCK = threading.Lock()


def deployment_token_store(calls_per_minute: int) -> SharedTokenStore | None:
    """The token store of this deployment's audit database, or None when no audit store is configured.

    The store is the one ``$SYNC_AUDIT_URL`` or the ``sync_audit`` connection names (the SQLite demo default
    holds no shared token: its tasks run in one process). Migrated on first use, once per process.
    """
    found = _engine.configured_url()
    if found is None:
        return None
    url, _source = found
    with _STORES_LOCK:
        store = _STORES.get(url)
        if store is None:
            engine = _engine.make_engine(url)
            _engine.run_migrations(engine)
            store = SharedTokenStore(engine, get_fernet(), calls_per_minute=calls_per_minute)
            if not store.keeps_token:
                log.warning(
                    "No Fernet key ([core] fernet_key): the Fxiaoke token is not shared between task processes "
                    "(only its call budget is); set AIRFLOW__CORE__FERNET_KEY on every component"
                )
            _STORES[url] = store
        return store


def forget_stores() -> None:
    """Dispose of the cached engines (tests that switch audit databases)."""
    with _STORES_LOCK:
        for store in _STORES.values():
            store.engine.dispose()
        _STORES.clear()
