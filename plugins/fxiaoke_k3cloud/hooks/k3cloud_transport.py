"""The one request path of K3CloudHook: timeouts, session, retry policy and wire-error mapping (the body encoding
and the decoding of an answer into a typed error are in ``k3cloud_wire``).

Retry policy (spec §6, §9.5), capped exponential backoff with jitter:

- lock conflicts (MsgCode 13) and call limits (MsgCode 14 / HTTP 429) — every call, writes included: the
  server refused before doing anything;
- connection errors, timeouts, HTTP 5xx and ``response_error:`` server exceptions — reads only (queries, View,
  login);
- a write that was sent and got no usable answer (read timeout, dropped connection, 5xx, a body that is not JSON)
  raises ``OutcomeUnknownError`` and is never replayed: the caller reads back first. A connection refused before
  the request left is safe and retried like a read.

Lock conflicts are recognised by MsgCode 13 *or* their text (real servers answer "…冲突，请稍候再使用" with MsgCode
0 or none); a BatchSave whose packages partly hit a conflict re-sends only those packages (``retry_while_pending``).

Sessions: one per client in every auth mode. Session logins keep the id they got; signed mode keeps the
``kdservice-sessionid`` cookie the first signed answer sets and sends it back with the signature, as the official
SDK does (without it every signed call opens a new server session). ``close()`` logs out — except a session the
deployment shares across tasks and runs (:mod:`.k3cloud_session`), which is kept for the next task.

Session loss (MsgCode 1, or the session-lost text without MsgCode, or a bare error list) is not a retry: the client logs in again under a lock and
replays the request once — safe for writes because the server checks the context before the business call —
and raises ``SessionExpiredError`` if the fresh session is refused too.
"""

from __future__ import annotations

import logging
import threading
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE as DEFAULT_POOL_MAXSIZE
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from fxiaoke_k3cloud.errors import (
    ApiError,
    ConfigError,
    OutcomeUnknownError,
    RateLimitedError,
    RetryableApiError,
    SessionExpiredError,
    TransportError,
)
from fxiaoke_k3cloud.hooks import call_ledger
from fxiaoke_k3cloud.hooks._http import HttpSettings, mask_secrets, max_in_flight_extra, new_session
from fxiaoke_k3cloud.hooks.k3cloud_auth import (
    LOGOUT,
    SESSION_COOKIE,
    K3Credentials,
    login_request,
    session_id_from_login,
    signed_headers,
)
from fxiaoke_k3cloud.hooks.k3cloud_response import (
    MSG_CALL_LIMIT,
    MSG_LOCK_CONFLICT,
    is_record_level_failure,
    is_session_lost,
    raise_for_status,
    response_status,
)
from fxiaoke_k3cloud.hooks.k3cloud_wire import decode_answer, encode_body, never_sent

SYSTEM = "k3cloud"
DYNAMIC_FORM = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService."

RETRY_MAX_ATTEMPTS = 4
RETRY_INITIAL_WAIT_S = 1.0
RETRY_MAX_WAIT_S = 20.0
RETRYABLE_HTTP_STATUSES = frozenset({500, 502, 503, 504})
DEFAULT_MAX_IN_FLIGHT = 4  # requests a load sends at once (connection extra max_in_flight)


def max_in_flight_from_extra(extra: Any, conn_id: str) -> int:
    """The connection extra ``max_in_flight``: a whole number 1–32 (default 4); anything else is a ConfigError."""
    return max_in_flight_extra(extra, system=SYSTEM, conn_id=conn_id, default=DEFAULT_MAX_IN_FLIGHT,
                               what="K3Cloud requests a load sends at once")


class _RejectAllCookies(DefaultCookiePolicy):
    """The session id is sent explicitly; a jar would mis-handle the mixed-case ``/K3Cloud`` cookie paths."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False


class K3CloudClient:
    """HTTP client for one K3Cloud data center; thread-safe, one ``requests.Session`` and one server session
    shared by every thread (``_login_lock``: one login at a time; a lost session is dropped only by the first
    thread that saw it, so N threads that lose it together cause one new login, not N).

    :param max_attempts: attempts per call for the retryable cases (1 = no retry).
    :param retry_wait_s: base of the backoff; 0 retries immediately (tests).
    """

    def __init__(
        self,
        creds: K3Credentials,
        settings: HttpSettings,
        *,
        max_attempts: int = RETRY_MAX_ATTEMPTS,
        retry_wait_s: float = RETRY_INITIAL_WAIT_S,
        log: logging.Logger | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        shared: Any = None,
    ) -> None:
        """:param shared: the deployment's session (:class:`.k3cloud_session.SharedSession`), or None: this
            client logs in for itself and logs out in :meth:`close`."""
        self.creds = creds
        self.shared = shared
        self.max_in_flight = max_in_flight
        self.settings = settings
        self.max_attempts = max_attempts
        self.retry_wait_s = retry_wait_s
        self.log = log or logging.getLogger(__name__)
        self.session = new_session(settings, system=SYSTEM)
        self.session.cookies.set_policy(_RejectAllCookies())
        if max_in_flight > DEFAULT_POOL_MAXSIZE:  # one kept-alive connection per thread in flight
            for prefix in ("https://", "http://"):
                self.session.mount(prefix, HTTPAdapter(pool_maxsize=max_in_flight))
        self.session.headers.update({"Accept-Charset": "utf-8", "User-Agent": "fxiaoke-k3cloud-sync K3CloudHook"})
        self._session_id: str | None = None
        self._lost: str | None = None  # the shared session the server last answered "lost" for
        self._login_lock = threading.Lock()

        self.logins = 0  # sessions this client opened (logins; signed: cookies received)
        self.logouts = 0

    def close(self) -> None:
        """Log out (best effort: the task's work is done whatever the answer) and close the HTTP session.

        A shared session is not logged out (the deployment's other tasks use it): its last use is recorded."""
        try:
            if self.shared is not None:
                with self._login_lock:
                    session_id, self._session_id = self._session_id, None
                if session_id is not None:
                    self.shared.used(session_id)
            else:
                self.logout()
        finally:
            self.session.close()

    # --- session -----------------------------------------------------------------------------------------
    def ensure_session(self) -> str | None:
        """The current session id, logging in first if there is none.

        Signed mode never logs in: the id is the cookie the server set on an earlier signed call (None at first).
        """
        with self._login_lock:
            if self._session_id is None and self.creds.auth_mode != "signed":
                if self.shared is not None:
                    self._session_id, logged_in = self.shared.get(self._login, refused=self._lost)
                else:
                    self._session_id, logged_in = self._login(), True
                self.logins += logged_in
            return self._session_id

    def logout(self) -> None:
        """Give the server session back (``AuthService.Logout``); a no-op without one. Never raises."""
        with self._login_lock:
            session_id, self._session_id = self._session_id, None
        if session_id is None:
            return
        url = f"{self.creds.base_url}{LOGOUT}.common.kdsvc"
        headers = {"Content-Type": "application/json; charset=utf-8", "Cookie": f"{SESSION_COOKIE}={session_id}"}
        try:
            call_ledger.add(SYSTEM, LOGOUT.rsplit(".", 1)[-1])
            response = self.session.post(url, data=b"{}", headers=headers, timeout=self.settings.timeout)
        except requests.exceptions.RequestException as exc:
            self.log.warning("k3cloud: logout failed (%s); the session ends at the server's idle timeout", type(exc).__name__)
            return
        if response.status_code != 200:
            self.log.warning("k3cloud: logout answered HTTP %s; the session ends at the server's idle timeout",
                             response.status_code)
            return
        self.logouts += 1
        self.log.info("k3cloud: logged out as %s", self.creds.username)  # acct_id is sensitive: not logged

    def _keep_signed_cookie(self, response: requests.Response, sent: str | None) -> None:
        # The official SDK replays the kdservice-sessionid it receives; a new one replaces a lost one.
        received = response.cookies.get(SESSION_COOKIE)
        if self.creds.auth_mode != "signed" or not received or received == sent:
            return
        mask_secrets(received)
        with self._login_lock:
            if self._session_id in (None, sent):
                self._session_id = received
                self.logins += 1

    def _login(self) -> str:
        service, body = login_request(self.creds)
        response = self._post(service, body, write=False, session_id=None)
        answer = self._decode(response, service, write=False)
        session_id = session_id_from_login(answer, self.creds, cookie_session_id=response.cookies.get(SESSION_COOKIE))
        mask_secrets(session_id)
        self.log.info(
            "k3cloud: logged in as %s (%s)", self.creds.username, self.creds.auth_mode  # acct_id is sensitive: not logged
        )
        return session_id

    def _drop_session(self, session_id: str | None) -> None:
        # Only the session seen as lost is dropped; a thread arriving later reuses the fresh one (one login).
        with self._login_lock:
            if self._session_id == session_id:
                self._session_id = None
                self._lost = session_id

    # --- calls -------------------------------------------------------------------------------------------
    def call(self, service: str, payload: dict[str, Any], *, write: bool, record_errors: bool = False) -> Any:
        """POST ``DynamicFormService.<service>`` and return the decoded body of a successful answer.

        :param write: the call changes data (never replayed once it may have been applied).
        :param record_errors: return a failed status with per-record errors (BatchSave) instead of raising.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=self.retry_wait_s, max=RETRY_MAX_WAIT_S),
            retry=retry_if_exception(lambda exc: should_retry(exc, write=write)),
            before_sleep=lambda state: self._log_retry(service, state),
            reraise=True,
        )
        return retrying(self._call_once, service, payload, write, record_errors)

    def login(self) -> None:
        """Log in now (with the read retry policy); a no-op in signed mode."""
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=self.retry_wait_s, max=RETRY_MAX_WAIT_S),
            retry=retry_if_exception(lambda exc: should_retry(exc, write=False)),
            reraise=True,
        )
        retrying(self.ensure_session)

    def retry_while_pending(self, service: str, attempt: Any) -> Any:
        """Run ``attempt`` until it returns an empty result (nothing left to re-send) or attempts run out.

        Used for per-record lock conflicts inside a BatchSave: capped exponential backoff with jitter, like
        every other retry; after the last attempt the still-pending records keep their conflict outcome.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=self.retry_wait_s, max=RETRY_MAX_WAIT_S),
            retry=retry_if_result(bool),
            before_sleep=lambda state: self.log.warning(
                "k3cloud %s: %s record(s) still locked after attempt %s/%s; retrying", service,
                len(state.outcome.result()) if state.outcome else 0, state.attempt_number, self.max_attempts),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        return retrying(attempt)

    def _call_once(self, service: str, payload: dict[str, Any], write: bool, record_errors: bool) -> Any:
        for replay in (False, True):
            session_id = self.ensure_session()
            response = self._post(DYNAMIC_FORM + service, payload, write=write, session_id=session_id)
            self._keep_signed_cookie(response, session_id)
            body = self._decode(response, service, write=write)
            status = response_status(body)
            if status is not None and is_session_lost(status):
                self._drop_session(session_id)
                if replay:
                    raise SessionExpiredError(self._lost_twice_hint(), system=SYSTEM, endpoint=service, code=1)
                self.log.info("k3cloud %s: session lost (MsgCode 1); logging in again and replaying once", service)
                continue
            if status is not None and not (record_errors and is_record_level_failure(status)):
                raise_for_status(status, service)
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    def _lost_twice_hint(self) -> str:
        if self.creds.auth_mode == "signed":
            return (
                "signed request refused as 'session lost' twice; check app_id, app_secret, acct_id, the user name "
                "and that the app authorization (第三方系统登录授权) is enabled for this user"
            )
        return (
            "session lost again right after a fresh login; check that the app authorization is enabled and that no "
            "other client kicks this user off"
        )

    def _post(self, service: str, payload: dict[str, Any], *, write: bool, session_id: str | None) -> requests.Response:
        url = f"{self.creds.base_url}{service}.common.kdsvc"
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.creds.auth_mode == "signed":
            headers.update(signed_headers(self.creds, url))
        if session_id:
            headers["Cookie"] = f"{SESSION_COOKIE}={session_id}"
        data = encode_body(payload)
        name = service.rsplit(".", 1)[-1]
        host = urlsplit(url).netloc
        call_ledger.add(SYSTEM, name)  # counted when sent, answered or not (the run's api_calls)
        try:
            response = self.session.post(url, data=data, headers=headers, timeout=self.settings.timeout)
        except requests.exceptions.SSLError as exc:
            raise TransportError(
                f"TLS error talking to {host}: {exc}. Give a CA bundle (extra ca_bundle) rather than disabling checks",
                system=SYSTEM, endpoint=name,
            ) from exc
        except requests.exceptions.RequestException as exc:
            if not write or never_sent(exc):
                raise TransportError(f"no answer from {host} for {name}: {exc}", system=SYSTEM, endpoint=name) from exc
            raise OutcomeUnknownError(
                f"{name} was sent to {host} but no answer came back ({type(exc).__name__}); it may have been "
                "applied. Read the record back (e.g. find_by_number) before retrying",
                system=SYSTEM, endpoint=name,
            ) from exc
        self.log.debug("k3cloud %s -> HTTP %s", name, response.status_code)
        return response

    def _decode(self, response: requests.Response, service: str, *, write: bool) -> Any:
        """The JSON body of a 200 answer; every other shape becomes a typed error (see ``k3cloud_wire``)."""
        return decode_answer(response, service, write=write, log=self.log)

    def _log_retry(self, service: str, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.log.warning(
            "k3cloud %s: attempt %s/%s failed (%s: %s); retrying in %.2fs",
            service, state.attempt_number, self.max_attempts, type(exc).__name__,
            getattr(exc, "code", None), state.next_action.sleep if state.next_action else 0.0,
        )


def should_retry(exc: BaseException, *, write: bool) -> bool:
    """The retry predicate of the policy in the module docstring."""
    if isinstance(exc, (OutcomeUnknownError, SessionExpiredError)):
        return False
    if isinstance(exc, RateLimitedError) or (isinstance(exc, ApiError) and exc.code in (MSG_LOCK_CONFLICT, MSG_CALL_LIMIT)):
        return True
    if isinstance(exc, TransportError):
        # Writes that may have landed are OutcomeUnknownError by now; what is left was not applied.
        return not isinstance(exc.__cause__, requests.exceptions.SSLError) and (
            exc.status is None or exc.status in RETRYABLE_HTTP_STATUSES
        )
    return isinstance(exc, RetryableApiError) and not write
