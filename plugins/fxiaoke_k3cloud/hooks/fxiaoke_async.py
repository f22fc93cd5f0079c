"""An asyncio Fxiaoke client for code that runs in the triggerer's event loop (reads only).

Shares the protocol with ``FxiaokeHook``: settings are read from the Airflow connection by the hook itself
(``settings_of``), the token request body and endpoint, the authenticated body (``FxiaokeHook._body``), the
query paths and filter/order shapes (``fxiaoke_query``), and the envelope parsing and errorCode mapping
(``fxiaoke_errors.parse_response`` / ``error_from_body``, which read an ``httpx.Response`` as they read a
``requests`` one). Only the socket differs: ``httpx.AsyncClient``.

The token is the deployment's (``TOKEN_CACHE``, shared with every task process through the audit store) and
renewed by the hook's rule (``CorpToken.needs_refresh``); a
20016 gets one fresh token and one replay. The token endpoint allows about 10 calls a minute: a poller makes
one token call per ~6600 s. Secrets (app secret, permanent code, token) are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from fxiaoke_k3cloud.errors import ConfigError, SessionExpiredError, TransportError
from fxiaoke_k3cloud.hooks.fxiaoke import TOKEN_PATH, USER_BY_MOBILE_PATH, FxiaokeHook
from fxiaoke_k3cloud.hooks.fxiaoke_config import FxiaokeSettings
from fxiaoke_k3cloud.hooks.fxiaoke_errors import SYSTEM, error_from_body, parse_response
from fxiaoke_k3cloud.hooks.fxiaoke_query import (
    FilterSpec,
    OffsetPaginator,
    OrderSpec,
    data_path,
    normalize_filter,
    normalize_order,
    projection,
)
from fxiaoke_k3cloud.hooks.fxiaoke_token import TOKEN_CACHE, CorpToken

log = logging.getLogger(__name__)


def settings_of(conn_id: str) -> FxiaokeSettings:
    """Settings of a ``fxiaoke`` connection, parsed by ``FxiaokeHook`` (sync: call it in a thread)."""
    return FxiaokeHook(conn_id).settings


class AsyncFxiaokeClient:
    """The Fxiaoke OpenAPI over ``httpx.AsyncClient``; use as ``async with`` or call ``aclose``."""

    def __init__(self, settings: FxiaokeSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        http = settings.http
        if http.verify is False:
            log.warning("TLS certificate verification is OFF for the fxiaoke connection (verify_ssl=false)")
        self._http = httpx.AsyncClient(verify=http.verify, timeout=httpx.Timeout(http.read_timeout, connect=http.connect_timeout),
                                       transport=transport, follow_redirects=False)
        self._token: CorpToken | None = None
        self._user: str | None = settings.open_user_id
        self._lock = asyncio.Lock()
        self.calls = 0  # HTTP requests sent (the polling cost)

    async def __aenter__(self) -> AsyncFxiaokeClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.calls += 1
        try:
            resp = await self._http.post(self.settings.base_url + path, params={"thirdTraceId": uuid.uuid4().hex},
                                         json=dict(body))
        except httpx.HTTPError as exc:
            raise TransportError(f"no answer from {self.settings.host} on {path}: {type(exc).__name__}",
                                 system=SYSTEM, endpoint=path) from exc
        envelope = parse_response(resp, host=self.settings.host, path=path)  # type: ignore[arg-type]
        if envelope.get("errorCode") in (0, "0"):
            return envelope
        raise error_from_body(envelope, path=path, host=self.settings.host)

    async def _get_token(self, *, refused: str | None = None) -> CorpToken:
        """The deployment's token (``TOKEN_CACHE``: this process, else the audit store's row, else one call).

        The cache and its store are synchronous, so they run in a thread; the token call itself, when one is
        needed, is made on this event loop (``_fetch``), so the triggerer's loop never blocks on the network.
        """
        async with self._lock:
            token = self._token
            if token is None or token.needs_refresh(time.monotonic()) or token.access_token == refused:
                loop = asyncio.get_running_loop()

                def fetch() -> tuple[str, str, float]:  # called in the worker thread, under the store's row lock
                    return asyncio.run_coroutine_threadsafe(self._fetch(), loop).result()

                token = await asyncio.to_thread(TOKEN_CACHE.get, self.settings.token_key, fetch, refused=refused)
                self._token = token
            return token

    async def _fetch(self) -> tuple[str, str, float]:
        s = self.settings
        body = await self._send(TOKEN_PATH, {"appId": s.app_id, "appSecret": s.app_secret,
                                             "permanentCode": s.permanent_code})
        if not body.get("corpAccessToken") or not body.get("corpId") or body.get("expiresIn") is None:
            raise TransportError(f"{s.host} token answer lacks corpAccessToken/corpId/expiresIn",
                                 system=SYSTEM, endpoint=TOKEN_PATH)
        log.info("Fetched a Fxiaoke corpAccessToken for %s (expires in %s s)", s.app_id, body["expiresIn"])
        return str(body["corpAccessToken"]), str(body["corpId"]), float(body["expiresIn"])

    async def call(self, path: str, payload: Mapping[str, Any], *, with_user: bool = True) -> dict[str, Any]:
        """An authenticated read; the success envelope."""
        user = await self._open_user_id() if with_user else None
        token = await self._get_token()
        try:
            return await self._send(path, FxiaokeHook._body(payload, token, user))
        except SessionExpiredError:
            token = await self._get_token(refused=token.access_token)
            return await self._send(path, FxiaokeHook._body(payload, token, user))

    async def _open_user_id(self) -> str:
        if self._user is None:
            body = await self.call(USER_BY_MOBILE_PATH, {"mobile": self.settings.mobile}, with_user=False)
            employees = body.get("empList") or []
            if not employees or not employees[0].get("openUserId"):
                raise ConfigError("no employee with the connection's mobile number; set extra 'open_user_id'")
            self._user = str(employees[0]["openUserId"])
        return self._user

    async def query_page(
        self, object_api_name: str, filters: Sequence[FilterSpec] = (), orders: Sequence[OrderSpec] = (),
        fields: Sequence[str] | None = None, limit: int = 1,
    ) -> list[dict[str, Any]]:
        """The first page (``limit`` rows, offset 0) of a query, in the hook's wire shape."""
        search = OffsetPaginator(limit, [normalize_order(o) for o in orders]).update_request(
            [normalize_filter(f) for f in filters])
        if fields:
            search["fieldProjection"] = projection(fields)
        path = data_path(object_api_name, "query")
        envelope = await self.call(path, {"data": {"dataObjectApiName": object_api_name, "search_query_info": search}})
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise TransportError(f"{self.settings.host} answered {path} without a 'data' object", system=SYSTEM, endpoint=path)
        return list(data.get("dataList") or [])
