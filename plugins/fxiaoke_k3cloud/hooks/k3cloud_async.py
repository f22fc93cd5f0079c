"""An asyncio K3Cloud client for code that runs in the triggerer's event loop (reads only).

It shares every protocol piece with ``K3CloudHook``: credentials and TLS settings are read from the Airflow
connection by the hook itself (``credentials_of``), login bodies and checks and the SDK's signed headers come
from ``k3cloud_auth``, the answer shapes from ``k3cloud_response``, the JSON body from ``k3cloud_transport``,
the field-key checks, stable order and row shaping from ``k3cloud_query`` and FilterStrings from
``k3cloud_filter``. Only the socket differs: ``httpx.AsyncClient`` (it comes with Airflow) instead of
``requests``, so a poll never blocks the loop other triggers share.

No retry loop here: a poller calls again on its next tick (with its own jittered back-off); one session loss is
answered by one re-login and one replay, as in the hook. Secrets (password, app secret, session id) are never
logged; errors carry the service name and the host only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from fxiaoke_k3cloud.errors import PermanentApiError, RateLimitedError, RetryableApiError, SessionExpiredError, TransportError
from fxiaoke_k3cloud.hooks._http import HttpSettings, truncate
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.hooks.k3cloud_auth import SESSION_COOKIE, K3Credentials, login_request, session_id_from_login, signed_headers
from fxiaoke_k3cloud.hooks.k3cloud_filter import Expr
from fxiaoke_k3cloud.hooks.k3cloud_query import check_field_keys, check_page_size, rows_as_dicts, stable_order
from fxiaoke_k3cloud.hooks.k3cloud_response import is_session_lost, raise_for_status, response_status, waf_block_message
from fxiaoke_k3cloud.hooks.k3cloud_transport import DYNAMIC_FORM, SYSTEM, encode_body

log = logging.getLogger(__name__)


def credentials_of(conn_id: str) -> tuple[K3Credentials, HttpSettings]:
    """Credentials and TLS settings of a ``k3cloud`` connection, parsed by ``K3CloudHook`` (sync: call it in a thread)."""
    client = K3CloudHook(conn_id).client
    try:
        return client.creds, client.settings
    finally:
        client.close()


def bill_query_body(
    form_id: str,
    field_keys: Sequence[str],
    filter: Expr | None,
    *,
    order_by: Sequence[str] | None = None,
    limit: int = 2000,
    start_row: int = 0,
) -> dict[str, Any]:
    """The ExecuteBillQuery body the hook sends: checked field keys, an escaped filter, a total order."""
    keys = check_field_keys(field_keys)
    check_page_size(limit)
    if filter is not None and not isinstance(filter, Expr):
        raise TypeError("filter must be built with k3cloud_filter.F; raw strings are refused")
    return {
        "data": {
            "FormId": form_id,
            "FieldKeys": ",".join(keys),
            "FilterString": filter.render() if filter is not None else "",
            "OrderString": stable_order(form_id, keys, order_by),
            "TopRowCount": 0,
            "StartRow": start_row,
            "Limit": limit,
            "SubSystemId": "",
        }
    }


def _timeout(settings: HttpSettings) -> httpx.Timeout:
    return httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)


class AsyncK3CloudClient:
    """One K3Cloud data center over ``httpx.AsyncClient``; use as ``async with`` or call ``aclose``."""

    def __init__(self, creds: K3Credentials, settings: HttpSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.creds = creds
        self.settings = settings
        if settings.verify is False:
            log.warning("TLS certificate verification is OFF for the k3cloud connection (verify_ssl=false)")
        self._http = httpx.AsyncClient(
            verify=settings.verify, timeout=_timeout(settings), transport=transport,
            headers={"Accept-Charset": "utf-8", "User-Agent": "fxiaoke-k3cloud-sync K3CloudWatcher"},
        )
        self._session_id: str | None = None
        self._login_lock = asyncio.Lock()
        self.calls = 0  # HTTP requests sent (the polling cost)

    async def __aenter__(self) -> AsyncK3CloudClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- calls ---------------------------------------------------------------------------------------------
    async def execute_bill_query(
        self, form_id: str, field_keys: Sequence[str], filter: Expr | None, *, order_by: Sequence[str] | None = None,
        limit: int = 2000,
    ) -> list[dict[str, Any]]:
        """One page of ExecuteBillQuery rows as dicts keyed by ``field_keys``."""
        body = bill_query_body(form_id, field_keys, filter, order_by=order_by, limit=limit)
        rows = await self.call("ExecuteBillQuery", body)
        if not isinstance(rows, list):
            raise TransportError(f"ExecuteBillQuery answered with {type(rows).__name__}, expected rows",
                                 system=SYSTEM, endpoint="ExecuteBillQuery")
        return rows_as_dicts(rows, list(field_keys))

    async def call(self, service: str, payload: dict[str, Any]) -> Any:
        """POST ``DynamicFormService.<service>`` (a read) and return the decoded body of a successful answer."""
        for replay in (False, True):
            session_id = await self._ensure_session()
            body = await self._post(DYNAMIC_FORM + service, payload, session_id=session_id)
            status = response_status(body)
            if status is not None and is_session_lost(status):
                self._session_id = None
                if replay:
                    raise SessionExpiredError("session lost again right after a fresh login", system=SYSTEM,
                                              endpoint=service, code=1)
                log.info("k3cloud %s: session lost (MsgCode 1); logging in again and replaying once", service)
                continue
            raise_for_status(status, service)
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    async def _ensure_session(self) -> str | None:
        if self.creds.auth_mode == "signed":
            return None
        async with self._login_lock:
            if self._session_id is None:
                service, body = login_request(self.creds)
                answer, cookies = await self._post_raw(service, body, session_id=None)
                self._session_id = session_id_from_login(answer, self.creds, cookie_session_id=cookies.get(SESSION_COOKIE))
                log.info("k3cloud: logged in to data center %s as %s (%s)", self.creds.acct_id, self.creds.username,
                         self.creds.auth_mode)
            return self._session_id

    async def _post(self, service: str, payload: dict[str, Any], *, session_id: str | None) -> Any:
        body, _ = await self._post_raw(service, payload, session_id=session_id)
        return body

    async def _post_raw(self, service: str, payload: dict[str, Any], *, session_id: str | None) -> tuple[Any, httpx.Cookies]:
        url = f"{self.creds.base_url}{service}.common.kdsvc"
        name = service.rsplit(".", 1)[-1]
        host = urlsplit(url).netloc
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.creds.auth_mode == "signed":
            headers.update(signed_headers(self.creds, url))
        elif session_id:
            headers["Cookie"] = f"{SESSION_COOKIE}={session_id}"
        self.calls += 1
        try:
            response = await self._http.post(url, content=encode_body(payload), headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(f"no answer from {host} for {name}: {type(exc).__name__}", system=SYSTEM,
                                 endpoint=name) from exc
        self._http.cookies.clear()  # the session id is sent explicitly, never from a jar
        return self._decode(response, name, host), response.cookies

    @staticmethod
    def _decode(response: httpx.Response, name: str, host: str) -> Any:
        text = response.content.decode("utf-8", errors="replace").lstrip("\ufeff")
        if response.status_code == 429:
            raise RateLimitedError(f"HTTP 429 from {host}", system=SYSTEM, endpoint=name, code=429)
        if response.status_code not in (200, 206):
            raise TransportError(f"HTTP {response.status_code} from {host} for {name}: {truncate(text, 300)}",
                                 system=SYSTEM, endpoint=name, status=response.status_code)
        if text.startswith("response_error:"):
            raise RetryableApiError(f"server exception: {truncate(text[len('response_error:'):].strip(), 300)}",
                                    system=SYSTEM, endpoint=name, code="response_error")
        try:
            body = json.loads(text)
        except ValueError:
            raise TransportError(f"{host} answered {name} with a body that is not JSON: {truncate(text, 200)}",
                                 system=SYSTEM, endpoint=name, status=response.status_code) from None
        waf = waf_block_message(body)
        if waf is not None:
            raise PermanentApiError(f"request blocked by the K3Cloud firewall: {waf}", system=SYSTEM, endpoint=name)
        return body
