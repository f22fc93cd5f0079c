"""FxiaokeHook: the Fxiaoke (纷享销客 / ShareCRM) OpenAPI client, legacy corpAccessToken protocol.

One private request path (``_call``) applies everything every call needs: the process-wide token cache
(refresh before expiry; on 20016 one fresh token and one replay, never a loop), ``currentOpenUserId``,
the client-side throttle and call budget, timeouts, the retry policy, and the mapping of ``errorCode`` to
the typed exceptions of :mod:`fxiaoke_k3cloud.errors`. Public methods return parsed data; the read verbs
(queries, get, describe) are in :mod:`.fxiaoke_reads`.

Replay rules: reads and updates (same data → same result) are retried on transient faults; creates,
voids and messages are replayed only when the server said it did nothing (rate limit), and a lost answer
raises :class:`OutcomeUnknownError` so the caller reads back before writing again.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any, Callable, Mapping, Sequence

import requests
from airflow.sdk import BaseHook
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter, wait_none

from fxiaoke_k3cloud.errors import (
    ConfigError,
    OutcomeUnknownError,
    PermanentApiError,
    SessionExpiredError,
    TransportError,
    what_to_fix,
)
from fxiaoke_k3cloud.hooks._http import mask_secrets, new_session
from fxiaoke_k3cloud.hooks.fxiaoke_config import FxiaokeSettings
from fxiaoke_k3cloud.hooks.fxiaoke_errors import SYSTEM, is_retryable, refused_without_effect
from fxiaoke_k3cloud.hooks.fxiaoke_query import data_path
from fxiaoke_k3cloud.hooks.fxiaoke_reads import FxiaokeReads
from fxiaoke_k3cloud.hooks.fxiaoke_throttle import CallCounter, shared_throttle
from fxiaoke_k3cloud.hooks.fxiaoke_token import TOKEN_CACHE, CorpToken, cached_open_user_id
from fxiaoke_k3cloud.hooks.fxiaoke_transport import FxiaokeTransport

# Retry policy of the hook's own short loop; longer outages are Airflow task retries.
MAX_ATTEMPTS = 6  # first call + 5 retries
RETRY_WAIT_INITIAL_S = 1.0  # 1, 2, 4, 8, 16 s (+ jitter) ≈ 31 s: outlasts one 20 s rate-limit window
RETRY_WAIT_MAX_S = 20.0
RETRY_JITTER_S = 1.0

TOKEN_PATH = "/cgi/corpAccessToken/get/V2"
USER_BY_MOBILE_PATH = "/cgi/user/getByMobile"
MESSAGE_PATH = "/cgi/message/send"
MAX_MESSAGE_RECIPIENTS = 500  # toUser cap per /cgi/message/send call (§5)
GATEWAY_DID_NOT_ANSWER = (502, 503)  # HTTP statuses of a gateway whose upstream never answered


class FxiaokeHook(FxiaokeReads, BaseHook):
    """Talks to the Fxiaoke OpenAPI (legacy corpAccessToken protocol).

    :param fxiaoke_conn_id: Airflow connection (host = base URL, login = appId, password = appSecret,
        extras permanent_code, open_user_id or mobile, calls_per_20s, call_budget, max_in_flight, voided_query,
        timeout, verify_ssl, ca_bundle).
    :param retry_wait_s: first backoff wait; 0 disables waiting (tests).
    :param max_attempts: attempts per call in the hook's retry loop (≥ 1).
    :param call_budget: stop with :class:`QuotaExhaustedError` after this many API calls (overrides the extra).
    :param calls_per_20s: client throttle per path (overrides the extra; default 100, the gateway's limit, each
        call held a little over 20 s — see ``fxiaoke_throttle``; the extra is capped at 100, this argument is not,
        so a simulator without a gateway limit can be driven faster).
    :param max_in_flight: query pages a cursor query reads at once (overrides the extra ``max_in_flight``,
        default 4; 1 = one request at a time), e.g. capped by the slots the running task holds in its pool.
    :param clock: monotonic clock for token ages (tests may inject one).
    """

    conn_name_attr = "fxiaoke_conn_id"
    default_conn_name = "fxiaoke_default"
    conn_type = "fxiaoke"
    hook_name = "Fxiaoke CRM (纷享销客)"

    def __init__(
        self,
        fxiaoke_conn_id: str = default_conn_name,
        *,
        retry_wait_s: float = RETRY_WAIT_INITIAL_S,
        max_attempts: int = MAX_ATTEMPTS,
        call_budget: int | None = None,
        calls_per_20s: int | None = None,
        max_in_flight: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_attempts < 1:
            raise ConfigError("max_attempts must be >= 1")
        if calls_per_20s is not None and calls_per_20s < 1:
            raise ConfigError("calls_per_20s must be >= 1")
        if max_in_flight is not None and (not isinstance(max_in_flight, int) or max_in_flight < 1):
            raise ConfigError(f"max_in_flight must be a whole number >= 1, got {max_in_flight!r}")
        self.fxiaoke_conn_id = fxiaoke_conn_id
        self.retry_wait_s = retry_wait_s
        self.max_attempts = max_attempts
        self._call_budget = call_budget
        self._calls_per_20s = calls_per_20s
        self._max_in_flight = max_in_flight
        self._clock = clock
        self.calls = CallCounter()

    # --- connection, session -----------------------------------------------------------------
    @cached_property
    def settings(self) -> FxiaokeSettings:
        conn = self.get_connection(self.fxiaoke_conn_id)
        settings = FxiaokeSettings.from_connection(
            conn_id=self.fxiaoke_conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
        )
        mask_secrets(settings.app_secret, settings.permanent_code)
        return settings

    @cached_property
    def session(self) -> requests.Session:
        return new_session(self.settings.http, system=SYSTEM)

    def get_conn(self) -> requests.Session:
        """The HTTP session (built lazily; no I/O happens before the first API call)."""
        return self.session

    @property
    def call_budget(self) -> int | None:
        return self._call_budget if self._call_budget is not None else self.settings.call_budget

    @cached_property
    def _transport(self) -> FxiaokeTransport:
        settings = self.settings
        rate = self._calls_per_20s or settings.calls_per_20s
        # Shared by the deployment's task processes through the audit store when one is configured; the token
        # path keeps a window in the process (its call runs under the token row's lock, on its own budget).
        throttle = shared_throttle(f"{settings.base_url}|{settings.app_id}", rate, local_paths=frozenset({TOKEN_PATH}))
        return FxiaokeTransport(settings, self.session, throttle, self.calls, self.call_budget, self.log)

    def _send(self, path: str, body: Mapping[str, Any], *, idempotent: bool, write: bool = False) -> dict[str, Any]:
        return self._transport.send(path, body, idempotent=idempotent, write=write)

    # --- tokens, user, retries ---------------------------------------------------------------
    def _fetch_token(self) -> tuple[str, str, float]:
        s = self.settings
        body = self._send(
            TOKEN_PATH, {"appId": s.app_id, "appSecret": s.app_secret, "permanentCode": s.permanent_code}, idempotent=True
        )
        token, corp_id, expires_in = body.get("corpAccessToken"), body.get("corpId"), body.get("expiresIn")
        if not token or not corp_id or expires_in is None:
            raise TransportError(
                f"{s.host} token answer lacks corpAccessToken/corpId/expiresIn", system=SYSTEM, endpoint=TOKEN_PATH
            )
        mask_secrets(token)
        self.log.info("Fetched a Fxiaoke corpAccessToken for %s (expires in %s s)", s.app_id, expires_in)
        return str(token), str(corp_id), float(expires_in)

    def get_token(self, *, refused: str | None = None) -> CorpToken:
        """The shared token for this app (fetched when missing, old, or just refused by the server)."""
        return TOKEN_CACHE.get(self.settings.token_key, self._fetch_token, clock=self._clock, refused=refused)

    def get_open_user_id(self) -> str:
        """``currentOpenUserId``: from the connection, or resolved once per process from the mobile."""
        s = self.settings
        if s.open_user_id:
            return s.open_user_id
        assert s.mobile is not None  # settings guarantee one of the two
        return cached_open_user_id((*s.token_key, s.mobile), lambda: self._resolve_open_user_id(s.mobile or ""))

    def _resolve_open_user_id(self, mobile: str) -> str:
        body = self._call(USER_BY_MOBILE_PATH, {"mobile": mobile}, with_user=False)
        employees = body.get("empList") or []
        if not employees or not employees[0].get("openUserId"):
            raise ConfigError(
                f"no employee with the mobile in extra 'mobile' on connection '{self.fxiaoke_conn_id}' — "
                "fix it or set extra 'open_user_id' (FSUID_…, a CRM admin is best)"
            )
        self.log.info("Resolved currentOpenUserId from the connection's mobile number")
        return str(employees[0]["openUserId"])

    def _call(
        self,
        path: str,
        payload: Mapping[str, Any],
        *,
        with_user: bool = True,
        idempotent: bool = True,
        write: bool = False,
    ) -> dict[str, Any]:
        """An authenticated call with the retry policy; the success envelope."""
        user = self.get_open_user_id() if with_user else None

        def attempt() -> dict[str, Any]:
            token = self.get_token()
            try:
                return self._send(path, self._body(payload, token, user), idempotent=idempotent, write=write)
            except SessionExpiredError:
                # 20016: one fresh token (bypassing the cache) and one replay; a second 20016 propagates.
                self.log.info("Token refused (20016) on %s; fetching a fresh one and replaying once", path)
                token = self.get_token(refused=token.access_token)
                return self._send(path, self._body(payload, token, user), idempotent=idempotent, write=write)

        retry_if = is_retryable if idempotent else refused_without_effect
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=(
                wait_exponential_jitter(initial=self.retry_wait_s, max=RETRY_WAIT_MAX_S, jitter=RETRY_JITTER_S)
                if self.retry_wait_s > 0
                else wait_none()
            ),
            retry=retry_if_exception(retry_if),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(attempt)

    @staticmethod
    def _body(payload: Mapping[str, Any], token: CorpToken, user: str | None) -> dict[str, Any]:
        body = {**payload, "corpAccessToken": token.access_token, "corpId": token.corp_id}
        if user:
            body["currentOpenUserId"] = user
        return body

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        self.log.warning("Fxiaoke call failed (attempt %s): %s; retrying in %.1f s", state.attempt_number, exc, wait)

    def _data(self, envelope: dict[str, Any], path: str) -> dict[str, Any]:
        data = envelope.get("data")
        if not isinstance(data, dict):
            # errorCode 0 without the result is not a network blip: asking again gets the same answer.
            raise PermanentApiError(
                f"{self.settings.host} answered errorCode 0 on {path} without a 'data' object "
                f"(traceId {envelope.get('traceId')}); is the host the Fxiaoke OpenAPI gateway?",
                system=SYSTEM, endpoint=path, code=envelope.get("errorCode"), trace_id=envelope.get("traceId"),
            )
        return data

    # --- writes --------------------------------------------------------------------------------
    def create_record(
        self,
        object_api_name: str,
        data: Mapping[str, Any],
        details: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        trigger_workflow: bool = False,
        *,
        trigger_approval_flow: bool = False,
    ) -> str:
        """Create a record (with detail lines ``{detail api name: [rows]}``); returns its ``_id`` (dataId).

        Never replayed after a lost answer: that raises :class:`OutcomeUnknownError`.
        """
        wire_details: dict[str, list[dict[str, Any]]] = {}
        for detail_api, rows in (details or {}).items():
            if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
                raise ConfigError(f"details[{detail_api!r}] must be a list of rows, got {type(rows).__name__}")
            wire_details[detail_api] = [dict(row) for row in rows]
        body: dict[str, Any] = {"object_data": {**data, "dataObjectApiName": object_api_name}}
        if wire_details:
            body["details"] = wire_details
        payload = {"triggerWorkFlow": trigger_workflow, "triggerApprovalFlow": trigger_approval_flow, "data": body}
        path = data_path(object_api_name, "create")
        envelope = self._call(path, payload, idempotent=False, write=True)
        data_id = envelope.get("dataId") or (envelope.get("data") or {}).get("_id")
        if not data_id:
            raise OutcomeUnknownError(
                f"{path} succeeded without a dataId — the record exists; find it by business key",
                system=SYSTEM,
                endpoint=path,
            )
        return str(data_id)

    def update_record(
        self,
        object_api_name: str,
        record_id: str,
        data: Mapping[str, Any],
        trigger_workflow: bool = False,
        *,
        trigger_approval_flow: bool = False,
    ) -> dict[str, Any]:
        """Update the given fields of one record (idempotent: retried on transient faults)."""
        if "owner" in data:
            self.log.warning("update ignores 'owner' on %s; change owners with changeOwner", object_api_name)
        object_data = {**data, "_id": record_id, "dataObjectApiName": object_api_name}
        payload = {
            "triggerWorkFlow": trigger_workflow,
            "triggerApprovalFlow": trigger_approval_flow,
            "data": {"object_data": object_data},
        }
        envelope = self._call(data_path(object_api_name, "update"), payload, write=True)
        result = envelope.get("data")
        return result if isinstance(result, dict) else {}

    def invalid_record(self, object_api_name: str, record_id: str) -> None:
        """Void one record (life_status → invalid; recoverable from the recycle bin)."""
        payload = {"data": {"dataObjectApiName": object_api_name, "object_data_id": record_id}}
        self._call(data_path(object_api_name, "invalid"), payload, idempotent=False, write=True)

    def delete_records(self, object_api_name: str, record_ids: Sequence[str]) -> None:
        """Delete voided records for good (the CRM deletes only voided ones; §3.8)."""
        payload = {"data": {"dataObjectApiName": object_api_name, "idList": [str(i) for i in record_ids]}}
        self._call(data_path(object_api_name, "delete"), payload, idempotent=False, write=True)

    def send_text_message(
        self, to_users: Sequence[str], content: str, *, batch_size: int = MAX_MESSAGE_RECIPIENTS
    ) -> int:
        """Send a text message to open user ids (deduplicated), ``batch_size`` ≤ 500 per call; returns the calls made."""
        if not 1 <= batch_size <= MAX_MESSAGE_RECIPIENTS:
            raise ConfigError(f"batch_size must be 1..{MAX_MESSAGE_RECIPIENTS} (the toUser cap), got {batch_size}")
        recipients = list(dict.fromkeys(u for u in to_users if u))
        if not recipients:
            raise ConfigError("send_text_message needs at least one open user id")
        if not content or not content.strip():
            raise ConfigError("send_text_message needs non-empty content")
        batches = [recipients[i : i + batch_size] for i in range(0, len(recipients), batch_size)]
        for batch in batches:
            payload = {"toUser": batch, "msgType": "text", "text": {"content": content}}
            self._send_message(payload)
        return len(batches)

    def _send_message(self, payload: Mapping[str, Any]) -> None:
        """One message call; a gateway 502/503 (the message service never answered) is sent again.

        A duplicate text is a far smaller harm than a delivery nobody hears about; a timeout, though, may
        have been delivered and stays :class:`OutcomeUnknownError` (never resent).
        """
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._call(MESSAGE_PATH, payload, with_user=False, idempotent=False)
                return
            except OutcomeUnknownError as exc:
                if exc.status not in GATEWAY_DID_NOT_ANSWER or attempt == self.max_attempts:
                    raise
                self.log.warning("Fxiaoke %s answered HTTP %s; sending the message again (%s/%s)", MESSAGE_PATH,
                                 exc.status, attempt + 1, self.max_attempts)
                if self.retry_wait_s > 0:
                    time.sleep(min(self.retry_wait_s * attempt, RETRY_WAIT_MAX_S))

    # --- UI ------------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Get a token and describe AccountObj; ``(ok, message)`` for the Airflow UI."""
        try:
            # A fresh token, not the shared cache: the cache is keyed by app, not by secret, so a cached token
            # would pass a connection whose app secret was just mistyped.
            _, corp_id, _ = self._fetch_token()
            describe = self.describe("AccountObj", include_detail=False)
        except Exception as exc:  # the UI shows the message (what failed, what to fix); never raise from here
            return False, what_to_fix(exc, system="Fxiaoke", conn_id=self.fxiaoke_conn_id)
        fields = describe.get("fields") or {}
        return True, f"Connected to {self.settings.host} (corp {corp_id}); AccountObj has {len(fields)} fields"
